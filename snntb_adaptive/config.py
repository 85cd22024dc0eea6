"""The ``[adaptive_threshold]`` configuration section: presets, defaults and
validation.

SNN-TB reads an ``.ini`` file into a ``configparser.ConfigParser``. The plugin
adds one section::

    [adaptive_threshold]
    preset = paper          # paper | authors_code | authors_executed | paper_window
                            # | spike_norm (Phase 1 by Spike-Norm, see spike_norm.py)
                            # | calibrated (post-training calibration, calibration.py)
    eta_scale = 0.7         # float in (0, 1], or one per spiking layer: 0.7, 0.8, ...
    update =                # clamp | window | none, or any rule registered in
                            # dynamics.RULES        (empty: from the preset)
    scope =                 # sample | batch          (empty: from the preset)
    readout =               # spikes | membrane (empty: membrane for
                            # preset = calibrated, else spikes)
    avg_pooling =           # spiking | linear (empty: linear for
                            # preset = calibrated, else spiking, SNN-TB's)
    resume = False          # True: continue a killed run (see progress.py)
    kernel = auto           # auto | fused | sparse | tf   (see kernel.py)
    precision = float32     # float32 | bfloat16 (optional: bf16 weights, see layers.py)
    executor = local        # local | ray   (where batches run; same results)
    ray_address =           # empty: a Ray instance on this machine;
                            # auto or host:port: join that cluster
    workers = 0             # Ray workers; 0: one per threads_per_worker CPUs
    threads_per_worker = 1  # TensorFlow threads of each Ray worker
    ray_timeout = 30        # seconds a cluster at ray_address has to answer
    mem_init =              # initial membrane potential / V_max, in [0, 1)
                            # (empty: 0.5 for preset = calibrated, else 0)
    calibration_steps = 32  # preset = calibrated: the T it calibrates for
    calibration_horizon = auto  # ... simulating round(horizon x T) steps;
                            # auto: the horizon of HORIZONS whose network
                            # agrees best with the ANN (calibration.py)
    calibration_samples = 512  # ... on the first N images of x_norm
    calibration_thresholds = channel  # ... one threshold per channel | layer
    calibration_correction = potential  # ... corrects the initial membrane
                            # potential | the bias | both (calibration.py)
    calibration_potential = channel  # ... that potential per channel | neuron
    max_spikes_per_step = 1 # burst spikes: up to N spikes per neuron and
                            # step (1: the IF neuron of SNN-TB and the paper)

:func:`settings_from_config` turns it into a :class:`Settings` and
:func:`check_snntb_options` rejects SNN-TB options that the adaptive threshold
cannot be combined with. Both raise :class:`ConfigError` with a message that
names the key, the value and what is allowed; both run before any model is
loaded.
"""

from dataclasses import dataclass

from snntb_adaptive.errors import ConfigError
from snntb_adaptive.kernel import KERNELS as KERNEL_TABLE
from snntb_adaptive.phase1 import of_preset as phase1_of_preset

SPIKE_CODE = 'adaptive_threshold'
SECTION = 'adaptive_threshold'

#: preset name -> (update, scope)
PRESETS = {
    'paper': ('clamp', 'sample'),
    'authors_code': ('clamp', 'batch'),
    'authors_executed': ('none', 'batch'),
    'paper_window': ('window', 'sample'),
    'spike_norm': ('none', 'batch'),
    'calibrated': ('none', 'batch'),
}
GRANULARITIES = ('channel', 'layer')
#: what the calibration corrects per channel (see calibration.py)
CORRECTIONS = ('bias', 'potential', 'both')
#: one corrected initial membrane per channel, or per neuron (Li et al.)
POTENTIALS = ('channel', 'neuron')
READOUTS = ('spikes', 'membrane')
#: ``spiking``: SNN-TB's average pooling, a layer of IF neurons;
#: ``linear``: the average of the incoming spikes goes straight into the next
#: layer's integration (no threshold, no reset)
POOLINGS = ('spiking', 'linear')
PRECISIONS = ('float32', 'bfloat16')

#: Defaults injected into SNN-TB's ``config_defaults``. ``update`` and
#: ``scope`` stay empty: empty means "as the preset says".
DEFAULTS = {
    'preset': 'paper',
    'eta_scale': '0.7',
    'update': '',
    'scope': '',
    'readout': '',
    'avg_pooling': '',
    'resume': 'False',
    'kernel': 'auto',
    'precision': 'float32',
    'executor': 'local',
    'ray_address': '',
    'workers': '0',
    'threads_per_worker': '1',
    'ray_timeout': '30',
    'mem_init': '',
    'calibration_steps': '32',
    'calibration_horizon': 'auto',
    'calibration_samples': '512',
    'calibration_thresholds': 'channel',
    'calibration_correction': 'potential',
    'calibration_potential': 'channel',
    'max_spikes_per_step': '1',
}
#: the most spikes a neuron may emit in one step (the calibration keeps a
#: layer's spike counts per step in one byte)
MAX_SPIKES = 255
#: the horizons ``calibration_horizon = auto`` tries (fractions of
#: ``calibration_steps``; ``calibration.HORIZONS``, docs/results.md, "The
#: calibration horizon")
CALIBRATION_HORIZONS = (0.25, 0.5)
EXECUTORS = ('local', 'ray')


@dataclass(frozen=True)
class Settings:
    """Effective settings of the adaptive threshold."""

    preset: str = 'paper'
    update: str = 'clamp'
    scope: str = 'sample'
    eta_scale: tuple = (0.7,)
    readout: str = 'spikes'
    #: average pooling: SNN-TB's spiking layer, or a linear synapse
    avg_pooling: str = 'spiking'
    kernel: str = 'auto'
    precision: str = 'float32'
    #: ``weight_norm`` (SNN-TB's percentile normalisation, then ``V_init =
    #: eta * V_max``) or ``spike_norm`` (:mod:`snntb_adaptive.spike_norm`)
    phase1: str = 'weight_norm'
    #: initial membrane potential as a fraction of ``V_max``
    mem_init: float = 0.0
    #: ``preset = calibrated``: steps T, x_norm images, threshold granularity
    calibration_steps: int = 32
    #: the fraction of ``calibration_steps`` the calibration simulates, or
    #: ``'auto'`` (each of ``calibration.HORIZONS``, the best kept)
    calibration_horizon: object = 'auto'
    calibration_samples: int = 512
    calibration_thresholds: str = 'channel'
    calibration_correction: str = 'potential'
    #: the corrected initial membrane: one per channel or per neuron
    calibration_potential: str = 'channel'
    #: spikes a neuron may emit per step (burst spikes when > 1)
    max_spikes: int = 1

    @property
    def calibration_candidates(self):
        """``[(horizon, simulated steps), ...]`` the calibration tries: the
        one horizon given, or for ``auto`` each of
        :data:`CALIBRATION_HORIZONS` (one per distinct number of steps, the
        shorter horizon kept); ``round(horizon * calibration_steps)``
        steps, at least 1."""
        horizons = CALIBRATION_HORIZONS \
            if self.calibration_horizon == 'auto' else \
            (self.calibration_horizon,)
        candidates = []
        for horizon in horizons:
            steps = max(1, int(round(horizon * self.calibration_steps)))
            if steps not in [s for _, s in candidates]:
                candidates.append((horizon, steps))
        return candidates

    def calibration(self):
        """The settings the calibration depends on (its fingerprint; the
        calibration file's ``settings``)."""
        return {'steps': self.calibration_steps,
                'horizon': self.calibration_horizon,
                'simulated_steps': [s for _, s in
                                    self.calibration_candidates],
                'samples': self.calibration_samples,
                'thresholds': self.calibration_thresholds,
                'mem_init': self.mem_init,
                'avg_pooling': self.avg_pooling,
                'correction': self.calibration_correction,
                'potential': self.calibration_potential,
                'max_spikes': self.max_spikes}

    def phase1_key(self):
        """What makes two settings' Phase 1 differ (one parsed model each
        in a comparison): the method, which layers have neurons, and the
        settings the method depends on."""
        from snntb_adaptive.phase1 import METHODS
        return (self.phase1, self.avg_pooling) + tuple(
            (name, getattr(self, name))
            for name in METHODS[self.phase1].depends_on)

    def eta_per_layer(self, num_spiking_layers):
        """One ``eta`` per spiking layer, in layer order."""
        if len(self.eta_scale) == 1:
            return [self.eta_scale[0]] * num_spiking_layers
        if len(self.eta_scale) != num_spiking_layers:
            raise ConfigError(
                "[adaptive_threshold] eta_scale = {}: gives {} values, but the "
                "model has {} spiking layers. Give one value, or exactly {} "
                "comma-separated values in layer order.".format(
                    ', '.join(str(e) for e in self.eta_scale),
                    len(self.eta_scale), num_spiking_layers,
                    num_spiking_layers))
        return list(self.eta_scale)

    def as_dict(self):
        return {'preset': self.preset, 'update': self.update,
                'scope': self.scope, 'eta_scale': list(self.eta_scale),
                'readout': self.readout, 'kernel': self.kernel,
                'precision': self.precision, 'phase1': self.phase1,
                # only where they apply, so that earlier runs' results (and
                # progress fingerprints) stay as they were
                **({'mem_init': self.mem_init} if self.mem_init else {}),
                **({'avg_pooling': self.avg_pooling}
                   if self.avg_pooling != 'spiking' else {}),
                **({'max_spikes_per_step': self.max_spikes}
                   if self.max_spikes != 1 else {}),
                **({'calibration': self.calibration()}
                   if self.phase1 == 'calibrated' else {})}


def _choice(key, value, allowed):
    if value not in allowed:
        raise ConfigError("[adaptive_threshold] {} = {!r}: not allowed. "
                          "Choose one of: {}.".format(key, value,
                                                      ', '.join(allowed)))
    return value


def parse_eta(value):
    """Parse ``eta_scale``: one float, or a comma-separated list of floats,
    each in (0, 1]."""
    parts = [p.strip() for p in str(value).split(',')]
    etas = []
    for p in parts:
        try:
            eta = float(p)
        except ValueError:
            raise ConfigError(
                "[adaptive_threshold] eta_scale = {!r}: {!r} is not a number. "
                "Give a float in (0, 1], or a comma-separated list of such "
                "floats, one per spiking layer.".format(value, p)) from None
        if not 0 < eta <= 1:  # also rejects nan
            raise ConfigError(
                "[adaptive_threshold] eta_scale = {!r}: {} is outside (0, 1]. "
                "Each value must satisfy 0 < eta_scale <= 1.".format(value, p))
        etas.append(eta)
    return tuple(etas)


def settings_from_mapping(section):
    """Build :class:`Settings` from a mapping of the section's keys (missing
    keys take the defaults). Unknown keys are an error."""
    # The rules and scopes are those of dynamics (imported here, on first
    # use, because it imports TensorFlow).
    from snntb_adaptive.dynamics import RULES, SCOPES
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            "[adaptive_threshold] unknown key(s) {}: allowed keys are {}."
            "".format(', '.join(repr(k) for k in unknown),
                      ', '.join(DEFAULTS)))
    values = dict(DEFAULTS)
    values.update({k: str(v).strip() for k, v in section.items()})
    preset = _choice('preset', values['preset'], tuple(PRESETS))
    update, scope = PRESETS[preset]
    if values['update']:
        update = _choice('update', values['update'], tuple(RULES))
    if values['scope']:
        scope = _choice('scope', values['scope'], SCOPES)
    if values['resume'].lower() not in ('true', 'false', '1', '0', 'yes',
                                        'no', 'on', 'off'):
        raise ConfigError("[adaptive_threshold] resume = {!r}: not a boolean "
                          "(use True or False).".format(values['resume']))
    execution_from_mapping(values)   # validates the execution keys
    # the Phase-1 method of the preset, and what empty keys mean under it
    # (snntb_adaptive.phase1; measured: docs/results.md)
    method = phase1_of_preset(preset)
    phase1 = method.name
    etas = parse_eta(values['eta_scale'])
    if method.sets_thresholds and update == 'none':
        # Phase 1 sets the thresholds (measured maxima, or calibrated):
        # V_init = V_max. With an update rule set explicitly, Phase 2 runs
        # from eta * V_max on top of them.
        etas = (1.0,)
    readout = _choice('readout', values['readout'] or method.defaults.get(
        'readout', 'spikes'), READOUTS)
    avg_pooling = _choice('avg_pooling', values['avg_pooling'] or
                          method.defaults.get('avg_pooling', 'spiking'),
                          POOLINGS)
    max_spikes = _whole('max_spikes_per_step', values['max_spikes_per_step'],
                        1)
    if max_spikes > MAX_SPIKES:
        raise ConfigError("[adaptive_threshold] max_spikes_per_step = {}: at "
                          "most {}.".format(max_spikes, MAX_SPIKES))
    if max_spikes > 1 and not method.burst_spikes:
        raise ConfigError(
            "[adaptive_threshold] max_spikes_per_step = {} cannot be combined "
            "with preset = {} (it measures its thresholds with one spike per "
            "step). Use another preset, or max_spikes_per_step = 1."
            "".format(max_spikes, preset))
    mem_init = _fraction('mem_init', values['mem_init'] or
                         method.defaults.get('mem_init', '0'))
    return Settings(preset=preset, update=update, scope=scope,
                    eta_scale=etas, phase1=phase1, mem_init=mem_init,
                    calibration_steps=_whole(
                        'calibration_steps', values['calibration_steps'], 1),
                    calibration_horizon=_horizon(
                        values['calibration_horizon']),
                    calibration_samples=_whole(
                        'calibration_samples', values['calibration_samples'],
                        1),
                    calibration_thresholds=_choice(
                        'calibration_thresholds',
                        values['calibration_thresholds'], GRANULARITIES),
                    calibration_correction=_choice(
                        'calibration_correction',
                        values['calibration_correction'], CORRECTIONS),
                    calibration_potential=_choice(
                        'calibration_potential',
                        values['calibration_potential'], POTENTIALS),
                    readout=readout, avg_pooling=avg_pooling,
                    max_spikes=max_spikes,
                    # auto, or a name in the table of kernels
                    kernel=_choice('kernel', values['kernel'],
                                   ('auto',) + tuple(KERNEL_TABLE)),
                    precision=_choice('precision', values['precision'],
                                      PRECISIONS))


def horizon_text(settings):
    """How the calibration's horizon reads in the settings table and log:
    ``simulating 4: horizon 0.25`` or ``horizon auto: simulating 4 or 8,
    the better kept``."""
    candidates = settings.calibration_candidates
    if settings.calibration_horizon != 'auto':
        return 'simulating {}: horizon {:g}'.format(
            candidates[0][1], settings.calibration_horizon)
    steps = [str(s) for _, s in candidates]
    if len(steps) == 1:
        return 'horizon auto: simulating ' + steps[0]
    return 'horizon auto: simulating {} or {}, the better kept'.format(
        ', '.join(steps[:-1]), steps[-1])


def _horizon(value):
    if value.strip().lower() == 'auto':
        return 'auto'
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0 < number <= 1:   # also rejects nan
        raise ConfigError("[adaptive_threshold] calibration_horizon = {!r}: "
                          "give auto or a number in (0, 1], the fraction "
                          "of calibration_steps the calibration simulates."
                          "".format(value))
    return number


def _fraction(key, value):
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0 <= number < 1:   # also rejects nan
        raise ConfigError("[adaptive_threshold] {} = {!r}: give a number in "
                          "[0, 1) (a fraction of V_max).".format(key, value))
    return number


@dataclass(frozen=True)
class Execution:
    """Where a run's batches are simulated. Not part of the results: a run
    gives the same numbers with either executor (and may be resumed with the
    other)."""

    executor: str = 'local'
    ray_address: str = ''
    workers: int = 0
    threads_per_worker: int = 1
    ray_timeout: float = 30.0


def _whole(key, value, lower):
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < lower:
        raise ConfigError("[adaptive_threshold] {} = {!r}: give a whole "
                          "number >= {}.".format(key, value, lower))
    return number


def execution_from_mapping(values):
    """The :class:`Execution` of a mapping of the section's keys."""
    merged = dict(DEFAULTS)
    merged.update({k: str(v).strip() for k, v in values.items()})
    return Execution(
        executor=_choice('executor', merged['executor'], EXECUTORS),
        ray_address=merged['ray_address'],
        workers=_whole('workers', merged['workers'], 0),
        threads_per_worker=_whole('threads_per_worker',
                                  merged['threads_per_worker'], 1),
        ray_timeout=_seconds('ray_timeout', merged['ray_timeout']))


def _seconds(key, value):
    try:
        number = float(str(value).strip())
    except ValueError:
        number = None
    if number is None or not 0 < number <= 86400:
        raise ConfigError("[adaptive_threshold] {} = {!r}: give a number of "
                          "seconds, more than 0 and at most 86400.".format(
                              key, value))
    return number


def section_items(config):
    """The ``[adaptive_threshold]`` keys of a config, interpolated: those
    the section sets and the plugin's defaults, not the ``[DEFAULT]``
    section's other keys (``configparser`` shows those in every section)."""
    own = config._sections.get(SECTION, {})   # the keys the section sets
    return {k: v for k, v in config.items(SECTION)
            if k in own or k in DEFAULTS}


def execution_from_config(config):
    """The :class:`Execution` of a SNN-TB config."""
    if not config.has_section(SECTION):
        return Execution()
    return execution_from_mapping(section_items(config))


def settings_from_config(config):
    """Read the ``[adaptive_threshold]`` section of a SNN-TB config."""
    if not config.has_section(SECTION):
        return settings_from_mapping({})
    # Defaults injected into SNN-TB's config_defaults live in the same
    # section; items() gives the merged view.
    return settings_from_mapping(section_items(config))


def _get(config, section, key, fallback=None):
    return config.get(section, key, fallback=fallback)


def _bool(config, section, key):
    value = _get(config, section, key, 'False')
    try:
        return config.getboolean(section, key, fallback=False)
    except ValueError:
        raise ConfigError("[{}] {} = {!r}: not a boolean (use True or False)."
                          "".format(section, key, value)) from None


def _number(config, section, key, kind, lower, upper=None, text=''):
    raw = _get(config, section, key)
    try:
        # int as SNN-TB's getint reads it: digits only, no 30.0 or 1e9
        value = int(raw.strip()) if kind is int else kind(raw)
    except (TypeError, ValueError, AttributeError):
        raise ConfigError("[{}] {} = {!r}: not {}. {}".format(
            section, key, raw, 'an integer' if kind is int else 'a number',
            text)) from None
    if not (value >= lower and (upper is None or value <= upper)):
        raise ConfigError("[{}] {} = {!r}: out of range. {}".format(
            section, key, raw, text))
    return value


def check_snntb_options(config):
    """Reject SNN-TB options the adaptive threshold cannot be combined with.

    Called only when ``[conversion] spike_code = adaptive_threshold``.
    """
    simulator = _get(config, 'simulation', 'simulator')
    if simulator != 'INI':
        raise ConfigError(
            "[simulation] simulator = {!r}: spike_code = adaptive_threshold "
            "runs only in SNN-TB's INI simulator. Set simulator = INI."
            "".format(simulator))
    backend = _get(config, 'simulation', 'keras_backend', 'tensorflow')
    if backend != 'tensorflow':
        raise ConfigError(
            "[simulation] keras_backend = {!r}: the adaptive threshold needs "
            "tensorflow. Set keras_backend = tensorflow.".format(backend))
    _number(config, 'simulation', 'duration', int, 1,
            text='Set duration to a whole number of time steps >= 1.')
    _number(config, 'simulation', 'batch_size', int, 1,
            text='Set batch_size to a whole number >= 1.')
    _number(config, 'simulation', 'num_to_test', int, 1,
            text='Set num_to_test to a whole number >= 1.')
    dt = _number(config, 'simulation', 'dt', float, 0,
                 text='The adaptive threshold is defined for dt = 1.')
    if dt != 1:
        raise ConfigError(
            "[simulation] dt = {!r}: the adaptive threshold (SPEC Phase 2) is "
            "defined per time step with dt = 1. Set dt = 1."
            "".format(_get(config, 'simulation', 'dt')))
    # membranes, thresholds and inputs times V_max are float32: keep them
    # far from its overflow and underflow
    _number(config, 'cell', 'v_thresh', float, 1e-6, 1e6,
            text='V_max = [cell] v_thresh must be a number from 1e-6 to 1e6 '
            "(the membranes are float32; SNN-TB's default is 1).")
    tau_refrac = _number(config, 'cell', 'tau_refrac', float, 0,
                         text='Set tau_refrac = 0.')
    if tau_refrac != 0:
        raise ConfigError(
            "[cell] tau_refrac = {!r}: a refractory period cannot be combined "
            "with the adaptive threshold. Set tau_refrac = 0."
            "".format(_get(config, 'cell', 'tau_refrac')))
    reset = _get(config, 'cell', 'reset')
    if reset != 'Reset by subtraction':
        raise ConfigError(
            "[cell] reset = {!r}: the adaptive threshold resets by subtracting "
            "V_max. Set reset = Reset by subtraction.".format(reset))
    for section, key in [('cell', 'leak'), ('cell', 'payloads'),
                         ('cell', 'bias_relaxation'),
                         ('cell', 'binarize_weights'),
                         ('cell', 'quantize_weights'),
                         ('normalization', 'online_normalization'),
                         ('input', 'poisson_input'),
                         ('simulation', 'early_stopping'),
                         ('tools', 'serialise_only')]:
        if _bool(config, section, key):
            raise ConfigError(
                "[{}] {} = True: cannot be combined with spike_code = "
                "adaptive_threshold (inputs are constant currents, neurons "
                "are non-leaky IF with reset by subtraction). Set {} = False."
                "".format(section, key, key))
    dataset_format = _get(config, 'input', 'dataset_format')
    if dataset_format != 'npz':
        raise ConfigError(
            "[input] dataset_format = {!r}: the adaptive threshold simulator "
            "reads .npz data sets. Convert the data with "
            "'python -m snntb_adaptive prepare-data' and set "
            "dataset_format = npz.".format(dataset_format))
    if _get(config, 'paths', 'filename_clamp_indices', ''):
        raise ConfigError(
            "[paths] filename_clamp_indices is set: SNN-TB's experimental "
            "membrane clamping cannot be combined with spike_code = "
            "adaptive_threshold. Remove the key or leave it empty.")
    if _get(config, 'input', 'max_num_input_spikes', ''):
        raise ConfigError(
            "[input] max_num_input_spikes is set: it cannot be combined with "
            "spike_code = adaptive_threshold. Remove the key.")
    from snntb_adaptive.compat import literal_value
    for key in ('plot_vars', 'log_vars'):
        value = _get(config, 'output', key, '{}')
        try:     # a literal only: nothing in a config file runs
            empty = len(literal_value(value)) == 0
        except (ConfigError, TypeError):
            empty = False
        if not empty:
            raise ConfigError(
                "[output] {} = {}: SNN-TB's plots and logs are not produced "
                "with spike_code = adaptive_threshold; the run writes "
                "results.json, and 'python -m snntb_adaptive compare' makes "
                "the plots. Set {} = {{}}.".format(key, value, key))
    sweep = _get(config, 'parameter_sweep', 'param_values', '[]')
    try:
        no_sweep = len(literal_value(sweep)) == 0
    except (ConfigError, TypeError):
        no_sweep = False
    if not no_sweep:
        raise ConfigError(
            "[parameter_sweep] param_values = {}: parameter sweeps are not "
            "supported with spike_code = adaptive_threshold (each run writes "
            "one results.json). Set param_values = [] and run one config per "
            "value.".format(sweep))


def inject_defaults(config):
    """Add the plugin's spike code, the model library ``onnx`` and the
    plugin's default section to a config that holds SNN-TB's
    ``config_defaults``."""
    codes = config.get('restrictions', 'spike_codes')
    if SPIKE_CODE not in codes:
        codes = codes.strip()
        assert codes.endswith('}'), codes
        config.set('restrictions', 'spike_codes',
                   codes[:-1].rstrip() + ", '{}'}}".format(SPIKE_CODE))
    libs = config.get('restrictions', 'model_libs')
    if "'onnx'" not in libs:          # served by snntb_adaptive.model_lib_onnx
        libs = libs.strip()
        assert libs.endswith('}'), libs
        config.set('restrictions', 'model_libs',
                   libs[:-1].rstrip() + ", 'onnx'}")
    if not config.has_section(SECTION):
        config.add_section(SECTION)
    for key, value in DEFAULTS.items():
        if not config.has_option(SECTION, key):
            config.set(SECTION, key, value)


def is_adaptive(config):
    return config.get('conversion', 'spike_code', fallback='') == SPIKE_CODE


def format_settings(settings, config=None):
    """The effective settings as printed at the start of a run."""
    rows = [('preset', settings.preset), ('update', settings.update),
            ('scope', settings.scope if settings.update != 'none'
             else settings.scope + ' (no effect with update = none)'),
            ('eta_scale', ', '.join(str(e) for e in settings.eta_scale) + (
                ' (set by preset = {}: its Phase 1 sets the thresholds, '
                '[adaptive_threshold] eta_scale is not used)'.format(
                    settings.preset) if settings.update == 'none' and
                phase1_of_preset(settings.preset).sets_thresholds else '')),
            ('readout', settings.readout),
            ('avg_pooling', settings.avg_pooling),
            ('kernel', settings.kernel),
            ('precision', settings.precision), ('phase1', settings.phase1)]
    if settings.mem_init:
        rows.append(('mem_init', '{} (x V_max)'.format(settings.mem_init)))
    if settings.max_spikes != 1:
        rows.append(('max_spikes_per_step', settings.max_spikes))
    if settings.phase1 == 'calibrated':
        rows.append(('calibration', 'for {} steps ({}), {} x_norm images, '
                     'thresholds per {}, {} correction'.format(
                         settings.calibration_steps,
                         horizon_text(settings),
                         settings.calibration_samples,
                         settings.calibration_thresholds,
                         settings.calibration_correction)))
        if settings.calibration_correction != 'bias':
            rows.append(('calibration_potential',
                         'per ' + settings.calibration_potential))
    if config is not None:
        execution = execution_from_config(config)
        rows += [('executor', execution.executor if execution.executor ==
                  'local' else 'ray ({}, workers {}, threads {})'.format(
                      execution.ray_address or 'this machine',
                      execution.workers or 'auto',
                      execution.threads_per_worker)),
                 ('V_max = [cell] v_thresh', config.get('cell', 'v_thresh')),
                 ('duration', config.get('simulation', 'duration')),
                 ('batch_size', config.get('simulation', 'batch_size')),
                 ('num_to_test', config.get('simulation', 'num_to_test'))]
    width = max(len(k) for k, _ in rows)
    lines = ['snntb-adaptive: effective [adaptive_threshold] settings']
    lines += ['  {:<{w}}  {}'.format(k, v, w=width) for k, v in rows]
    return '\n'.join(lines)
