"""Phase 1 of the adaptive threshold: the initial threshold, at normalisation
time (SPEC Phase 1).

SNN-TB's data-based normalisation: every layer with parameters gets the scale
factor ``lambda`` = the ``percentile``-th percentile of its non-zero
activations on ``x_norm``, and its weights and bias are rescaled so that the
layer's activation range maps onto ``V_max = [cell] v_thresh``. The hook
computes exactly SNN-TB's scale factors, but streaming (:func:`scale_factors`):
SNN-TB runs one forward pass per layer and holds each layer's whole activation
set in memory (and writes it to disk); here two forward passes of the whole
model feed fixed-size histograms over the float32 bit patterns, from which the
two order statistics that ``np.percentile`` interpolates are found exactly.
The parameters are then rescaled as SNN-TB does (:func:`apply_scale_factors`),
and the factors written to SNN-TB's ``normalization/<percentile>.json``, so a
later run with the same label reuses them as with SNN-TB.

Then ``V_init = eta * V_max`` per spiking layer; the table of ``lambda``,
``V_max`` and ``V_init`` goes to ``phase1_thresholds.json`` in the run's log
folder and is printed.
"""

import os
import time

import numpy as np

from snntb_adaptive import network
from snntb_adaptive.compat import check_scale_factors, write_json_atomic
from snntb_adaptive.config import settings_from_config
from snntb_adaptive.errors import ConfigError, DataError
from snntb_adaptive.log import log, table

PHASE1_FILE = 'phase1_thresholds.json'


def phase1_rows(model, config, scale_facs=None):
    """Per spiking layer: name, type, neurons, lambda, eta, V_max, V_init."""
    settings = settings_from_config(config)
    rows = network.layer_rows(model, config)
    etas = settings.eta_per_layer(len(rows))
    v_max = config.getfloat('cell', 'v_thresh')
    for row, eta in zip(rows, etas):
        lam = None if scale_facs is None else scale_facs.get(row['name'])
        row.update({'lambda': None if lam is None else float(lam),
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


def write_phase1(config, rows, normalised, method='weight_norm'):
    """Write ``phase1_thresholds.json`` and print the table. ``lambda`` is
    SNN-TB's scale factor (``method = weight_norm``) or the Spike-Norm
    threshold (``spike_norm``)."""
    log_dir = config.get('paths', 'log_dir_of_current_run')
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, PHASE1_FILE)
    write_json_atomic(path, {
        'normalised': normalised, 'method': method,
        'percentile': config.getfloat('normalization', 'percentile'),
        'layers': rows}, indent=1)
    log.info("Phase 1 ({}): initial thresholds (lambda = {}; '-' for "
             "layers without parameters)".format(method, {
                 'weight_norm': 'SNN-TB scale factor',
                 'spike_norm': 'Spike-Norm threshold',
                 'calibrated': 'largest calibrated threshold'}[method]))
    table(format_rows(rows))
    log.info("Phase 1 written to {}".format(path))
    return path


def _norm_dir(config, kwargs):
    return kwargs.get('path') or os.path.join(
        config.get('paths', 'log_dir_of_current_run'), 'normalization')


# --------------------------------------------------------------------------
# Exact streaming percentile

_TOP = 16                      # histogram over the upper 16 bits, then lower
_BINS = 1 << _TOP


def order_keys(values):
    """float32 -> uint32 keys with the same order as the floats."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32)
    return np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x80000000))


def key_to_float(key):
    key = np.uint32(key)
    bits = key ^ np.uint32(0x80000000) if key >> 31 == 1 else ~key
    return float(np.array(bits, np.uint32).view(np.float32))


def _find(counts, rank):
    """Bin holding the 0-based ``rank`` and the rank within that bin."""
    cum = np.cumsum(counts)
    b = int(np.searchsorted(cum, rank, side='right'))
    return b, rank - (int(cum[b - 1]) if b else 0)


def _lerp(a, b, t):
    """NumPy's percentile interpolation (``method='linear'``)."""
    d = b - a
    return b - d * (1 - t) if t >= 0.5 else a + d * t


class StreamingPercentile:
    """Exact ``np.percentile(v[v != 0], q)`` of values seen in batches, in
    two passes over the data and with memory independent of their number."""

    def __init__(self, q):
        self.q = q
        self.n = 0
        self.high = np.zeros(_BINS, np.int64)
        self.targets = None      # [(rank, high bin, rank in bin)]
        self.low = {}

    @staticmethod
    def _keys(values):
        v = np.asarray(values, np.float32).ravel()
        v = v[v != 0]
        return order_keys(v)

    def first_pass(self, values):
        keys = self._keys(values)
        self.n += keys.size
        self.high += np.bincount(keys >> _TOP, minlength=_BINS)

    def plan(self):
        """After the first pass: which bins the second pass must resolve."""
        if self.n == 0:
            return False
        vi = (self.q / 100.0) * (self.n - 1)
        lo = int(np.floor(vi))
        hi = min(lo + 1, self.n - 1)
        self.gamma = vi - lo
        self.targets = [(r,) + _find(self.high, r) for r in (lo, hi)]
        self.low = {b: np.zeros(_BINS, np.int64) for _, b, _ in self.targets}
        return True

    def second_pass(self, values):
        keys = self._keys(values)
        high = keys >> _TOP
        for b, counts in self.low.items():
            counts += np.bincount(keys[high == b] & (_BINS - 1),
                                  minlength=_BINS)

    def value(self):
        """The percentile; 1 when no value was non-zero (SNN-TB's rule)."""
        if self.n == 0:
            return 1.0
        vals = []
        for _, b, r in self.targets:
            low_bin, _ = _find(self.low[b], r)
            vals.append(key_to_float((b << _TOP) | low_bin))
        return float(_lerp(vals[0], vals[1], self.gamma))


def parameter_layers(model):
    """Layers SNN-TB normalises: those with parameters, in order."""
    return [layer for layer in model.layers if len(layer.weights) > 0]


def scale_factors(model, x_norm, config, batch_size=None):
    """SNN-TB's scale factors (an ordered dict, input layer first, as in its
    JSON), computed in two streaming passes."""
    from collections import OrderedDict

    import tensorflow as tf
    from snntoolbox.conversion.utils import get_percentile
    layers = parameter_layers(model)
    batch_size = batch_size or config.getint('simulation', 'batch_size')
    x_norm = np.asarray(x_norm)
    if len(x_norm) % batch_size:          # as SNN-TB's get_activations_layer
        dropped = len(x_norm) % batch_size
        log.warning(
            "x_norm has {} images; as SNN-TB does, only the {} of whole "
            "batches of {} are used, so the scale factors (and every result) "
            "depend on batch_size. Give x_norm a multiple of batch_size "
            "images (prepare-data --num-norm) to compare batch sizes."
            "".format(len(x_norm), len(x_norm) - dropped, batch_size))
        x_norm = x_norm[:-dropped]
    if len(x_norm) == 0:
        raise DataError(
            "x_norm has fewer images than one batch ({}); add normalisation "
            "images or lower [simulation] batch_size".format(batch_size))
    multi = tf.keras.Model(model.input, [lay.output for lay in layers])
    forward = tf.function(lambda x: multi(x, training=False))
    stats = [StreamingPercentile(get_percentile(config, i))
             for i in range(len(layers))]

    def batches():
        for start in range(0, len(x_norm), batch_size):
            outs = forward(tf.constant(x_norm[start:start + batch_size],
                                       tf.float32))
            yield [o.numpy() for o in outs]

    for outs in batches():
        for layer, st, a in zip(layers, stats, outs):
            if not np.all(np.isfinite(a)):
                raise DataError(
                    "layer {} produces NaN or Inf activations on x_norm: "
                    "check the model's weights and the normalisation data"
                    "".format(layer.name))
            st.first_pass(a)
    planned = [st.plan() for st in stats]   # every one, no short cut
    if any(planned):
        for outs in batches():
            for st, a in zip(stats, outs):
                if st.low:
                    st.second_pass(a)
    facs = OrderedDict({model.layers[0].name: 1})
    for layer, st in zip(layers, stats):
        facs[layer.name] = st.value()
    return facs


def apply_scale_factors(model, scale_facs):
    """Rescale weights and biases as SNN-TB's ``normalize_parameters``, in
    the same float operations: ``w * lambda_prev / lambda`` and ``b /
    lambda``; a convolution fed by several layers (through Concatenate)
    rescales each inbound layer's input channels by that layer's factor."""
    from snntoolbox.parsing.utils import get_inbound_layers_with_params
    for layer in parameter_layers(model):
        params = layer.get_weights()
        activation = getattr(getattr(layer, 'activation', None), '__name__',
                             None)
        fac = 1.0 if activation == 'softmax' else scale_facs[layer.name]
        inbound = get_inbound_layers_with_params(layer)
        if len(inbound) <= 1:
            prev = scale_facs[inbound[0].name if inbound else
                              model.layers[0].name]
            new = [params[0] * prev / fac, params[1] / fac]
        elif params[0].ndim == 4:
            new = [params[0], params[1] / fac]
            offset = 0
            for inb in inbound:
                channels = range(offset, offset + inb.filters)
                new[0][:, :, channels, :] *= scale_facs[inb.name] / fac
                offset += inb.filters
        else:
            raise ConfigError(
                "layer {} (not a 2D convolution) receives the outputs of "
                "several layers with parameters ({}); SNN-TB's normalisation "
                "cannot rescale that. Put a Conv2D after the Concatenate, or "
                "set [tools] normalize = False.".format(
                    layer.name, ', '.join(inb.name for inb in inbound)))
        layer.set_weights(new + params[2:])


def phase1(model, config, **kwargs):
    """The Phase-1 hook that replaces SNN-TB's ``normalize_parameters`` for
    ``spike_code = adaptive_threshold``: the layers and the eta list
    (against the number of spiking layers) are checked before any work,
    then the method of the settings runs (:mod:`snntb_adaptive.phase1`).
    ``kwargs`` are SNN-TB's (``x_norm``, ``path``, ``scale_facs``).
    """
    from snntb_adaptive import phase1 as methods
    network.check_convertible(model)
    phase1_rows(model, config)  # raises ConfigError on a bad eta list
    return methods.run(settings_from_config(config).phase1, model, config,
                       **kwargs)


def weight_norm(model, config, **kwargs):
    """Phase 1 by SNN-TB's data-based weight normalisation (the paper's):
    SNN-TB's scale factors, computed by :func:`scale_factors` (or read from
    its scale-factor file), then ``V_init = eta * V_max``."""
    norm_dir = _norm_dir(config, kwargs)
    os.makedirs(norm_dir, exist_ok=True)
    if 'scale_facs' in kwargs:
        scale_facs = kwargs['scale_facs']
        check_scale_factors(
            scale_facs, os.path.join(norm_dir, config.get(
                'normalization', 'percentile') + '.json'),
            [model.layers[0].name] + [
                lay.name for lay in parameter_layers(model)])
        log.info("using the scale factors found in {} (delete the file to "
                 "recompute them)".format(norm_dir))
    elif 'x_norm' in kwargs:
        x_norm = kwargs['x_norm']
        log.info("normalising with {} samples (percentile {})...".format(
            len(x_norm), config.get('normalization', 'percentile')))
        t0 = time.time()
        scale_facs = scale_factors(model, x_norm, config)
        log.info("scale factors computed in {:.1f} s".format(
            time.time() - t0))
        write_json_atomic(os.path.join(norm_dir, config.get(
            'normalization', 'percentile') + '.json'), scale_facs)
    else:
        raise ConfigError(
            "Normalisation is on but there is no x_norm.npz in [paths] "
            "dataset_path. Add it, or set [tools] normalize = False.")
    apply_scale_factors(model, scale_facs)
    rows = phase1_rows(model, config, scale_facs)
    write_phase1(config, rows, normalised=True)
    return rows


def keep_reference(model):
    """Keep a copy of the parsed ANN as ``model.reference_ann`` before a
    Phase 1 that changes the network's function (Spike-Norm's per-layer
    division, the calibration's bias correction), so that a run's ANN
    accuracy is the ANN's (see :func:`snntb_adaptive.pipeline.reference_ann`).
    """
    import tensorflow as tf
    reference = tf.keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    # not tracked by Keras (an attribute set the usual way would make the
    # copy one of the model's layers)
    object.__setattr__(model, 'reference_ann', reference)


def x_norm_of(config, x_norm, preset):
    if x_norm is None:
        # SNN-TB passes no x_norm when it found cached scale factors of an
        # earlier run with this label: read the images ourselves
        from snntb_adaptive.checks import load_arr0
        x_norm = load_arr0(config.get('paths', 'dataset_path'), 'x_norm.npz')
        if x_norm is None:
            raise ConfigError(
                "preset = {} needs x_norm.npz in [paths] dataset_path (its "
                "Phase 1 works on it)".format(preset))
    return x_norm
