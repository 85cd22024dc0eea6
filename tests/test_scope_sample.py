"""``scope = sample``: a sample's spikes do not depend on the batch size or on
which other samples share its batch (SPEC). ``scope = batch`` does depend on
them, which shows the test can tell the difference."""

import numpy as np
import pytest

from conftest import build_snn, parse_and_normalise, setup, write_config


def _snn(digits_dir, batch_size, scope, preset='paper'):
    extra = ("\n[adaptive_threshold]\npreset = {}\nscope = {}\n"
             .format(preset, scope))
    cfg = setup(write_config(
        digits_dir, name='scope_{}_{}_{}.ini'.format(preset, scope,
                                                     batch_size),
        label='scope', batch_size=batch_size, num_to_test=batch_size,
        duration=40, extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    return build_snn(cfg, parsed, testset)


def _per_sample(snn, x):
    """Spikes of every layer, per sample: list over samples of a list over
    layers of (T, ...) arrays; plus output readout and thresholds."""
    trains = snn.simulate_spikes(x)
    snn.reset(0)
    readout, counts, thetas = snn.simulate_batch(x)
    snn.reset(0)
    return trains, readout, counts, thetas


@pytest.mark.parametrize('preset', ['paper', 'paper_window'])
def test_sample_results_independent_of_batch(digits_dir, digits_data,
                                             preset):
    x_all = digits_data[2].astype(np.float32)  # test images
    target = x_all[3]
    mates_a = x_all[10:17]
    mates_b = x_all[20:27]
    results = []
    for bs, batch, pos in [(1, target[None], 0),
                           (8, np.concatenate([target[None], mates_a]), 0),
                           (8, np.concatenate([mates_b[:4], target[None],
                                               mates_b[4:]]), 4)]:
        snn = _snn(digits_dir, bs, 'sample', preset)
        trains, readout, counts, thetas = _per_sample(snn, batch)
        results.append(([t[:, pos] for t in trains], readout[:, pos],
                        counts[:, pos], thetas[:, pos]))
    ref = results[0]
    for other in results[1:]:
        for a, b in zip(ref[0], other[0]):
            np.testing.assert_array_equal(a, b)
        for i in (1, 2, 3):
            np.testing.assert_array_equal(ref[i], other[i])
    assert ref[2].sum() > 0


def test_batch_scope_depends_on_batch_mates(digits_dir, digits_data):
    x_all = digits_data[2].astype(np.float32)
    a = np.concatenate([x_all[3:4], x_all[10:17]])
    b = np.concatenate([x_all[3:4], x_all[20:27]])
    snn = _snn(digits_dir, 8, 'batch', 'authors_code')
    _, _, counts_a, thetas_a = _per_sample(snn, a)
    _, _, counts_b, thetas_b = _per_sample(snn, b)
    assert not np.array_equal(thetas_a[:, 0], thetas_b[:, 0]) or \
        not np.array_equal(counts_a[:, 0], counts_b[:, 0])


def _whole_run(wd, batch_size):
    from snntb_adaptive.session import Session
    s = Session(write_config(
        wd, name='whole{}.ini'.format(batch_size),
        label='whole{}'.format(batch_size), batch_size=batch_size,
        num_to_test=100, duration=30))
    res = s.run('paper')
    for key in ('created', 'wall_seconds', 'settings'):
        res.pop(key)
    return res


def test_whole_run_invariant_to_batch_size(tmp_path):
    """A whole run (normalisation, simulation, metrics) with scope = sample
    gives the same results.json numbers at batch 50 and 25 when x_norm holds
    a multiple of both; with 330 normalisation images SNN-TB's rule drops
    the last partial batch (30 images at batch 50, 5 at batch 25), so the
    scale factors differ, and the plugin says so."""
    import logging
    from conftest import make_workdir
    wd = make_workdir(str(tmp_path / 'even'), num_test=100, num_norm=300)
    a, b = _whole_run(wd, 50), _whole_run(wd, 25)
    assert a == b, [k for k in a if a[k] != b[k]]
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger('snntb_adaptive')
    logger.addHandler(handler)
    try:
        wd = make_workdir(str(tmp_path / 'odd'), num_test=100, num_norm=330)
        a, b = _whole_run(wd, 50), _whole_run(wd, 25)
    finally:
        logger.removeHandler(handler)
    assert a != b
    text = ' '.join(warnings)
    assert 'only the 300 of whole batches of 50 are used' in text
    assert 'only the 325 of whole batches of 25 are used' in text
