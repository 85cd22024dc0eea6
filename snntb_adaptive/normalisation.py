"""Phase 1 of the adaptive threshold: the initial threshold, at normalisation
time (SPEC Phase 1).

SNN-TB's own data-based normalisation runs unchanged (its
``normalize_parameters``): afterwards every layer's activation range maps onto
``V_max = [cell] v_thresh``. The hook then fixes ``V_init = eta * V_max`` per
spiking layer, writes the table of ``lambda`` (SNN-TB's scale factor),
``V_max`` and ``V_init`` to ``phase1_thresholds.json`` in the run's log folder
and prints it.
"""

import os

from snntb_adaptive.compat import read_json_file, write_json_atomic
from snntb_adaptive.config import ConfigError, settings_from_config

PHASE1_FILE = 'phase1_thresholds.json'


def spiking_layers(model, config):
    """The layers of a parsed model that SNN-TB turns into spiking neurons,
    in order (SNN-TB's ``is_spiking``)."""
    from snntoolbox.simulation.utils import is_spiking
    return [layer for layer in model.layers[1:] if is_spiking(layer, config)]


def check_convertible(model, config):
    """Fail early, before normalisation, on layers the adaptive threshold
    cannot simulate (see :mod:`snntb_adaptive.target_sim`)."""
    from snntb_adaptive.target_sim import check_layer
    for layer in model.layers[1:]:
        check_layer(layer)


def phase1_rows(model, config, scale_facs=None):
    """Per spiking layer: name, type, neurons, lambda, eta, V_max, V_init."""
    settings = settings_from_config(config)
    layers = spiking_layers(model, config)
    etas = settings.eta_per_layer(len(layers))
    v_max = config.getfloat('cell', 'v_thresh')
    rows = []
    for layer, eta in zip(layers, etas):
        lam = None if scale_facs is None else scale_facs.get(layer.name)
        neurons = 1
        for d in layer.output_shape[1:]:
            neurons *= int(d)
        rows.append({'name': layer.name, 'type': layer.__class__.__name__,
                     'neurons': neurons,
                     'lambda': None if lam is None else float(lam),
                     'eta': eta, 'v_max': v_max, 'v_init': eta * v_max})
    return rows


def format_rows(rows):
    header = ('layer', 'lambda', 'V_max', 'eta', 'V_init')
    lines = [('{:<28} {:>12} {:>8} {:>6} {:>8}'.format(*header))]
    for r in rows:
        lam = '-' if r['lambda'] is None else '{:.6g}'.format(r['lambda'])
        lines.append('{:<28} {:>12} {:>8.4g} {:>6.3g} {:>8.4g}'.format(
            r['name'][:28], lam, r['v_max'], r['eta'], r['v_init']))
    return '\n'.join(lines)


def write_phase1(config, rows, normalised):
    """Write ``phase1_thresholds.json`` and print the table."""
    log_dir = config.get('paths', 'log_dir_of_current_run')
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, PHASE1_FILE)
    write_json_atomic(path, {
        'normalised': normalised,
        'percentile': config.getfloat('normalization', 'percentile'),
        'layers': rows}, indent=1)
    print("\nsnntb-adaptive Phase 1: initial thresholds (lambda = SNN-TB scale "
          "factor; '-' for layers without parameters)")
    print(format_rows(rows))
    print("written to {}\n".format(path))
    return path


def _scale_facs_path(config, kwargs):
    norm_dir = kwargs.get('path') or os.path.join(
        config.get('paths', 'log_dir_of_current_run'), 'normalization')
    return os.path.join(norm_dir,
                        config.get('normalization', 'percentile') + '.json')


def phase1(model, config, snntb_normalize, **kwargs):
    """The Phase-1 hook that replaces SNN-TB's ``normalize_parameters`` for
    ``spike_code = adaptive_threshold``.

    The layers and the eta list (against the number of spiking layers) are
    checked before any normalisation work starts.
    """
    check_convertible(model, config)
    phase1_rows(model, config)  # raises ConfigError on a bad eta list
    snntb_normalize(model, config, **kwargs)
    if 'scale_facs' in kwargs:
        scale_facs = kwargs['scale_facs']
    else:
        path = _scale_facs_path(config, kwargs)
        if not os.path.isfile(path):
            raise ConfigError(
                "SNN-TB's normalisation did not produce scale factors "
                "({} is missing). Check that [paths] dataset_path holds "
                "x_norm.npz.".format(path))
        scale_facs = read_json_file(path, 'SNN-TB scale-factor file')
    rows = phase1_rows(model, config, scale_facs)
    write_phase1(config, rows, normalised=True)
    return rows
