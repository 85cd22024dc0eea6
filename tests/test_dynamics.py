"""The pure threshold functions of snntb_adaptive.dynamics, alone."""

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from snntb_adaptive import dynamics  # noqa: E402

V_INIT, V_MAX = 0.7, 1.0


def _params(update, scope='batch'):
    return dynamics.NeuronParams(update, scope, V_INIT, V_MAX)


def _trace(update, zs, theta0=V_INIT):
    theta = tf.constant(theta0, tf.float32)
    out = []
    for z in zs:
        theta = dynamics.update_threshold(theta, tf.constant(z, tf.float32),
                                          _params(update))
        out.append(float(theta))
    return np.array(out)


@pytest.fixture
def zs():
    rng = np.random.default_rng(3)
    return rng.uniform(-0.5, 1.6, 500).astype(np.float32)


def test_clamp_never_lowers_and_stays_in_range(zs):
    tr = _trace('clamp', zs)
    assert np.all(np.diff(tr) >= 0)
    assert tr.min() >= np.float32(V_INIT) and tr.max() <= V_MAX
    assert tr[-1] == V_MAX  # some z exceeded V_max: capped
    # Below V_max it follows the running max of z exactly.
    running = np.maximum.accumulate(np.concatenate([[V_INIT], zs]))[1:]
    np.testing.assert_allclose(tr, np.minimum(running, V_MAX), rtol=0,
                               atol=1e-7)


def test_window_can_lower_and_ignores_outside(zs):
    tr = _trace('window', zs)
    assert np.any(np.diff(tr) < 0)
    inside = (zs > V_INIT) & (zs < V_MAX)
    np.testing.assert_array_equal(tr[inside], zs[inside])
    # Outside the window, theta keeps the previous value.
    prev = np.concatenate([[np.float32(V_INIT)], tr[:-1]])
    np.testing.assert_array_equal(tr[~inside], prev[~inside])


def test_none_keeps_v_init(zs):
    tr = _trace('none', zs)
    assert np.all(tr == np.float32(V_INIT))


def test_input_max_scopes():
    imp = tf.constant(np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
                      - 5)
    np.testing.assert_array_equal(dynamics.input_max(imp, 'sample'),
                                  [6, 18])
    assert float(dynamics.input_max(imp, 'batch')) == 18
    with pytest.raises(ValueError, match='scope'):
        dynamics.input_max(imp, 'layer')
    with pytest.raises(ValueError, match='update'):
        dynamics.update_threshold(0., 0., _params('grow'))


def test_fire_resets_by_subtracting_v_max():
    mem = tf.constant([[0.5, 0.1], [0.0, 0.9]])
    imp = tf.constant([[0.3, 0.1], [1.2, -0.2]])
    theta = tf.constant([0.8, 0.6])          # per sample
    spikes, new_mem, fired = dynamics.fire(mem, imp, theta, 2.0)
    np.testing.assert_allclose(spikes, [[2.0, 0], [2.0, 2.0]])
    np.testing.assert_array_equal(fired, [[1, 0], [1, 1]])
    np.testing.assert_allclose(new_mem, [[-1.2, 0.2], [-0.8, -1.3]],
                               atol=1e-6)


def test_update_before_firing_in_same_step():
    """SPEC: the threshold update happens before the firing decision."""
    mem = tf.zeros([1, 3])
    imp = tf.constant([[0.75, 0.8, 0.2]])
    step = dynamics.neuron_step(
        _params('clamp', 'sample'),
        dynamics.NeuronState(mem, tf.constant([0.7])), imp)
    assert float(step.state.theta[0]) == pytest.approx(0.8)
    # 0.75 would fire at 0.7 but not at the raised threshold 0.8.
    np.testing.assert_array_equal(step.spikes, [[0, 1.0, 0]])
    np.testing.assert_array_equal(step.count, [1])


def test_initial_theta_shape_follows_scope():
    p = _params('clamp', 'sample')
    np.testing.assert_array_equal(dynamics.initial_theta(p, 3),
                                  np.float32([V_INIT] * 3))
    assert dynamics.initial_theta(p._replace(scope='batch'), 3).shape == ()


def test_a_new_rule_is_one_registered_function():
    """A rule added to the table runs in neuron_step (and the config accepts
    it, see test_config); the table is restored afterwards."""
    @dynamics.rule('halfway')
    def halfway(theta, z, v_init, v_max):
        return theta + (tf.minimum(tf.maximum(theta, z), v_max) - theta) / 2
    try:
        step = dynamics.neuron_step(
            _params('halfway', 'sample'),
            dynamics.NeuronState(tf.zeros([2, 2]), tf.constant([0.7, 0.7])),
            tf.constant([[0.9, 0.1], [2.0, 0.0]]))
        np.testing.assert_allclose(step.state.theta, [0.8, 0.85])
    finally:
        del dynamics.RULES['halfway']


def test_one_spike_per_step_is_todays_neuron_and_bursts_by_hand():
    """``max_spikes = 1`` is the IF neuron bit for bit (the same ops); with
    ``max_spikes = 3`` a neuron emits one spike at theta and one more for
    every further V_max, at most three, and each is subtracted."""
    rng = np.random.default_rng(5)
    mem = tf.constant(rng.normal(0, 2, (4, 50)).astype(np.float32))
    imp = tf.constant(rng.normal(0, 2, (4, 50)).astype(np.float32))
    theta = tf.constant([0.7, 1.0, 1.5, 2.0])
    one = dynamics.fire(mem, imp, dynamics.broadcast_theta(theta, 2), 2.0, 1)
    ref = dynamics.fire(mem, imp, dynamics.broadcast_theta(theta, 2), 2.0)
    for a, b in zip(one, ref):
        np.testing.assert_array_equal(a, b)
    # by hand, V_max = 2, theta = 1.5, at most 3 spikes
    v = tf.constant([[0.0, 1.5, 3.25, 3.5, 5.5, 7.5, 100.0, -4.0]])
    spikes, new_mem, n = dynamics.fire(tf.zeros_like(v), v,
                                       tf.constant(1.5), 2.0, 3)
    np.testing.assert_array_equal(n, [[0, 1, 1, 2, 3, 3, 3, 0]])
    np.testing.assert_array_equal(spikes, [[0, 2, 2, 4, 6, 6, 6, 0]])
    np.testing.assert_array_equal(new_mem,
                                  [[0, -0.5, 1.25, -0.5, -0.5, 1.5, 94, -4]])
    # neuron_step counts every spike
    p = dynamics.NeuronParams('none', 'sample', 1.5, 2.0, max_spikes=3)
    step = dynamics.neuron_step(p, dynamics.NeuronState(
        tf.zeros_like(v), tf.constant([1.5])), v)
    np.testing.assert_array_equal(step.count, [13])
