"""Keras spiking layers with the adaptive threshold (SPEC Phase 2).

Served to SNN-TB as ``snntoolbox.simulation.backends.inisim.adaptive_threshold``
(see :mod:`snntb_adaptive.registration`). Every layer type that SNN-TB's
``temporal_mean_rate`` INI backend turns into spiking neurons gets an adaptive
twin: the SNN-TB class computes the input impulse ``I_t`` exactly as before
(convolution, dense, pooling, the max-gating of spiking max-pooling, ...), and
:class:`AdaptiveThresholdMixin` replaces what happens next with
:func:`snntb_adaptive.dynamics.layer_step`.

State per layer (``tf.Variable``): ``mem`` (membrane, from SNN-TB), ``theta``
(``(B,)`` for ``scope = sample``, scalar for ``scope = batch``),
``step_count`` (spikes per sample in the last step) and, for the output layer,
``input_sum`` (cumulative ``I_t``, for ``readout = membrane``).

Before a layer is called, :mod:`snntb_adaptive.target_sim` sets
``layer.threshold_params`` to a :class:`ThresholdParams`.
"""

from dataclasses import dataclass

from snntb_adaptive.registration import ensure_legacy_keras

ensure_legacy_keras()

import tensorflow as tf  # noqa: E402
from snntoolbox.simulation.backends.inisim import \
    temporal_mean_rate_tensorflow as tmr  # noqa: E402

from snntb_adaptive.dynamics import layer_step  # noqa: E402
from snntb_adaptive.kernel import tf_step  # noqa: E402


@dataclass(frozen=True)
class ThresholdParams:
    """What one spiking layer needs to know of the adaptive threshold."""

    update: str
    scope: str
    v_init: float
    v_max: float
    record_input: bool = False


class AdaptiveThresholdMixin:
    """Replaces SNN-TB's firing rule by the adaptive threshold. Put it first
    among the bases, before the SNN-TB spiking class."""

    threshold_params = None
    theta = step_count = input_sum = None

    def init_neurons(self, input_shape):
        super().init_neurons(input_shape)
        p = self.threshold_params
        if p is None:
            raise RuntimeError(
                "{}: threshold_params must be set before the layer is built "
                "(the adaptive-threshold target simulator does this)."
                "".format(self.name))
        output_shape = self.compute_output_shape(input_shape)
        batch = int(output_shape[0])
        if self.theta is None:
            shape = [batch] if p.scope == 'sample' else []
            self.theta = tf.Variable(tf.fill(shape, tf.cast(p.v_init,
                                                            self._floatx)),
                                     name='theta', trainable=False)
        if self.step_count is None:
            self.step_count = tf.Variable(tf.zeros([batch], self._floatx),
                                          name='step_count', trainable=False)
        if p.record_input and self.input_sum is None:
            self.input_sum = tf.Variable(tf.zeros(output_shape, self._floatx),
                                         name='input_sum', trainable=False)

    def update_neurons(self):
        p = self.threshold_params
        spikes, new_mem, theta, fired = layer_step(
            self.mem, self.theta, self.impulse, p.v_init, p.v_max, p.update,
            p.scope)
        self.mem.assign(new_mem)
        if p.update != 'none':
            self.theta.assign(theta)
        self.step_count.assign(tf.reduce_sum(
            tf.reshape(fired, (tf.shape(fired)[0], -1)), axis=1))
        if self.input_sum is not None:
            self.input_sum.assign_add(self.impulse)
        if self.spiketrain is not None:
            self.spiketrain.assign(fired * self.time)
        return spikes

    # -- the pure interface used by the compiled loop of target_sim --------

    #: Keras class whose ``call`` computes the input impulse (set per class)
    base_layer = None
    #: True where the impulse depends on state (spiking max pooling)
    stateful_impulse = False

    def read_state(self):
        """The layer's state as a tuple of tensors (mem, theta, extra...)."""
        state = [self.mem.read_value(), self.theta.read_value()]
        if self.input_sum is not None:
            state.append(self.input_sum.read_value())
        if self.stateful_impulse:
            state.append(self.mem_input.read_value())
        return tuple(state)

    def write_state(self, state):
        self.mem.assign(state[0])
        self.theta.assign(state[1])
        i = 2
        if self.input_sum is not None:
            self.input_sum.assign(state[i])
            i += 1
        if self.stateful_impulse:
            self.mem_input.assign(state[i])

    def impulse_of(self, x, state):
        """``(I_t, state)`` for input ``x``: pure, the same ops as SNN-TB's
        layer. Only spiking max pooling changes the state here."""
        return self.base_layer.call(self, x), state

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

    #: ``(mem, theta, impulse, v_init, v_max, update, scope, z) -> (spikes,
    #: new_mem, new_theta, count)``: :func:`snntb_adaptive.kernel.tf_step`
    #: or the fused :func:`snntb_adaptive.kernel.if_step` (the target
    #: simulator chooses)
    step_fn = staticmethod(tf_step)

    def pure_step(self, impulse, state, z=None):
        """One step from ``state``: returns ``(spikes, count, new_state)``,
        ``count`` the spikes per sample. ``z``: the impulse's maximum, when
        known in advance."""
        p = self.threshold_params
        spikes, mem, theta, count = self.step_fn(
            state[0], state[1], impulse, p.v_init, p.v_max, p.update, p.scope,
            z)
        new = [mem, theta] + list(state[2:])
        if self.input_sum is not None:
            new[2] = state[2] + impulse
        return spikes, count, tuple(new)

    @tf.function
    def reset_spikevars(self, sample_idx):
        """Reset at SNN-TB's reset points (each batch, or as
        ``reset_between_nth_sample`` says): ``mem = 0``, ``theta = V_init``."""
        mod = self.config.getint('simulation', 'reset_between_nth_sample')
        mod = mod if mod else sample_idx + 1
        if sample_idx % mod == 0:
            self.mem.assign(tf.zeros_like(self.mem))
            self.time.assign(self.dt)
            self.theta.assign(tf.fill(tf.shape(self.theta), tf.cast(
                self.threshold_params.v_init, self._floatx)))
            if self.input_sum is not None:
                self.input_sum.assign(tf.zeros_like(self.input_sum))
        self.step_count.assign(tf.zeros_like(self.step_count))
        if self.spiketrain is not None:
            self.spiketrain.assign(tf.zeros_like(self.spiketrain))
        if self.mem_input is not None:
            self.mem_input.assign(tf.zeros_like(self.mem_input))


K = tf.keras.layers


class SpikeDense(AdaptiveThresholdMixin, tmr.SpikeDense):
    """Dense layer with adaptive-threshold IF neurons."""
    base_layer = K.Dense

    def takes_low_precision(self):
        return len(self.input_shape) == 2

    def low_precision_impulse(self, x, kernel):
        out = tf.cast(tf.matmul(tf.cast(x, tf.bfloat16), kernel), tf.float32)
        if self.use_bias:
            out = tf.nn.bias_add(out, self.bias)
        return out


class SpikeConv1D(AdaptiveThresholdMixin, tmr.SpikeConv1D):
    """1D convolution with adaptive-threshold IF neurons."""
    base_layer = K.Conv1D


class SpikeConv2D(AdaptiveThresholdMixin, tmr.SpikeConv2D):
    """2D convolution with adaptive-threshold IF neurons."""
    base_layer = K.Conv2D

    def takes_low_precision(self):
        return True

    def low_precision_impulse(self, x, kernel):
        out = tf.cast(self.convolution_op(tf.cast(x, tf.bfloat16), kernel),
                      tf.float32)
        if self.use_bias:
            out = tf.nn.bias_add(out, self.bias,
                                 data_format=self._tf_data_format)
        return out


class SpikeDepthwiseConv2D(AdaptiveThresholdMixin, tmr.SpikeDepthwiseConv2D):
    """Depthwise 2D convolution with adaptive-threshold IF neurons."""
    base_layer = K.DepthwiseConv2D


class SpikeConv2DTranspose(AdaptiveThresholdMixin, tmr.SpikeConv2DTranspose):
    """Transposed 2D convolution with adaptive-threshold IF neurons."""
    base_layer = K.Conv2DTranspose


class SpikeUpSampling2D(AdaptiveThresholdMixin, tmr.SpikeUpSampling2D):
    """2D up-sampling with adaptive-threshold IF neurons."""
    base_layer = K.UpSampling2D


class SpikeAveragePooling2D(AdaptiveThresholdMixin,
                            tmr.SpikeAveragePooling2D):
    """Average pooling with adaptive-threshold IF neurons."""
    base_layer = K.AveragePooling2D


class SpikeMaxPooling2D(AdaptiveThresholdMixin, tmr.SpikeMaxPooling2D):
    """SNN-TB's spiking max pooling (max-gated input) with adaptive-threshold
    IF neurons."""
    base_layer = K.MaxPooling2D
    stateful_impulse = True

    def impulse_of(self, x, state):
        """SNN-TB's gating, as a pure function: the input is accumulated in
        ``mem_input`` (the last entry of ``state``), and only the inputs at
        the positions of the largest accumulated input per window pass."""
        from tensorflow.python.keras.utils import conv_utils
        mem_input = state[-1] + x
        _, idx = tf.nn.max_pool_with_argmax(
            mem_input, self.pool_size, self.strides, self.padding.upper(),
            conv_utils.convert_data_format(self.data_format, 4),
            include_batch_in_index=True)
        mask = tf.scatter_nd(tf.reshape(idx, (-1, 1)), tf.ones(tf.size(idx)),
                             [tf.reduce_prod(x.shape)])
        return (K.MaxPooling2D.call(self, x * tf.reshape(mask, x.shape)),
                tuple(state[:-1]) + (mem_input,))


# Layers without neurons are SNN-TB's own.
SpikeFlatten = tmr.SpikeFlatten
SpikeReshape = tmr.SpikeReshape
SpikeZeroPadding2D = tmr.SpikeZeroPadding2D
SpikeConcatenate = tmr.SpikeConcatenate

SPIKING_CLASSES = {cls.__name__: cls for cls in (
    SpikeDense, SpikeConv1D, SpikeConv2D, SpikeDepthwiseConv2D,
    SpikeConv2DTranspose, SpikeUpSampling2D, SpikeAveragePooling2D,
    SpikeMaxPooling2D)}

custom_layers = dict(tmr.custom_layers)
custom_layers.update(SPIKING_CLASSES)
