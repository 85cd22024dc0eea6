"""The paper's metrics (Sec. 5) and the ``results.json`` file.

Conventions (also in the README):

* class decision at step ``t``: argmax of the scores (cumulative output spike
  counts, or cumulative input for ``readout = membrane``), ties to the lowest
  index; with spike readout a sample whose output layer has not spiked yet is
  undecided and counts as wrong (SNN-TB's convention) for top-1 and top-k;
* top-k: the true class is among the k best, ties broken as for top-1;
* convergence step (Eq. 7): the first ``t`` (1-based) with
  ``|acc_t - acc_T| / acc_T < 0.02``; ``T`` when no step qualifies or
  ``acc_T = 0``;
* firing rate (Eq. 8): total spikes / (neurons x T x samples), for the
  network and per spiking layer;
* threshold trace: per layer and step, mean / min / max of theta over all
  samples.
"""

import os
import time

import numpy as np

from snntb_adaptive import __version__
from snntb_adaptive.compat import write_json_atomic
from snntb_adaptive.log import log

RESULTS_FILE = 'results.json'
CONVERGENCE_TOLERANCE = 0.02


def topk_correct(scores, truth, k, undecided=None):
    """Boolean per sample: is ``truth`` among the ``k`` best ``scores``
    (``(..., B, C)``), ties to the lower index? ``undecided`` (same leading
    shape, bool) marks samples that count as wrong."""
    scores = np.asarray(scores)
    truth = np.asarray(truth)
    idx = np.arange(scores.shape[-1])
    s_true = np.take_along_axis(
        scores, np.broadcast_to(truth[..., None],
                                scores.shape[:-1] + (1,)), axis=-1)
    rank = np.sum(scores > s_true, axis=-1) + np.sum(
        (scores == s_true) & (idx < truth[..., None]), axis=-1)
    correct = rank < k
    if undecided is not None:
        correct &= ~undecided
    return correct


def convergence_step(acc_per_step, tolerance=CONVERGENCE_TOLERANCE):
    """Eq. 7: first 1-based step within ``tolerance`` (relative) of the
    final accuracy."""
    acc = np.asarray(acc_per_step, float)
    final = acc[-1]
    if final <= 0:
        return len(acc)
    ok = np.nonzero(np.abs(acc - final) / final < tolerance)[0]
    return int(ok[0]) + 1 if ok.size else len(acc)


class RunRecorder:
    """Accumulates per-batch quantities into whole-run metrics."""

    def __init__(self, layer_rows, num_steps, top_k, num_classes,
                 ann_macs=None):
        self.layers = [dict(r) for r in layer_rows]
        #: the ANN's multiply-accumulates per image, per layer with weights
        self.ann_macs = ann_macs
        self.num_steps = num_steps
        self.top_k = top_k
        self.num_classes = num_classes
        L, T = len(layer_rows), num_steps
        self.n = 0
        self.correct1 = np.zeros(T, np.int64)
        self.correctk = np.zeros(T, np.int64)
        self.spikes = np.zeros(L, np.float64)
        self.spikes_per_step = np.zeros((T, L), np.float64)
        self.theta_sum = np.zeros((T, L), np.float64)
        self.theta_min = np.full((T, L), np.inf)
        self.theta_max = np.full((T, L), -np.inf)
        #: synaptic operations per step and layer (NaN once a record has
        #: none: SNN-TB's own simulator, progress of an older version)
        self.synops_per_step = np.zeros((T, L), np.float64)
        self.ann1 = 0
        self.annk = 0

    def batch_record(self, truth, scores, counts, thetas, ann_top1, ann_topk,
                     synops=None):
        """Reduce one batch to what the run keeps.

        ``scores (T, B, C)``, ``counts (T, B, L)``, ``thetas (T, B, L)``,
        ``synops (T, B, L)``; ``counts``, ``thetas`` and ``synops`` may be
        None (a simulator that does not report them: SNN-TB's own).
        """
        T, L = self.num_steps, len(self.layers)
        if counts is None:
            counts = np.full((T, 1, L), np.nan)
        if thetas is None:
            thetas = np.full((T, 1, L), np.nan)
        truth = np.asarray(truth)
        undecided = np.all(scores == 0, axis=-1) if np.issubdtype(
            scores.dtype, np.integer) else None
        truth_tb = np.broadcast_to(truth, scores.shape[:2])
        return {
            'n': int(len(truth)),
            'correct1': topk_correct(scores, truth_tb, 1, undecided).sum(1),
            'correctk': topk_correct(scores, truth_tb, self.top_k,
                                     undecided).sum(1),
            'spikes_per_step': counts.sum(axis=1),
            'theta_sum': thetas.astype(np.float64).sum(axis=1),
            'theta_min': thetas.min(axis=1),
            'theta_max': thetas.max(axis=1),
            'ann1': int(ann_top1), 'annk': int(ann_topk),
            **({} if synops is None else {
                'synops_per_step': np.asarray(synops, np.float64).sum(
                    axis=1)}),
        }

    def add_record(self, rec):
        self.n += rec['n']
        self.correct1 += np.asarray(rec['correct1'], np.int64)
        self.correctk += np.asarray(rec['correctk'], np.int64)
        sps = np.asarray(rec['spikes_per_step'], np.float64)
        self.spikes_per_step += sps
        self.spikes += sps.sum(axis=0)
        self.theta_sum += np.asarray(rec['theta_sum'], np.float64)
        self.theta_min = np.minimum(self.theta_min, rec['theta_min'])
        self.theta_max = np.maximum(self.theta_max, rec['theta_max'])
        self.synops_per_step += np.asarray(rec.get('synops_per_step', np.nan),
                                           np.float64)
        self.ann1 += rec['ann1']
        self.annk += rec['annk']

    def add_batch(self, truth, scores, counts, thetas, ann_top1, ann_topk,
                  synops=None):
        rec = self.batch_record(truth, scores, counts, thetas, ann_top1,
                                ann_topk, synops)
        self.add_record(rec)
        return rec

    def running_accuracy(self):
        return self.correct1[-1] / self.n if self.n else 0.0

    def results(self, settings, seconds):
        """The ``results.json`` content."""
        n, T = self.n, self.num_steps
        acc1 = self.correct1 / n
        acck = self.correctk / n
        neurons = np.array([r['neurons'] for r in self.layers], np.float64)
        rate_layer = self.spikes / (neurons * T * n)
        names = [r['name'] for r in self.layers]
        theta_mean = self.theta_sum / n
        has_spikes = bool(np.all(np.isfinite(self.spikes)))
        has_theta = bool(np.all(np.isfinite(self.theta_sum)))
        has_synops = bool(np.all(np.isfinite(self.synops_per_step)))
        synops = self.synops_per_step / n
        return {
            'snntb_adaptive_version': __version__,
            'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
            'wall_seconds': round(float(seconds), 3),
            'settings': dict(settings, num_samples=n),
            'layers': self.layers,
            'num_samples': n,
            'top_k': self.top_k,
            'accuracy_top1_per_step': acc1.tolist(),
            'accuracy_topk_per_step': acck.tolist(),
            'final_accuracy_top1': float(acc1[-1]),
            'final_accuracy_topk': float(acck[-1]),
            'ann_accuracy_top1': self.ann1 / n,
            'ann_accuracy_topk': self.annk / n,
            'convergence_step': convergence_step(acc1),
            'convergence_tolerance': CONVERGENCE_TOLERANCE,
            'firing_rate': float(self.spikes.sum() / (neurons.sum() * T * n))
            if has_spikes else None,
            'firing_rate_per_layer': dict(zip(names, rate_layer.tolist()))
            if has_spikes else None,
            'spikes_per_layer': dict(zip(names, [int(s) for s in
                                                 self.spikes]))
            if has_spikes else None,
            'spikes_per_step_per_layer': {
                name: self.spikes_per_step[:, i].astype(np.int64).tolist()
                for i, name in enumerate(names)} if has_spikes else None,
            'threshold_trace': {
                name: {'mean': theta_mean[:, i].tolist(),
                       'min': self.theta_min[:, i].tolist(),
                       'max': self.theta_max[:, i].tolist()}
                for i, name in enumerate(names)} if has_theta else None,
            # cost per image: each spike times the synapses it reaches
            'synaptic_operations_per_image': float(synops.sum())
            if has_synops else None,
            'synaptic_operations_per_layer': dict(zip(names, synops.sum(
                axis=0).tolist())) if has_synops else None,
            'synaptic_operations_per_step': np.cumsum(
                synops.sum(axis=1)).tolist() if has_synops else None,
            'ann_macs_per_image': None if self.ann_macs is None else
            int(sum(self.ann_macs.values())),
            'ann_macs_per_layer': self.ann_macs,
        }


def write_results(log_dir, results):
    """Write ``results.json`` atomically. An existing one is kept, renamed
    ``results.<its modification time>.json``; nothing is overwritten."""
    from snntb_adaptive.progress import keep_aside
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, RESULTS_FILE)
    if os.path.exists(path):
        log.info("kept the previous results as {}".format(keep_aside(path)))
    write_json_atomic(path, results, indent=1)
    return path


def load_results(path):
    from snntb_adaptive.compat import read_json_file
    return read_json_file(path, 'results file')
