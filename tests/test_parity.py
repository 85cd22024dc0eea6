"""Parity with unmodified SNN-TB: ``eta_scale = 1, update = none`` must give
exactly the spikes and accuracy per step of SNN-TB's own
``temporal_mean_rate`` INI simulator on the same parsed, normalised model."""

import numpy as np
import pytest

from conftest import (assert_spikes_equal, build_snn, parse_and_normalise,
                      setup, write_config)

AT_ONE = """
[adaptive_threshold]
preset = authors_executed
eta_scale = 1
update = none
"""


@pytest.fixture(scope='module')
def pair(digits_dir):
    stock_cfg = setup(write_config(
        digits_dir, name='stock.ini', label='parity_stock',
        spike_code='temporal_mean_rate',
        output="log_vars = {'spiketrains_n_b_l_t'}"))
    at_cfg = setup(write_config(digits_dir, name='at1.ini',
                                label='parity_at', extra=AT_ONE))
    parsed, testset = parse_and_normalise(stock_cfg)
    stock = build_snn(stock_cfg, parsed, testset)
    at = build_snn(at_cfg, parsed, testset)
    return stock, at, testset


def _stock_batch(stock, x, truth):
    stock.init_log_vars()
    counts = stock.simulate(x_b_l=x, truth_b=truth)        # (B, C, T)
    trains = [np.moveaxis(s > 0, -1, 0) for s, _ in stock.spiketrains_n_b_l_t]
    stock.reset(0)
    return counts, trains


@pytest.mark.parametrize('batch', [0, 1])
def test_same_spikes_as_snntb_temporal_mean_rate(pair, batch):
    stock, at, testset = pair
    sl = slice(10 * batch, 10 * (batch + 1))
    x, y = testset['x_test'][sl], testset['y_test'][sl]
    truth = np.argmax(y, 1)
    counts_stock, trains_stock = _stock_batch(stock, x, truth)

    # Reference (step-by-step) path: every layer, every step.
    trains_at = at.simulate_spikes(x)
    at.reset(0)
    assert len(trains_at) == len(trains_stock) == 6
    for k, (a, s) in enumerate(zip(trains_at, trains_stock)):
        assert_spikes_equal(a != 0, s, 'layer {}'.format(k))
    assert sum(int(s.sum()) for s in trains_stock) > 1000  # a busy network

    # Compiled loop (the default path): output spikes and per-layer counts.
    readout, counts, _ = at.simulate_batch(x)
    at.reset(0)
    assert_spikes_equal(np.cumsum(readout > 0, 0).transpose(1, 2, 0),
                        counts_stock, 'output spike counts')
    per_layer = np.stack([s.reshape(s.shape[0], s.shape[1], -1).sum(-1)
                          for s in trains_stock], axis=-1)
    assert_spikes_equal(counts, per_layer, 'spikes per layer and step')


def test_same_accuracy_per_step(pair):
    from snntb_adaptive.metrics import topk_correct
    stock, at, testset = pair
    x, y = testset['x_test'][:10], testset['y_test'][:10]
    truth = np.argmax(y, 1)
    counts_stock, _ = _stock_batch(stock, x, truth)
    # SNN-TB's own accuracy rule (simulation/utils.py, AbstractSNN.run).
    guesses = np.argmax(counts_stock, 1)
    guesses[np.nonzero(np.sum(counts_stock, 1) == 0)] = -1
    acc_stock = np.mean(guesses == truth[:, None], axis=0)

    at.recorder = None
    readout, counts, thetas = at.simulate_batch(x)
    at.reset(0)
    scores = at.readout_scores(readout)
    undecided = np.all(scores == 0, -1)
    acc_at = topk_correct(scores, np.broadcast_to(truth, scores.shape[:2]), 1,
                          undecided).mean(1)
    np.testing.assert_array_equal(acc_at, acc_stock)
    assert acc_stock[-1] >= 0.7


def _maxpool_model(path):
    from tensorflow import keras
    rng = np.random.default_rng(5)
    inp = keras.layers.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, padding='same', activation='relu')(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(10)(x)
    model = keras.Model(inp, out)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                               for w in ws])
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(path)


def test_max_pooling_parity_and_compiled_loop(tmp_path):
    """Spiking max pooling (SNN-TB's max-gated input): the compiled loop, the
    step path and SNN-TB's own simulator agree spike for spike."""
    from conftest import make_workdir
    src = str(tmp_path / 'maxpool.h5')
    _maxpool_model(src)
    wd = make_workdir(str(tmp_path / 'wd'), model_path=src, num_test=20,
                      num_norm=40)
    stock_cfg = setup(write_config(
        wd, name='stock.ini', label='mp_stock',
        spike_code='temporal_mean_rate',
        output="log_vars = {'spiketrains_n_b_l_t'}"))
    at_cfg = setup(write_config(wd, name='at.ini', label='mp_at',
                                extra=AT_ONE))
    parsed, testset = parse_and_normalise(stock_cfg)
    stock = build_snn(stock_cfg, parsed, testset)
    at = build_snn(at_cfg, parsed, testset)
    x = testset['x_test'][:10]
    counts_stock, trains_stock = _stock_batch(stock, x, np.zeros(10))
    trains_at = at.simulate_spikes(x)
    at.reset(0)
    for k, (a, s) in enumerate(zip(trains_at, trains_stock)):
        assert_spikes_equal(a != 0, s, 'layer {}'.format(k))
    readout, counts, _ = at.simulate_batch(x)
    at.reset(0)
    assert_spikes_equal(np.cumsum(readout > 0, 0).transpose(1, 2, 0),
                        counts_stock, 'output spike counts')
    assert trains_stock[1].sum() > 100        # the pooling layer fires


@pytest.mark.parametrize('preset', ['authors_executed', 'paper'])
def test_v_max_two_is_the_network_scaled_by_two(digits_dir, preset):
    """``[cell] v_thresh = 2``: ``V_init = eta * V_max = 1.4`` at ``eta =
    0.7``, and the spikes are those of the same network at ``V_max = 1``
    with every impulse doubled (first layer's weights and every bias times
    2; spikes of amplitude 2 double the later layers' input themselves).
    Doubling is exact in floating point, so the spikes agree bit for bit."""
    import json
    import os
    extra = "\n[adaptive_threshold]\npreset = {}\neta_scale = 0.7\n" \
        "".format(preset)
    one_cfg = setup(write_config(digits_dir, name='v1.ini', label='v1_' +
                                 preset, extra=extra))
    two_cfg = setup(write_config(digits_dir, name='v2.ini', label='v2_' +
                                 preset, extra=extra + "\n[cell]\n"
                                 "v_thresh = 2\n"))
    parsed, testset = parse_and_normalise(one_cfg)
    one = build_snn(one_cfg, parsed, testset)
    parsed2, _ = parse_and_normalise(two_cfg)
    with open(os.path.join(two_cfg.get('paths', 'log_dir_of_current_run'),
                           'phase1_thresholds.json')) as f:
        rows = json.load(f)['layers']
    assert [r['v_init'] for r in rows] == [1.4] * 6
    assert [r['v_max'] for r in rows] == [2.0] * 6
    first = True
    for layer in parsed2.layers[1:]:
        params = layer.get_weights()
        if not params:
            continue
        w = params[0] * 2 if first else params[0]
        layer.set_weights([w, params[1] * 2] + params[2:])
        first = False
    two = build_snn(two_cfg, parsed2, testset)
    assert [lay.neuron_params.v_init for lay in two._spiking] == [1.4] * 6
    x = testset['x_test'][:10]
    r1, c1, th1 = one.simulate_batch(x)
    r2, c2, th2 = two.simulate_batch(x)
    assert c1.sum() > 1000
    assert_spikes_equal(c1, c2, 'spikes per layer and step')
    assert_spikes_equal(r1 * 2, r2, 'output spikes')
    np.testing.assert_array_equal(th1 * 2, th2)
