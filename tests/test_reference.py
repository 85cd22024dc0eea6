"""The plugin matches an independent NumPy reference of SPEC Phase 2 spike
for spike, per layer and step, for each preset, on a small conv net with
biases and average pooling.

Weights, biases and inputs are multiples of 1/16, so every sum the simulation
forms is exact in float32 and float64 alike: any difference is a difference
in the algorithm, never rounding."""

import os

import numpy as np
import pytest

import reference
from conftest import (assert_spikes_equal, build_snn, make_workdir,
                      parse_and_normalise, setup, write_config)

T = 40
PRESETS = ['paper', 'authors_code', 'authors_executed', 'paper_window']


def dyadic_model(path):
    from tensorflow import keras
    rng = np.random.default_rng(7)
    inp = keras.layers.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding='same', activation='relu')(inp)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Conv2D(6, 3, padding='same', activation='relu')(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(12, activation='relu')(x)
    out = keras.layers.Dense(10)(x)
    model = keras.Model(inp, out)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            w = rng.integers(-4, 6, ws[0].shape) / 16.0
            b = rng.integers(-2, 4, ws[1].shape) / 16.0
            layer.set_weights([w.astype(np.float32), b.astype(np.float32)])
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(path)
    return model


def reference_layers(model):
    layers = []
    for layer in model.layers[1:]:
        name = layer.__class__.__name__
        if name == 'Conv2D':
            w, b = layer.get_weights()
            layers.append({'kind': 'conv', 'w': w.astype(np.float64),
                           'b': b.astype(np.float64)})
        elif name == 'AveragePooling2D':
            layers.append({'kind': 'avgpool'})
        elif name == 'Dense':
            w, b = layer.get_weights()
            layers.append({'kind': 'dense', 'w': w.astype(np.float64),
                           'b': b.astype(np.float64)})
    return layers


@pytest.fixture(scope='module')
def dyadic(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('dyadic'))
    src = os.path.join(tmp, 'src.h5')
    model = dyadic_model(src)
    wd = make_workdir(os.path.join(tmp, 'wd'), model_path=src, num_test=20,
                      num_norm=20)
    return wd, model


def _snn(wd, preset, eta, scope=None):
    extra = "\n[adaptive_threshold]\npreset = {}\neta_scale = {}\n".format(
        preset, eta)
    if scope:
        extra += "scope = {}\n".format(scope)
    cfg = setup(write_config(wd, name=preset + '.ini', label=preset,
                             normalize=False, duration=T, extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    return build_snn(cfg, parsed, testset), testset, cfg


@pytest.mark.parametrize('preset', PRESETS)
def test_plugin_matches_numpy_reference(dyadic, preset):
    from snntb_adaptive.config import PRESETS as TABLE
    wd, model = dyadic
    eta = 0.5
    snn, testset, _ = _snn(wd, preset, eta)
    x = testset['x_test'][:10]
    assert np.all(x * 16 == np.round(x * 16))  # dyadic inputs
    update, scope = TABLE[preset]
    ref_spikes, ref_thetas = reference.simulate(
        reference_layers(model), x, T, [eta] * 6, 1.0, update, scope)

    got = snn.simulate_spikes(x)
    snn.reset(0)
    assert len(got) == 6
    for k, (g, r) in enumerate(zip(got, ref_spikes)):
        assert_spikes_equal(g != 0, r.astype(bool),
                            '{} layer {}'.format(preset, k))

    # The compiled loop gives the same counts and thresholds.
    _, counts, thetas = snn.simulate_batch(x)
    snn.reset(0)
    ref_counts = np.stack([r.reshape(T, 10, -1).sum(-1) for r in ref_spikes],
                          -1)
    assert_spikes_equal(counts, ref_counts, preset + ' counts')
    np.testing.assert_allclose(thetas, np.stack(ref_thetas, -1), rtol=0,
                               atol=1e-7)
    # The reference is not trivial: spikes everywhere, and the thresholds
    # move unless update = none.
    assert all(r.sum() > 0 for r in ref_spikes)
    moved = np.any(np.stack(ref_thetas, -1) != eta)
    assert moved == (update != 'none')


def test_scope_override_and_eta_list(dyadic):
    """Explicit keys override the preset; one eta per layer."""
    wd, model = dyadic
    etas = [0.5, 0.75, 0.25, 1.0, 0.5, 0.625]
    snn, testset, _ = _snn(wd, 'paper', ', '.join(map(str, etas)),
                           scope='batch')
    x = testset['x_test'][:10]
    ref_spikes, _ = reference.simulate(reference_layers(model), x, T, etas,
                                       1.0, 'clamp', 'batch')
    got = snn.simulate_spikes(x)
    snn.reset(0)
    for k, (g, r) in enumerate(zip(got, ref_spikes)):
        assert_spikes_equal(g != 0, r.astype(bool), 'layer {}'.format(k))


def test_membrane_readout_is_cumulative_output_input(dyadic):
    """readout = membrane: the scores are the output layer's cumulative
    input, sum over steps of I_t (SPEC readout), on both paths."""
    wd, model = dyadic
    extra = "\n[adaptive_threshold]\npreset = paper\neta_scale = 0.5\n" \
        "readout = membrane\n"
    cfg = setup(write_config(wd, name='membrane.ini', label='membrane',
                             normalize=False, duration=T, extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    x = testset['x_test'][:10]
    layers = reference_layers(model)
    ref_spikes, _ = reference.simulate(layers, x, T, [0.5] * 6, 1.0,
                                       'clamp', 'sample')
    # Input of the output layer at each step: its weights times the spikes
    # of the layer before, plus bias.
    w, b = layers[-1]['w'], layers[-1]['b']
    prev = ref_spikes[-2].reshape(T, 10, -1).astype(np.float64)
    expected = np.cumsum(prev @ w + b, axis=0)
    for loop in ('graph', 'step'):
        snn.loop = loop
        readout, _, _ = snn.simulate_batch(x)
        snn.reset(0)
        np.testing.assert_allclose(snn.readout_scores(readout), expected,
                                   rtol=0, atol=1e-6)
