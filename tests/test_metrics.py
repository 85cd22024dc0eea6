"""The paper's metrics and the run loop, on hand-made numbers with exact
expected values (worked out by hand in the comments)."""

import numpy as np

from snntb_adaptive import pipeline
from snntb_adaptive.metrics import (RunRecorder, convergence_step,
                                    topk_correct)


def test_convergence_step_is_the_first_step_within_tolerance():
    # final 0.98; within 2 %: acc > 0.9604. Step 6 (0.97) is the first;
    # step 5 (0.80) drops out again, steps 7 and 8 are inside too.
    acc = [0.10, 0.50, 0.90, 0.95, 0.80, 0.97, 0.98, 0.98]
    assert convergence_step(acc) == 6
    # entering, leaving and entering again: still the first entry (step 2)
    assert convergence_step([0.5, 0.99, 0.7, 1.0]) == 2
    # nothing within tolerance before the last step: T
    assert convergence_step([0.1, 0.2, 0.9]) == 3
    # accuracy 0 at T: T by definition
    assert convergence_step([0.3, 0.0]) == 2


def test_topk_ties_go_to_the_lower_index_and_undecided_is_wrong():
    scores = np.array([[3, 3, 1], [0, 2, 2], [0, 0, 0]])
    truth = np.array([1, 1, 2])
    # sample 0: tie 3/3, class 0 wins; sample 1: tie, class 1 wins
    np.testing.assert_array_equal(topk_correct(scores, truth, 1),
                                  [False, True, False])
    np.testing.assert_array_equal(topk_correct(scores, truth, 2),
                                  [True, True, False])
    undecided = np.array([False, False, True])
    np.testing.assert_array_equal(
        topk_correct(scores, truth, 3, undecided), [True, True, False])


def _recorder():
    rows = [{'name': 'a', 'type': 'Conv2D', 'neurons': 4},
            {'name': 'b', 'type': 'Dense', 'neurons': 10}]
    return RunRecorder(rows, num_steps=2, top_k=1, num_classes=3)


def test_firing_rates_and_thresholds_exact():
    rec = _recorder()
    # one batch of 2 samples, T = 2; counts (T, B, L)
    counts = np.array([[[1, 2], [3, 0]],
                       [[2, 5], [0, 1]]], np.float32)
    thetas = np.array([[[0.5, 0.75], [0.625, 0.75]],
                       [[0.75, 1.0], [0.625, 0.875]]], np.float32)
    scores = np.array([[[0, 1, 0], [0, 0, 0]],
                       [[0, 2, 0], [1, 0, 0]]])
    rec.add_batch(np.array([1, 0]), scores, counts, thetas, 2, 2)
    res = rec.results({}, 1.0)
    # layer a: 1 + 3 + 2 + 0 = 6 spikes / (4 neurons * 2 steps * 2 samples)
    # layer b: 2 + 0 + 5 + 1 = 8 spikes / (10 * 2 * 2)
    assert res['firing_rate_per_layer'] == {'a': 6 / 16, 'b': 8 / 40}
    # network: 14 spikes / (14 neurons * 2 * 2)
    assert res['firing_rate'] == 14 / 56
    assert res['spikes_per_layer'] == {'a': 6, 'b': 8}
    assert res['spikes_per_step_per_layer'] == {'a': [4, 2], 'b': [2, 6]}
    trace = res['threshold_trace']['a']
    # (dyadic values: every mean is exact)
    assert trace['mean'] == [0.5625, 0.6875]
    assert trace['min'] == [0.5, 0.625] and trace['max'] == [0.625, 0.75]
    # step 1: sample 0 right, sample 1 undecided; step 2: both right
    assert res['accuracy_top1_per_step'] == [0.5, 1.0]
    assert res['convergence_step'] == 2


def test_run_loop_takes_finished_batches_from_progress_and_skips_them():
    """Batches a progress file holds are added from it and not simulated
    again; the others are simulated and appended, in batch order."""

    class Model:
        def predict_on_batch(self, x):
            return np.eye(3)[x[:, 0].astype(int)]

    class FakeProgress:
        def __init__(self, done):
            self.done, self.appended = done, []

        def append(self, b, rec, **extra):
            self.appended.append(b)

    x = np.array([[0], [1], [2], [0], [1], [2]], np.float32)
    y = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    simulated = []

    def simulate_batch(x_b, truth):
        simulated.append(int(x_b[0, 0]))
        scores = np.broadcast_to(np.eye(3)[truth], (2,) + (len(truth), 3))
        counts = np.ones((2, len(truth), 2), np.float32)
        return scores.astype(np.int32), counts, np.ones_like(counts)

    # a whole run, for the records of batch 1
    whole = _recorder()
    whole_progress = FakeProgress({})
    records = {}
    whole_progress.append = lambda b, rec, **e: records.__setitem__(b, rec)
    pipeline.simulate(simulate_batch, lambda b: None, Model(), x, y, 2, 6,
                      whole, whole_progress)
    assert simulated == [0, 2, 1]
    simulated.clear()
    resumed = _recorder()
    progress = FakeProgress({1: records[1]})
    pipeline.simulate(simulate_batch, lambda b: None, Model(), x, y, 2, 6,
                      resumed, progress)
    assert simulated == [0, 1]           # the first values of batches 0, 2
    assert progress.appended == [0, 2]
    assert resumed.results({}, 0)['spikes_per_layer'] == \
        whole.results({}, 0)['spikes_per_layer'] == {'a': 12, 'b': 12}


def test_eq7_tolerance_is_relative_to_the_final_accuracy():
    """2 % of the final accuracy, not 0.02 absolute: at a final accuracy of
    0.5, 0.485 is 3 % away (outside) although only 0.015 below."""
    assert convergence_step([0.485, 0.5]) == 2
    assert convergence_step([0.491, 0.5]) == 1     # 1.8 %: inside
    # and above a final accuracy of 1 it is wider than 0.02 absolute
    assert convergence_step([0.965, 1.5]) == 2
    assert convergence_step([1.475, 1.5]) == 1     # 1.7 %, 0.025 below
