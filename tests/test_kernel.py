"""The fused step kernel (csrc/if_step.cc) against the TensorFlow ops of
dynamics.neuron_step: bit for bit, on every update rule, scope and layer
shape, and through the whole compiled loop; its build, cache and fallback."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import build_snn, make_workdir, parse_and_normalise, setup, \
    write_config
from snntb_adaptive import kernel
from snntb_adaptive.errors import ConfigError


def _case(rng, shape, scope, theta_values, v_max):
    mem = rng.normal(0, 1, shape).astype(np.float32)
    imp = (rng.normal(0, 1, shape) * 0.7).astype(np.float32)
    flat = imp.reshape(-1)
    flat[::7] = 0
    mem.reshape(-1)[::5] = 0.5 - flat[::5]
    # Exact ties with the threshold the rules set: a neuron with mem = 0
    # holds the largest impulse z (clamp/window raise theta to z below
    # V_max), and in odd samples one neuron has mem = 0 and impulse V_max
    # (z = V_max: theta = V_max).
    imp2, mem2 = imp.reshape(shape[0], -1), mem.reshape(shape[0], -1)
    imp2[0::2] *= np.float32(0.6 * v_max) / np.abs(imp2[0::2]).max()
    imp2[1::2, 0] = v_max
    mem2[1::2, 0] = 0
    if scope == 'sample':
        mem2[np.arange(shape[0]), imp2.argmax(1)] = 0
    else:
        mem2.reshape(-1)[imp2.argmax()] = 0
    theta = np.asarray(theta_values[:shape[0]] if scope == 'sample'
                       else theta_values[0], np.float32)
    return tf.constant(mem), tf.constant(imp), tf.constant(theta)


def _step_args(mem, theta, imp, update, scope, v_max, z):
    from snntb_adaptive.dynamics import NeuronParams, NeuronState
    return (NeuronParams(update, scope, 0.3 * v_max, v_max),
            NeuronState(mem, theta), imp, z)


@tf.function
def _in_graph(params, state, impulse, z):
    # mem * 1 is exact (and keeps -0): a fresh tensor TensorFlow may forward
    # to the op's new_mem output
    return kernel.fused_step(params, state._replace(mem=state.mem * 1.0),
                             impulse, z)


SHAPES = [(5, 7, 7, 3), (4, 40000), (3, 33), (1, 40000, 2), (6, 10)]


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('scope', ['sample', 'batch'])
@pytest.mark.parametrize('update', ['clamp', 'window', 'none'])
def test_fused_equals_tensorflow_ops(shape, scope, update):
    rng = np.random.default_rng(sum(shape))
    tied = 0
    for v_max in (1.0, 0.37):
        # theta: below V_max, at V_max for some samples (clamp skips the
        # maximum there), and a value z can cross.
        for thetas in ([0.5 * v_max] * 6,
                       [v_max, 0.3 * v_max, v_max, 0.9 * v_max, v_max, 0.1]):
            mem, imp, theta = _case(rng, shape, scope, thetas, v_max)
            z = tf.reduce_max(imp, axis=list(range(1, len(shape)))) \
                if scope == 'sample' else tf.reduce_max(imp)
            for given in (None, z):
                args = _step_args(mem, theta, imp, update, scope, v_max,
                                  given)
                want = kernel.tf_step(*args)
                got = kernel.fused_step(*args)
                # in a graph the membrane buffer can be updated in place
                in_place = _in_graph(*args)
                for name, w, g, h in (
                        ('spikes', want.spikes, got.spikes, in_place.spikes),
                        ('mem', want.state.mem, got.state.mem,
                         in_place.state.mem),
                        ('theta', want.state.theta, got.state.theta,
                         in_place.state.theta),
                        ('count', want.count, got.count, in_place.count)):
                    for value in (g, h):
                        np.testing.assert_array_equal(
                            value.numpy(), w.numpy(), err_msg='{} v_max={} '
                            'z={}'.format(name, v_max, given is not None))
                if update == 'clamp':
                    # the case holds neurons exactly at the new threshold,
                    # which fire (v >= theta)
                    v = (mem + imp).numpy()
                    th = np.reshape(want.state.theta.numpy(),
                                    (-1,) + (1,) * (len(shape) - 1))
                    ties = v == np.broadcast_to(th, v.shape)
                    tied += int(ties.sum())
                    assert np.all(want.spikes.numpy()[ties] == v_max)
    assert update != 'clamp' or tied > 0


def test_fused_kernel_moves_the_threshold_and_fires():
    """Not a vacuous comparison: the cases above change theta and fire."""
    from snntb_adaptive.dynamics import NeuronParams, NeuronState
    mem = tf.zeros((2, 4))
    imp = tf.constant([[0.2, 0.8, 0.1, 0.0], [0.95, 0.5, 0.6, 0.2]])
    spikes, (new_mem, theta), count = kernel.fused_step(
        NeuronParams('clamp', 'sample', 0.7, 1.0),
        NeuronState(mem, tf.constant([0.7, 0.7])), imp)
    np.testing.assert_allclose(theta, [0.8, 0.95])
    np.testing.assert_array_equal(spikes, [[0, 1, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(count, [1, 1])
    np.testing.assert_allclose(new_mem, imp - spikes)


def test_fused_kernel_rejects_mismatched_shapes():
    from snntb_adaptive.dynamics import NeuronParams, NeuronState
    p = NeuronParams('clamp', 'sample', 0.5, 1.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match='differ'):
        kernel.fused_step(p, NeuronState(tf.zeros((2, 3)), tf.zeros([2])),
                          tf.zeros((2, 4)))
    with pytest.raises(tf.errors.InvalidArgumentError, match='theta'):
        kernel.fused_step(p, NeuronState(tf.zeros((2, 3)), tf.zeros([3])),
                          tf.zeros((2, 3)))


def test_library_is_cached_and_rebuilt_when_damaged(tmp_path):
    # In a child process: a second library registering the same op must not
    # be loaded into this one.
    code = """if True:
        import os
        from snntb_adaptive import kernel
        path = kernel.build()
        assert os.path.dirname(path) == {tmp!r}
        mtime = os.stat(path).st_mtime_ns
        assert kernel.build() == path and os.stat(path).st_mtime_ns == mtime
        with open(path, 'wb') as f:        # a damaged cache entry
            f.write(b'not a library')
        kernel.load()
        assert os.path.getsize(path) > 1000
        assert os.listdir({tmp!r}) == [os.path.basename(path)]
        print('ok')
    """.format(tmp=str(tmp_path))
    env = dict(os.environ, SNNTB_ADAPTIVE_CACHE=str(tmp_path))
    p = subprocess.run([sys.executable, '-c', code], env=env, text=True,
                       capture_output=True, timeout=600)
    assert p.returncode == 0 and p.stdout.strip().endswith('ok'), \
        p.stderr[-2000:]


def test_auto_falls_back_and_fused_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv('SNNTB_ADAPTIVE_CACHE', str(tmp_path))
    monkeypatch.setenv('CXX', 'no-such-compiler')
    monkeypatch.setattr(kernel, '_state', {})
    used, note = kernel.resolve('auto', 'clamp')
    assert used == 'tf' and 'no-such-compiler' in note and 'kernel = tf' in \
        note
    assert kernel.resolve('tf', 'clamp') == ('tf', None)
    with pytest.raises(kernel.KernelUnavailable, match='no-such-compiler'):
        kernel.resolve('fused', 'clamp')
    # a cache folder that cannot be written: the same fallback, and a hint
    monkeypatch.delenv('CXX')
    blocker = tmp_path / 'a-file'
    blocker.write_text('')
    monkeypatch.setenv('SNNTB_ADAPTIVE_CACHE', str(blocker / 'cache'))
    monkeypatch.setattr(kernel, '_state', {})
    used, note = kernel.resolve('auto', 'clamp')
    assert used == 'tf' and 'SNNTB_ADAPTIVE_CACHE to a writable' in note


def test_a_rule_the_fused_op_lacks_runs_on_tensorflow_ops():
    """The fused op is an accelerator: a rule it does not implement falls
    back to TensorFlow ops under auto, and is refused under fused."""
    assert 'halfway' not in kernel.FUSED_RULES
    used, note = kernel.resolve('auto', 'halfway')
    assert used == 'tf' and "not 'halfway'" in note
    with pytest.raises(kernel.KernelUnavailable, match='halfway'):
        kernel.resolve('fused', 'halfway')


@pytest.fixture(scope='module')
def digits_snn(tmp_path_factory):
    wd = make_workdir(str(tmp_path_factory.mktemp('kernel')), num_test=20)
    return wd


@pytest.mark.parametrize('preset', ['paper', 'authors_code',
                                    'authors_executed', 'paper_window',
                                    'calibrated',
                                    'calibrated\navg_pooling = spiking',
                                    'paper\navg_pooling = linear',
                                    'authors_executed\navg_pooling = linear'])
def test_compiled_loop_same_with_either_kernel(digits_snn, preset):
    """Whole network: fused kernel, TensorFlow ops and the step-by-step path
    give the same output spikes, spike counts and thresholds, with spiking
    and with linear average pooling."""
    extra = "\n[adaptive_threshold]\npreset = {}\n".format(preset)
    label = preset.replace('\n', '_').replace(' = ', '_')
    cfg = setup(write_config(digits_snn, name=label + '.ini', label=label,
                             duration=40, extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    assert snn.kernel == 'fused', kernel._state.get('error')
    x = testset['x_test'][:10]
    fused = snn.simulate_batch(x)
    snn.reset(0)
    snn.set_kernel('tf')
    ops = snn.simulate_batch(x)
    snn.reset(0)
    snn.loop = 'step'
    step = snn.simulate_batch(x)
    snn.reset(0)
    assert fused[1].sum() > 0
    for a, b, c in zip(fused, ops, step):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_kernel_key_is_validated_and_recorded(digits_snn, monkeypatch):
    extra = "\n[adaptive_threshold]\nkernel = fast\n"
    with pytest.raises(ConfigError, match="kernel = 'fast'.*auto, fused, sparse, tf"):
        setup(write_config(digits_snn, name='bad.ini', label='bad',
                           extra=extra))
    monkeypatch.setattr(kernel, '_state', {'error': 'no compiler here'})
    extra = "\n[adaptive_threshold]\nkernel = fused\n"
    cfg = setup(write_config(digits_snn, name='fused.ini', label='fused',
                             extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    with pytest.raises(ConfigError, match='no compiler here.*kernel = auto'):
        build_snn(cfg, parsed, testset)


def test_bfloat16_precision_is_applied_and_close(digits_snn):
    """precision = bfloat16 (optional): Conv2D and Dense weights in bfloat16
    in the compiled loop. Not the same spikes as float32, but nearly; the
    float32-only paths refuse it."""
    runs = {}
    for precision in ('float32', 'bfloat16'):
        extra = "\n[adaptive_threshold]\nprecision = {}\n".format(precision)
        cfg = setup(write_config(digits_snn, name=precision + '.ini',
                                 label=precision, duration=40, extra=extra))
        parsed, testset = parse_and_normalise(cfg)
        snn = build_snn(cfg, parsed, testset)
        x = testset['x_test'][:10]
        runs[precision] = snn.simulate_batch(x)
        snn.reset(0)
    f32, bf16 = runs['float32'], runs['bfloat16']
    assert not np.array_equal(f32[1], bf16[1])   # bfloat16 is in use
    assert abs(bf16[1].sum() / f32[1].sum() - 1) < 0.01
    decision = [np.cumsum(r[0] > 0, axis=0)[-1].argmax(-1) for r in (f32,
                                                                    bf16)]
    assert np.mean(decision[0] == decision[1]) >= 0.9
    snn.loop = 'step'
    with pytest.raises(ConfigError, match='float32 only.*precision = '
                       'float32'):
        snn.simulate_batch(x)
    with pytest.raises(ConfigError, match='float32 only'):
        snn.simulate_spikes(x)
    with pytest.raises(ConfigError, match="precision = 'half'"):
        setup(write_config(digits_snn, name='half.ini', label='half',
                           extra="\n[adaptive_threshold]\nprecision = half\n"))
