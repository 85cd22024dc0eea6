"""Post-training calibration as a Phase-1 method (``preset = calibrated``),
after Li et al. (ICML 2021, "A free lunch from ANN"): thresholds, and a
correction of the initial membrane potential (their CIFAR pipeline's) or of
the bias (their light pipeline's).

The calibrated network is SNN-TB's INI network with IF neurons (threshold
and spike amplitude ``V_max``, reset by subtraction, constant input
current); calibration only chooses its parameters, on ``x_norm`` images
(never test data), for a number of steps ``T``: ``round(calibration_horizon
* calibration_steps)``, a fraction of the target latency (docs/results.md,
"The calibration horizon"). With ``calibration_horizon = auto`` (the
default) it calibrates for each fraction of :data:`HORIZONS` and keeps the
calibration whose network, run for ``calibration_steps`` steps on x_norm
images held aside from the calibration (:func:`judge_images`), gives the
ANN's class most often (:func:`calibrate_horizons`). Each calibration
chooses:

* **thresholds** ``theta`` (per output channel, or per layer with
  ``calibration_thresholds = layer``; always per layer for the output
  layer, so that its scores keep their order): for each layer, the
  ``theta`` of a grid (``ALPHAS`` times the channel's largest ANN
  activation) that minimises the mean squared error between the ANN's
  activations ``a`` and what an IF neuron driven by ``a`` for ``T`` steps
  can express, ``clip(floor(a T / theta + f), 0, T) theta / T``;
* **initial membrane potential** ``f theta`` (``f = mem_init``, 0.5 by
  default: a T-step IF neuron then rounds instead of truncating, the
  optimum Li et al. derive);
* **correction** (``correction``): the layer is simulated for ``T`` steps
  on the spike trains of the layers before it (already calibrated), and the
  mean difference ``e`` per channel (or per neuron, ``potential =
  'neuron'``) between the ANN's activation and the SNN's rate (in ANN
  units, ``count theta / T``; for the output layer its mean input,
  unclipped) goes into the initial membrane as ``T e`` (``potential``, the
  default: a charge given once), or into the bias as ``e`` (``bias``: every
  step), or both, bias first; each twice (:data:`CORRECTIONS`), since the
  rate answers nonlinearly. The output layer's correction is always its
  bias. The target is the ANN's activation for the same image, so errors
  accumulated in earlier layers are corrected too.

A threshold ``theta`` with spike amplitude ``theta`` is the same neuron as
threshold and amplitude ``V_max`` after scaling: the simulated network gets
``W'[.., i, o] = W[.., i, o] s_in[i] / s_out[o]`` and ``b' = b_cal / s_out``
with ``s = theta / V_max`` (``s_in`` the scales of the layer's input
channels: those of the spiking layer before it, tiled through Flatten; 1 for
the input image), the initial membrane ``f V_max``. Average and max pooling keep the
scales of their input (``theta = s_in V_max``), with the same initial
membrane; a concatenation joins the scales of its inputs.

Networks with branches (SNN-TB turns an ``Add`` into a ``Concatenate`` and
a 1x1 convolution that sums the two halves, a spiking layer like any other)
are calibrated in the model's layer order: each layer is calibrated on the
spike trains (or, for the first layers, the images) its inputs produce in
the already calibrated network, and a layer's trains are kept until its
last consumer is done. Spiking max pooling is simulated as SNN-TB does it:
each step, only the inputs at the position of the largest accumulated
input of a window pass.

The parameters are an artefact (:data:`CALIBRATION_FILE`, JSON, see
:func:`write` for its fields): a rerun (and ``--resume``) with the same
model, ``x_norm`` and calibration settings loads it and applies it
(:func:`apply`) instead of recomputing; anything else recomputes it.

Supported: models of Dense, Conv1D, Conv2D, AveragePooling2D,
MaxPooling2D, Flatten, ZeroPadding2D and Concatenate (along the channels)
layers, channels last (Reshape, depthwise and transposed convolutions and
up-sampling are refused with a message).
"""

import hashlib
import json
import os
import time

import numpy as np

from snntb_adaptive.config import CALIBRATION_HORIZONS
from snntb_adaptive.errors import ConfigError, CorruptFileError
from snntb_adaptive.log import log
from snntb_adaptive.network import inbound_layers
from snntb_adaptive.spike_norm import impulse

CALIBRATION_FILE = 'calibration.json'
#: 2: ``initial_membrane`` (was ``v_init``), ``content_sha256``
FORMAT = 2
SUPPORTED = ('Dense', 'Conv1D', 'Conv2D', 'AveragePooling2D', 'MaxPooling2D',
             'Flatten', 'ZeroPadding2D', 'Concatenate')
#: threshold candidates, as fractions of a channel's largest activation
ALPHAS = np.concatenate([np.linspace(0.05, 0.5, 10, endpoint=False),
                         np.linspace(0.5, 1.0, 26)]).astype(np.float32)
#: values the threshold search looks at (a fixed subsample of the rows:
#: images x positions), at least SEARCH_ROWS rows
SEARCH_VALUES = 1 << 22
SEARCH_ROWS = 1 << 13
#: the horizons ``calibration_horizon = auto`` tries (fractions of
#: ``calibration_steps``; docs/results.md, "The calibration horizon"),
#: kept beside the settings
HORIZONS = CALIBRATION_HORIZONS
#: ``auto``: the x_norm images after the calibration's that judge the
#: candidates, at most SELECT_IMAGES and at most SELECT_IMAGE_STEPS / T
SELECT_IMAGES = 512
SELECT_IMAGE_STEPS = 1 << 14
#: fewer held-aside images than this: the calibration images judge
SELECT_MIN_IMAGES = 64
#: bias corrections per layer (each one simulates the layer again; a second
#: one gained 0.5 points at T = 16 on VGG7 while developing, see
#: docs/results.md)
CORRECTIONS = 2


def expressible(a, theta, steps, frac, max_spikes=1):
    """What an IF neuron (threshold and amplitude ``theta``, initial membrane
    ``frac * theta``, up to ``max_spikes`` spikes per step) driven by a
    constant ``a`` expresses in ``steps`` steps, in the units of ``a``."""
    n = np.clip(np.floor(a * (steps / theta) + frac), 0, steps * max_spikes)
    return n * (theta / steps)


def search_thresholds(a, steps, frac, per_channel, max_spikes=1):
    """``theta`` per channel (last axis of ``a``) or one for the layer: the
    grid value (:data:`ALPHAS` times the largest activation) with the
    smallest mean squared error of :func:`expressible`. Returns float32
    ``(C,)``."""
    channels = a.shape[-1]
    flat = a.reshape(-1, channels) if per_channel else a.reshape(-1, 1)
    rows = max(SEARCH_ROWS, SEARCH_VALUES // flat.shape[1])
    if len(flat) > rows:   # a fixed, evenly spread subsample
        flat = flat[np.linspace(0, len(flat) - 1, rows).astype(np.int64)]
    top = flat.max(axis=0)
    layer_top = float(flat.max())
    if not layer_top > 0:
        top = np.ones_like(top)
    top = np.where(top > 0, top, layer_top if layer_top > 0 else 1.0)
    best = np.full(top.shape, np.inf, np.float64)
    theta = top.astype(np.float32)
    for alpha in ALPHAS:
        cand = (alpha * top).astype(np.float32)
        err = np.mean(np.square(
            expressible(flat, cand, steps, frac, max_spikes) - flat,
            dtype=np.float64),
            axis=0)
        better = err < best
        best = np.where(better, err, best)
        theta = np.where(better, cand, theta)
    theta = theta.astype(np.float32)
    if not per_channel:
        theta = np.full(channels, theta[0], np.float32)
    return theta


# --------------------------------------------------------------------------
# The model's layers


def _type(layer):
    from snntoolbox.parsing.utils import get_type
    return get_type(layer)


def check_model(model):
    """A :class:`ConfigError` for a layer calibration cannot handle."""
    for layer in model.layers[1:]:
        kind = _type(layer)
        several = len(inbound_layers(layer)) > 1 and kind != 'Concatenate'
        channels_first = getattr(layer, 'data_format',
                                 'channels_last') != 'channels_last'
        if kind == 'Concatenate':
            rank = len(layer.output_shape)
            channels_first = layer.axis not in (-1, rank - 1)
        if several or channels_first or kind not in SUPPORTED:
            raise ConfigError(
                "preset = calibrated: layer {} ({}{}{}) is not supported by "
                "the calibration (channels-last {}; only Concatenate takes "
                "several inputs). Use another preset for this model.".format(
                    layer.name, kind,
                    ', channels first' if channels_first else '',
                    ', several inputs' if several else '',
                    ', '.join(SUPPORTED)))


def _consumers(model):
    """``{layer name: number of layers that take its output}``."""
    count = {}
    for layer in model.layers[1:]:
        for inb in inbound_layers(layer):
            count[inb.name] = count.get(inb.name, 0) + 1
    return count


def _passed_scales(layer, scales, shapes):
    """The channel scales of the output of a layer without weights from those
    of its inputs (``shapes``: the inputs' shapes): a concatenation joins
    them (each tiled to its input's last axis, for flattened inputs), any
    other layer passes its one input's scales."""
    if _type(layer) != 'Concatenate':
        return scales[0]
    return np.concatenate([np.tile(s, int(shape[-1]) // len(s))
                           for s, shape in zip(scales, shapes)]).astype(
        np.float32)

def _scales_in(layer, scales):
    """Per-input-feature scales of a layer with weights (last axis of its
    kernel's input) from the channel scales of the tensor it receives."""
    fan_in = int(layer.get_weights()[0].shape[-2])
    if fan_in == len(scales):
        return scales
    return np.tile(scales, fan_in // len(scales))   # through Flatten


def scale_layer(layer, weights, bias, s_in, s_out):
    """Set a layer's parameters to the calibrated, V_max-normalised ones:
    ``W * s_in / s_out`` and ``bias / s_out`` (float32)."""
    w = weights * (s_in[:, None] / s_out[None, :]).astype(np.float32)
    params = [w.astype(np.float32)]
    if bias is not None:
        params.append((bias / s_out).astype(np.float32))
    layer.set_weights(params)


class _Trains:
    """Spike trains ``(T, N, ...)`` of one layer: one bit per neuron and
    step, or (burst spikes, ``max_spikes > 1``) one byte, the number of
    spikes."""

    def __init__(self, steps, shape, max_spikes=1):
        self.steps = steps
        self.packed = max_spikes == 1
        self.bits = np.zeros(((steps + 7) // 8 if self.packed else steps,) +
                             tuple(shape), np.uint8)

    def put(self, start, fired):
        stop = start + fired.shape[1]
        self.bits[:, start:stop] = np.packbits(fired, axis=0) \
            if self.packed else fired

    def get(self, start, stop, v_max):
        fired = np.unpackbits(self.bits[:, start:stop], axis=0,
                              count=self.steps) if self.packed \
            else self.bits[:, start:stop]
        return fired.astype(np.float32) * np.float32(v_max)


class _Images:
    """The input images: a constant current, ``(n, ...)`` per chunk."""
    constant = True

    def __init__(self, x):
        self.x = x

    def get(self, start, stop, steps, v_max):
        return self.x[start:stop]


class _Spikes:
    """The spikes of a spiking layer, ``(steps * n, ...)`` per chunk (step
    major)."""
    constant = False

    def __init__(self, trains):
        self.trains = trains

    def get(self, start, stop, steps, v_max):
        x = self.trains.get(start, stop, v_max)
        return x.reshape((steps * (stop - start),) + x.shape[2:])


class _Through:
    """A layer without neurons applied to what its inputs carry: constant
    if all of them are, else step by step (a constant input repeated for
    every step)."""

    def __init__(self, layer, inputs):
        self.layer = layer
        self.inputs = inputs
        self.constant = all(i.constant for i in inputs)

    def get(self, start, stop, steps, v_max):
        xs = []
        for source in self.inputs:
            x = source.get(start, stop, steps, v_max)
            if source.constant and not self.constant:
                x = np.broadcast_to(x[None], (steps,) + x.shape).reshape(
                    (-1,) + x.shape[1:])
            xs.append(x)
        return np.asarray(self.layer(xs if len(xs) > 1 else xs[0]))


def _source(source):
    """An array (images), :class:`_Trains` or a source object, as a source
    object."""
    if isinstance(source, _Trains):
        return _Spikes(source)
    if isinstance(source, np.ndarray):
        return _Images(source)
    return source


def max_gated(layer, x, steps):
    """SNN-TB's spiking max pooling, step by step: the input ``x`` (``(steps,
    n, ...)``) is accumulated, and each step only the inputs at the position
    of the largest accumulated input of a window pass into the pooling (the
    first such position on ties, as ``tf.nn.max_pool_with_argmax``)."""
    import tensorflow as tf
    gate = np.zeros(x.shape[1:], np.float32)
    out = []
    for t in range(steps):
        gate += x[t]
        _, idx = tf.nn.max_pool_with_argmax(
            gate, layer.pool_size, layer.strides, layer.padding.upper(),
            include_batch_in_index=True)
        mask = np.zeros(gate.size, np.float32)
        mask[np.asarray(idx).ravel()] = 1
        out.append(np.asarray(layer(x[t] * mask.reshape(gate.shape))))
    return np.stack(out)


def simulate_layer(layer, source, pending, steps, v_max, v0, num,
                   keep_trains=True, max_spikes=1):
    """Simulate one spiking layer for ``steps`` steps on ``num`` images:
    ``source`` is the input images (constant current), the
    :class:`_Trains` of the spiking layer before it or a source object
    (:class:`_Images`, :class:`_Spikes`, :class:`_Through`); ``pending``
    more layers without neurons (applied to its output); ``v0`` the initial
    membrane potential (one number, or one per channel); ``max_spikes`` the
    spikes a neuron may emit per step (as :func:`dynamics.fire
    <snntb_adaptive.dynamics.fire>` with threshold ``V_max``). Returns
    ``(counts (N, ...), mean impulse (N, ...), trains or None)``."""
    out_shape = tuple(int(d) for d in layer.output_shape[1:])
    size = max(int(np.prod(out_shape)), int(np.prod(
        layer.input_shape[1:])))
    chunk = int(max(1, min(num, (1 << 24) // (steps * size))))
    counts = np.zeros((num,) + out_shape, np.float32)
    mean_impulse = np.zeros((num,) + out_shape, np.float32)
    trains = _Trains(steps, (num,) + out_shape, max_spikes) \
        if keep_trains else None
    source = _source(source)
    gated = _type(layer) == 'MaxPooling2D'
    for start in range(0, num, chunk):
        stop = min(num, start + chunk)
        n = stop - start
        x = source.get(start, stop, steps, v_max)
        for p in pending:
            x = np.asarray(p(x))
        if source.constant:
            imp = np.broadcast_to(impulse(layer, x), (steps, n) + out_shape)
        elif gated:
            imp = max_gated(layer, x.reshape((steps, n) + x.shape[1:]),
                            steps)
        else:
            imp = impulse(layer, x).reshape((steps, n) + out_shape)
        mem = np.empty((n,) + out_shape, np.float32)
        mem[...] = v0
        fired = np.zeros((steps, n) + out_shape,
                         np.bool_ if max_spikes == 1 else np.uint8)
        total = np.zeros((n,) + out_shape, np.float32)
        for t in range(steps):
            mem += imp[t]
            total += imp[t]
            if max_spikes == 1:
                fired[t] = mem >= v_max
            else:    # dynamics.fire's burst rule at threshold V_max
                v = np.float32(v_max)
                fired[t] = (mem >= v) * np.minimum(
                    np.float32(max_spikes), 1 + np.floor((mem - v) / v))
            mem -= fired[t] * np.float32(v_max)
        counts[start:stop] = fired.sum(axis=0)
        mean_impulse[start:stop] = total / steps
        if trains is not None:
            trains.put(start, fired)
    return counts, mean_impulse, trains


def check_memory(layers, num, steps, max_spikes=1):
    """A :class:`ConfigError` before any work when the arrays kept per layer
    (ANN activations, counts, mean input, the next layer's input and the
    spike trains, one bit per step, a byte with burst spikes) would not fit
    in half the available memory."""
    from snntb_adaptive.checks import available_memory
    widest = max(int(np.prod(layer.output_shape[1:])) for layer in layers)
    train = (steps + 7) // 8 if max_spikes == 1 else steps
    need = num * widest * (5 * 4 + 2 * train)
    have = available_memory()
    if have is not None and need > 0.5 * have:
        raise ConfigError(
            "preset = calibrated keeps about {:.1f} GiB per layer for {} "
            "images and {} steps ({:.1f} GiB available); lower "
            "[adaptive_threshold] calibration_samples".format(
                need / 2 ** 30, num, steps, have / 2 ** 30))


def calibrate(model, x, steps, v_max, is_spiking, frac=0.5,
              per_channel=True, correction='potential', max_spikes=1,
              potential='channel'):
    """Calibrate a parsed model on images ``x`` for ``steps`` steps; sets its
    parameters in place (see the module docstring) and returns the
    per-layer record (:func:`write` stores it). ``is_spiking(layer)``:
    which layers have neurons. ``correction``: what the hidden layers'
    corrections change, the ``bias``, the initial membrane ``potential`` or
    ``both`` (bias first); the output layer's is always its bias.
    ``potential``: one corrected initial membrane per ``channel`` or per
    ``neuron``. ``max_spikes``: spikes a neuron may emit per step."""
    check_model(model)
    x = np.asarray(x, np.float32)
    num = len(x)
    layers = model.layers[1:]
    check_memory(layers, num, steps, max_spikes)
    last = [lay for lay in layers if is_spiking(lay)][-1]
    work = sum(1 for lay in layers if is_spiking(lay))
    records = []
    # per layer output, until its last consumer is done: the ANN's
    # activations, what the SNN carries (a source) and the channel scales
    first = model.layers[0].name
    anns = {first: x}
    sources = {first: _Images(x)}
    scale_of = {first: np.ones(x.shape[-1], np.float32)}
    left = _consumers(model)
    done = 0
    t_start = time.time()
    for layer in layers:
        kind = _type(layer)
        names = [inb.name for inb in inbound_layers(layer)]
        if not is_spiking(layer):
            ins = [anns[n] for n in names]
            anns[layer.name] = np.asarray(layer(
                ins if len(ins) > 1 else ins[0], training=False))
            sources[layer.name] = _Through(layer, [sources[n] for n in names])
            scale_of[layer.name] = _passed_scales(
                layer, [scale_of[n] for n in names], [a.shape for a in ins])
            _release(names, left, anns, sources, scale_of)
            continue
        ann, source, scales = anns[names[0]], sources[names[0]], \
            scale_of[names[0]]
        t0 = time.time()
        done += 1
        out = layer is last
        params = layer.get_weights()
        if params:
            a = impulse(layer, ann) if out else \
                np.asarray(layer(ann, training=False))
            weights = params[0]
            bias = params[1].astype(np.float64) if len(params) > 1 else None
            s_in = _scales_in(layer, scales)
            theta = search_thresholds(np.maximum(a, 0) if out else a, steps,
                                      frac, per_channel and not out,
                                      max_spikes)
            s_out = (theta / np.float32(v_max)).astype(np.float32)
            scale_layer(layer, weights, bias, s_in, s_out)
            v0 = np.full(len(theta), frac * v_max, np.float32)
            axes = tuple(range(a.ndim - 1))

            def error(over=axes):
                """Mean ANN activation minus SNN rate per channel (or, with
                ``over = (0,)``, per neuron; ANN units; the output layer's
                mean input, unclipped)."""
                counts, mean_imp, _ = simulate_layer(
                    layer, source, (), steps, v_max, v0, num,
                    keep_trains=False, max_spikes=max_spikes)
                snn = mean_imp * s_out if out else counts * (theta / steps)
                return np.mean(a.astype(np.float64) - snn, axis=over)
            fixes_bias = out or correction in ('bias', 'both')
            for _ in range(CORRECTIONS if bias is not None and fixes_bias
                           else 0):
                bias = bias + error()
                scale_layer(layer, weights, bias, s_in, s_out)
            bias_cal = None if bias is None else bias.astype(np.float32)
            if bias is not None:   # as apply() sets it from the file
                scale_layer(layer, weights, bias_cal.astype(np.float64),
                            s_in, s_out)
            if not out and correction in ('potential', 'both'):
                over = axes if potential == 'channel' else (0,)
                for _ in range(CORRECTIONS):
                    # the missing charge of T steps, given once at the
                    # start (ANN units -> the layer's V_max units)
                    v0 = (v0 + steps * error(over) / s_out).astype(
                        np.float32)
            record = {'name': layer.name, 'type': kind,
                      'threshold': theta, 'bias': bias_cal,
                      'weight_scale': s_out}
        else:
            # average or max pooling: passes its input's scales
            a = np.asarray(layer(ann, training=False))
            s_out = scales
            theta = (s_out * np.float32(v_max)).astype(np.float32)
            v0 = np.full(len(theta), frac * v_max, np.float32)
            record = {'name': layer.name, 'type': kind, 'threshold': theta,
                      'bias': None, 'weight_scale': None}
        # the initial membrane in ANN units (v0 in V_max units times the
        # scale), and back as apply() reads it, so both simulate the same
        record['initial_membrane'] = (v0 * (theta / np.float32(v_max))).astype(
            np.float32)
        v0 = membrane_fraction(record['initial_membrane'], theta) * np.float32(v_max)
        counts, mean_imp, trains = simulate_layer(
            layer, source, (), steps, v_max, v0, num,
            keep_trains=not out, max_spikes=max_spikes)
        rate = counts * (theta / steps)
        snn = mean_imp * s_out if out else rate
        err = float(np.sqrt(np.mean(np.square(a - snn))))
        record['rmse'] = err
        records.append(record)
        log.info("calibrated layer {}/{} {}: threshold {} - {}, RMS error "
                 "{:.4g} ({:.1f} s, {:.0f} s in all)".format(
                     done, work, layer.name, _fmt(theta.min()),
                     _fmt(theta.max()), err, time.time() - t0,
                     time.time() - t_start))
        anns[layer.name] = a
        sources[layer.name] = None if trains is None else _Spikes(trains)
        scale_of[layer.name] = s_out
        _release(names, left, anns, sources, scale_of)
    set_initial_membrane(model, records)
    return records


def simulate_network(model, x, steps, v_max, is_spiking, max_spikes=1):
    """The calibrated network (its scaled parameters and
    ``model.initial_membrane``, as :func:`calibrate` or :func:`apply` leave
    them) run for ``steps`` steps on images ``x`` with the calibration's
    layer simulator, along the graph: returns the output layer's summed
    input after each step, ``(steps, N, classes)`` (the membrane readout,
    whose largest entry is the prediction)."""
    x = np.asarray(x, np.float32)
    num = len(x)
    layers = model.layers[1:]
    last = [lay for lay in layers if is_spiking(lay)][-1]
    first = model.layers[0].name
    sources = {first: _Images(x)}
    left = _consumers(model)
    for layer in layers:
        names = [inb.name for inb in inbound_layers(layer)]
        if not is_spiking(layer):
            sources[layer.name] = _Through(layer, [sources[n] for n in names])
            _release(names, left, sources)
            continue
        source = sources[names[0]]
        if layer is last:
            readout = np.zeros((steps, num, int(np.prod(
                layer.output_shape[1:]))), np.float32)
            for start in range(0, num, 100):
                stop = min(num, start + 100)
                imp = impulse(layer, source.get(start, stop, steps, v_max))
                imp = imp.reshape((1 if source.constant else steps,
                                   stop - start, -1))
                readout[:, start:stop] = np.cumsum(np.broadcast_to(
                    imp, (steps,) + imp.shape[1:]), axis=0)
            return readout
        v0 = np.float32(v_max) * np.asarray(
            model.initial_membrane[layer.name], np.float32)
        _, _, trains = simulate_layer(layer, source, (), steps, v_max, v0,
                                      num, max_spikes=max_spikes)
        sources[layer.name] = _Spikes(trains)
        _release(names, left, sources)


def ann_scores(model, x, is_spiking):
    """The ANN's scores on images ``x`` (the output layer's input before
    any activation), ``(N, classes)``, with the model's current
    parameters."""
    from tensorflow import keras
    last = [lay for lay in model.layers[1:] if is_spiking(lay)][-1]
    before = keras.Model(model.inputs, last.input)
    return impulse(last, before.predict(np.asarray(x, np.float32),
                                        batch_size=100, verbose=0)).reshape(
        len(x), -1)


def calibrate_horizons(model, x, x_judge, candidates, steps, v_max,
                       is_spiking, **kwargs):
    """Calibrate for each of ``candidates`` (``[(horizon, simulated
    steps), ...]``, :attr:`Settings.calibration_candidates
    <snntb_adaptive.config.Settings.calibration_candidates>`) and keep the
    calibration whose network, run for ``steps`` steps on the images
    ``x_judge`` (:func:`simulate_network`), gives the ANN's class most often
    (ties: the smaller RMS difference between its scores and the ANN's, in
    ANN units). ``kwargs`` go to :func:`calibrate`. The model ends with the
    kept parameters. Returns ``(records, selection)``: the kept
    calibration's records and, with several candidates, what was measured
    (``{'steps', 'images', 'candidates': [{'horizon', 'simulated_steps',
    'agreement', 'score_rmse', 'seconds'}, ...], 'chosen'}``; None for
    one candidate)."""
    if len(candidates) == 1:
        return calibrate(model, x, candidates[0][1], v_max, is_spiking,
                         **kwargs), None
    max_spikes = kwargs.get('max_spikes', 1)
    check_memory(model.layers[1:], len(x_judge), steps, max_spikes)
    original = [layer.get_weights() for layer in model.layers]
    ann = ann_scores(model, x_judge, is_spiking)
    best, rows = None, []
    for horizon, simulated in candidates:
        for layer, weights in zip(model.layers, original):
            layer.set_weights(weights)
        t0 = time.time()
        records = calibrate(model, x, simulated, v_max, is_spiking, **kwargs)
        scores = simulate_network(model, x_judge, steps, v_max, is_spiking,
                                  max_spikes)[-1] * (np.asarray(
                                      records[-1]['weight_scale'],
                                      np.float32) / np.float32(steps))
        row = {'horizon': horizon, 'simulated_steps': simulated,
               'agreement': float(np.mean(
                   np.argmax(scores, 1) == np.argmax(ann, 1))),
               'score_rmse': float(np.sqrt(np.mean(np.square(
                   scores.astype(np.float64) - ann)))),
               'seconds': round(time.time() - t0, 3)}
        rows.append(row)
        log.info("horizon {:g} (simulating {} steps): the network gives the "
                 "ANN's class on {:.2f} % of {} held-aside images at T = {} "
                 "(score RMS difference {:.4g}; {:.1f} s)".format(
                     horizon, simulated, 100 * row['agreement'],
                     len(x_judge), steps, row['score_rmse'], row['seconds']))
        key = (-row['agreement'], row['score_rmse'])
        if best is None or key < best[0]:
            best = (key, records, horizon)
    for layer, weights in zip(model.layers, original):
        layer.set_weights(weights)
    apply(model, {'layers': best[1]}, is_spiking)
    log.info("kept horizon {:g}".format(best[2]))
    return best[1], {'steps': steps, 'images': len(x_judge),
                     'candidates': rows, 'chosen': best[2]}


def judge_images(x_norm, samples, steps):
    """The images ``calibration_horizon = auto`` judges its candidates on:
    the x_norm images after the first ``samples`` (the calibration's), at
    most :data:`SELECT_IMAGES` and :data:`SELECT_IMAGE_STEPS` / ``steps``
    (at least :data:`SELECT_MIN_IMAGES`); when fewer than
    :data:`SELECT_MIN_IMAGES` are left, the calibration images (with a
    warning: they judge less fairly)."""
    n = max(SELECT_MIN_IMAGES, min(SELECT_IMAGES,
                                   SELECT_IMAGE_STEPS // steps))
    rest = x_norm[samples:samples + n]
    if len(rest) >= SELECT_MIN_IMAGES:
        return np.asarray(rest, np.float32)
    log.warning("calibration_horizon = auto: x_norm has {} images after the "
                "{} calibration images, fewer than {}: the calibration "
                "images judge the horizons (give x_norm {} more images for "
                "a fairer choice)".format(len(rest), samples,
                                          SELECT_MIN_IMAGES, n - len(rest)))
    return np.asarray(x_norm[:min(samples, n)], np.float32)


def _release(names, left, *tables):
    """One consumer of each of ``names`` is done: forget the outputs no
    layer needs any more."""
    for name in names:
        left[name] -= 1
        if left[name] == 0:
            for table in tables:
                table.pop(name, None)


def membrane_fraction(initial, threshold):
    """A layer's initial membrane potential as a fraction of its threshold
    (float32; per channel, or per neuron with the channels last), from the
    file's ``initial_membrane`` and ``threshold`` (ANN units): the simulated
    layer's ``mem_init`` (times ``V_max``)."""
    threshold = np.asarray(threshold, np.float32)
    initial = np.asarray(initial, np.float32)
    flat = initial.reshape(-1, len(threshold)) / threshold
    return flat.reshape(initial.shape).astype(np.float32)


def set_initial_membrane(model, layers):
    """Attach ``{layer name: initial membrane / V_max}`` (per channel, or
    per neuron in the layer's output shape) to a parsed model as
    ``initial_membrane``, from the calibration's records or file entries;
    the simulator gives each layer its own."""
    membranes = {}
    for r in layers:
        frac = membrane_fraction(r['initial_membrane'], r['threshold'])
        if frac.size != len(r['threshold']):      # one per neuron
            shape = model.get_layer(r['name']).output_shape[1:]
            frac = frac.reshape(tuple(int(d) for d in shape))
        membranes[r['name']] = frac
    object.__setattr__(model, 'initial_membrane', membranes)


def _fmt(v):
    return '{:.4g}'.format(float(v))


# --------------------------------------------------------------------------
# The Phase-1 method (snntb_adaptive.phase1)

def phase1(model, config, x_norm=None, **kwargs):
    """Phase 1 by post-training calibration (``preset = calibrated``, see
    :mod:`snntb_adaptive.calibration`) on the first ``calibration_samples``
    images of ``x_norm``. The parameters go to ``calibration.json`` in the
    run's log folder; a file there with the same fingerprint (model file,
    images, calibration settings) is applied instead of calibrating again.
    The outcome is also attached to the model (``calibration_record``) for
    ``results.json``."""
    from snntb_adaptive.config import horizon_text, settings_from_config
    from snntb_adaptive.foreign_models import model_files
    from snntb_adaptive.network import spiking_layers
    from snntb_adaptive.normalisation import (keep_reference, phase1_rows,
                                              write_phase1, x_norm_of)
    settings = settings_from_config(config)
    x_norm = x_norm_of(config, x_norm, 'calibrated')
    samples = settings.calibration_samples
    if len(x_norm) < samples:
        log.warning("x_norm holds {} images, fewer than calibration_samples "
                    "= {}: calibrating on all of them".format(len(x_norm),
                                                             samples))
    x = np.asarray(x_norm[:samples], np.float32)
    v_max = config.getfloat('cell', 'v_thresh')
    spiking = {id(layer) for layer in spiking_layers(model, config)}

    def is_spiking(layer):
        return id(layer) in spiking

    keep_reference(model)
    log_dir = config.get('paths', 'log_dir_of_current_run')
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, CALIBRATION_FILE)
    candidates = settings.calibration_candidates
    recorded = dict(settings.calibration(), v_max=v_max, images=len(x),
                    format=FORMAT,
                    corrections=CORRECTIONS)
    judge = None
    if len(candidates) > 1:
        judge = judge_images(x_norm, samples,
                             settings.calibration_steps)
        recorded.update(horizons=list(HORIZONS), judge_images=len(judge))
    fp = fingerprint(model_files(config),
                     x if judge is None else np.concatenate([x, judge]),
                     recorded)
    if os.path.exists(path) and older_format(path):
        kept = os.path.join(log_dir, kept_name(path))
        os.replace(path, kept)
        log.info("{} was written by an older version: calibrating again (the "
                 "file is kept as {})".format(path, kept))
    data = read(path) if os.path.exists(path) else None
    if data is not None and data['fingerprint'] == fp:
        log.info("using the calibration in {} (same model, images and "
                 "settings; delete it to calibrate again)".format(path))
        apply(model, data, is_spiking)
        reused = True
    else:
        if data is not None:
            kept = os.path.join(log_dir, kept_name(path))
            os.replace(path, kept)
            log.info("the model, images or calibration settings changed: "
                     "calibrating again (the earlier calibration is kept as "
                     "{})".format(kept))
        log.info("calibrating for T = {} steps ({}) on {} x_norm images "
                 "(thresholds per {}, initial membrane {} x threshold, "
                 "{} correction)...".format(
                     settings.calibration_steps, horizon_text(settings),
                     len(x),
                     settings.calibration_thresholds, settings.mem_init,
                     settings.calibration_correction))
        t0 = time.time()
        records, selection = calibrate_horizons(
            model, x, judge, candidates, settings.calibration_steps, v_max,
            is_spiking,
            frac=settings.mem_init,
            per_channel=settings.calibration_thresholds == 'channel',
            correction=settings.calibration_correction,
            max_spikes=settings.max_spikes,
            potential=settings.calibration_potential)
        seconds = time.time() - t0
        write(path, records, fp, recorded, seconds, selection)
        log.info("calibration took {:.1f} s; parameters written to {}"
                 "".format(seconds, path))
        data = read(path)
        reused = False
    object.__setattr__(model, 'calibration_record', {
        'file': path, 'fingerprint': fp, 'seconds': data['seconds'],
        'reused': reused, 'settings': recorded,
        'horizon_selection': data.get('selection')})
    rows = phase1_rows(model, config, {
        entry['name']: max(entry['threshold']) for entry in data['layers']})
    write_phase1(config, rows, normalised=True, method='calibrated')
    return rows


# --------------------------------------------------------------------------
# The artefact


def fingerprint(model_files, x, settings):
    """SHA-256 of what the calibration depends on: the bytes of the files
    that define the ANN (a path or a list of paths, in order: the Keras
    ``.h5``, the ``.onnx``, or the PyTorch script and its weights), the
    calibration images and the settings (a dict)."""
    h = hashlib.sha256()
    for model_file in [model_files] if isinstance(model_files, str) \
            else model_files:
        with open(model_file, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
    x = np.ascontiguousarray(x, np.float32)
    h.update(repr(x.shape).encode())
    h.update(x.tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def _floats(a):
    return None if a is None else [float(v) for v in np.asarray(a).ravel()]


def write(path, records, fp, settings, seconds, selection=None):
    """The calibration file (JSON): ``format``, ``method``
    (``"calibrated"``), ``fingerprint``, ``settings`` (steps, images,
    thresholds per channel or layer, ``mem_init``, ``v_max``), ``seconds``
    (calibration time) and ``layers``: per spiking layer in order ``name``,
    ``type``, and per output channel ``threshold`` (ANN units: the neuron
    fires when its membrane reaches it and a spike carries this value),
    ``initial_membrane`` (the membrane potential at every reset, ANN units;
    not the initial threshold ``v_init`` of ``results.json``), ``bias``
    (the corrected bias,
    ANN units; null for pooling), ``weight_scale`` (``theta / V_max``: the
    simulated layer's incoming weights and bias are divided by it per output
    channel and its outgoing weights multiplied by it per input channel;
    null for pooling) and ``rmse`` (RMS difference between the ANN's
    activations and the calibrated SNN's T-step rates on the calibration
    images). With the ANN's own weights, these parameters define the
    calibrated SNN in any simulator with per-neuron thresholds.
    ``selection`` (``calibration_horizon = auto`` only): what judged the
    horizons (:func:`calibrate_horizons`). ``content_sha256`` is the
    SHA-256 of everything else (:func:`digest`):
    a file edited by hand (or damaged) is not reused."""
    from snntb_adaptive.compat import write_json_atomic
    layers = [{'name': r['name'], 'type': r['type'],
               'threshold': _floats(r['threshold']),
               'initial_membrane': _floats(r['initial_membrane']),
               'bias': _floats(r['bias']),
               'weight_scale': _floats(r['weight_scale']),
               'rmse': r['rmse']} for r in records]
    data = {'format': FORMAT, 'method': 'calibrated', 'fingerprint': fp,
            'settings': settings, 'seconds': round(seconds, 3),
            'layers': layers}
    if selection is not None:
        data['selection'] = selection
    data['content_sha256'] = digest(data)
    write_json_atomic(path, data, indent=1)
    return path


def digest(data):
    """SHA-256 of a calibration file's content but ``content_sha256``
    (canonical JSON: sorted keys, no spaces)."""
    content = {k: v for k, v in data.items() if k != 'content_sha256'}
    return hashlib.sha256(json.dumps(
        content, sort_keys=True, separators=(',', ':'),
        allow_nan=False).encode()).hexdigest()


def older_format(path):
    """Whether ``path`` is a calibration file of an earlier format (which
    is kept aside and calibrated again, not refused)."""
    try:
        with open(path) as f:
            data = json.load(f)
        return data.get('method') == 'calibrated' and \
            isinstance(data.get('format'), int) and \
            not isinstance(data.get('format'), bool) and \
            0 < data['format'] < FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def kept_name(path):
    """The name an earlier calibration file is kept under when the
    calibration is made again: from a hash of its bytes (never from its
    content, which need not be trustworthy)."""
    with open(path, 'rb') as f:
        return 'calibration.{}.json'.format(
            hashlib.sha256(f.read()).hexdigest()[:12])


def read(path):
    """The calibration file at ``path`` as a dict; a
    :class:`CorruptFileError` names a file that is not one."""
    try:
        with open(path) as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get('format') != FORMAT or \
                data.get('method') != 'calibrated' or \
                not isinstance(data.get('layers'), list):
            raise ValueError('not a calibration file of format {}'.format(
                FORMAT))
        fp = data.get('fingerprint')
        if not (isinstance(fp, str) and len(fp) == 64 and
                all(c in '0123456789abcdef' for c in fp)):
            raise ValueError('its fingerprint is not a SHA-256')
        seconds = data.get('seconds')
        if not isinstance(seconds, (int, float)) or isinstance(
                seconds, bool) or not seconds >= 0:
            raise ValueError('its seconds is not a number of seconds')
        if not isinstance(data.get('selection', {}), dict):
            raise ValueError('its selection is not an object')
        if data.get('content_sha256') != digest(data):
            raise ValueError('its content does not match its content_sha256:'
                             ' edited or damaged')
        for entry in data['layers']:
            if not isinstance(entry, dict) or \
                    not isinstance(entry.get('name'), str):
                raise ValueError('a layer is not an object with a name')
            for key in ('name', 'threshold', 'initial_membrane', 'bias',
                        'weight_scale'):
                if key not in entry:
                    raise ValueError('a layer has no {!r}'.format(key))
            for key in ('threshold', 'initial_membrane', 'bias',
                        'weight_scale'):
                values = entry[key]
                if values is None:
                    continue
                arr = np.asarray(values, np.float64)
                if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                    raise ValueError('layer {}: {} is not a list of finite '
                                     'numbers'.format(entry['name'], key))
            for key in ('threshold', 'weight_scale'):
                values = entry[key]
                if values is not None and not np.all(
                        (np.asarray(values, np.float64) > 0) &
                        (np.asarray(values, np.float64) < 1e30)):
                    raise ValueError('layer {}: {} must be positive and '
                                     'finite in float32'.format(
                                         entry['name'], key))
            initial = np.asarray(entry['initial_membrane'], np.float64)
            if np.any(np.abs(initial) >= 1e30):
                raise ValueError('layer {}: initial_membrane out of range'
                                 ''.format(entry['name']))
    except (OSError, ValueError, TypeError, AttributeError,
            RecursionError) as e:
        raise CorruptFileError(
            "{} is not a readable calibration file ({}); delete it to "
            "calibrate again".format(path, e)) from None
    return data


def apply(model, data, is_spiking):
    """Set a parsed model's parameters from a calibration file's contents
    (the same float operations as :func:`calibrate`)."""
    check_model(model)
    entries = {e['name']: e for e in data['layers']}
    spiking = [lay for lay in model.layers[1:] if is_spiking(lay)]
    if [lay.name for lay in spiking] != [e['name'] for e in data['layers']]:
        raise CorruptFileError(
            "the calibration file's layers ({}) are not the model's spiking "
            "layers ({}); delete it to calibrate again".format(
                ', '.join(entries), ', '.join(lay.name for lay in spiking)))
    scale_of = {model.layers[0].name: np.ones(int(model.input_shape[-1]),
                                              np.float32)}
    for layer in model.layers[1:]:
        inputs = inbound_layers(layer)
        scales = scale_of[inputs[0].name]
        if not is_spiking(layer):
            scale_of[layer.name] = _passed_scales(
                layer, [scale_of[i.name] for i in inputs],
                [i.output_shape for i in inputs])
            continue
        entry = entries[layer.name]
        params = layer.get_weights()
        scale_of[layer.name] = scales
        if params:
            s_out = np.asarray(entry['weight_scale'], np.float32)
            bias = None if entry['bias'] is None else \
                np.asarray(entry['bias'], np.float32).astype(np.float64)
            if len(s_out) != params[0].shape[-1] or (
                    bias is not None and len(bias) != len(s_out)):
                raise CorruptFileError(
                    "the calibration file's layer {} has {} channels, the "
                    "model's {}; delete the file to calibrate again".format(
                        layer.name, len(s_out), params[0].shape[-1]))
            scale_layer(layer, params[0], bias, _scales_in(layer, scales),
                        s_out)
            scale_of[layer.name] = s_out
    set_initial_membrane(model, data['layers'])
