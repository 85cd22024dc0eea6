"""The adaptive threshold itself: typed neuron state and small pure functions
of tensors.

Read this module next to ``docs/spec.md`` (Phase 2). Every spiking layer of
the plugin calls :func:`neuron_step` (or the fused op of
:mod:`snntb_adaptive.kernel`, which computes the same thing bit for bit)
once per time step. Nothing here holds state, touches Keras or reads the
configuration, so each function can be tested alone.

Types:

* :class:`NeuronParams` - what one spiking layer knows of the threshold:
  its update rule, scope, ``V_init`` and ``V_max`` (and the initial
  membrane potential, as a fraction of ``V_max``);
* :class:`NeuronState` - ``mem`` (the membrane, the layer's shape with the
  batch first, ``(B, ...)``) and ``theta`` (``(B,)`` for ``scope = sample``,
  a scalar for ``scope = batch``: :func:`initial_theta` makes it);
* :class:`Step` - what a step returns: the spikes, the new state and the
  number of spikes per sample.

Update rules live in one table, :data:`RULES`. A new rule is one function
registered with :func:`rule`; the configuration accepts its name at once
(``[adaptive_threshold] update = <name>``) and it runs on TensorFlow ops (the
fused op runs only the rules it declares, :data:`kernel.FUSED_RULES`)::

    @rule('halfway')
    def halfway(theta, z, v_init, v_max):
        return theta + (tf.minimum(tf.maximum(theta, z), v_max) - theta) / 2
"""

from typing import Callable, NamedTuple

import tensorflow as tf

SCOPES = ('sample', 'batch')


class NeuronParams(NamedTuple):
    """Constants of one spiking layer's neurons."""

    update: str      #: a name in :data:`RULES`
    scope: str       #: ``'sample'`` (one theta per sample) or ``'batch'``
    v_init: float    #: initial threshold, ``eta * V_max`` (SPEC Phase 1)
    v_max: float     #: ``[cell] v_thresh``: spike amplitude and reset
    #: initial membrane potential at a reset, as a fraction of ``v_max``
    #: (``[adaptive_threshold] mem_init``; 0 as in SNN-TB): one number, or
    #: one per channel (last axis; the calibration's potential correction)
    mem_init: object = 0.0
    #: spikes a neuron may emit in one step (``[adaptive_threshold]
    #: max_spikes_per_step``; 1: the IF neuron of SNN-TB and the paper)
    max_spikes: int = 1


class NeuronState(NamedTuple):
    """State of one spiking layer's neurons between two steps."""

    mem: tf.Tensor    #: membrane potential ``(B, ...)``
    theta: tf.Tensor  #: threshold, ``(B,)`` or scalar (see the scope)


class Step(NamedTuple):
    """Result of one step."""

    spikes: tf.Tensor       #: ``V_max`` per spike where a neuron fired, else 0
    state: NeuronState      #: the state after the step
    count: tf.Tensor        #: spikes per sample ``(B,)``, float


class Rule(NamedTuple):
    """An update rule: ``fn(theta, z, v_init, v_max) -> theta``, applied
    before the firing decision. ``uses_input_max = False``: ``z`` is not
    computed (it is passed as None)."""

    name: str
    fn: Callable
    uses_input_max: bool = True


#: rule name -> :class:`Rule`, in the order they were registered
RULES = {}


def rule(name, uses_input_max=True):
    """Decorator: register ``fn(theta, z, v_init, v_max)`` as update rule
    ``name``."""
    def register(fn):
        RULES[name] = Rule(name, fn, uses_input_max)
        return fn
    return register


@rule('clamp')
def clamp(theta, z, v_init, v_max):
    """The paper's rule: ``theta = min(max(theta, z), V_max)``; never
    decreases."""
    return tf.minimum(tf.maximum(theta, z), v_max)


@rule('window')
def window(theta, z, v_init, v_max):
    """``theta = z`` where ``V_init < z < V_max``, else unchanged."""
    inside = tf.logical_and(tf.greater(z, v_init), tf.less(z, v_max))
    return tf.where(inside, z, theta)


@rule('none', uses_input_max=False)
def none(theta, z, v_init, v_max):
    """``theta`` unchanged (the constant threshold the authors' code ran)."""
    return theta


def get_rule(name):
    """The :class:`Rule` called ``name``; ``ValueError`` names the rules."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError("update must be one of {}, not {!r}".format(
            tuple(RULES), name)) from None


def input_max(impulse, scope):
    """``z_t``: the largest input impulse, bias included.

    ``scope = 'sample'`` reduces over all non-batch axes (shape ``(B,)``);
    ``scope = 'batch'`` over the whole tensor (a scalar).
    """
    if scope == 'sample':
        return tf.reduce_max(impulse, axis=list(range(1, impulse.shape.rank)))
    if scope == 'batch':
        return tf.reduce_max(impulse)
    raise ValueError("scope must be one of {}, not {!r}".format(SCOPES, scope))


def update_threshold(theta, z, params):
    """One step of the threshold update, before the firing decision, by the
    rule ``params.update``."""
    return get_rule(params.update).fn(theta, z, params.v_init, params.v_max)


def initial_theta(params, batch, dtype=tf.float32):
    """``theta`` at a reset: ``V_init``, shaped ``(batch,)`` or scalar."""
    shape = [batch] if params.scope == 'sample' else []
    return tf.fill(shape, tf.cast(params.v_init, dtype))


def initial_mem(params, shape, dtype=tf.float32):
    """The membrane potential at a reset: ``mem_init * V_max`` everywhere,
    or per channel when ``mem_init`` has one value per channel (zero unless
    ``mem_init`` is set)."""
    value = tf.cast(tf.constant(params.mem_init, tf.float32) * params.v_max,
                    dtype)
    return tf.broadcast_to(value, shape)


def has_initial_mem(params):
    """Whether the membrane starts anywhere but at zero."""
    import numpy as np
    return bool(np.any(params.mem_init))


def broadcast_theta(theta, rank):
    """Reshape a per-sample threshold ``(B,)`` to broadcast against a tensor
    of the given rank; a scalar threshold is returned unchanged."""
    if theta.shape.rank == 0:
        return theta
    return tf.reshape(theta, [-1] + [1] * (rank - 1))


def fire(mem, impulse, theta, v_max, max_spikes=1):
    """Integrate, fire and reset by subtraction.

    Returns ``(spikes, new_mem, fired)``: ``v = mem + impulse``; a neuron
    fires where ``v >= theta`` (``fired`` is 1 there, else 0); a spike has
    amplitude ``V_max`` and subtracts ``V_max`` from the membrane. The
    operations are those of SNN-TB's ``temporal_mean_rate`` layer, so
    ``theta = V_max`` reproduces it bit for bit.

    With ``max_spikes = m > 1`` (burst spikes) a neuron that reaches the
    threshold emits ``n = min(m, 1 + floor((v - theta) / V_max))`` spikes
    at once (``fired`` is ``n``): the first at ``theta``, each further one
    for every further ``V_max``; ``spikes = n * V_max`` is subtracted.
    """
    v = mem + impulse
    theta_b = broadcast_theta(theta, v.shape.rank)
    fired = tf.cast(tf.greater_equal(v, theta_b), v.dtype)
    if max_spikes > 1:
        extra = tf.floor((v - theta_b) / v_max)
        fired = fired * tf.minimum(tf.cast(max_spikes, v.dtype), 1 + extra)
    spikes = fired if v_max == 1 else fired * v_max
    return spikes, v - spikes, fired


def neuron_step(params, state, impulse, z=None):
    """One time step of one spiking layer (SPEC Phase 2): update theta from
    the input impulse, then integrate, fire and reset.

    ``z`` may be given when it is known (a constant impulse has a constant
    maximum); otherwise the rule computes it from ``impulse``. Returns a
    :class:`Step`.
    """
    r = get_rule(params.update)
    if r.uses_input_max and z is None:
        z = input_max(impulse, params.scope)
    theta = r.fn(state.theta, z, params.v_init, params.v_max)
    spikes, mem, fired = fire(state.mem, impulse, theta, params.v_max,
                              params.max_spikes)
    count = tf.reduce_sum(fired, axis=list(range(1, fired.shape.rank)))
    return Step(spikes, NeuronState(mem, theta), count)
