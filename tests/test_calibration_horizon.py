"""``calibration_horizon = auto``: the calibration for each horizon of
``calibration.HORIZONS``, judged on held-aside x_norm images by how often
the calibrated network, run for T steps, gives the ANN's class.

The network simulator that judges (``calibration.simulate_network``) is
checked against SNN-TB's INI simulator with the plugin's layers; the kept
calibration is the one a run with that horizon alone gives, bit for bit;
the rule (agreement first, then the score difference) is checked on the
recorded measurements; the judging images come from after the calibration
images and fall back, with a warning, when x_norm has too few."""

import numpy as np
import pytest

from conftest import (CALIBRATED_T8, build_snn, make_workdir, run_phase1,
                      setup, write_config)
from snntb_adaptive import calibration
from snntb_adaptive.config import settings_from_config

T = 8
AUTO = CALIBRATED_T8.replace('calibration_horizon = 1',
                             'calibration_horizon = auto')


@pytest.fixture(scope='module')
def wd(tmp_path_factory):
    # 300 x_norm images: 200 calibrate, the other 100 judge
    return make_workdir(str(tmp_path_factory.mktemp('horizon')),
                        num_test=100)


@pytest.fixture(scope='module')
def auto_run(wd):
    return run_phase1(wd, 'auto', AUTO)


def test_auto_is_the_default_and_lists_its_candidates(wd):
    cfg = setup(write_config(wd, name='auto_default.ini',
                             label='auto_default',
                             extra=CALIBRATED_T8.replace(
                                 'calibration_horizon = 1\n', '')))
    settings = settings_from_config(cfg)
    assert settings.calibration_horizon == 'auto'
    # T = 8: a quarter (2 steps) and a half (4 steps)
    assert settings.calibration_candidates == [(0.25, 2), (0.5, 4)]
    assert settings.calibration()['simulated_steps'] == [2, 4]
    for steps, expected in [(1, [(0.25, 1)]), (2, [(0.25, 1)]),
                            (3, [(0.25, 1), (0.5, 2)]),
                            (64, [(0.25, 16), (0.5, 32)])]:
        s = settings.__class__(calibration_steps=steps)
        assert s.calibration_candidates == expected


def test_auto_keeps_the_candidate_that_agrees_best(wd, auto_run):
    _, parsed, _, path = auto_run
    data = calibration.read(path)
    selection = data['selection']
    rows = selection['candidates']
    assert [(r['horizon'], r['simulated_steps']) for r in rows] == \
        [(0.25, 2), (0.5, 4)]
    assert selection['steps'] == T and selection['images'] == 100
    best = min(rows, key=lambda r: (-r['agreement'], r['score_rmse']))
    assert selection['chosen'] == best['horizon']
    assert all(0 <= r['agreement'] <= 1 and r['score_rmse'] > 0
               for r in rows)
    record = parsed.calibration_record
    assert record['horizon_selection'] == selection
    assert record['settings']['horizon'] == 'auto'
    assert record['settings']['judge_images'] == 100
    # the kept calibration is the one that horizon alone gives
    _, alone, _, alone_path = run_phase1(
        wd, 'auto_alone', CALIBRATED_T8.replace(
            'calibration_horizon = 1',
            'calibration_horizon = {:g}'.format(selection['chosen'])))
    for a, b in zip(data['layers'], calibration.read(alone_path)['layers']):
        assert a == b
    for a, b in zip(parsed.get_weights(), alone.get_weights()):
        np.testing.assert_array_equal(a, b)
    for name, frac in alone.initial_membrane.items():
        np.testing.assert_array_equal(parsed.initial_membrane[name], frac)


def test_auto_measurement_is_the_networks(wd, auto_run):
    """The kept candidate's recorded agreement is what the calibrated model
    (as Phase 1 leaves it) gives on the judging images (x_norm 200-299) in
    SNN-TB's simulator with the plugin's layers after T steps, against the
    Keras model's classes."""
    import os
    from tensorflow import keras
    cfg, parsed, testset, path = auto_run
    data = os.path.join(cfg.get('paths', 'dataset_path'), 'x_norm.npz')
    judge = np.load(data)['arr_0'].astype(np.float32)[200:300]
    ann = keras.models.load_model(os.path.join(wd, 'model.h5'),
                                  compile=False).predict(judge, verbose=0)
    selection = calibration.read(path)['selection']
    row = [r for r in selection['candidates']
           if r['horizon'] == selection['chosen']][0]
    snn = build_snn(cfg, parsed, testset)
    predicted = []
    for start in range(0, len(judge), snn.batch_size):
        readout, _, _ = snn.simulate_batch(judge[start:start +
                                                 snn.batch_size])
        snn.reset(0)
        predicted.append(np.argmax(snn.readout_scores(readout)[T - 1],
                                   axis=1))
    agreement = np.mean(np.concatenate(predicted) == np.argmax(ann, 1))
    # one image of 100 may tip where two scores are within float error
    assert agreement == pytest.approx(row['agreement'], abs=0.011)


def test_simulate_network_matches_the_simulator(wd):
    """The calibration's network simulator gives SNN-TB's simulator's
    membrane readout (the plugin's layers, compiled loop) after T steps."""
    cfg, parsed, testset, _ = run_phase1(wd, 'simnet', CALIBRATED_T8,
                                         duration=T)
    spiking = set(parsed.initial_membrane)
    x = testset['x_test'][:20]
    ours = calibration.simulate_network(parsed, x, T, 1.0,
                                        lambda layer: layer.name in spiking)
    assert ours.shape == (T, 20, 10)
    snn = build_snn(cfg, parsed, testset)
    readout, _, _ = snn.simulate_batch(x[:snn.batch_size])
    snn.reset(0)
    theirs = snn.readout_scores(readout)[:T]
    np.testing.assert_allclose(ours[:, :snn.batch_size], theirs, rtol=1e-4,
                               atol=1e-4)


def test_auto_reused_and_redone_when_the_judging_images_change(wd,
                                                               auto_run):
    _, first, _, path = auto_run
    _, again, _, path2 = run_phase1(wd, 'auto', AUTO)
    assert path2 == path and again.calibration_record['reused'] is True
    assert again.calibration_record['fingerprint'] == \
        first.calibration_record['fingerprint']
    # other held-aside images: another fingerprint
    other = make_workdir(str(wd) + '_other', num_test=100, num_norm=260)
    _, redone, _, _ = run_phase1(other, 'auto', AUTO)
    assert redone.calibration_record['reused'] is False
    # 60 left after the 200 calibration images: those judge instead
    assert redone.calibration_record['settings']['judge_images'] == 200


def test_judge_images(caplog):
    x = np.arange(2000, dtype=np.float32)[:, None]
    # after the calibration's 512; at most 512 and 16384 / T
    np.testing.assert_array_equal(calibration.judge_images(x, 512, 8)[:, 0],
                                  np.arange(512, 1024))
    assert len(calibration.judge_images(x, 512, 64)) == 256
    assert len(calibration.judge_images(x, 512, 4096)) == 64
    assert not caplog.records
    # fewer than 64 left: the calibration images, with a warning
    few = calibration.judge_images(x[:550], 512, 8)
    np.testing.assert_array_equal(few[:, 0], np.arange(512))
    assert 'the calibration images judge the horizons' in caplog.text


def test_the_rule_agreement_first_then_the_score_difference(monkeypatch):
    """Three candidates: the first agrees least, the second and third
    agree as often, the second's scores are closer: the second is kept,
    and the model ends with its parameters."""
    ann = np.array([[0., 1.], [1., 0.], [0., 1.], [1., 0.]])
    outputs = {1: np.array([[1., 0.], [1., 0.], [0., 1.], [0., 1.]]),
               2: np.array([[0., .9], [.9, 0.], [0., 1.], [0., 1.]]),
               3: np.array([[0., 3.], [3., 0.], [0., 3.], [0., 1.]])}
    applied = []
    monkeypatch.setattr(calibration, 'check_memory', lambda *a, **k: None)
    monkeypatch.setattr(calibration, 'ann_scores', lambda *a: ann)
    monkeypatch.setattr(
        calibration, 'simulate_network',
        lambda model, x, steps, *a: outputs[model.last][None] * steps)

    class Model:
        layers = []

    def calibrate(model, x, steps, *a, **k):
        model.last = steps
        return [{'steps': steps, 'weight_scale': [1.0]}]
    monkeypatch.setattr(calibration, 'calibrate', calibrate)
    monkeypatch.setattr(calibration, 'apply',
                        lambda model, data, s: applied.append(data))
    records, selection = calibration.calibrate_horizons(
        Model(), None, np.zeros((4, 1)), [(0.1, 1), (0.2, 2), (0.3, 3)], 8,
        1.0, None)
    assert [r['agreement'] for r in selection['candidates']] == \
        [0.5, 0.75, 0.75]
    assert selection['chosen'] == 0.2 and records[0]['steps'] == 2
    assert applied == [{'layers': records}]
    # one candidate: calibrated, nothing judged
    records, selection = calibration.calibrate_horizons(
        Model(), None, None, [(1, 8)], 8, 1.0, None)
    assert selection is None and records[0]['steps'] == 8
