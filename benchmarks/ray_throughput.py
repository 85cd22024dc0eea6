"""Throughput of the Ray executor against a local run, on this machine.

    python benchmarks/ray_throughput.py [--model vgg7|vgg19] [--images 500]
        [--duration 200] [--batch-size 50] [--shared ../shared]

Runs the same config (``cifar10_vgg7.h5`` by default, on the first
``--images`` CIFAR-10 test images, preset ``paper``) twice through
``python -m snntb_adaptive -t``, each in its own process: ``executor =
local`` (one process, TensorFlow's default threads: 2 on this machine) and
``executor = ray`` with 2 workers x 1 thread on a Ray instance started for
the run. It prints, from each run's ``results.json`` and
``progress.jsonl``: images per second over the simulation (``wall_seconds``:
from the first batch handed out to the last record, Ray's start-up and the
workers' model building included), the mean compute seconds per batch as
the workers measured it, and the per-batch overhead of Ray (wall time x
workers / batches - compute per batch). Also checks that both runs give the
same numbers.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

EXECUTION = """
[adaptive_threshold]
preset = paper
executor = {executor}
workers = 2
threads_per_worker = 1
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--shared', default=os.path.join(ROOT, '..', 'shared'),
                   help='folder with data/ and models/ (default: ../shared)')
    p.add_argument('--model', default='vgg7', choices=['vgg7', 'vgg19'],
                   help='SHARED/models/cifar10_<model>.h5 (default: '
                   '%(default)s)')
    p.add_argument('--images', type=int, default=500,
                   help='CIFAR-10 test images (default: %(default)s)')
    p.add_argument('--duration', type=int, default=200,
                   help='time steps (default: %(default)s)')
    p.add_argument('--batch-size', type=int, default=50,
                   help='images per batch (default: %(default)s)')
    args = p.parse_args(argv)
    from snntb_adaptive.bench import MODELS, _workdir
    with tempfile.TemporaryDirectory() as tmp:
        base = _workdir(tmp, 'wd', MODELS[args.model], args.shared,
                        args.duration, args.batch_size, args.images, 1000)
        wd = os.path.dirname(base)
        with open(base) as f:
            text = f.read()
        results = {}
        for executor in ('local', 'ray'):
            cfg = os.path.join(wd, executor + '.ini')
            with open(cfg, 'w') as f:
                f.write(text.replace('runlabel = bench',
                                     'runlabel = ' + executor) +
                        EXECUTION.format(executor=executor))
            proc = subprocess.run([sys.executable, '-m', 'snntb_adaptive',
                                   '-t', cfg], capture_output=True,
                                  text=True)
            if proc.returncode:
                sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
            log = os.path.join(wd, 'log', 'gui', executor)
            with open(os.path.join(log, 'results.json')) as f:
                res = json.load(f)
            with open(os.path.join(log, 'progress.jsonl')) as f:
                seconds = [json.loads(line)['seconds']
                           for line in f.readlines()[1:]]
            results[executor] = (res, seconds)
        batches = args.images // args.batch_size
        print("{} images ({} batches of {}), T = {}, preset paper".format(
            batches * args.batch_size, batches, args.batch_size,
            args.duration))
        print("| executor | wall s | images/s | compute s per batch | "
              "overhead s per batch |")
        print("|---|---|---|---|---|")
        rate = {}
        for executor, (res, seconds) in results.items():
            wall = res['wall_seconds']
            per_batch = sum(seconds) / len(seconds)
            workers = 2 if executor == 'ray' else 1
            rate[executor] = res['num_samples'] / wall
            print("| {} | {:.1f} | {:.2f} | {:.2f} | {:.2f} |".format(
                executor + (' (2 workers x 1 thread)' if executor == 'ray'
                            else ' (1 process, 2 threads)'),
                wall, rate[executor], per_batch,
                wall * workers / len(seconds) - per_batch))
        print("ray / local throughput: {:.2f}".format(rate['ray'] /
                                                     rate['local']))
        a, b = (dict(results[k][0]) for k in ('local', 'ray'))
        same = all(a[k] == b[k] for k in a if k not in (
            'created', 'wall_seconds', 'settings'))
        print("same numbers: {}".format('yes' if same else 'NO'))


if __name__ == '__main__':
    main()
