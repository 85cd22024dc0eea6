"""Benchmark: simulation and normalisation time and memory, side by side with
SNN-TB's own simulator, in one process.

    python -m snntb_adaptive bench [--models digits,mnist,vgg7]
        [--duration 200] [--batch-size 50] [--batches N] [--norm-images 1000]
        [--shared ../shared] [--memory]

(``bench --help`` lists the options.)

Per model it prints, per batch of ``--batch-size`` images and ``--duration``
steps, the median over ``--batches`` rounds (by default 15 for the small
nets, 5 for the VGGs) after one warm-up call each; in each round every row
runs once, in turn, on the same batch, so that a slow phase of the machine
falls on all rows alike:

* ``floor``: the dense ANN (parsed, normalised) run ``T`` times on the batch
  inside one compiled loop - this machine's dense-compute floor, the
  reference of every ratio; for comparison also ``T`` separate
  ``predict_on_batch`` calls of the ANN (per-call overhead included);
* ``snntb``: SNN-TB 0.6.0's own ``temporal_mean_rate`` ``simulate`` (one
  ``predict_on_batch`` per step);
* ``plugin <preset>``: the plugin's compiled loop (``kernel = auto``: the
  fused step op when it builds, event-driven synapses where they pay) per
  preset; ``paper`` also with ``kernel = tf`` (TensorFlow ops), ``fused``
  (dense synapses), ``sparse`` (event-driven synapses wherever a layer can
  use them; ``benchmarks/sparse.py`` measures them per layer) and on the
  one-call-per-step reference path;
* the adaptive update's cost: each update rule's row over its twin, the
  same network instance (same variables) run with ``update = none``;
* normalisation: SNN-TB's ``normalize_parameters`` against the plugin's
  streaming one on ``--norm-images`` images, the largest relative difference
  of their scale factors, and the memory each adds while it runs (peak RSS
  above the level before, sampled every 5 ms);
* with ``--memory`` (instead of the above): peak RSS of whole
  ``python -m snntb_adaptive -t`` runs with T = 100 and T = 1100, 2 batches,
  each in its own process, all metrics of ``results.json`` recorded.

The machine is noisy: the ratios are what to read.
"""

import contextlib
import functools
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from snntb_adaptive.progress import rss_bytes
from snntb_adaptive.registration import ensure_legacy_keras, install

MODELS = {
    'digits': {'model': 'models/digits_cnn.h5', 'data': 'digits'},
    'mnist': {'model': 'models/mnist_cnn.h5', 'data': 'mnist'},
    'vgg7': {'model': '{shared}/models/cifar10_vgg7.h5', 'data': 'cifar10'},
    'vgg19': {'model': '{shared}/models/cifar10_vgg19.h5', 'data': 'cifar10'},
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PeakRSS:
    """Context manager: peak resident memory above the level at entry."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = 0

    def __enter__(self):
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.added = self.peak - self.base


def _data(name, shared, num_test, num_norm):
    from snntb_adaptive import data
    if name == 'digits':
        x_tr, _, x_te, y_te = data.load_digits()
    elif name == 'mnist':
        x_tr, _, x_te, y_te = data.load_npz(
            os.path.join(shared, 'data', 'mnist.npz'),
            ['x_train', 'y_train', 'x_test', 'y_test'])
    else:
        x_te, y_te = data.load_npz(os.path.join(shared, 'data',
                                                'cifar10_test.npz'),
                                   ['x_test', 'y_test'])
        (x_tr,) = data.load_npz(os.path.join(shared, 'data',
                                             'cifar10_norm.npz'), ['x_norm'])
    import numpy as np
    reps = -(-num_test // len(x_te))          # digits has 360 test images
    x_te = np.concatenate([x_te] * reps)[:num_test]
    y_te = np.concatenate([y_te] * reps)[:num_test]
    return x_te, y_te, x_tr[:num_norm]


CONFIG = """[paths]
path_wd = {wd}
dataset_path = {wd}/data
filename_ann = model
runlabel = bench
[tools]
evaluate_ann = False
[conversion]
spike_code = adaptive_threshold
[simulation]
duration = {duration}
batch_size = {batch_size}
num_to_test = {num_test}
[output]
verbose = 0
"""


def _workdir(tmp, name, spec, shared, duration, batch_size, num_test,
             num_norm):
    from snntb_adaptive import data
    wd = os.path.join(tmp, name)
    os.makedirs(wd)
    model = spec['model'].format(shared=shared)
    if not os.path.isabs(model):
        model = os.path.join(ROOT, model)
    shutil.copy(model, os.path.join(wd, 'model.h5'))
    x_te, y_te, x_norm = _data(spec['data'], shared, num_test, num_norm)
    data.write_snntb_dataset(os.path.join(wd, 'data'), x_te, y_te, x_norm,
                             10)
    path = os.path.join(wd, 'bench.ini')
    with open(path, 'w') as f:
        f.write(CONFIG.format(wd=wd, duration=duration, batch_size=batch_size,
                              num_test=num_test))
    return path


FLOOR = 'floor (dense ANN, T passes, compiled loop)'
#: label, [adaptive_threshold] keys, loop, kernel
PLUGIN_ROWS = [
    ('plugin authors_executed', [('preset', 'authors_executed')], 'graph',
     'auto'),
    ('plugin paper', [('preset', 'paper')], 'graph', 'auto'),
    ('plugin authors_code', [('preset', 'authors_code')], 'graph', 'auto'),
    ('plugin paper_window', [('preset', 'paper_window')], 'graph', 'auto'),
    ('plugin paper, kernel = tf (TensorFlow ops)', [('preset', 'paper')],
     'graph', 'tf'),
    ('plugin paper, kernel = fused (dense synapses)', [('preset', 'paper')],
     'graph', 'fused'),
    ('plugin paper, kernel = sparse (event-driven synapses)',
     [('preset', 'paper')], 'graph', 'sparse'),
    ('plugin paper, precision = bfloat16 (optional; not the same spikes)',
     [('preset', 'paper'), ('precision', 'bfloat16')], 'graph', 'auto'),
    ('plugin paper (step-by-step path)', [('preset', 'paper')], 'step',
     'auto'),
]
#: rule, row with the update; its twin row is the same network (same
#: instance, same buffers) with update = none
UPDATE_COST = [
    ('clamp, scope = sample', 'plugin paper'),
    ('clamp, scope = batch', 'plugin authors_code'),
    ('window, scope = sample', 'plugin paper_window'),
]
TWIN = ' (same network, update = none)'


def _without_update(snn):
    """A function like ``snn.simulate_batch`` that runs the same network
    instance (same layers, variables and buffers) with ``update = none``:
    comparing the two isolates the cost of the threshold update from
    anything that differs between two built networks."""
    if snn._batch_fn is None:
        snn._make_functions()
    own_fn, own_params = snn._batch_fn, [lay.neuron_params
                                         for lay in snn._spiking]
    for lay, p in zip(snn._spiking, own_params):
        lay.neuron_params = p._replace(update='none')
    snn._make_functions()
    none_fn = snn._batch_fn
    for lay, p in zip(snn._spiking, own_params):
        lay.neuron_params = p
    snn._batch_fn = own_fn

    def simulate_batch(x):
        snn._batch_fn = none_fn
        try:
            return snn.simulate_batch(x)
        finally:
            snn._batch_fn = own_fn
    return simulate_batch


def _interleaved_medians(runs, rounds):
    """Median seconds of each ``fn(b)`` in ``runs`` (label, fn): one
    warm-up call each, then ``rounds`` rounds in which every fn runs once in
    turn, so that the machine's slow phases fall on all rows alike. Each
    round starts one row further on, so that no row always follows the same
    one (a row timed right after SNN-TB's Python-heavy loop starts cold)."""
    for _, fn in runs:
        fn(0)
    times = {label: [] for label, _ in runs}
    for b in range(rounds):
        k = b % len(runs)
        for label, fn in runs[k:] + runs[:k]:
            t = time.perf_counter()
            fn(b)
            times[label].append(time.perf_counter() - t)
    return {label: statistics.median(v) for label, v in times.items()}


def dense_floor_fn(parsed, steps):
    """This machine's dense-compute floor: a function that runs the parsed
    ANN ``steps`` times on a batch in one compiled loop (the reference of
    every ratio)."""
    import tensorflow as tf

    @tf.function
    def dense_loop(xb):
        acc = tf.zeros_like(parsed(xb, training=False))
        for _ in tf.range(steps):
            acc += parsed(xb, training=False)
        return acc
    return dense_loop


def bench_model(name, config_path, batches, out=print):
    import numpy as np
    import tensorflow as tf
    from snntoolbox.conversion import utils as conv_utils
    from snntoolbox.simulation.target_simulators import \
        INI_temporal_mean_rate_target_sim as stock_sim
    from snntoolbox.parsing.model_libs import keras_input_lib
    from snntb_adaptive import normalisation, pipeline
    from snntb_adaptive.config import SECTION
    from snntb_adaptive.session import copy_config
    from snntb_adaptive.target_sim import SNN

    cfg = pipeline.validate(config_path)
    model = keras_input_lib.load(cfg.get('paths', 'path_wd'), 'model')['model']

    # ---- normalisation: SNN-TB's own vs the plugin's, each on its own
    # parsed copy of the model
    snntb_parsed, normset, testset = pipeline.parse(cfg, model)
    plugin_parsed, _, _ = pipeline.parse(cfg, model)
    stock_cfg = copy_config(cfg, {
        ('conversion', 'spike_code'): 'temporal_mean_rate',
        ('paths', 'log_dir_of_current_run'): os.path.join(
            cfg.get('paths', 'path_wd'), 'log', 'snntb_norm')})
    original = getattr(conv_utils.normalize_parameters, 'original',
                       conv_utils.normalize_parameters)
    x_norm = normset['x_norm']
    with PeakRSS() as mem_snntb:
        t = time.perf_counter()
        original(snntb_parsed, stock_cfg, x_norm=x_norm)
        t_norm_snntb = time.perf_counter() - t
    with PeakRSS() as mem_plugin:
        t = time.perf_counter()
        normalisation.phase1(plugin_parsed, cfg, x_norm=x_norm)
        t_norm_plugin = time.perf_counter() - t
    import json
    with open(os.path.join(stock_cfg.get('paths', 'log_dir_of_current_run'),
                           'normalization',
                           cfg.get('normalization', 'percentile') + '.json')) \
            as f:
        facs_snntb = json.load(f)
    with open(os.path.join(cfg.get('paths', 'log_dir_of_current_run'),
                           'normalization',
                           cfg.get('normalization', 'percentile') + '.json')) \
            as f:
        facs_plugin = json.load(f)
    rel = max(abs(facs_plugin[k] - v) / abs(v) for k, v in facs_snntb.items())

    # ---- simulation
    parsed = plugin_parsed
    T = cfg.getint('simulation', 'duration')
    bs = cfg.getint('simulation', 'batch_size')
    x = testset['x_test']

    def batch(b):
        return np.asarray(x[(b % (len(x) // bs)) * bs:][:bs], np.float32)

    dense_loop = dense_floor_fn(parsed, T)

    def dense_floor(b):
        dense_loop(tf.constant(batch(b))).numpy()

    def dense_calls(b):
        xb = batch(b)
        for _ in range(T):
            parsed.predict_on_batch(xb)

    kernels = {}
    runs = [(FLOOR, dense_floor),
            ('dense ANN, T predict_on_batch calls', dense_calls)]
    stock = stock_sim.SNN(copy_config(cfg, {
        ('conversion', 'spike_code'): 'temporal_mean_rate'}))
    stock.build(parsed, **testset)

    def run_stock(b):
        with contextlib.redirect_stdout(io.StringIO()):
            stock.simulate(x_b_l=batch(b), truth_b=np.zeros(bs))
            stock.reset(b)
    runs.append(('SNN-TB temporal_mean_rate simulate', run_stock))
    for label, keys, loop, kern in PLUGIN_ROWS:
        snn = SNN(copy_config(cfg, {(SECTION, k): v for k, v in keys}))
        snn.loop = loop
        with contextlib.redirect_stdout(io.StringIO()):
            snn.build(parsed, **testset)
            snn.set_kernel(kern)

        def run_plugin(b, snn=snn, simulate=snn.simulate_batch):
            simulate(batch(b))
            snn.reset(b)
        runs.append((label, run_plugin))
        kernels[label] = snn.kernel if loop == 'graph' else '-'
        if label in {row for _, row in UPDATE_COST}:
            runs.append((label + TWIN, functools.partial(
                run_plugin, simulate=_without_update(snn))))
    times = _interleaved_medians(runs, batches)
    rows = [(label, times[label]) for label, _ in runs]
    t_floor = times[FLOOR]

    out("\n## {}: batch {}, T = {}, {} rounds (median; every row timed "
        "once per round, in turn)\n".format(name, bs, T, batches))
    out("| what | s / batch | ms / step | x floor |")
    out("|---|---|---|---|")
    for label, sec in rows:
        out("| {} | {:.3f} | {:.2f} | {:.2f} |".format(
            label, sec, sec / T * 1e3, sec / t_floor))
    out("\nstep kernel of the compiled loop: {}".format(
        kernels['plugin paper']))
    for rule, with_update in UPDATE_COST:
        out("adaptive update cost, {}: {:.3f} ({} / the same network with "
            "update = none)".format(rule, times[with_update] /
                                    times[with_update + TWIN], with_update))
    out("normalisation of {} images: SNN-TB {:.2f} s, plugin {:.2f} s, "
        "speed-up {:.1f}x; largest relative difference of scale factors "
        "{:.2e}; memory added while running: SNN-TB {:.0f} MB, plugin "
        "{:.0f} MB".format(len(x_norm) - len(x_norm) % bs, t_norm_snntb,
                           t_norm_plugin, t_norm_snntb / t_norm_plugin, rel,
                           mem_snntb.added / 2 ** 20,
                           mem_plugin.added / 2 ** 20))
    return rows


def _peak_rss_of_run(config_path):
    """Peak RSS (MB) of ``python -m snntb_adaptive -t config`` in its own
    process."""
    proc = subprocess.Popen([sys.executable, '-m', 'snntb_adaptive', '-t',
                             config_path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError('run of {} failed'.format(config_path))
    return usage.ru_maxrss / 1024


def bench_memory_in_T(name, tmp, spec, shared, batch_size, out=print):
    rss = {}
    for T in (100, 1100):
        path = _workdir(tmp, '{}_T{}'.format(name, T), spec, shared, T,
                        batch_size, 2 * batch_size, 500)
        rss[T] = _peak_rss_of_run(path)
    out("\npeak RSS of a whole run ({}, 2 batches of {}): T = 100: {:.0f} MB, "
        "T = 1100: {:.0f} MB, ratio {:.3f}".format(name, batch_size,
                                                   rss[100], rss[1100],
                                                   rss[1100] / rss[100]))
    return rss


def add_arguments(p):
    """The options of ``python -m snntb_adaptive bench``."""
    p.add_argument('--models', default='digits,mnist,vgg7',
                   help='comma-separated, from {} (default: %(default)s; '
                   'mnist and the VGGs need --shared)'.format(
                       ', '.join(MODELS)))
    p.add_argument('--duration', type=int, default=200,
                   help='time steps T per batch (default: %(default)s)')
    p.add_argument('--batch-size', type=int, default=50,
                   help='images per batch (default: %(default)s)')
    p.add_argument('--batches', type=int, default=None,
                   help='timed rounds per measurement (default: 15 for '
                   'digits and mnist, 5 for the VGGs)')
    p.add_argument('--norm-images', type=int, default=1000,
                   help='images for the normalisation timing (default: '
                   '%(default)s)')
    p.add_argument('--shared', default=os.path.join(ROOT, '..', 'shared'),
                   help='folder with data/ and models/ (default: ../shared '
                   'beside the repository)')
    p.add_argument('--memory', action='store_true',
                   help='instead of the speed table: peak RSS of whole runs '
                   'with T = 100 and T = 1100')


def run_bench(args):
    """Run the benchmark with parsed ``args`` (see :func:`add_arguments`)."""
    from snntb_adaptive.errors import ConfigError
    install()
    ensure_legacy_keras()
    names = [n.strip() for n in args.models.split(',') if n.strip()]
    for n in names:
        if n not in MODELS:
            raise ConfigError('bench --models: unknown model {!r}; choose '
                              'from {}'.format(n, ', '.join(MODELS)))
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            if args.memory:
                bench_memory_in_T(n, tmp, MODELS[n], args.shared,
                                  args.batch_size)
                continue
            batches = args.batches or (5 if n.startswith('vgg') else 15)
            cfg = _workdir(tmp, n, MODELS[n], args.shared, args.duration,
                           args.batch_size, args.batch_size * (batches + 1),
                           args.norm_images)
            bench_model(n, cfg, batches)
    return 0
