"""Burst spikes (``[adaptive_threshold] max_spikes_per_step``): a neuron
may emit several spikes in one step. The neuron itself is checked by hand
in ``test_dynamics.py``; here whole networks: the compiled loop and the
step path agree, the fused op is refused or skipped with a notice, the
spike readout counts every spike, the calibration calibrates for it, and
bad values fail in one line. With the default of 1 every result is today's
(``test_golden.py`` runs the defaults)."""

import numpy as np
import pytest

from conftest import build_snn, parse_and_normalise, setup, write_config
from snntb_adaptive.errors import ConfigError


@pytest.mark.parametrize('preset', ['paper', 'calibrated\ncalibration_steps '
                                             '= 4'])
def test_both_loops_agree_and_spikes_come_in_bursts(digits_dir, preset):
    extra = ("\n[adaptive_threshold]\npreset = {}\nmax_spikes_per_step = 3\n"
             "readout = spikes\n".format(preset))
    label = 'burst_' + preset.split()[0]
    cfg = setup(write_config(digits_dir, name=label + '.ini', label=label,
                             duration=8, extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    assert snn.kernel == 'tf'                   # auto: the op has no bursts
    x = testset['x_test'][:10]
    graph = snn.simulate_batch(x, synops=True)
    snn.reset(0)
    snn.loop = 'step'
    step = snn.simulate_batch(x, synops=True)
    snn.reset(0)
    for a, b in zip(graph, step):
        np.testing.assert_array_equal(a, b)
    # spikes come as n * V_max, several at once in some neurons
    trains = snn.simulate_spikes(x)
    snn.reset(0)
    assert max(t.max() for t in trains) > 1
    assert all(np.array_equal(t, np.rint(t)) for t in trains)
    # the spike readout counts every spike of a burst; counts per layer too
    readout = graph[0]
    np.testing.assert_array_equal(snn.readout_scores(readout)[-1],
                                  readout.sum(axis=0))
    np.testing.assert_array_equal(
        graph[1].sum(axis=(0, 1)),
        [t.sum() for t in trains])          # V_max = 1: spikes = sum


def test_fused_kernel_is_refused_with_bursts(digits_dir):
    extra = ("\n[adaptive_threshold]\nmax_spikes_per_step = 2\n"
             "kernel = fused\n")
    cfg = setup(write_config(digits_dir, name='burst_fused.ini',
                             label='burst_fused', extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    with pytest.raises(ConfigError, match='one spike per step, not '
                       'max_spikes_per_step = 2.*kernel = auto'):
        build_snn(cfg, parsed, testset)


def test_calibration_counts_bursts():
    """What a burst neuron can express: up to ``max_spikes`` per step, so a
    threshold search for 4 spikes picks a lower threshold (finer steps) for
    the same activations."""
    from snntb_adaptive import calibration
    a = np.float32([0.5, 1.0, 2.5, 3.0])
    np.testing.assert_array_equal(calibration.expressible(a, 1.0, 2, 0.0),
                                  [0.5, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(calibration.expressible(a, 1.0, 2, 0.0, 3),
                                  [0.5, 1.0, 2.5, 3.0])
    acts = np.random.default_rng(0).uniform(0, 1, (2000, 1)).astype(
        np.float32)
    one = calibration.search_thresholds(acts, 4, 0.5, True)
    four = calibration.search_thresholds(acts, 4, 0.5, True, 4)
    assert four[0] < 0.5 * one[0]


@pytest.mark.parametrize('line, message', [
    ('max_spikes_per_step = 0', "max_spikes_per_step = '0': give a whole "
     "number >= 1"),
    ('max_spikes_per_step = 2.5', "max_spikes_per_step = '2.5'"),
    ('max_spikes_per_step = 256', 'max_spikes_per_step = 256: at most 255'),
    ('preset = spike_norm\nmax_spikes_per_step = 2',
     'cannot be combined with preset = spike_norm'),
])
def test_bad_values_fail_in_one_line(digits_dir, line, message):
    extra = "\n[adaptive_threshold]\n{}\n".format(line)
    with pytest.raises(ConfigError, match=message):
        setup(write_config(digits_dir, name='burst_bad.ini',
                           label='burst_bad', extra=extra))
