"""preset = spike_norm: Phase 1 by Spike-Norm (Sengupta et al. 2019).

On a hand-built two-layer net the thresholds equal the values worked out by
hand, and the whole run goes through SNN-TB's pipeline."""

import json
import os

import numpy as np
import pytest

from conftest import parse_and_normalise, setup, write_config

SPIKE_NORM = "\n[adaptive_threshold]\npreset = spike_norm\n"


def _two_layer_workdir(tmp_path):
    """Input (2,), Dense 2 (ReLU), Dense 2 (linear output); one image
    x = (0.5, 0.25), T = 4; every number dyadic, so the arithmetic is
    exact (worked out in the comments)."""
    from tensorflow import keras
    from snntb_adaptive import data
    inp = keras.layers.Input((2,))
    h = keras.layers.Dense(2, activation='relu')(inp)
    out = keras.layers.Dense(2)(h)
    model = keras.Model(inp, out)
    # layer 1: impulses (0.5*3 + 0.25*2, 0.5*1 + 0.25*0.5) = (2, 0.625):
    # theta1 = 2; scaled to (1, 0.3125): neuron a fires at every step,
    # neuron b at step 4 only (0.3125 * 4 = 1.25 >= 1) within T = 4.
    model.layers[1].set_weights([np.array([[3, 1], [2, 0.5]], np.float32),
                                 np.zeros(2, np.float32)])
    # layer 2: impulses from spikes (a, b) of amplitude 1:
    # neuron 0 = a*1 + b*2 + 0.125, neuron 1 = a*0.5 + b*0 + 0;
    # steps 1-3: (1.125, 0.5); step 4: (3.125, 0.5): theta2 = 3.125.
    model.layers[2].set_weights([np.array([[1, 0.5], [2, 0]], np.float32),
                                 np.array([0.125, 0], np.float32)])
    model.compile('sgd', 'categorical_crossentropy')
    wd = str(tmp_path / 'wd')
    os.makedirs(wd)
    model.save(os.path.join(wd, 'model.h5'))
    x = np.array([[0.5, 0.25]], np.float32)
    data.write_snntb_dataset(os.path.join(wd, 'data'), np.repeat(x, 2, 0),
                             np.array([0, 1]), x, 2)
    return wd


def test_thresholds_equal_the_hand_computed_ones(tmp_path):
    wd = _two_layer_workdir(tmp_path)
    cfg = setup(write_config(wd, duration=4, batch_size=1, num_to_test=2,
                             extra=SPIKE_NORM))
    parsed, _ = parse_and_normalise(cfg)
    with open(os.path.join(cfg.get('paths', 'log_dir_of_current_run'),
                           'phase1_thresholds.json')) as f:
        phase1 = json.load(f)
    assert phase1['method'] == 'spike_norm'
    assert [r['lambda'] for r in phase1['layers']] == [2.0, 3.125]
    assert [r['v_init'] for r in phase1['layers']] == [1.0, 1.0]
    w1, b1 = parsed.layers[1].get_weights()
    np.testing.assert_array_equal(w1, [[1.5, 0.5], [1, 0.25]])
    w2, b2 = parsed.layers[2].get_weights()
    np.testing.assert_array_equal(b2, np.float32([0.125, 0]) / 3.125)
    # SNN-TB's scale-factor file is neither written nor used
    assert not os.path.exists(os.path.join(
        cfg.get('paths', 'log_dir_of_current_run'), 'normalization',
        '99.9.json'))


def test_spike_norm_runs_and_refuses_max_pooling(digits_dir, tmp_path):
    from snntb_adaptive.cli import main
    from snntb_adaptive.config import settings_from_mapping
    from snntb_adaptive.errors import ConfigError
    s = settings_from_mapping({'preset': 'spike_norm', 'eta_scale': '0.7'})
    assert (s.update, s.phase1, s.eta_scale) == ('none', 'spike_norm',
                                                 (1.0,))
    cfg = write_config(digits_dir, name='sn.ini', label='spike_norm',
                       duration=30, extra=SPIKE_NORM)
    assert main(['-t', cfg]) == 0
    with open(os.path.join(digits_dir, 'log', 'gui', 'spike_norm',
                           'results.json')) as f:
        res = json.load(f)
    assert res['settings']['phase1'] == 'spike_norm'
    assert res['final_accuracy_top1'] >= 0.8
    # max pooling: its spiking gate is not modelled by the measurement
    from test_parity import _maxpool_model
    from conftest import make_workdir
    src = str(tmp_path / 'mp.h5')
    _maxpool_model(src)
    wd = make_workdir(str(tmp_path / 'mp'), model_path=src, num_test=20,
                      num_norm=20)
    cfg = setup(write_config(wd, extra=SPIKE_NORM))
    with pytest.raises(ConfigError, match='MaxPooling2D.*not supported by '
                       'the Spike-Norm'):
        parse_and_normalise(cfg)


def test_compare_gives_spike_norm_its_own_phase1(digits_dir, tmp_path):
    """In a comparison whose config uses weight normalisation, the
    spike_norm setting runs on a model normalised by Spike-Norm: the same
    numbers as a standalone spike_norm run."""
    from snntb_adaptive.cli import main
    cfg = write_config(digits_dir, name='sn_cmp.ini', label='sn_cmp',
                       duration=30)
    out = str(tmp_path / 'cmp')
    assert main(['compare', cfg, '--settings', 'paper,spike_norm', '--out',
                 out, '--raster-layer', 'none']) == 0
    with open(os.path.join(out, 'runs', 'spike_norm', 'results.json')) as f:
        in_compare = json.load(f)
    alone_cfg = write_config(digits_dir, name='sn_alone.ini',
                             label='sn_alone', duration=30,
                             extra=SPIKE_NORM)
    assert main(['-t', alone_cfg]) == 0
    with open(os.path.join(digits_dir, 'log', 'gui', 'sn_alone',
                           'results.json')) as f:
        alone = json.load(f)
    for res in (in_compare, alone):
        for key in ('created', 'wall_seconds', 'settings'):
            res.pop(key)
    assert in_compare == alone
