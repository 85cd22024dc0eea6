"""How long to calibrate for: accuracy after t steps of networks calibrated
for T_c steps (``preset = calibrated``, the other keys at their defaults),
on development images, measured with the calibration's own layer simulator
over the network (``calibration.simulate_network``: the IF neurons SNN-TB's
INI simulator runs, one layer at a time; the readout is the output layer's
summed input). This chose ``calibration_horizon`` (docs/results.md, "The
calibration horizon"); the held-out tables are full runs of the pipeline.

    python benchmarks/calibration_horizon.py CONFIG --data DIR \\
        --calibrate-for 2,4,8,16 --steps 2,4,8,16,32 [--num-test 1000] \\
        [--judge 1000]

``CONFIG``: a config of the model (its ``[paths]`` are used; the data
folder ``DIR`` holds ``x_norm.npz`` and ``x_test.npz``/``y_test.npz`` as
prepare-data writes them: use development images only). With ``--judge
N``, also the agreement with the ANN's class (%) on the N x_norm images
after the calibration's, what ``calibration_horizon = auto`` measures.
Prints one JSON line per calibration.
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ['TF_USE_LEGACY_KERAS'] = '1'
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import numpy as np  # noqa: E402


def evaluate(model, x, y, steps, is_spiking):
    """Top-1 accuracy (%) after each of ``steps`` steps of the calibrated
    network on ``x`` (:func:`calibration.simulate_network
    <snntb_adaptive.calibration.simulate_network>`, chunks of 200)."""
    from snntb_adaptive.calibration import simulate_network
    correct = np.zeros(steps)
    for s in range(0, len(x), 200):
        readout = simulate_network(model, x[s:s + 200], steps, 1.0,
                                   is_spiking)
        correct += np.sum(np.argmax(readout, -1) == y[None, s:s + 200], -1)
    return correct / len(x) * 100


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('--data', required=True)
    p.add_argument('--calibrate-for', default='2,4,8,16')
    p.add_argument('--steps', default='2,4,8,16,32')
    p.add_argument('--num-test', type=int, default=1000)
    p.add_argument('--samples', type=int, default=512)
    p.add_argument('--judge', type=int, default=0,
                   help='also the agreement with the ANN\'s class on this '
                   'many x_norm images after the calibration\'s (what '
                   'calibration_horizon = auto measures)')
    args = p.parse_args(argv)
    from snntb_adaptive import calibration, pipeline
    from snntb_adaptive.network import spiking_layers
    steps = [int(s) for s in args.steps.split(',')]
    data = os.path.abspath(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        import configparser
        cfg = configparser.ConfigParser()
        cfg.read(args.config)
        wd = os.path.abspath(os.path.join(os.path.dirname(args.config), '..',
                                          cfg.get('paths', 'path_wd')))
        cfg.set('paths', 'path_wd', wd)
        cfg.set('paths', 'dataset_path', data)
        cfg.set('paths', 'runlabel', 'horizon_' + str(os.getpid()))
        cfg.set('tools', 'normalize', 'False')
        cfg.set('tools', 'evaluate_ann', 'False')
        cfg.set('simulation', 'num_to_test', str(args.num_test))
        cfg.set('adaptive_threshold', 'preset', 'calibrated')
        path = os.path.join(tmp, 'horizon.ini')
        with open(path, 'w') as f:
            cfg.write(f)
        for T in [int(t) for t in args.calibrate_for.split(',')]:
            config = pipeline.validate(path)
            parsed, _, testset = pipeline.parse(config)
            spiking = {id(lay) for lay in spiking_layers(parsed, config)}

            def is_spiking(lay):
                return id(lay) in spiking
            x_norm = np.load(os.path.join(data, 'x_norm.npz'))['arr_0']
            x = x_norm[:args.samples].astype(np.float32)
            judge = x_norm[args.samples:args.samples + args.judge].astype(
                np.float32)
            if args.judge:     # the ANN's classes, before calibrating
                ann = np.argmax(calibration.ann_scores(parsed, judge,
                                                       is_spiking), -1)
            t0 = time.time()
            calibration.calibrate(parsed, x, T, 1.0, is_spiking)
            seconds = time.time() - t0
            acc = evaluate(parsed,
                           np.asarray(testset['x_test'], np.float32),
                           np.argmax(testset['y_test'], -1), max(steps),
                           is_spiking)
            log_dir = config.get('paths', 'log_dir_of_current_run')
            line = {'calibrated_for': T, 'calibration_s': round(seconds),
                    'accuracy': {t: round(float(acc[t - 1]), 2)
                                 for t in steps}}
            if args.judge:
                agree = evaluate(parsed, judge, ann, max(steps), is_spiking)
                line['agreement'] = {t: round(float(agree[t - 1]), 2)
                                     for t in steps}
                line['judge_images'] = len(judge)
            print(json.dumps(line), flush=True)
        # the checks and SNN-TB made the run's log folder (and empty
        # folders in it); nothing of this script is kept there
        files = [f for _, _, names in os.walk(log_dir) for f in names
                 if f != '.config' and
                 not f.startswith('.snntb_adaptive')]
        if not files:
            import shutil
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == '__main__':
    main()
