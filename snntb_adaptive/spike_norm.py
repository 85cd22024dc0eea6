"""Spike-Norm (Sengupta et al. 2019) as a Phase-1 method (``preset =
spike_norm``): each layer's threshold is the largest input impulse that
layer receives in the converted SNN, measured layer by layer with the layers
before it already spiking at their new thresholds.

What exactly is computed (:func:`spike_norm`):

* samples: the first ``batch_size`` images of ``x_norm`` (normalisation
  data, never test data); steps: the run's ``duration`` T;
* the input layer is a constant current ``x`` at every step, as in the
  INI simulator;
* for each layer in order: its input impulses ``I_t`` (bias included) for
  all T steps and samples are computed from the previous layer's spike
  trains; for a layer with weights, ``theta = max over samples, steps and
  neurons of I_t``, and its weights and bias are divided by
  ``theta / V_max``, so that the largest impulse becomes ``V_max``, the
  threshold and spike amplitude of every neuron; layers without weights
  (average pooling) keep SNN-TB's threshold ``V_max``;
* the layer's spike trains then follow from IF neurons with threshold and
  reset ``V_max`` (reset by subtraction), and feed the next layer.

During inference the thresholds stay constant (``update = none``, ``eta =
1``). SNN-TB's data-based weight normalisation is not applied: Spike-Norm
replaces it. Supported: sequential models of Dense, Conv1D/Conv2D,
DepthwiseConv2D, AveragePooling2D, Flatten, Reshape and ZeroPadding2D layers;
max pooling (whose spiking gate depends on accumulated input) and
Concatenate are refused.
"""

import numpy as np

from snntb_adaptive.errors import ConfigError
from snntb_adaptive.network import inbound_layers

SUPPORTED = ('Dense', 'Conv1D', 'Conv2D', 'DepthwiseConv2D',
             'AveragePooling2D', 'Flatten', 'Reshape', 'ZeroPadding2D')


def impulse(layer, x):
    """The layer's output without its activation (its input impulse as a
    spiking layer), as a NumPy array. Also used by the calibration."""
    import tensorflow as tf
    activation = getattr(layer, 'activation', None)
    if activation is not None:
        layer.activation = tf.keras.activations.linear
    try:
        return np.asarray(layer(x, training=False))
    finally:
        if activation is not None:
            layer.activation = activation


def _fire(impulses, v_max):
    """IF neurons with threshold and reset ``v_max`` driven by ``impulses``
    ``(T, B, ...)``: spike trains of amplitude ``v_max``."""
    mem = np.zeros(impulses.shape[1:], np.float32)
    spikes = np.zeros_like(impulses)
    for t in range(len(impulses)):
        mem = mem + impulses[t]
        fired = mem >= v_max
        spikes[t] = np.where(fired, np.float32(v_max), np.float32(0))
        mem = mem - spikes[t]
    return spikes


def spike_norm(model, x, steps, v_max, is_spiking):
    """Spike-Norm thresholds of a parsed model on images ``x`` over
    ``steps`` steps; rescales the model's weights in place (see the module
    docstring). Returns ``{layer name: theta}`` for the layers with weights.
    ``is_spiking(layer)``: SNN-TB's rule for which layers have neurons."""
    from snntoolbox.parsing.utils import get_type
    layers = model.layers[1:]
    for layer in layers:
        if len(inbound_layers(layer)) > 1 or \
                get_type(layer) not in SUPPORTED:
            raise ConfigError(
                "preset = spike_norm: layer {} ({}) is not supported by the "
                "Spike-Norm Phase 1 (sequential Dense, Conv, "
                "DepthwiseConv2D, AveragePooling2D, Flatten, Reshape, "
                "ZeroPadding2D). Use another preset for this model.".format(
                    layer.name, get_type(layer)))
    x = np.asarray(x, np.float32)
    batch = len(x)
    from snntb_adaptive.checks import available_memory
    widest = max(int(np.prod(layer.output_shape[1:])) for layer in layers)
    need, have = 3 * 4 * steps * batch * widest, available_memory()
    if have is not None and need > 0.5 * have:
        raise ConfigError(
            "preset = spike_norm keeps the spike trains of a layer for {} "
            "steps x {} images (about {:.1f} GiB, {:.1f} GiB available); "
            "lower [simulation] batch_size (Spike-Norm measures on the "
            "first batch of x_norm) or duration".format(
                steps, batch, need / 2 ** 30, have / 2 ** 30))
    # (T, B, ...) of the current layer's output; the input is a constant
    # current, so the first layer's impulse is computed once
    trains = None
    thetas = {}

    def impulses(layer):
        """(T, B, ...) input impulses of ``layer`` from ``trains``."""
        if trains is None:         # constant input current
            out = impulse(layer, x)
            return np.broadcast_to(out, (steps,) + out.shape).copy()
        out = impulse(layer, trains.reshape((steps * batch,) +
                                             trains.shape[2:]))
        return out.reshape((steps, batch) + out.shape[1:])

    for layer in layers:
        out = impulses(layer)
        if not is_spiking(layer):
            trains = out
            continue
        if layer.weights:
            theta = float(out.max())
            if not theta > 0:
                raise ConfigError(
                    "preset = spike_norm: layer {} receives no positive "
                    "input impulse on the normalisation images over {} "
                    "steps; use more steps or other images".format(
                        layer.name, steps))
            thetas[layer.name] = theta
            factor = theta / v_max
            params = layer.get_weights()
            layer.set_weights([p / factor for p in params[:2]] + params[2:])
            # the impulses again, with the weights the simulation will use
            out = impulses(layer)
        trains = _fire(out.astype(np.float32), v_max)
    return thetas


def phase1(model, config, x_norm=None, **kwargs):
    """Phase 1 by Spike-Norm (``preset = spike_norm``, see
    :mod:`snntb_adaptive.spike_norm`): thresholds measured on the first
    batch of ``x_norm`` over ``duration`` steps; SNN-TB's scale-factor file
    is neither read nor written."""
    import time
    from snntb_adaptive.errors import DataError
    from snntb_adaptive.log import log
    from snntb_adaptive.network import spiking_layers
    from snntb_adaptive.normalisation import (keep_reference, phase1_rows,
                                              write_phase1, x_norm_of)
    x_norm = x_norm_of(config, x_norm, 'spike_norm')
    batch = config.getint('simulation', 'batch_size')
    steps = config.getint('simulation', 'duration')
    if len(x_norm) < batch:
        raise DataError("preset = spike_norm measures on one batch of "
                        "x_norm, but it holds {} images (batch_size = {})"
                        "".format(len(x_norm), batch))
    spiking = {id(layer) for layer in spiking_layers(model, config)}
    keep_reference(model)
    log.info("Spike-Norm: thresholds from {} x_norm images over {} steps..."
             "".format(batch, steps))
    t0 = time.time()
    thetas = spike_norm(model, x_norm[:batch], steps,
                        config.getfloat('cell', 'v_thresh'),
                        lambda layer: id(layer) in spiking)
    log.info("Spike-Norm thresholds computed in {:.1f} s".format(
        time.time() - t0))
    rows = phase1_rows(model, config, thetas)
    write_phase1(config, rows, normalised=True, method='spike_norm')
    return rows
