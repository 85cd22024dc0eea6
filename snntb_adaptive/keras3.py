"""Rebuild a Keras-3 model as a tf-keras (Keras 2) ``.h5`` that SNN-TB 0.6.0
can read.

    python -m snntb_adaptive convert-keras3 MODEL.keras OUT.h5

``MODEL`` is a Keras-3 ``.keras`` archive or Keras-3 ``.h5``. Supported: a
linear stack of layers (Sequential, or a Functional model in which each layer
feeds the next) of the types SNN-TB converts (Conv1D/2D, DepthwiseConv2D,
Dense, pooling, Flatten, Reshape, ZeroPadding2D, BatchNormalization,
Activation, ReLU, Dropout, ...). Each layer is rebuilt from its config in
tf-keras, its weights copied, and the two models' outputs compared on random
inputs before the ``.h5`` is written.
"""

import inspect
import os

import numpy as np

from snntb_adaptive.errors import ConfigError
from snntb_adaptive.network import CONVERTIBLE

#: layer classes of a linear stack: the convertible ones that take one input
SUPPORTED = tuple(sorted(CONVERTIBLE - {'Concatenate', 'Add'}))
#: config keys whose Keras-3 values tf-keras does not take; the weights are
#: copied, so initialisers and regularisers do not matter
DROP = {'dtype', 'kernel_initializer', 'bias_initializer',
        'depthwise_initializer', 'beta_initializer', 'gamma_initializer',
        'moving_mean_initializer', 'moving_variance_initializer',
        'kernel_regularizer', 'bias_regularizer', 'activity_regularizer',
        'depthwise_regularizer', 'beta_regularizer', 'gamma_regularizer',
        'kernel_constraint', 'bias_constraint', 'depthwise_constraint',
        'beta_constraint', 'gamma_constraint', 'synchronized', 'quantization_config',
        'lora_rank', 'lora_alpha', 'build_config'}


def _linear_layers(model):
    layers = [lay for lay in model.layers
              if lay.__class__.__name__ != 'InputLayer']
    for prev, layer in zip(layers, layers[1:]):
        inbound = [node for node in getattr(layer, '_inbound_nodes', [])]
        for node in inbound:
            parents = [t._keras_history[0] for t in node.input_tensors]
            if parents != [prev]:
                raise ConfigError(
                    "layer {} does not take its input from {} alone: only "
                    "linear stacks of layers can be converted".format(
                        layer.name, prev.name))
    return layers


def _tf_keras_layer(layer, tfk):
    cls = layer.__class__.__name__
    if cls not in SUPPORTED:
        raise ConfigError("layer {} of type {} is not supported by the "
                          "converter (supported: {})".format(
                              layer.name, cls, ', '.join(SUPPORTED)))
    target = getattr(tfk.layers, cls)
    allowed = set(inspect.signature(target.__init__).parameters)
    config = {k: v for k, v in layer.get_config().items()
              if k not in DROP and (k in allowed or k in ('name',
                                                          'trainable'))}
    if cls == 'BatchNormalization' and isinstance(config.get('axis'), list):
        config['axis'] = config['axis'][0] if len(config['axis']) == 1 \
            else config['axis']
    return target(**config)


def convert(src, out, check_samples=8, seed=0):
    """Convert ``src`` (Keras 3) to a tf-keras ``.h5`` at ``out``; returns
    the largest absolute output difference on random inputs."""
    if not os.path.isfile(src):
        raise ConfigError("{} not found".format(src))
    if os.path.exists(out):
        raise ConfigError("{} exists; choose another output file".format(out))
    from snntb_adaptive.registration import ensure_legacy_keras
    ensure_legacy_keras()
    import keras as keras3
    import tf_keras as tfk
    try:
        m3 = keras3.saving.load_model(src, compile=False)
    except Exception as e:
        raise ConfigError("{} could not be loaded with Keras {}: {}".format(
            src, keras3.__version__, e)) from None
    layers = _linear_layers(m3)
    shape = tuple(m3.inputs[0].shape[1:])
    inp = tfk.layers.Input(shape)
    x = inp
    pairs = []
    for layer in layers:
        new = _tf_keras_layer(layer, tfk)
        x = new(x)
        pairs.append((layer, new))
    model = tfk.Model(inp, x, name=m3.name)
    for old, new in pairs:
        new.set_weights(old.get_weights())
    rng = np.random.default_rng(seed)
    probe = rng.uniform(0, 1, (check_samples,) + shape).astype(np.float32)
    diff = float(np.max(np.abs(np.asarray(m3(probe, training=False)) -
                               model.predict(probe, verbose=0))))
    if not diff < 1e-4:
        raise ConfigError("the rebuilt model differs from {} (largest output "
                          "difference {:.3g}); not written".format(src, diff))
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(out)
    return diff
