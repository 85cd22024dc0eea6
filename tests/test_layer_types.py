"""Every layer type the plugin lists as supported, beyond the Conv2D /
Dense / pooling nets of the other tests: Conv1D, DepthwiseConv2D,
Conv2DTranspose, UpSampling2D and Concatenate (two branches). For each, on a
small random-weight net:

* ``eta = 1, update = none`` gives SNN-TB's own ``temporal_mean_rate``
  spikes in every layer at every step (step-by-step path), and the same
  output spike counts in the compiled loop;
* with the ``paper`` preset (the threshold moves), the compiled loop with
  the fused op, with TensorFlow ops and the step-by-step path agree on the
  output, spikes per layer and thresholds.
"""

import os

import numpy as np
import pytest

from conftest import (assert_spikes_equal, build_snn, parse_and_normalise,
                      setup, write_config)

KINDS = ['conv1d', 'depthwise', 'transpose', 'upsampling', 'concatenate']
AT_ONE = ("\n[adaptive_threshold]\npreset = authors_executed\n"
          "eta_scale = 1\nupdate = none\n")


def _model(kind, path):
    from tensorflow import keras
    L = keras.layers
    rng = np.random.default_rng(5)
    if kind == 'conv1d':
        inp = L.Input((8, 8))
        x = L.Conv1D(6, 3, padding='same', activation='relu')(inp)
    else:
        inp = L.Input((8, 8, 1))
        x = L.Conv2D(4, 3, padding='same', activation='relu')(inp)
    if kind == 'depthwise':
        x = L.DepthwiseConv2D(3, padding='same', activation='relu')(x)
    elif kind == 'transpose':
        x = L.Conv2D(4, 3, strides=2, padding='same', activation='relu')(x)
        x = L.Conv2DTranspose(3, 3, strides=2, padding='same',
                              activation='relu')(x)
    elif kind == 'upsampling':
        x = L.AveragePooling2D(2)(x)
        x = L.UpSampling2D(2)(x)
        x = L.Conv2D(3, 3, padding='same', activation='relu')(x)
    elif kind == 'concatenate':
        b = L.Conv2D(3, 3, padding='same', activation='relu')(inp)
        x = L.Concatenate()([x, b])
        x = L.Conv2D(3, 3, padding='same', activation='relu')(x)
    x = L.Flatten()(x)
    model = keras.Model(inp, L.Dense(10)(x))
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                               for w in ws])
    model.compile('sgd', 'categorical_crossentropy')
    model.save(path)
    return [lay.__class__.__name__ for lay in model.layers]


@pytest.fixture(scope='module', params=KINDS)
def workdir(request, tmp_path_factory):
    from snntb_adaptive import data
    kind = request.param
    wd = str(tmp_path_factory.mktemp(kind))
    classes = _model(kind, os.path.join(wd, 'model.h5'))
    x_tr, _, x_te, y_te = data.load_digits()
    if kind == 'conv1d':
        x_tr, x_te = x_tr[..., 0], x_te[..., 0]
    os.makedirs(os.path.join(wd, 'data'))
    np.savez_compressed(os.path.join(wd, 'data', 'x_test.npz'), x_te[:20])
    np.savez_compressed(os.path.join(wd, 'data', 'y_test.npz'),
                        data.one_hot(y_te[:20], 10))
    np.savez_compressed(os.path.join(wd, 'data', 'x_norm.npz'), x_tr[:40])
    return kind, wd, classes


def _stock_run(stock, x):
    stock.init_log_vars()
    counts = stock.simulate(x_b_l=x, truth_b=np.zeros(len(x)))
    trains = [np.moveaxis(s > 0, -1, 0) for s, _ in stock.spiketrains_n_b_l_t]
    stock.reset(0)
    return counts, trains


def test_same_spikes_as_snntb(workdir):
    kind, wd, classes = workdir
    expected = {'conv1d': 'Conv1D', 'depthwise': 'DepthwiseConv2D',
                'transpose': 'Conv2DTranspose', 'upsampling': 'UpSampling2D',
                'concatenate': 'Concatenate'}[kind]
    assert expected in classes
    stock_cfg = setup(write_config(
        wd, name='stock.ini', label='stock', spike_code='temporal_mean_rate',
        output="log_vars = {'spiketrains_n_b_l_t'}"))
    at_cfg = setup(write_config(wd, name='at1.ini', label='at1',
                                extra=AT_ONE))
    parsed, testset = parse_and_normalise(stock_cfg)
    assert any(expected in lay.name for lay in parsed.layers)
    stock = build_snn(stock_cfg, parsed, testset)
    at = build_snn(at_cfg, parsed, testset)
    x = testset['x_test'][:10]
    counts_stock, trains_stock = _stock_run(stock, x)
    trains_at = at.simulate_spikes(x)
    at.reset(0)
    assert len(trains_at) == len(trains_stock) >= 2
    for k, (a, s) in enumerate(zip(trains_at, trains_stock)):
        assert_spikes_equal(a != 0, s, '{} layer {}'.format(kind, k))
        assert s.sum() > 0, (kind, k)          # every layer fires
    readout, _, _ = at.simulate_batch(x)
    at.reset(0)
    assert_spikes_equal(np.cumsum(readout > 0, 0).transpose(1, 2, 0),
                        counts_stock, kind + ' output spike counts')


def test_paper_preset_same_on_every_path(workdir):
    kind, wd, _ = workdir
    cfg = setup(write_config(wd, name='paper.ini', label='paper',
                             extra="\n[adaptive_threshold]\npreset = paper\n"))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    x = testset['x_test'][:10]
    runs = {}
    for loop, kern in (('graph', 'auto'), ('graph', 'tf'), ('step', 'tf')):
        snn.loop = loop
        snn.set_kernel(kern)
        runs[loop, kern] = snn.simulate_batch(x)
        snn.reset(0)
    first = runs['graph', 'auto']
    assert first[1].sum() > 0
    assert len(np.unique(first[2])) > len(first[2][0, 0])  # theta moves
    for key, other in runs.items():
        for name, a, b in zip(('readout', 'counts', 'thetas'), first, other):
            np.testing.assert_array_equal(a, b, err_msg='{} {} {}'.format(
                kind, key, name))


def test_plugin_normalisation_equals_snntb(workdir):
    """The plugin's Phase-1 rescales these nets as SNN-TB's own
    normalisation does (Concatenate: per inbound layer's channels)."""
    kind, wd, _ = workdir
    parsed = {}
    for code in ('temporal_mean_rate', 'adaptive_threshold'):
        cfg = setup(write_config(wd, name=code + '_n.ini', label=code + '_n',
                                 spike_code=code))
        parsed[code], _ = parse_and_normalise(cfg)
    for a, b in zip(parsed['temporal_mean_rate'].get_weights(),
                    parsed['adaptive_threshold'].get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=0, err_msg=kind)
