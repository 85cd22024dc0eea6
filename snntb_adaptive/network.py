"""The network's layer table: which layers the plugin supports, which of a
parsed model's layers are spiking, and one row per spiking layer.

One place for what used to be spelt out in several:

* :data:`SPIKING_TYPES` - layer types that become adaptive-threshold neurons
  (:mod:`snntb_adaptive.layers` has one class ``Spike<type>`` for each);
* :data:`PASS_THROUGH_TYPES` - layer types SNN-TB keeps without neurons;
* :data:`LINEAR_TYPES` - spiking types that ``[adaptive_threshold]
  avg_pooling = linear`` turns into linear synapses (no neurons);
* :data:`CONVERTIBLE` - Keras classes a model file may hold: the above, plus
  those SNN-TB's parser absorbs or drops without changing the function;
* :func:`is_spiking`, :func:`spiking_layers`, :func:`layer_rows` - which
  layers of a parsed model have neurons, and their table rows (name, type,
  neurons);
* :func:`check_layer`, :func:`check_convertible` - a clear error for a layer
  the adaptive threshold cannot simulate.

Importing it is cheap (no TensorFlow); the functions take Keras layers.
"""

from snntb_adaptive.errors import ConfigError

#: layer types with neurons, as SNN-TB's ``get_type`` names them
SPIKING_TYPES = ('Dense', 'Conv1D', 'Conv2D', 'DepthwiseConv2D',
                 'Conv2DTranspose', 'UpSampling2D', 'AveragePooling2D',
                 'MaxPooling2D')
#: layer types SNN-TB simulates without neurons
PASS_THROUGH_TYPES = ('Flatten', 'Reshape', 'ZeroPadding2D', 'Concatenate')

#: spiking types that ``avg_pooling = linear`` simulates without neurons
LINEAR_TYPES = ('AveragePooling2D',)

#: Keras classes a model file may hold: SNN-TB converts them, or absorbs them
#: without changing the function (BatchNorm is folded into the weights, ReLU
#: and Activation fused, Dropout etc. inactive at inference, Add turned into
#: Concatenate plus a convolution, global average pooling into average
#: pooling plus Flatten); SNN-TB would silently skip anything else.
CONVERTIBLE = frozenset(SPIKING_TYPES + PASS_THROUGH_TYPES + (
    'InputLayer', 'GlobalAveragePooling2D', 'Add', 'BatchNormalization',
    'Activation', 'ReLU', 'Dropout', 'ActivityRegularization',
    'GaussianNoise'))

#: activations SNN-TB's INI simulator fires by a rule of its own
UNSUPPORTED_ACTIVATIONS = ('softmax', 'binary_sigmoid', 'binary_tanh')


def is_spiking(layer, config):
    """Whether a parsed-model layer has neurons: SNN-TB's ``is_spiking``,
    except that ``[adaptive_threshold] avg_pooling = linear`` (with the
    adaptive spike code) leaves average pooling without neurons."""
    from snntoolbox.parsing.utils import get_type
    from snntoolbox.simulation.utils import is_spiking as snntb_is_spiking
    if not snntb_is_spiking(layer, config):
        return False
    if get_type(layer) not in LINEAR_TYPES:
        return True
    from snntb_adaptive.config import is_adaptive, settings_from_config
    return not (is_adaptive(config) and
                settings_from_config(config).avg_pooling == 'linear')


def spiking_layers(model, config):
    """The layers of a parsed model that have neurons, in order
    (:func:`is_spiking`)."""
    return [layer for layer in model.layers[1:] if is_spiking(layer, config)]


def neurons(layer):
    """Number of neurons of a layer (its output size per sample)."""
    n = 1
    for d in layer.output_shape[1:]:
        n *= int(d)
    return n


def layer_rows(model, config):
    """One row per spiking layer: ``name``, ``type`` (SNN-TB's), ``neurons``."""
    from snntoolbox.parsing.utils import get_type
    return [{'name': layer.name, 'type': get_type(layer),
             'neurons': neurons(layer)}
            for layer in spiking_layers(model, config)]


def check_layer(layer):
    """SNN-TB's type name of a parsed-model layer; a :class:`ConfigError`
    names a layer type or activation that cannot be simulated with the
    adaptive threshold and what to change."""
    from snntoolbox.parsing.utils import get_type
    layer_type = get_type(layer)
    if layer_type not in SPIKING_TYPES + PASS_THROUGH_TYPES:
        raise ConfigError(
            "Layer {} of type {} cannot be converted with spike_code = "
            "adaptive_threshold. Supported layers: {}, and {}. Replace the "
            "layer in the model.".format(
                layer.name, layer_type, ', '.join(sorted(SPIKING_TYPES)),
                ', '.join(PASS_THROUGH_TYPES)))
    activation = getattr(layer, 'activation', None)
    activation = str(getattr(activation, '__name__', activation))
    if activation in UNSUPPORTED_ACTIVATIONS or '_Q' in activation:
        hint = (" Set [conversion] softmax_to_relu = True (or give the model "
                "a linear output layer)." if activation == 'softmax'
                else " Use ReLU or linear activations.")
        raise ConfigError(
            "Layer {} has activation {!r}, which cannot be combined with "
            "spike_code = adaptive_threshold: SNN-TB's INI simulator would "
            "fire it by its own rule.{}".format(layer.name, activation, hint))
    return layer_type


def check_convertible(model):
    """:func:`check_layer` on every layer of a parsed model (before any
    normalisation work)."""
    for layer in model.layers[1:]:
        check_layer(layer)


# --------------------------------------------------------------------------
# Synapses: fan-out of every neuron, connections of the ANN

#: layers whose synapses are a window sum (each input reaches the windows
#: that hold it), whatever they compute on it
WINDOW_TYPES = ('AveragePooling2D', 'MaxPooling2D')


def inbound_layers(layer):
    """The layers a layer of a Keras functional model takes its input from,
    as a list (Keras gives one layer bare)."""
    inbound = layer._inbound_nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def synapses(layer, x):
    """``layer``'s map with every synaptic weight 1 and no bias, applied to
    ``x``: for an input of ones, each output is its number of synapses
    (fan-in, exact at padded borders), and the gradient of the sum with
    respect to the input is each input's fan-out. Pooling counts each input
    once per window that holds it; layers without synapses (Flatten,
    Reshape, ZeroPadding2D, Concatenate, UpSampling2D) are the layer
    itself."""
    import numpy as np
    import tensorflow as tf
    from snntoolbox.parsing.utils import get_type
    kind = get_type(layer)
    if kind in WINDOW_TYPES:
        channels = int(x.shape[-1])
        ones = tf.ones(tuple(layer.pool_size) + (channels, 1), x.dtype)
        return tf.nn.depthwise_conv2d(
            x, ones, (1,) + tuple(layer.strides) + (1,),
            layer.padding.upper())
    if not layer.weights:
        return layer(x)
    config = dict(layer.get_config(), activation='linear', use_bias=False)
    clone = type(layer).from_config(config)
    clone.build(x.shape)
    clone.set_weights([np.ones(w.shape, np.float32)
                       for w in clone.get_weights()])
    return clone(x)


def fan_out(model, config):
    """Per layer with neurons (:func:`spiking_layers`, in order), an array
    of its output's shape (without the batch axis): the number of synapses
    one spike of each neuron reaches in the next layers with neurons,
    through the layers without neurons between them (with ``avg_pooling =
    linear``, a spike reaches the next layer's synapses of its pooled
    value). The output layer's is zero. A step's synaptic operations are
    its spikes times these."""
    import tensorflow as tf
    spiking = spiking_layers(model, config)
    ids = {id(layer) for layer in spiking}
    sources = [tf.zeros((1,) + tuple(int(d) for d in layer.output_shape[1:]))
               for layer in spiking]
    source_of = {layer.name: s for layer, s in zip(spiking, sources)}
    with tf.GradientTape() as tape:
        for s in sources:
            tape.watch(s)
        outputs = {model.layers[0].name: tf.zeros(
            (1,) + tuple(int(d) for d in model.input_shape[1:]))}
        total = tf.constant(0.0)
        for layer in model.layers[1:]:
            x = [outputs[inb.name] for inb in inbound_layers(layer)]
            x = x[0] if len(x) == 1 else x
            if id(layer) in ids:
                total += tf.reduce_sum(synapses(layer, x))
                outputs[layer.name] = source_of[layer.name]
            else:
                outputs[layer.name] = synapses(layer, x)
    grads = tape.gradient(total, sources)
    return [(tf.zeros_like(s) if g is None else g)[0].numpy()
            for s, g in zip(sources, grads)]


def ann_macs(model):
    """The ANN's multiply-accumulates per image, per layer with weights
    (``{name: count}``): its connections, exact at padded borders."""
    import tensorflow as tf
    macs = {}
    for layer in model.layers[1:]:
        if layer.weights:      # a parsed model's: Conv*, Dense (BN folded)
            ones = tf.ones((1,) + tuple(int(d) for d in
                                        layer.input_shape[1:]))
            # each output's fan-in is a small whole number (exact in
            # float32); their sum in float64
            macs[layer.name] = int(tf.reduce_sum(tf.cast(
                synapses(layer, ones), tf.float64)))
    return macs
