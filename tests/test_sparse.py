"""The event-driven synapses (csrc/sparse_synapse.cc, ``kernel = sparse``
and the per-step choice of ``kernel = auto``): the op equals each layer
type's dense op on random sparse inputs (every padding, stride, dilation
and batch size the layers take), whole networks give the same spikes with
every kernel, the library is rebuilt when a source changes, and a machine
without a compiler falls back with one notice."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import build_snn, make_workdir, parse_and_normalise, setup, \
    write_config
from snntb_adaptive import kernel, layers
from snntb_adaptive.errors import ConfigError


def _spikes(rng, shape, density, values=(1.0,)):
    x = (rng.random(shape) < density).astype(np.float32)
    return x * rng.choice(np.asarray(values, np.float32), shape)


def _compare(layer, x):
    """The layer's dense op and its event-driven impulse on ``x``: the
    largest difference, and how many outputs are not bit-identical."""
    dense = layer.base_layer.call(layer, tf.constant(x)).numpy()
    assert layer.sparse_ready(x), type(layer).__name__
    sparse = layer.sparse_impulse(tf.constant(x)).numpy()
    assert sparse.shape == dense.shape
    return np.abs(sparse - dense).max(), int(np.sum(sparse != dense))


def _built(cls, input_shape, **kwargs):
    layer = cls(**kwargs)
    layer.build(tf.TensorShape(input_shape))
    rng = np.random.default_rng(len(layer.weights))
    layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    return layer



def _plain(spike_cls):
    """A Keras layer of ``spike_cls``'s base type with the plugin's
    :meth:`sparse_impulse` (no neurons, no SNN-TB config needed)."""
    class Plain(spike_cls.base_layer):
        base_layer = spike_cls.base_layer
        sparse_ready = spike_cls.sparse_ready
        sparse_impulse = spike_cls.sparse_impulse
    return Plain


CONV2D = [dict(filters=5, kernel_size=k, strides=s, padding=p,
               dilation_rate=d)
          for k, s, p, d in [(3, 1, 'same', 1), (3, 1, 'valid', 1),
                             (3, 2, 'same', 1), (3, 2, 'valid', 1),
                             (4, 1, 'same', 1), (2, 2, 'same', 1),
                             (5, 3, 'same', 1), (1, 1, 'valid', 1),
                             (3, 1, 'same', 2), (3, 1, 'valid', 2)]]


@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('kw', CONV2D, ids=lambda kw: '{kernel_size}-'
                         '{strides}-{padding}-{dilation_rate}'.format(**kw))
def test_conv2d(kw, batch):
    rng = np.random.default_rng(1)
    layer = _built(_plain(layers.SpikeConv2D), (batch, 9, 11, 4), **kw)
    x = _spikes(rng, (batch, 9, 11, 4), 0.2)
    diff, _ = _compare(layer, x)
    assert diff < 1e-5


@pytest.mark.parametrize('padding,strides,dilation', [
    (p, s, d) for p in ('same', 'valid', 'causal')
    for s, d in ((1, 1), (2, 1), (1, 2)) if p != 'causal' or s == 1])
def test_conv1d(padding, strides, dilation):
    rng = np.random.default_rng(2)
    layer = _built(_plain(layers.SpikeConv1D), (3, 13, 4), filters=6,
                   kernel_size=3, strides=strides, padding=padding,
                   dilation_rate=dilation)
    diff, _ = _compare(layer, _spikes(rng, (3, 13, 4), 0.2))
    assert diff < 1e-5


@pytest.mark.parametrize('batch', [1, 4])
def test_dense(batch):
    rng = np.random.default_rng(3)
    layer = _built(_plain(layers.SpikeDense), (batch, 300), units=17)
    diff, _ = _compare(layer, _spikes(rng, (batch, 300), 0.1, (1.0, 2.0)))
    assert diff < 1e-5
    # rank 3: applied on the last axis, not event-driven
    layer3 = _built(_plain(layers.SpikeDense), (2, 5, 30), units=4)
    assert not layer3.sparse_ready(tf.zeros((2, 5, 30)))


@pytest.mark.parametrize('padding,strides', [('same', 1), ('valid', 2)])
def test_depthwise(padding, strides):
    rng = np.random.default_rng(4)
    layer = _built(_plain(layers.SpikeDepthwiseConv2D), (2, 8, 8, 3),
                   kernel_size=3, padding=padding, strides=strides)
    diff, _ = _compare(layer, _spikes(rng, (2, 8, 8, 3), 0.3))
    assert diff < 1e-5


@pytest.mark.parametrize('pool,strides', [(2, 2), (3, 1), (2, 1)])
def test_average_pooling(pool, strides):
    rng = np.random.default_rng(5)
    layer = _plain(layers.SpikeAveragePooling2D)(pool_size=pool,
                                                 strides=strides)
    x = _spikes(rng, (2, 8, 7, 3), 0.3, (1.0, 0.25, 0.5))
    diff, _ = _compare(layer, x)
    assert diff < 1e-6
    same = _plain(layers.SpikeAveragePooling2D)(pool_size=2, padding='same')
    assert not same.sparse_ready(tf.constant(x))


def test_spikes_of_amplitude_one_are_summed_exactly():
    """Spikes (0 or V_max) into a convolution with weights on a grid of
    1/64: every partial sum is exact in float32, so the event-driven op and
    the dense op agree bit for bit whatever their order."""
    rng = np.random.default_rng(6)
    layer = _built(_plain(layers.SpikeConv2D), (2, 10, 10, 8), filters=16,
                   kernel_size=3, padding='same')
    layer.set_weights([np.round(w * 64) / 64 for w in layer.get_weights()])
    diff, differing = _compare(layer, _spikes(rng, (2, 10, 10, 8), 0.1))
    assert diff == 0 and differing == 0


def test_empty_input_gives_the_bias():
    layer = _built(_plain(layers.SpikeConv2D), (2, 6, 6, 3), filters=4,
                   kernel_size=3, padding='same')
    out = layer.sparse_impulse(tf.zeros((2, 6, 6, 3))).numpy()
    np.testing.assert_array_equal(out, np.broadcast_to(
        layer.bias.numpy(), out.shape))


@pytest.fixture
def calls(monkeypatch):
    """A list that gets an entry for every call of the event-driven op."""
    made = []
    original = kernel.sparse_conv

    def counting(*args, **kw):
        made.append(1)
        return original(*args, **kw)
    monkeypatch.setattr(kernel, 'sparse_conv', counting)
    return made


@pytest.fixture(scope='module')
def digits_wd(tmp_path_factory):
    return make_workdir(str(tmp_path_factory.mktemp('sparse')), num_test=40)


@pytest.mark.parametrize('preset', ['paper', 'calibrated',
                                    'paper\navg_pooling = linear'])
def test_whole_network_same_spikes_with_every_kernel(digits_wd, preset,
                                                     monkeypatch, calls):
    """The digits CNN: sparse, auto (choosing per step for every layer but
    the first: its layers are below SPARSE_MIN_MACS, lowered here; the
    input densities, 13-18 %, lie on both sides of the crossover), fused
    and TensorFlow ops, on the compiled loop and the step path, give the
    same output, counts and thresholds."""
    monkeypatch.setattr(kernel, 'SPARSE_MIN_MACS', 0)
    extra = "\n[adaptive_threshold]\npreset = {}\nkernel = sparse\n".format(
        preset)
    label = 'sp_' + preset.replace('\n', '_').replace(' = ', '_')
    cfg = setup(write_config(digits_wd, name=label + '.ini', label=label,
                             duration=40, extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    assert snn.kernel == 'sparse'
    assert [lay.synapses for lay in snn._spiking][0] == 'dense'
    assert set(lay.synapses for lay in snn._spiking[1:]) == {'sparse'}
    x = testset['x_test'][:snn.batch_size]
    runs = {}
    for name in ('sparse', 'auto', 'fused', 'tf'):
        snn.set_kernel(name)
        want_synapses = {'fused': 'dense', 'tf': 'dense'}.get(name, name)
        assert {lay.synapses for lay in snn._spiking[1:]} == {want_synapses}
        for loop in ('graph', 'step'):
            snn.loop = loop
            runs[name, loop] = snn.simulate_batch(x)
            snn.reset(0)
    assert calls, 'the event-driven op was not used'
    # auto's density in the compiled loop: the spike count of the spiking
    # layer whose spikes a layer receives (through Flatten), when there is
    # one (not behind linear pooling)
    linear = 'linear' in preset or preset == 'calibrated'
    assert snn._spike_source == ({3: 2} if linear else
                                 {1: 0, 2: 1, 3: 2, 4: 3, 5: 4})
    want = runs['fused', 'graph']
    assert want[1].sum() > 0
    for key, got in runs.items():
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b, err_msg=str(key))


def test_auto_leaves_small_layers_dense(digits_wd):
    """Under auto, layers below SPARSE_MIN_MACS multiply-accumulates per
    image (all of the digits CNN's) keep the dense op."""
    cfg = setup(write_config(digits_wd, name='auto.ini', label='auto'))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    assert max(snn.ann_macs.values()) < kernel.SPARSE_MIN_MACS
    assert {lay.synapses for lay in snn._spiking} == {'dense'}
    snn.set_kernel('sparse')
    assert {lay.synapses for lay in snn._spiking[1:]} == {'sparse'}


def test_auto_takes_the_dense_op_above_the_crossover(calls):
    layer = _built(_plain(layers.SpikeConv2D), (2, 6, 6, 3), filters=4,
                   kernel_size=3, padding='same')
    layer.synapses = 'auto'
    rng = np.random.default_rng(7)
    for density, used in ((0.05, True), (0.6, False)):
        calls.clear()
        x = tf.constant(_spikes(rng, (2, 6, 6, 3), density))
        out = layers.AdaptiveThresholdMixin.synaptic_impulse(layer, x)
        np.testing.assert_allclose(out, layer.base_layer.call(layer, x),
                                   atol=1e-5)
        # eager tf.cond runs only the branch taken
        assert bool(calls) == used
    # a count given by the caller decides instead of counting
    calls.clear()
    x = tf.constant(_spikes(rng, (2, 6, 6, 3), 0.6))
    layers.AdaptiveThresholdMixin.synaptic_impulse(layer, x, nonzero=0.0)
    assert calls


def test_library_rebuilt_when_a_source_changes(tmp_path, monkeypatch):
    sources = []
    for src in kernel.SOURCES:
        dst = tmp_path / os.path.basename(src)
        dst.write_bytes(open(src, 'rb').read())
        sources.append(str(dst))
    monkeypatch.setattr(kernel, 'SOURCES', tuple(sources))
    before = kernel.library_path()
    with open(sources[1], 'a') as f:
        f.write('\n// changed\n')
    assert kernel.library_path() != before


def test_without_a_compiler_sparse_is_refused_and_auto_is_dense(
        tmp_path, monkeypatch, digits_wd):
    monkeypatch.setenv('SNNTB_ADAPTIVE_CACHE', str(tmp_path))
    monkeypatch.setenv('CXX', 'no-such-compiler')
    monkeypatch.setattr(kernel, '_state', {})
    with pytest.raises(kernel.KernelUnavailable, match='no-such-compiler'):
        kernel.resolve('sparse', 'clamp')
    assert kernel.synapses_for('auto', 'tf') == 'dense'
    cfg = setup(write_config(digits_wd, name='nocxx.ini', label='nocxx',
                             extra="\n[adaptive_threshold]\nkernel = "
                             "sparse\n"))
    parsed, testset = parse_and_normalise(cfg)
    with pytest.raises(ConfigError, match='kernel = sparse.*no-such-'
                       'compiler.*kernel = auto'):
        build_snn(cfg, parsed, testset)
