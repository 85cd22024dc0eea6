"""Keras spiking layers with the adaptive threshold (SPEC Phase 2).

Served to SNN-TB as ``snntoolbox.simulation.backends.inisim.adaptive_threshold``
(see :mod:`snntb_adaptive.registration`). Every layer type that SNN-TB's
``temporal_mean_rate`` INI backend turns into spiking neurons
(:data:`snntb_adaptive.network.SPIKING_TYPES`) gets an adaptive twin: the
SNN-TB class computes the input impulse ``I_t`` exactly as before
(convolution, dense, pooling, the max-gating of spiking max pooling, ...),
and :class:`AdaptiveThresholdMixin` replaces what happens next by one step
of :mod:`snntb_adaptive.dynamics` (``step_fn``: the TensorFlow ops or the
fused op, same signature and results).

A layer is used in two ways:

* the compiled loop of :mod:`snntb_adaptive.target_sim` calls the pure
  interface, :meth:`~AdaptiveThresholdMixin.impulse_of` and
  :meth:`~AdaptiveThresholdMixin.pure_step`, on a :class:`LayerState`;
* the step-by-step path (SNN-TB's way: one call of the Keras model per
  step) keeps the same state in ``tf.Variable`` objects (``mem`` from SNN-TB,
  ``theta``, ``input_sum``, SNN-TB's ``mem_input``) and calls
  :meth:`~AdaptiveThresholdMixin.update_neurons`.

Before a layer is built, the target simulator sets ``layer.neuron_params``
(a :class:`~snntb_adaptive.dynamics.NeuronParams`) and ``layer.step_fn``,
and ``layer.record_input`` on the output layer for ``readout = membrane``.
"""

from typing import NamedTuple, Union

from snntb_adaptive.registration import ensure_legacy_keras

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402
from snntoolbox.simulation.backends.inisim import \
    temporal_mean_rate_tensorflow as tmr  # noqa: E402

from snntb_adaptive import network  # noqa: E402
from snntb_adaptive.dynamics import (NeuronState,  # noqa: E402
                                     has_initial_mem, initial_mem,
                                     initial_theta)
from snntb_adaptive.kernel import tf_step  # noqa: E402


class LayerState(NamedTuple):
    """State of one spiking layer in the compiled loop. Fields a layer does
    not use are ``()`` (an empty structure for ``tf.while_loop``)."""

    neuron: NeuronState
    #: cumulative input impulse (output layer, ``readout = membrane``)
    input_sum: Union[tf.Tensor, tuple] = ()
    #: SNN-TB's accumulated input of spiking max pooling (its max gating)
    gate: Union[tf.Tensor, tuple] = ()


class AdaptiveThresholdMixin:
    """Replaces SNN-TB's firing rule by the adaptive threshold. Put it first
    among the bases, before the SNN-TB spiking class."""

    #: :class:`~snntb_adaptive.dynamics.NeuronParams`, set by the simulator
    neuron_params = None
    #: keep the cumulative input (output layer, ``readout = membrane``)
    record_input = False
    #: ``(params, state, impulse, z=None) -> Step``: the TensorFlow ops
    #: (:func:`snntb_adaptive.kernel.tf_step`) or the fused op
    #: (:func:`snntb_adaptive.kernel.fused_step`); the simulator chooses
    step_fn = staticmethod(tf_step)
    #: Keras class whose ``call`` computes the input impulse (set per class)
    base_layer = None
    #: True where the impulse depends on state (spiking max pooling)
    stateful_impulse = False
    #: ``(N,)``: synapses one spike of each neuron reaches, divided by
    #: ``V_max`` (:func:`snntb_adaptive.network.fan_out`); set by the
    #: simulator, None: no synaptic operations counted
    fan_out = None

    theta = step_count = step_synops = input_sum = None

    def init_membrane_potential(self, output_shape=None, mode='zero'):
        """The membrane at a reset: ``mem_init * V_max`` (SNN-TB's zeros
        when ``mem_init = 0``)."""
        p = self.neuron_params
        if p is None or not has_initial_mem(p):
            return super().init_membrane_potential(output_shape, mode)
        shape = output_shape if output_shape is not None else \
            self.output_shape
        return initial_mem(p, shape, self._floatx)

    def init_neurons(self, input_shape):
        super().init_neurons(input_shape)
        p = self.neuron_params
        if p is None:
            raise RuntimeError(
                "{}: neuron_params must be set before the layer is built "
                "(the adaptive-threshold target simulator does this)."
                "".format(self.name))
        output_shape = self.compute_output_shape(input_shape)
        batch = int(output_shape[0])
        if self.theta is None:
            self.theta = tf.Variable(initial_theta(p, batch, self._floatx),
                                     name='theta', trainable=False)
        if self.step_count is None:
            self.step_count = tf.Variable(tf.zeros([batch], self._floatx),
                                          name='step_count', trainable=False)
            self.step_synops = tf.Variable(tf.zeros([batch], self._floatx),
                                           name='step_synops',
                                           trainable=False)
        if self.record_input and self.input_sum is None:
            self.input_sum = tf.Variable(tf.zeros(output_shape, self._floatx),
                                         name='input_sum', trainable=False)

    def update_neurons(self):
        """The step-by-step path: one step on the layer's variables."""
        step = self.step_fn(self.neuron_params,
                            NeuronState(self.mem.read_value(),
                                        self.theta.read_value()),
                            self.impulse)
        self.mem.assign(step.state.mem)
        self.theta.assign(step.state.theta)
        self.step_count.assign(step.count)
        self.step_synops.assign(self.synops(step.spikes))
        if self.input_sum is not None:
            self.input_sum.assign_add(self.impulse)
        if self.spiketrain is not None:
            fired = tf.cast(tf.not_equal(step.spikes, 0), self._floatx)
            self.spiketrain.assign(fired * self.time)
        return step.spikes

    def synops(self, spikes):
        """Synaptic operations of one step's spikes, per sample: each spike
        times the synapses it reaches (zero without :attr:`fan_out`)."""
        if self.fan_out is None:
            return tf.zeros(tf.shape(spikes)[:1], spikes.dtype)
        # one pass: (B, N) spikes times the (N,) fan-out
        return tf.linalg.matvec(tf.reshape(spikes, [tf.shape(spikes)[0], -1]),
                                self.fan_out)

    # -- the pure interface used by the compiled loop of target_sim --------

    def read_state(self):
        """The layer's variables as a :class:`LayerState`."""
        return LayerState(
            NeuronState(self.mem.read_value(), self.theta.read_value()),
            self.input_sum.read_value() if self.input_sum is not None else (),
            self.mem_input.read_value() if self.stateful_impulse else ())

    def write_state(self, state):
        """Store a :class:`LayerState` in the layer's variables."""
        self.mem.assign(state.neuron.mem)
        self.theta.assign(state.neuron.theta)
        if self.input_sum is not None:
            self.input_sum.assign(state.input_sum)
        if self.stateful_impulse:
            self.mem_input.assign(state.gate)

    def impulse_of(self, x, state, nonzero=None):
        """``(I_t, state)`` for input ``x``: pure, the same ops as SNN-TB's
        layer (or the event-driven op, :meth:`synaptic_impulse`; ``nonzero``:
        the number of nonzero inputs when the caller knows it). Only spiking
        max pooling changes the state here."""
        return self.synaptic_impulse(x, nonzero), state

    #: how the input impulse is computed: ``dense`` (the Keras layer's op),
    #: ``sparse`` (the event-driven op, :func:`snntb_adaptive.kernel.
    #: sparse_conv`, where :meth:`sparse_impulse` can) or ``auto`` (sparse
    #: in a step where fewer than ``kernel.SPARSE_CROSSOVER`` of the inputs
    #: are nonzero); set by the simulator
    synapses = 'dense'

    def sparse_ready(self, x):
        """Whether :meth:`sparse_impulse` can compute this layer's impulse
        for input ``x`` (its shape and the layer's configuration)."""
        return False

    def sparse_impulse(self, x):
        """``I_t`` by the event-driven op (where :meth:`sparse_ready`)."""
        raise NotImplementedError(type(self).__name__)

    def synaptic_impulse(self, x, nonzero=None):
        """``I_t`` for input ``x`` as :attr:`synapses` says. ``nonzero``:
        the number of nonzero values of ``x`` (or an upper bound), for
        ``auto``; counted here when not given."""
        def dense():
            return self.base_layer.call(self, x)
        if self.synapses == 'dense' or not self.sparse_ready(x):
            return dense()
        if self.synapses == 'sparse':
            return self.sparse_impulse(x)
        from snntb_adaptive.kernel import SPARSE_CROSSOVER
        if nonzero is None:
            nonzero = tf.math.count_nonzero(x, dtype=tf.float32)
        size = tf.cast(tf.size(x), tf.float32)
        return tf.cond(nonzero < SPARSE_CROSSOVER * size,
                       lambda: self.sparse_impulse(x), dense)

    def takes_low_precision(self):
        """Whether this layer can take bfloat16 weights (``precision =
        bfloat16``): Conv2D, and Dense on rank-2 input."""
        return False

    def low_precision_impulse(self, x, kernel):
        """``I_t`` with weights and input in bfloat16 (``kernel`` is the
        layer's kernel cast once per batch): the convolution or product in
        bfloat16 (accumulated in float32 by oneDNN, rounded to bfloat16),
        the bias added in float32. The spikes ``x`` (0 or ``V_max``) are
        exact in bfloat16 when ``V_max`` is."""
        raise NotImplementedError(type(self).__name__)

    def pure_step(self, impulse, state, z=None):
        """One step from a :class:`LayerState`: returns ``(spikes, count,
        new_state)``, ``count`` the spikes per sample. ``z``: the impulse's
        maximum, when known in advance."""
        step = self.step_fn(self.neuron_params, state.neuron, impulse, z)
        new = state._replace(neuron=step.state)
        if self.input_sum is not None:
            new = new._replace(input_sum=state.input_sum + impulse)
        return step.spikes, step.count, new

    @tf.function
    def reset_spikevars(self, sample_idx):
        """Reset at SNN-TB's reset points (each batch, or as
        ``reset_between_nth_sample`` says): ``mem = mem_init * V_max`` (0 by
        default), ``theta = V_init``."""
        mod = self.config.getint('simulation', 'reset_between_nth_sample')
        mod = mod if mod else sample_idx + 1
        if sample_idx % mod == 0:
            self.mem.assign(initial_mem(self.neuron_params,
                                        tf.shape(self.mem), self._floatx))
            self.time.assign(self.dt)
            self.theta.assign(tf.fill(tf.shape(self.theta), tf.cast(
                self.neuron_params.v_init, self._floatx)))
            if self.input_sum is not None:
                self.input_sum.assign(tf.zeros_like(self.input_sum))
        self.step_count.assign(tf.zeros_like(self.step_count))
        self.step_synops.assign(tf.zeros_like(self.step_synops))
        if self.spiketrain is not None:
            self.spiketrain.assign(tf.zeros_like(self.spiketrain))
        if self.mem_input is not None:
            self.mem_input.assign(tf.zeros_like(self.mem_input))


K = tf.keras.layers


def _pads(size_in, size_out, kernel, stride, dilation, padding):
    """Padding before the first input (TensorFlow's rule) along one axis."""
    if padding == 'valid':
        return 0
    if padding == 'causal':
        return (kernel - 1) * dilation
    total = max((size_out - 1) * stride + (kernel - 1) * dilation + 1 -
                size_in, 0)
    return total // 2


def _conv2d_sparse(layer, x, kernel, depthwise=False):
    """The event-driven op for a channels-last 2-D window layer."""
    from snntb_adaptive.kernel import sparse_conv
    h, w = int(x.shape[1]), int(x.shape[2])
    oh, ow = (int(d) for d in layer.compute_output_shape(x.shape)[1:3])
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    sh, sw = layer.strides
    dh, dw = getattr(layer, 'dilation_rate', (1, 1))
    pads = (_pads(h, oh, kh, sh, dh, layer.padding),
            _pads(w, ow, kw, sw, dw, layer.padding))
    return sparse_conv(x, kernel, (sh, sw), (dh, dw), pads, (oh, ow),
                       depthwise)


class SparseSynapsesMixin:
    """The step-by-step path (SNN-TB's ``call``) with
    :meth:`~AdaptiveThresholdMixin.synaptic_impulse`, for the layer types
    whose impulse the event-driven op can compute."""

    @tmr.spike_call
    def call(self, x, mask=None):
        return self.synaptic_impulse(x)


class SpikeDense(AdaptiveThresholdMixin, SparseSynapsesMixin,
                 tmr.SpikeDense):
    """Dense layer with adaptive-threshold IF neurons."""
    base_layer = K.Dense

    def sparse_ready(self, x):
        return len(x.shape) == 2

    def sparse_impulse(self, x):
        from snntb_adaptive.kernel import sparse_conv
        ci, co = int(self.kernel.shape[0]), int(self.kernel.shape[1])
        out = sparse_conv(tf.reshape(x, [-1, 1, 1, ci]),
                          tf.reshape(self.kernel, [1, 1, ci, co]), (1, 1),
                          (1, 1), (0, 0), (1, 1))
        out = tf.reshape(out, [-1, co])
        return tf.nn.bias_add(out, self.bias) if self.use_bias else out

    def takes_low_precision(self):
        return len(self.input_shape) == 2

    def low_precision_impulse(self, x, kernel):
        out = tf.cast(tf.matmul(tf.cast(x, tf.bfloat16), kernel), tf.float32)
        if self.use_bias:
            out = tf.nn.bias_add(out, self.bias)
        return out


class SpikeConv1D(AdaptiveThresholdMixin, SparseSynapsesMixin,
                  tmr.SpikeConv1D):
    """1D convolution with adaptive-threshold IF neurons."""
    base_layer = K.Conv1D

    def sparse_ready(self, x):
        return self.data_format == 'channels_last' and self.groups == 1

    def sparse_impulse(self, x):
        from snntb_adaptive.kernel import sparse_conv
        length = int(x.shape[1])
        out_len = int(self.compute_output_shape(x.shape)[1])
        k = int(self.kernel.shape[0])
        pad = _pads(length, out_len, k, self.strides[0],
                    self.dilation_rate[0], self.padding)
        out = sparse_conv(x[:, None], self.kernel[None], (1, self.strides[0]),
                          (1, self.dilation_rate[0]), (0, pad), (1, out_len))
        out = out[:, 0]
        return tf.nn.bias_add(out, self.bias) if self.use_bias else out


class SpikeConv2D(AdaptiveThresholdMixin, SparseSynapsesMixin,
                  tmr.SpikeConv2D):
    """2D convolution with adaptive-threshold IF neurons."""
    base_layer = K.Conv2D

    def sparse_ready(self, x):
        return self.data_format == 'channels_last' and self.groups == 1

    def sparse_impulse(self, x):
        out = _conv2d_sparse(self, x, self.kernel)
        return tf.nn.bias_add(out, self.bias) if self.use_bias else out

    def takes_low_precision(self):
        return True

    def low_precision_impulse(self, x, kernel):
        out = tf.cast(self.convolution_op(tf.cast(x, tf.bfloat16), kernel),
                      tf.float32)
        if self.use_bias:
            out = tf.nn.bias_add(out, self.bias,
                                 data_format=self._tf_data_format)
        return out


class SpikeDepthwiseConv2D(AdaptiveThresholdMixin, SparseSynapsesMixin,
                           tmr.SpikeDepthwiseConv2D):
    """Depthwise 2D convolution with adaptive-threshold IF neurons."""
    base_layer = K.DepthwiseConv2D

    def sparse_ready(self, x):
        return self.data_format == 'channels_last' and \
            self.depth_multiplier == 1

    def sparse_impulse(self, x):
        out = _conv2d_sparse(self, x, self.depthwise_kernel, depthwise=True)
        return tf.nn.bias_add(out, self.bias) if self.use_bias else out


class SpikeConv2DTranspose(AdaptiveThresholdMixin, tmr.SpikeConv2DTranspose):
    """Transposed 2D convolution with adaptive-threshold IF neurons."""
    base_layer = K.Conv2DTranspose


class SpikeUpSampling2D(AdaptiveThresholdMixin, tmr.SpikeUpSampling2D):
    """2D up-sampling with adaptive-threshold IF neurons."""
    base_layer = K.UpSampling2D


class SpikeAveragePooling2D(AdaptiveThresholdMixin, SparseSynapsesMixin,
                            tmr.SpikeAveragePooling2D):
    """Average pooling with adaptive-threshold IF neurons."""
    base_layer = K.AveragePooling2D

    def sparse_ready(self, x):
        # 'same' padding averages over fewer inputs at the border
        return self.data_format == 'channels_last' and \
            self.padding == 'valid'

    def sparse_impulse(self, x):
        ph, pw = self.pool_size
        window = tf.fill([ph, pw, int(x.shape[-1]), 1],
                         tf.constant(1.0 / (ph * pw), tf.float32))
        return _conv2d_sparse(self, x, window, depthwise=True)


class SpikeMaxPooling2D(AdaptiveThresholdMixin, tmr.SpikeMaxPooling2D):
    """SNN-TB's spiking max pooling (max-gated input) with adaptive-threshold
    IF neurons."""
    base_layer = K.MaxPooling2D
    stateful_impulse = True

    def impulse_of(self, x, state, nonzero=None):
        """SNN-TB's gating, as a pure function: the input is accumulated in
        ``state.gate`` (SNN-TB's ``mem_input``), and only the inputs at
        the positions of the largest accumulated input per window pass."""
        from tensorflow.python.keras.utils import conv_utils
        mem_input = state.gate + x
        _, idx = tf.nn.max_pool_with_argmax(
            mem_input, self.pool_size, self.strides, self.padding.upper(),
            conv_utils.convert_data_format(self.data_format, 4),
            include_batch_in_index=True)
        mask = tf.scatter_nd(tf.reshape(idx, (-1, 1)), tf.ones(tf.size(idx)),
                             [tf.reduce_prod(x.shape)])
        return (K.MaxPooling2D.call(self, x * tf.reshape(mask, x.shape)),
                state._replace(gate=mem_input))


class LinearAveragePooling2D(K.AveragePooling2D):
    """Average pooling without neurons (``[adaptive_threshold] avg_pooling =
    linear``): a linear synapse. Each step, the average of the incoming
    spikes in a window goes straight into the next layer's integration; no
    threshold, no membrane, no reset. Has SNN-TB's interface of a layer
    without neurons (like its ``SpikeFlatten``)."""

    def __init__(self, **kwargs):
        kwargs.pop('config', None)
        super().__init__(**kwargs)

    @staticmethod
    def get_time():
        pass

    @staticmethod
    def reset(sample_idx):
        """Nothing to reset: the layer has no state."""

    @property
    def class_name(self):
        return self.__class__.__name__


# Layers without neurons are SNN-TB's own (and linear average pooling).
SpikeFlatten = tmr.SpikeFlatten
SpikeReshape = tmr.SpikeReshape
SpikeZeroPadding2D = tmr.SpikeZeroPadding2D
SpikeConcatenate = tmr.SpikeConcatenate

#: layer type -> adaptive class, one per :data:`network.SPIKING_TYPES`
SPIKING_CLASSES = {t: globals()['Spike' + t] for t in network.SPIKING_TYPES}

custom_layers = dict(tmr.custom_layers)
custom_layers.update({cls.__name__: cls for cls in SPIKING_CLASSES.values()})
custom_layers[LinearAveragePooling2D.__name__] = LinearAveragePooling2D


def layer_class(layer_type, spiking):
    """The class that simulates a parsed layer of SNN-TB's type
    ``layer_type``: the adaptive twin when the layer has neurons
    (``spiking``), else the layer without neurons."""
    if spiking:
        return SPIKING_CLASSES[layer_type]
    if layer_type in network.LINEAR_TYPES:
        return LinearAveragePooling2D
    return globals()['Spike' + layer_type]
