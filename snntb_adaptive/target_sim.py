"""SNN-TB target simulator for ``spike_code = adaptive_threshold``.

Served to SNN-TB as
``snntoolbox.simulation.target_simulators.INI_adaptive_threshold_target_sim``.
It is SNN-TB's ``INI_temporal_mean_rate_target_sim.SNN`` (same model building,
weight transfer and bias handling) with

* layers from :mod:`snntb_adaptive.layers`, each given its
  :class:`~snntb_adaptive.dynamics.NeuronParams` (``V_init``, ``V_max``,
  update rule, scope) and step function before it is built;
* a simulation loop that runs all time steps of a batch in one compiled
  TensorFlow loop with the network state as loop variables and the input
  current's constant first-layer impulse computed once (``loop = 'graph'``,
  the default), or one compiled call of the Keras model per step with the
  state in the layers' variables, as SNN-TB does (``loop = 'step'``, the
  reference path); both give identical spikes (tested). On both paths each
  spiking layer's step is the fused op of :mod:`snntb_adaptive.kernel`
  (``kernel = auto | fused``, for the rules it implements) or the TensorFlow
  ops of :mod:`snntb_adaptive.dynamics` (``kernel = tf``), again with
  identical results;
* a ``run`` that goes through the simulate and record stages of
  :mod:`snntb_adaptive.pipeline` (the paper's metrics, durable progress,
  ``results.json``).
"""

from snntb_adaptive.registration import ensure_legacy_keras

ensure_legacy_keras()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from snntoolbox.simulation.target_simulators import \
    INI_temporal_mean_rate_target_sim as tmr_sim  # noqa: E402

from snntb_adaptive import kernel, network, pipeline  # noqa: E402
from snntb_adaptive import layers as at_layers  # noqa: E402
from snntb_adaptive.config import (SECTION, execution_from_config,  # noqa
                                   settings_from_config)
from snntb_adaptive.dynamics import (NeuronParams, get_rule,  # noqa: E402
                                     input_max)
from snntb_adaptive.errors import ConfigError  # noqa: E402
from snntb_adaptive.log import log  # noqa: E402
from snntb_adaptive.metrics import RunRecorder  # noqa: E402
from snntb_adaptive.progress import Progress, fingerprint  # noqa: E402

#: SNN-TB's layers without neurons that only rearrange their input (its
#: nonzero values stay as many, at most)
REARRANGING = ('SpikeFlatten', 'SpikeReshape', 'SpikeZeroPadding2D')


def initial_membranes(parsed_model):
    """``{layer name: initial membrane / V_max per channel}`` that Phase 1
    set on the parsed model (the calibration), else empty: every layer
    starts at ``mem_init``."""
    return getattr(parsed_model, 'initial_membrane', None) or {}


class SNN(tmr_sim.SNN):
    """The spiking network with the adaptive threshold."""

    #: 'graph': all T steps in one tf.function; 'step': one call per step.
    loop = 'graph'

    def __init__(self, config, queue=None):
        super().__init__(config, queue)
        self.settings = settings_from_config(config)
        self.v_max = config.getfloat('cell', 'v_thresh')
        self._spiking = []        # adaptive layers, in order
        self._layer_rows = []     # name, type, neurons, eta, v_init
        self._etas = None
        self._batch_fn = None
        self._step_fn = None
        self.kernel = None        # a name in kernel.KERNELS, set in build()
        self._kernel_fn = None
        self._synapses = 'dense'  # kernel.synapses_for, set in build()
        self.recorder = None
        self.results = None       # results.json content after run()
        self._fan_out = None      # per spiking layer, set in build()
        self.ann_macs = None      # {layer: multiply-accumulates per image}

    # ------------------------------------------------------------------
    # Building

    def build(self, parsed_model, **kwargs):
        n = len(network.spiking_layers(parsed_model, self.config))
        self._etas = self.settings.eta_per_layer(n)
        self.set_kernel(self.settings.kernel)
        if self.settings.precision == 'bfloat16' and \
                not kernel.cpu_has_bfloat16():
            log.warning("this CPU reports no bfloat16 instructions "
                        "(avx512_bf16, amx_bf16): precision = bfloat16 will "
                        "be emulated and slower than float32.")
        # synapses per neuron, for the synaptic operations of each step (set
        # on each layer before it is built: SNN-TB traces its call then)
        self._fan_out = network.fan_out(parsed_model, self.config)
        self.ann_macs = network.ann_macs(parsed_model)
        super().build(parsed_model, **kwargs)

    def set_kernel(self, choice):
        """Use a kernel of :data:`snntb_adaptive.kernel.KERNELS` (``choice``:
        ``auto`` or a name there, as the ``kernel`` key). May be called again
        after :meth:`build`."""
        try:
            self.kernel, note = kernel.resolve(choice, self.settings.update,
                                               self.settings.max_spikes)
        except kernel.KernelUnavailable as e:
            raise ConfigError(
                "[adaptive_threshold] kernel = {}, but {} cannot run: {}. "
                "Install a C++ compiler (g++) if it is missing, or set "
                "kernel = auto (falls back to TensorFlow ops) or tf.".format(
                    choice, kernel.KERNELS[choice].description, e)) from None
        if note:
            log.warning(note)
        self._kernel_fn = kernel.KERNELS[self.kernel].step
        self._synapses = kernel.synapses_for(choice, self.kernel)
        for lay in self._spiking:
            lay.step_fn = self._kernel_fn
            lay.synapses = self._synapses_of(lay)
        self._batch_fn = None    # retrace with the new step

    def _synapses_of(self, layer):
        """How ``layer`` computes its input impulse: the first spiking layer
        (constant input current, its impulse computed once per batch in the
        compiled loop) keeps the dense op, and under ``auto`` so does a
        layer of fewer than ``kernel.SPARSE_MIN_MACS`` multiply-accumulates
        per image (pooling, small layers)."""
        if layer.is_first_spiking:
            return 'dense'
        if self._synapses == 'auto' and (self.ann_macs or {}).get(
                layer.name, 0) < kernel.SPARSE_MIN_MACS:
            return 'dense'    # too small to pay for the per-step choice
        return self._synapses

    def add_layer(self, layer):
        from snntoolbox.parsing.utils import get_inbound_layers_with_params
        layer_type = network.check_layer(layer)
        spiking = network.is_spiking(layer, self.config)
        cls = at_layers.layer_class(layer_type, spiking)
        inbound = [self._spiking_layers[inb.name]
                   for inb in network.inbound_layers(layer)]
        if len(inbound) == 1:
            inbound = inbound[0]
        kwargs = layer.get_config()
        kwargs['config'] = self.config
        activation = str(kwargs.pop('activation', None))
        spike_layer = cls(**kwargs)
        spike_layer.activation_str = activation
        spike_layer.is_first_spiking = \
            len(get_inbound_layers_with_params(layer)) == 0
        if spiking:
            eta = self._etas[len(self._spiking)]
            spike_layer.neuron_params = NeuronParams(
                update=self.settings.update, scope=self.settings.scope,
                v_init=eta * self.v_max, v_max=self.v_max,
                mem_init=initial_membranes(self.parsed_model).get(
                    layer.name, self.settings.mem_init),
                max_spikes=self.settings.max_spikes)
            spike_layer.record_input = (
                layer is self.parsed_model.layers[-1] and
                self.settings.readout == 'membrane')
            spike_layer.step_fn = self._kernel_fn
            spike_layer.synapses = self._synapses_of(spike_layer)
            fan = self._fan_out[len(self._spiking)]
            spike_layer.fan_out = tf.constant(
                fan.ravel() / np.float32(self.v_max)) if fan.any() else None
            self._spiking.append(spike_layer)
            self._layer_rows.append({
                'name': layer.name, 'type': layer_type,
                'neurons': network.neurons(layer), 'eta': eta,
                'v_init': eta * self.v_max})
        self._spiking_layers[layer.name] = spike_layer(inbound)

    def compile(self):
        super().compile()
        if self.snn.layers[-1] is not self._spiking[-1]:
            raise ConfigError(
                "The model's last layer ({}) is not a spiking layer; the "
                "readout needs the output layer's spikes. End the model with "
                "a Dense (or other spiking) layer.".format(
                    self.snn.layers[-1].name))

    # ------------------------------------------------------------------
    # Simulation

    def _collect(self, out):
        """Per-step quantities: output spikes or cumulative input of the
        output layer (B, C), spikes per layer (B, L), theta per layer (B, L),
        synaptic operations per layer (B, L).
        """
        batch = self.batch_size
        readout = self._spiking[-1].input_sum \
            if self.settings.readout == 'membrane' else out
        counts = tf.stack([lay.step_count for lay in self._spiking], axis=1)
        thetas = tf.stack([tf.broadcast_to(lay.theta, [batch])
                           for lay in self._spiking], axis=1)
        synops = tf.stack([lay.step_synops for lay in self._spiking], axis=1)
        return tf.identity(readout), counts, thetas, synops

    def _set_time(self, t):
        for lay in self.snn.layers[1:]:
            if getattr(lay, 'time', None) is not None:
                lay.time.assign(t)

    def _plan(self):
        """The network as (layer, inbound names, spiking index or None), in
        order, and which outputs are constant in time (they depend on the
        constant input current only: computed once per batch)."""
        index = {id(lay): k for k, lay in enumerate(self._spiking)}
        input_name = self.snn.layers[0].name
        plan, constant = [], {input_name}
        origin = {}     # output name -> the spiking layer whose spikes it is
        self._spike_source = {}
        for layer in self.snn.layers[1:]:
            names = [inb.name for inb in network.inbound_layers(layer)]
            k = index.get(id(layer))
            plan.append((layer, names, k))
            if k is None and all(n in constant for n in names):
                constant.add(layer.name)
            if k is not None:
                origin[layer.name] = k
                if len(names) == 1 and names[0] in origin:
                    # its input is spiking layer j's spikes, rearranged:
                    # the nonzero inputs are j's spikes (at most)
                    self._spike_source[k] = origin[names[0]]
            elif len(names) == 1 and names[0] in origin and \
                    type(layer).__name__ in REARRANGING:
                origin[layer.name] = origin[names[0]]
        const_impulse = {
            k for layer, names, k in plan if k is not None and
            not layer.stateful_impulse and all(n in constant for n in names)}
        return input_name, plan, constant, const_impulse

    def _make_functions(self):
        num_steps = self._num_timesteps
        spiking = self._spiking
        membrane = self.settings.readout == 'membrane'
        input_name, plan, constant, const_impulse = self._plan()
        batch = self.batch_size

        def gather(outputs, names):
            return outputs[names[0]] if len(names) == 1 else \
                [outputs[n] for n in names]

        @tf.function
        def run_batch(x):
            # Everything that only depends on the constant input, once.
            fixed = {input_name: x}
            impulses, maxima = {}, {}
            for layer, names, k in plan:
                if layer.name in constant:
                    fixed[layer.name] = layer.call(gather(fixed, names))
                elif k in const_impulse:
                    impulses[k], _ = layer.impulse_of(gather(fixed, names),
                                                      None)
                    p = layer.neuron_params
                    if get_rule(p.update).uses_input_max:
                        maxima[k] = input_max(impulses[k], p.scope)
            # precision = bfloat16: the weights of the layers that take it,
            # cast once per batch.
            low = {}
            if self.settings.precision == 'bfloat16':
                for layer, names, k in plan:
                    if k is not None and k not in impulses and \
                            layer.takes_low_precision():
                        low[k] = tf.cast(layer.kernel, tf.bfloat16)
            state0 = tuple(lay.read_state() for lay in spiking)
            ta0 = tuple(tf.TensorArray(tf.float32, size=num_steps)
                        for _ in range(4))

            def body(i, state, tas):
                outputs = dict(fixed)
                new_state = list(state)
                counts, thetas, synops = [], [], []
                fired = {}
                out = None
                for layer, names, k in plan:
                    if layer.name in constant:
                        continue
                    if k is None:
                        outputs[layer.name] = layer.call(
                            gather(outputs, names))
                        continue
                    st = state[k]
                    if k in impulses:
                        imp = impulses[k]
                    elif k in low:
                        imp = layer.low_precision_impulse(
                            gather(outputs, names), low[k])
                    else:
                        # auto: the source's spike count (free) bounds the
                        # nonzero inputs
                        j = self._spike_source.get(k)
                        nonzero = tf.reduce_sum(fired[j]) if \
                            layer.synapses == 'auto' and j in fired else None
                        imp, st = layer.impulse_of(gather(outputs, names), st,
                                                   nonzero)
                    spikes, count, st = layer.pure_step(imp, st,
                                                        maxima.get(k))
                    new_state[k] = st
                    outputs[layer.name] = out = spikes
                    fired[k] = count
                    counts.append(count)
                    thetas.append(tf.broadcast_to(st.neuron.theta, [batch]))
                    synops.append(layer.synops(spikes))
                readout = new_state[-1].input_sum if membrane else out
                tas = (tas[0].write(i, readout),
                       tas[1].write(i, tf.stack(counts, axis=1)),
                       tas[2].write(i, tf.stack(thetas, axis=1)),
                       tas[3].write(i, tf.stack(synops, axis=1)))
                return i + 1, tuple(new_state), tas

            _, state, tas = tf.while_loop(
                lambda i, *_: i < num_steps, body,
                (tf.constant(0), state0, ta0))
            for lay, st in zip(spiking, state):
                lay.write_state(st)
            return tuple(ta.stack() for ta in tas)

        @tf.function
        def step(x, t):
            self._set_time(t)
            out = self.snn(x, training=False)
            return self._collect(out)

        self._batch_fn = run_batch
        self._step_fn = step

    def simulate_batch(self, x, synops=False):
        """Simulate one batch for all time steps.

        Returns numpy arrays ``readout (T, B, C)`` (output spikes of each
        step, or cumulative input of the output layer), ``counts (T, B, L)``
        (spikes per sample and spiking layer) and ``thetas (T, B, L)``; with
        ``synops``, also the synaptic operations ``(T, B, L)`` of each
        layer's spikes.
        """
        if self._batch_fn is None:
            self._make_functions()
        x = tf.convert_to_tensor(np.asarray(x, np.float32) * self._dt)
        if self.loop == 'graph':
            out = [a.numpy() for a in self._batch_fn(x)]
        else:
            self._check_float32('The step-by-step path')
            steps = [[a.numpy() for a in self._step_fn(
                x, tf.constant((i + 1) * self._dt, tf.float32))]
                for i in range(self._num_timesteps)]
            out = [np.stack(a) for a in zip(*steps)]
        return tuple(out) if synops else tuple(out[:3])

    def simulate_spikes(self, x, num_steps=None, layers=None, sample=None):
        """Step-by-step path that also returns spiking layers' spikes: a
        list, one array ``(T, B, ...)`` per spiking layer (values 0 or
        ``V_max``). ``layers`` (indices into the spiking layers) and
        ``sample`` (index in the batch) keep only those, to save memory
        (``(T, ...)`` per layer with ``sample``). Starts from the current
        state; call :meth:`reset` first for a fresh batch. Used by the tests
        and for spike rasters."""
        self._check_float32('Spike recording (simulate_spikes)')
        keep = list(range(len(self._spiking))) if layers is None \
            else list(layers)
        key = tuple(keep)
        if getattr(self, '_spikes_fns', None) is None:
            self._spikes_fns = {}
        if key not in self._spikes_fns:
            model = tf.keras.Model(self.snn.input,
                                   [self._spiking[k].output for k in keep])

            @tf.function
            def step(x, t):
                self._set_time(t)
                out = model(x, training=False)
                return out if isinstance(out, (list, tuple)) else [out]
            self._spikes_fns[key] = step
        step = self._spikes_fns[key]
        x = tf.convert_to_tensor(np.asarray(x, np.float32) * self._dt)
        steps = []
        for i in range(num_steps or self._num_timesteps):
            out = step(x, tf.constant((i + 1) * self._dt, tf.float32))
            steps.append([o.numpy() if sample is None else o[sample].numpy()
                          for o in out])
        return [np.stack([s[j] for s in steps]) for j in range(len(keep))]

    def _check_float32(self, what):
        if self.settings.precision != 'float32':
            raise ConfigError(
                "{} computes in float32 only; [adaptive_threshold] precision "
                "= {} works in the compiled loop. Use precision = float32 for "
                "this.".format(what, self.settings.precision))

    def readout_scores(self, readout):
        """Scores (T, B, C) the class decision is taken from: cumulative
        output spike counts, or cumulative input for ``membrane``."""
        if self.settings.readout == 'membrane':
            return readout
        if self.settings.max_spikes > 1:     # burst spikes: n * V_max
            return np.cumsum(np.rint(readout / self.v_max), axis=0,
                             dtype=np.int32)
        return np.cumsum(readout > 0, axis=0, dtype=np.int32)

    def simulate(self, **kwargs):
        """SNN-TB's interface: the readout scores (cumulative output spike
        counts, or cumulative input for ``membrane``) of shape (B, C, T)."""
        readout = self.simulate_batch(kwargs['x_b_l'])[0]
        return np.transpose(self.readout_scores(readout), (1, 2, 0))

    # ------------------------------------------------------------------
    # Run

    def run_settings(self):
        """The settings recorded in ``results.json``."""
        settings = {**self.settings.as_dict(),
                    'eta_per_layer': list(self._etas),
                    **pipeline.run_settings(self), 'loop': self.loop,
                    'kernel': self.kernel,
                    # per spiking layer: dense, sparse or auto (per step)
                    'synapses': [lay.synapses for lay in self._spiking],
                    'executor': execution_from_config(self.config).executor}
        record = getattr(self.parsed_model, 'calibration_record', None)
        if self.settings.phase1 == 'calibrated' and record is not None:
            # where the parameters are and how long they took (not part of
            # the progress fingerprint: the weights are)
            settings['calibration_file'] = record
        return settings

    def run(self, x_test=None, y_test=None, dataflow=None, **kwargs):
        """SNN-TB's ``run``: the simulate and record stages of
        :mod:`snntb_adaptive.pipeline` on the test set, with durable progress
        (and ``resume``), on this process or a Ray cluster (``executor``).
        Returns the final top-1 accuracy."""
        job = self.start_run(x_test, y_test, kwargs.get('path'))
        execution = execution_from_config(self.config)
        try:
            if execution.executor == 'ray':
                from snntb_adaptive import executors
                seconds = executors.simulate_on_ray(execution, [job])
            else:
                seconds = pipeline.simulate(
                    pipeline.batch_simulator(self), self.reset,
                    self.parsed_model, job.x_test, job.y_test,
                    self.batch_size, self.config.getint(
                        'simulation', 'num_to_test'), self.recorder,
                    job.progress)
        finally:
            job.progress.close()
        return self.finish_run(job, seconds)['final_accuracy_top1']

    def start_run(self, x_test, y_test, log_dir=None, key='run'):
        """Everything before the batches: checks, the recorder, and the
        progress file (fingerprinted; with ``resume``, the batches it holds
        are taken). Returns an :class:`~snntb_adaptive.executors.Job`."""
        from snntoolbox.simulation.utils import get_samples_from_list
        from snntb_adaptive.executors import Job

        if not self.is_built:
            raise ConfigError(
                "The adaptive-threshold simulator converts the model in the "
                "same run: set [tools] convert = True.")
        if x_test is None or y_test is None:
            raise ConfigError(
                "No test data: the adaptive-threshold simulator needs "
                "x_test.npz and y_test.npz in [paths] dataset_path.")
        log_dir = log_dir or self.config.get('paths',
                                             'log_dir_of_current_run')
        x_test, y_test = get_samples_from_list(x_test, y_test, None,
                                               self.config)
        self.recorder = RunRecorder(self._layer_rows, self._num_timesteps,
                                    self.top_k, self.num_classes,
                                    self.ann_macs)
        execution = execution_from_config(self.config)
        settings = self.run_settings()
        asked = self.config.getint('simulation', 'num_to_test')
        n = pipeline.num_batches(asked, len(x_test), self.batch_size) * \
            self.batch_size
        if n < asked:
            # results.json: settings.num_to_test is what was asked,
            # num_samples what ran
            log.warning("[simulation] num_to_test = {}, but {} images are "
                        "simulated ({} in x_test.npz, in whole batches of "
                        "{}); results.json's num_samples says so".format(
                            asked, n, len(x_test), self.batch_size))
        # How it is computed (loop, kernel, executor) does not change what,
        # and where the model file lies does not either (its parameters are
        # in the fingerprint): a run may be resumed with another loop,
        # kernel or executor, and after its folder was moved.
        membranes = initial_membranes(self.parsed_model)
        fp = fingerprint({k: v for k, v in settings.items()
                          if k not in ('loop', 'kernel', 'synapses',
                                       'model_file',
                                       'executor', 'calibration_file')},
                         self._layer_rows,
                         self.parsed_model.get_weights() +
                         [membranes[k] for k in sorted(membranes)],
                         x_test[:n], y_test[:n])
        resume = self.config.getboolean(SECTION, 'resume', fallback=False)
        if (resume or execution.executor == 'ray') and self.config.getint(
                'simulation', 'reset_between_nth_sample') != 1:
            raise ConfigError(
                "[adaptive_threshold] {} needs [simulation] "
                "reset_between_nth_sample = 1 (with state carried across "
                "batches, batches cannot be simulated apart).".format(
                    'executor = ray' if execution.executor == 'ray'
                    else 'resume = True'))
        progress = Progress(log_dir, fp, resume, n // self.batch_size,
                            self.batch_size, self._num_timesteps,
                            len(self._layer_rows))
        self._run_log_dir, self._run_settings = log_dir, settings
        return Job(key, self.config, self.parsed_model, x_test, y_test,
                   self.recorder, progress)

    def finish_run(self, job, seconds):
        """The record stage: ``results.json`` from the job's recorder."""
        self.results = pipeline.record(self._run_log_dir, job.recorder,
                                       self._run_settings, seconds)
        return self.results
