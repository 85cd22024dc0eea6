"""The pipeline's stages, in one place and in order.

SNN-TB's ``run_pipeline`` (what ``snntoolbox -t`` runs) goes through the same
stages with the plugin's hooks in them; everything of the plugin's own that
runs a model (``compare``, ``bench``, the tests) calls these functions
instead of repeating SNN-TB's steps:

1. :func:`validate` - read the config file through SNN-TB's ``update_setup``,
   with the plugin's checks first (:mod:`snntb_adaptive.checks`);
2. :func:`parse` - load the data sets and the Keras model, SNN-TB's parser
   builds the parsed model;
3. :func:`phase1` - SNN-TB's ``normalize_parameters``: for the adaptive
   spike code that is the plugin's Phase-1 hook
   (:func:`snntb_adaptive.normalisation.phase1`);
4. :func:`build` - the target simulator's spiking network (SNN-TB's own for
   its spike codes, the plugin's for ``adaptive_threshold``);
5. :func:`simulate` - the test set batch by batch into a
   :class:`~snntb_adaptive.metrics.RunRecorder`, with durable progress;
6. :func:`record` - the paper's metrics into ``results.json``.

:func:`prepare` runs stages 2 and 3, the part a comparison shares between
its settings.
"""

import contextlib
import errno
import io
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from snntb_adaptive.errors import ConfigError, RunStopped
from snntb_adaptive.log import log, table

STAGES = ('validate', 'parse', 'phase1', 'build', 'simulate', 'record')


class Prepared(NamedTuple):
    """What stages 2 and 3 leave: the parsed (and normalised) model and the
    data sets as SNN-TB's ``get_dataset`` returns them."""

    config: object
    parsed: object
    normset: dict
    testset: dict


def validate(config_path):
    """Stage 1: SNN-TB's ``update_setup`` on ``config_path``, with the
    plugin's hooks (its checks run first, see :mod:`snntb_adaptive.hooks`).
    Returns the config."""
    from snntb_adaptive.log import quiet_tensorflow
    from snntb_adaptive.registration import ensure_legacy_keras, install
    install()
    ensure_legacy_keras()
    quiet_tensorflow()
    from snntoolbox.bin.utils import update_setup
    return update_setup(config_path)


def parse(config, model=None):
    """Stage 2: data sets, Keras model (``model`` or the config's file) and
    SNN-TB's parsed model. Returns ``(parsed, normset, testset)``."""
    from importlib import import_module
    from snntoolbox.datasets.utils import get_dataset
    normset, testset = get_dataset(config)
    lib = import_module('snntoolbox.parsing.model_libs.{}_input_lib'.format(
        config.get('input', 'model_lib')))    # keras, pytorch, onnx
    if model is None:
        model = lib.load(config.get('paths', 'path_wd'),
                         config.get('paths', 'filename_ann'))['model']
    parser = lib.ModelParser(model, config)
    parser.parse()
    return parser.build_parsed_model(), normset, testset


def phase1(parsed, config, normset):
    """Stage 3: SNN-TB's ``normalize_parameters`` (the plugin's Phase-1 hook
    for ``spike_code = adaptive_threshold``), when ``[tools] normalize``."""
    from snntoolbox.conversion.utils import normalize_parameters
    if config.getboolean('tools', 'normalize'):
        normalize_parameters(parsed, config, **normset)


def prepare(config, model=None):
    """Stages 2 and 3. Returns a :class:`Prepared`."""
    parsed, normset, testset = parse(config, model)
    phase1(parsed, config, normset)
    return Prepared(config, parsed, normset, testset)


def build(config, parsed, testset=None):
    """Stage 4: the target simulator's network for ``config``'s spike code,
    built from ``parsed``."""
    from snntoolbox.bin.utils import import_target_sim
    snn = import_target_sim(config).SNN(config)
    snn.build(parsed, **(testset or {}))
    return snn


def run_settings(snn):
    """The ``results.json`` settings every INI simulator run has (the
    plugin's, or SNN-TB's own ``snn``)."""
    from snntb_adaptive.foreign_models import model_files
    cfg = snn.config
    return {
        'v_max': cfg.getfloat('cell', 'v_thresh'),
        'duration': snn._duration,
        'dt': snn._dt,
        'batch_size': snn.batch_size,
        'num_to_test': cfg.getint('simulation', 'num_to_test'),
        'top_k': snn.top_k,
        # the .h5, the .onnx, or the PyTorch weights
        'model_file': model_files(cfg)[-1],
        'normalize': cfg.getboolean('tools', 'normalize'),
        'percentile': cfg.getfloat('normalization', 'percentile'),
        'reset_between_nth_sample': cfg.getint('simulation',
                                               'reset_between_nth_sample'),
    }


def num_batches(num_to_test, num_samples, batch_size):
    """Whole batches a run simulates; an error when not even one."""
    n = min(num_to_test, num_samples)
    if n < batch_size:
        raise ConfigError(
            "Fewer test samples ({}) than one batch ({}). Lower [simulation] "
            "batch_size or add samples.".format(n, batch_size))
    return n // batch_size


@contextmanager
def sigterm_as_interrupt():
    """Inside the block SIGTERM stops the run as Ctrl-C does (main thread
    only; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt('SIGTERM')
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def simulate(simulate_batch, reset, parsed_model, x_test, y_test, batch_size,
             num_to_test, recorder, progress=None):
    """Stage 5: simulate ``x_test`` batch by batch into ``recorder``,
    evaluating the ANN on the same batches; print progress. Returns the wall
    time.

    ``simulate_batch(x_batch, truth)`` returns ``(scores (T,B,C), counts,
    thetas, synops)``; ``reset(batch_index)`` is SNN-TB's reset after each batch.
    With a :class:`~snntb_adaptive.progress.Progress`, batches it holds
    already are taken from it (in batch order, so sums are formed as in an
    uninterrupted run) and each new batch is appended to it durably.
    Ctrl-C, SIGTERM or a full disk stop the run with a
    :class:`~snntb_adaptive.errors.RunStopped` that says how many batches
    are saved.
    """
    from snntb_adaptive.progress import rss_mb
    SIMULATION_STARTED.append(True)
    total = num_batches(num_to_test, len(x_test), batch_size)
    started = time.time()
    done_before = progress.done if progress is not None else {}
    simulated = 0
    try:
        with sigterm_as_interrupt():
            for b in range(total):
                if b in done_before:
                    recorder.add_record(done_before[b])
                    continue
                t0 = time.time()
                rec = batch_record(simulate_batch, reset, parsed_model,
                                   x_test, y_test, batch_size, recorder, b)
                recorder.add_record(rec)
                if progress is not None:
                    progress.append(b, rec,
                                    seconds=round(time.time() - t0, 4),
                                    rss_mb=rss_mb())
                simulated += 1
                done, elapsed = b + 1, time.time() - started
                table("batch {}/{}  acc {:.2%}  {:.0f} steps/s  {:.1f} s "
                      "elapsed, {:.1f} s left".format(
                          done, total, recorder.running_accuracy(),
                          recorder.num_steps / max(time.time() - t0, 1e-9),
                          elapsed, elapsed / simulated * (total - done)))
                sys.stdout.flush()
    except KeyboardInterrupt as e:
        raise RunStopped(stopped_message(
            'stopped by SIGTERM' if str(e) == 'SIGTERM' else 'interrupted',
            progress, len(done_before) + simulated, total)) from None
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise RunStopped(stopped_message(
            'no space left on the device', progress,
            len(done_before) + simulated, total)) from None
    return time.time() - started


def batch_simulator(snn):
    """``simulate_batch(x_batch, truth) -> (scores (T,B,C), counts,
    thetas, synops)`` of a built network: the plugin's (scores: cumulative
    output spikes or membrane input; spikes, thresholds and synaptic
    operations per layer), or SNN-TB's own (its cumulative output spike
    counts; no per-layer records)."""
    if hasattr(snn, 'simulate_batch'):
        def simulate_batch(x_b, truth):
            readout, counts, thetas, synops = snn.simulate_batch(
                x_b, synops=True)
            return snn.readout_scores(readout), counts, thetas, synops
    else:
        def simulate_batch(x_b, truth):
            # SNN-TB prints every step's batch accuracy (100 numbers a
            # batch); the run's progress lines say how it goes
            with contextlib.redirect_stdout(io.StringIO()):
                counts = snn.simulate(x_b_l=x_b, truth_b=truth)
            return (np.transpose(counts, (2, 0, 1)).astype(np.int32), None,
                    None, None)
    return simulate_batch


def reference_ann(parsed_model):
    """The ANN a run's ``ann_accuracy`` is measured with: the parsed model
    as Phase 1 found it when Phase 1 changes the network's function
    (``spike_norm``, ``calibrated``: kept as ``reference_ann`` by
    :func:`snntb_adaptive.normalisation.keep_reference`), else the parsed
    model itself (SNN-TB's weight normalisation keeps the function)."""
    return getattr(parsed_model, 'reference_ann', None) or parsed_model


def batch_record(simulate_batch, reset, parsed_model, x_test, y_test,
                 batch_size, recorder, b):
    """Simulate batch ``b`` (then SNN-TB's reset) and evaluate the ANN on
    it; returns the batch's record (``recorder.batch_record``), the unit the
    run's sums and ``progress.jsonl`` are made of. The same on every
    executor."""
    from snntb_adaptive.metrics import topk_correct
    sl = slice(b * batch_size, (b + 1) * batch_size)
    x_b, y_b = x_test[sl], y_test[sl]
    truth = np.argmax(y_b, axis=1)
    scores, counts, thetas, synops = simulate_batch(x_b, truth)
    ann = np.asarray(reference_ann(parsed_model).predict_on_batch(x_b))
    # NaN would rank as a winner in the top-k: refuse it instead
    for what, values in (('the ANN\'s outputs', ann),
                         ('the SNN\'s scores', scores)):
        if not np.all(np.isfinite(values)):
            from snntb_adaptive.errors import DataError
            raise DataError(
                "{} on test batch {} are not finite numbers: the network's "
                "parameters or the inputs overflowed (were the weights or "
                "the scale factors edited?). Check the model and the data, "
                "and delete cached scale factors.".format(what, b))
    rec = recorder.batch_record(
        truth, scores, counts, thetas,
        ann_top1=int(np.sum(topk_correct(ann, truth, 1))),
        ann_topk=int(np.sum(topk_correct(ann, truth, recorder.top_k))),
        synops=synops)
    reset(b)
    return rec


#: set when a simulation starts in this process (the plugin's, or SNN-TB's
#: own simulator through :func:`snntb_adaptive.hooks.patch_simulation`)
SIMULATION_STARTED = []


def stopped_early_message(interrupt):
    """The one line for Ctrl-C or SIGTERM (``interrupt``, the
    ``KeyboardInterrupt``) that no simulation turned into its own message
    (:func:`stopped_message`, which says what it saved): before the
    simulation (checking, parsing, normalising, calibrating), or in SNN-TB's
    own simulator, which keeps no progress."""
    what = 'stopped by SIGTERM' if str(interrupt) == 'SIGTERM' \
        else 'interrupted'
    if SIMULATION_STARTED:
        return ("{} during the simulation: SNN-TB's own simulator keeps no "
                "progress; run the same command again".format(what))
    return ("{} before the simulation began (while parsing, normalising or "
            "calibrating): no batch was simulated, and nothing half-written "
            "is kept (scale factors and calibration.json are written whole "
            "or not at all); run the same command again to start over"
            "".format(what))


def stopped_message(what, progress, saved, total):
    if progress is None:
        return "{} after {} of {} batches; nothing of the run was saved" \
            "".format(what, saved, total)
    return ("{}: {} of {} batches are saved in {}; run the same config "
            "again with --resume (or [adaptive_threshold] resume = True) to "
            "continue".format(what, saved, total, progress.path))


def record(log_dir, recorder, settings, seconds):
    """Stage 6: the metrics of ``recorder`` into ``log_dir/results.json``
    (an existing file is kept under another name). Returns the results."""
    from snntb_adaptive.metrics import write_results
    results = recorder.results(settings, seconds)
    path = write_results(log_dir, results)
    log.info("accuracy top-1 {:.2%} (ANN {:.2%}) on {} samples; convergence "
             "step {}; firing rate {}. Results written to {}".format(
                 results['final_accuracy_top1'],
                 results['ann_accuracy_top1'], results['num_samples'],
                 results['convergence_step'],
                 '-' if results['firing_rate'] is None
                 else '{:.4f}'.format(results['firing_rate']), path))
    return results
