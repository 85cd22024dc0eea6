"""The event-driven synapses (``kernel = sparse | auto``) against the dense
ones (``kernel = fused``) and the dense floor, side by side in one process.

    python benchmarks/sparse.py [--models digits,mnist,vgg7,vgg19]
        [--settings paper,calibrated] [--rounds N] [--images 1000]
        [--shared ../shared] [--memory]

Per model and setting (``paper``: T = 200; ``calibrated``: T = 64,
calibrated for 64 steps; batch 50; the first test images, the development
images of CIFAR-10) it prints:

* **whole simulation**: seconds per batch and the ratio to the dense floor
  (the parsed ANN run T times in one compiled loop, as ``bench``), the
  median of ``--rounds`` rounds in which every row runs once, in turn, on
  the same batch: ``kernel = fused`` (dense synapses, the plugin before the
  sparse op), ``sparse`` and ``auto``;
* **per layer**: each spiking layer's share of nonzero inputs (its input's
  firing rate) and the time of its dense op and of the event-driven op on
  the inputs it really receives (recorded at 8 steps of one batch), and
  the crossover: the input density below which the event-driven op is
  faster on this CPU (timed on random spike inputs of the layer's shape);
* **the same spikes?**: ``--images`` test images simulated with the dense
  and the event-driven synapses in lockstep (two networks, one step at a
  time): how many spikes differ over all layers and steps (a difference
  propagates: the count includes its consequences), and the accuracy per
  step of both;
* with ``--memory`` instead: the peak RSS of whole ``python -m
  snntb_adaptive -t`` runs (2 batches) with ``kernel = fused`` and
  ``kernel = sparse``, each in its own process.

The machine is noisy: read the ratios.
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SETTINGS = {
    'paper': ("preset = paper\n", 200),
    'calibrated': ("preset = calibrated\ncalibration_steps = 64\n", 64),
}
DENSITIES = (0.01, 0.03, 0.1, 0.2, 0.3, 0.5)


def _config(tmp, model, setting, images, batch_size, shared):
    from snntb_adaptive import bench
    keys, duration = SETTINGS[setting]
    path = bench._workdir(os.path.join(tmp, setting), model,
                          bench.MODELS[model], shared, duration, batch_size,
                          images, 1000)
    with open(path, 'a') as f:
        f.write("[adaptive_threshold]\n" + keys)
    return path


def _prepare(path):
    from snntb_adaptive import pipeline
    cfg = pipeline.validate(path)
    with contextlib.redirect_stdout(io.StringIO()):
        return cfg, pipeline.prepare(cfg)


def _network(cfg, prepared, kernel_name):
    from snntb_adaptive import pipeline
    with contextlib.redirect_stdout(io.StringIO()):
        snn = pipeline.build(cfg, prepared.parsed, prepared.testset)
    snn.set_kernel(kernel_name)
    return snn


def _median_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def whole(snn_by_kernel, parsed, x, rounds, out):
    import numpy as np
    import tensorflow as tf
    from snntb_adaptive import bench
    any_snn = next(iter(snn_by_kernel.values()))
    T = any_snn._num_timesteps
    dense_loop = bench.dense_floor_fn(parsed, T)
    xb = np.asarray(x, np.float32)
    runs = [(bench.FLOOR, lambda b: dense_loop(tf.constant(xb)).numpy())]
    for name, snn in snn_by_kernel.items():
        def run(b, snn=snn):
            snn.simulate_batch(xb)
            snn.reset(b)
        runs.append(('kernel = {}'.format(name), run))
    times = bench._interleaved_medians(runs, rounds)
    floor = times[bench.FLOOR]
    out("| what | s / batch | ms / step | x floor |")
    out("|---|---|---|---|")
    for label, _ in runs:
        out("| {} | {:.3f} | {:.2f} | {:.2f} |".format(
            label, times[label], times[label] / T * 1e3,
            times[label] / floor))
    return times


def _step_function(snn):
    """One step of the step-by-step path returning every spiking layer's
    input and output."""
    import tensorflow as tf
    model = tf.keras.Model(
        snn.snn.input, [lay.input for lay in snn._spiking] +
        [lay.output for lay in snn._spiking])
    n = len(snn._spiking)

    @tf.function
    def step(x, t):
        snn._set_time(t)
        out = model(x, training=False)
        return out[:n], out[n:]
    return step


def per_layer(snn, x, out, repeats=7):
    """Each spiking layer's input density and the time of its dense and
    event-driven ops on recorded inputs; the crossover density."""
    import numpy as np
    import tensorflow as tf
    T = snn._num_timesteps
    record = set(np.linspace(0, T - 1, 8).astype(int).tolist())
    step = _step_function(snn)
    snn.reset(0)
    xin = tf.constant(np.asarray(x, np.float32) * snn._dt)
    inputs = {k: [] for k in range(len(snn._spiking))}
    density = np.zeros(len(snn._spiking))
    for i in range(T):
        ins, _ = step(xin, tf.constant((i + 1) * snn._dt, tf.float32))
        for k, a in enumerate(ins):
            density[k] += float(tf.math.count_nonzero(a)) / int(
                tf.size(a)) / T
            if i in record:
                inputs[k].append(a.numpy())
    snn.reset(0)
    rng = np.random.default_rng(0)
    out("| layer | type | input density | dense ms | sparse ms | sparse / "
        "dense | crossover density |")
    out("|---|---|---|---|---|---|---|")
    rows = []
    for k, lay in enumerate(snn._spiking):
        sample = inputs[k][0]
        ready = not lay.is_first_spiking and lay.sparse_ready(sample)
        if not ready:
            out("| {} | {} | {:.3f} | - | - | - | dense only{} |".format(
                lay.name, type(lay).__name__, density[k],
                ' (first layer: analog input, once per batch)'
                if lay.is_first_spiking else ''))
            continue
        dense = tf.function(lambda a, lay=lay: lay.base_layer.call(lay, a))
        sparse = tf.function(lambda a, lay=lay: lay.sparse_impulse(a))
        recorded = [tf.constant(a) for a in inputs[k]]
        t_dense = _median_time(lambda: [dense(a).numpy() for a in recorded],
                               repeats) / len(recorded)
        t_sparse = _median_time(lambda: [sparse(a).numpy()
                                         for a in recorded],
                                repeats) / len(recorded)
        # the crossover on random spikes of the layer's input shape
        ratios = []
        for d in DENSITIES:
            a = tf.constant((rng.random(sample.shape) < d).astype(
                np.float32))
            ratios.append(_median_time(lambda: sparse(a).numpy(), 3) /
                          _median_time(lambda: dense(a).numpy(), 3))
        cross = None
        for (d0, r0), (d1, r1) in zip(zip(DENSITIES, ratios),
                                      zip(DENSITIES[1:], ratios[1:])):
            if r0 <= 1 < r1:
                cross = d0 + (1 - r0) * (d1 - d0) / (r1 - r0)
                break
        if cross is None:
            cross_text = '> {}'.format(DENSITIES[-1]) if ratios[-1] <= 1 \
                else '< {}'.format(DENSITIES[0])
        else:
            cross_text = '{:.2f}'.format(cross)
        out("| {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.2f} | {} |".format(
            lay.name, type(lay).__name__, density[k], t_dense * 1e3,
            t_sparse * 1e3, t_sparse / t_dense, cross_text))
        rows.append((lay.name, density[k], t_dense, t_sparse, cross))
    return rows


def same_spikes(dense_snn, sparse_snn, testset, images, out):
    """Lockstep: differing spikes over all layers and steps, and the
    accuracy per step of both."""
    import numpy as np
    import tensorflow as tf
    T = dense_snn._num_timesteps
    bs = dense_snn.batch_size
    steps = {name: _step_function(s) for name, s in
             (('dense', dense_snn), ('sparse', sparse_snn))}
    x_all, y_all = testset['x_test'][:images], np.argmax(
        testset['y_test'][:images], axis=1)
    differ = total = 0
    first = None
    correct = {'dense': np.zeros(T), 'sparse': np.zeros(T)}
    n = 0
    for start in range(0, len(x_all) - bs + 1, bs):
        xb = tf.constant(np.asarray(x_all[start:start + bs], np.float32) *
                         dense_snn._dt)
        yb = y_all[start:start + bs]
        score = {'dense': 0, 'sparse': 0}
        for name, s in (('dense', dense_snn), ('sparse', sparse_snn)):
            s.reset(0)
        for i in range(T):
            t = tf.constant((i + 1) * dense_snn._dt, tf.float32)
            _, a = steps['dense'](xb, t)
            _, b = steps['sparse'](xb, t)
            for u, v in zip(a, b):
                u, v = u.numpy() != 0, v.numpy() != 0
                d = int(np.sum(u != v))
                if d and first is None:
                    first = (start, i)
                differ += d
                total += int(u.sum())
            score['dense'] = score['dense'] + a[-1].numpy()
            score['sparse'] = score['sparse'] + b[-1].numpy()
            for name in correct:
                correct[name][i] += np.sum(np.argmax(score[name], 1) == yb)
        n += bs
    out("{} images, T = {}: {} of {} spikes differ ({:.2e}){}".format(
        n, T, differ, total, differ / max(total, 1),
        '' if first is None else '; the first in the batch from image {} '
        'at step {}'.format(*first)))
    marks = sorted(set([3, 7, 15, 31, 63, 127, T - 1]) & set(range(T)))
    out("| accuracy at step | " + " | ".join(str(m + 1) for m in marks) +
        " |")
    out("|---|" + "---|" * len(marks))
    for name in ('dense', 'sparse'):
        out("| {} | ".format(name) + " | ".join(
            '{:.2f} %'.format(100 * correct[name][m] / n) for m in marks) +
            " |")
    return differ, total


def memory(path, out):
    from snntb_adaptive.bench import _peak_rss_of_run
    rows = []
    for name in ('fused', 'sparse'):
        with open(path) as f:
            text = f.read()
        p = path.replace('.ini', '_{}.ini'.format(name))
        with open(p, 'w') as f:
            f.write(text.replace('runlabel = bench', 'runlabel = mem_' + name)
                    + 'kernel = {}\n'.format(name))
        rows.append((name, _peak_rss_of_run(p)))
    for name, mb in rows:
        out("peak RSS, kernel = {}: {:.0f} MB".format(name, mb))
    out("sparse / fused: {:.2f}".format(rows[1][1] / rows[0][1]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', default='digits,mnist,vgg7,vgg19')
    p.add_argument('--settings', default='paper,calibrated')
    p.add_argument('--rounds', type=int, default=None,
                   help='rounds of the whole-simulation timing (default 9 '
                   'for digits and MNIST, 3 for the VGGs)')
    p.add_argument('--images', type=int, default=1000,
                   help='test images of the lockstep comparison (0: skip)')
    p.add_argument('--batch-size', type=int, default=50)
    p.add_argument('--shared', default=os.path.join(ROOT, '..', 'shared'))
    p.add_argument('--memory', action='store_true')
    args = p.parse_args(argv)
    from snntb_adaptive.registration import ensure_legacy_keras, install
    install()
    ensure_legacy_keras()
    import numpy as np

    def out(line=''):
        print(line, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(','):
            for setting in args.settings.split(','):
                images = max(args.images, args.batch_size)
                path = _config(os.path.join(tmp, model), model, setting,
                               images, args.batch_size, args.shared)
                out("\n## {}, {}: batch {}, T = {}\n".format(
                    model, setting, args.batch_size, SETTINGS[setting][1]))
                if args.memory:
                    memory(path, out)
                    continue
                t0 = time.time()
                cfg, prepared = _prepare(path)
                nets = {name: _network(cfg, prepared, name)
                        for name in ('fused', 'sparse', 'auto')}
                x = prepared.testset['x_test'][:args.batch_size]
                rounds = args.rounds or (3 if model.startswith('vgg')
                                         else 9)
                out("### Whole simulation ({} rounds, median)\n".format(
                    rounds))
                whole(nets, prepared.parsed, x, rounds, out)
                out("\n### Per layer (one batch, inputs at 8 steps)\n")
                per_layer(nets['sparse'], x, out)
                if args.images:
                    out("\n### The same spikes?\n")
                    same_spikes(nets['fused'], nets['sparse'],
                                prepared.testset, args.images, out)
                out("\n({} s for this part)".format(int(time.time() - t0)))
                del nets
    return 0


if __name__ == '__main__':
    sys.exit(main())
