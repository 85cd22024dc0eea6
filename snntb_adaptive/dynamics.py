"""The adaptive threshold itself: small pure functions of tensors.

Read this module next to ``SPEC.md`` (Phase 2). Every spiking layer of the
plugin calls :func:`layer_step` once per time step; nothing here holds state,
touches Keras or reads the configuration, so each function can be tested on
its own.

Shapes: ``impulse`` and ``mem`` have the layer's shape with the batch first,
``(B, ...)``. ``theta`` is ``(B,)`` for ``scope = sample`` (one threshold per
sample) and a scalar for ``scope = batch`` (one per layer).
"""

import tensorflow as tf

UPDATES = ('clamp', 'window', 'none')
SCOPES = ('sample', 'batch')


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


def update_threshold(theta, z, v_init, v_max, update):
    """One step of the threshold update, before the firing decision.

    clamp  : ``theta = min(max(theta, z), V_max)`` (never decreases)
    window : ``theta = z`` where ``V_init < z < V_max``, else unchanged
    none   : ``theta`` unchanged
    """
    if update == 'clamp':
        return tf.minimum(tf.maximum(theta, z), v_max)
    if update == 'window':
        inside = tf.logical_and(tf.greater(z, v_init), tf.less(z, v_max))
        return tf.where(inside, z, theta)
    if update == 'none':
        return theta
    raise ValueError("update must be one of {}, not {!r}".format(UPDATES,
                                                                 update))


def broadcast_theta(theta, rank):
    """Reshape a per-sample threshold ``(B,)`` to broadcast against a tensor
    of the given rank; a scalar threshold is returned unchanged."""
    if theta.shape.rank == 0:
        return theta
    return tf.reshape(theta, [-1] + [1] * (rank - 1))


def fire(mem, impulse, theta, v_max):
    """Integrate, fire and reset by subtraction.

    Returns ``(spikes, new_mem, fired)``: ``v = mem + impulse``; a neuron
    fires where ``v >= theta`` (``fired`` is 1 there, else 0); a spike has
    amplitude ``V_max`` and subtracts ``V_max`` from the membrane. The
    operations are those of SNN-TB's ``temporal_mean_rate`` layer, so
    ``theta = V_max`` reproduces it bit for bit.
    """
    v = mem + impulse
    theta_b = broadcast_theta(theta, v.shape.rank)
    fired = tf.cast(tf.greater_equal(v, theta_b), v.dtype)
    spikes = fired if v_max == 1 else fired * v_max
    return spikes, v - spikes, fired


def layer_step(mem, theta, impulse, v_init, v_max, update, scope, z=None):
    """One time step of one spiking layer (SPEC Phase 2).

    ``z`` may be given when it is known (a constant impulse has a constant
    maximum); otherwise it is computed from ``impulse``. Returns
    ``(spikes, new_mem, new_theta, fired)``.
    """
    if update != 'none':
        if z is None:
            z = input_max(impulse, scope)
        theta = update_threshold(theta, z, v_init, v_max, update)
    spikes, new_mem, fired = fire(mem, impulse, theta, v_max)
    return spikes, new_mem, theta, fired
