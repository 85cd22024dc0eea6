"""Time per simulation step of a network, for the README's time-to-accuracy
figures (steps needed x time per step). Every Phase-1 method runs the same
network (only its parameters differ), so one figure per network serves all
of them; calibration and Spike-Norm add their one-off Phase-1 time.

    python benchmarks/step_time.py CONFIG [--set SECTION.KEY=VALUE ...]
        [--steps 64] [--batches 3]

Simulates ``--batches`` batches of the config's test images for ``--steps``
steps with the plugin (``authors_executed``, eta = 1: stock SNN-TB's
network) after one warm-up batch, and prints milliseconds per step for a
batch and per image. Run it on a quiet machine.
"""

import argparse
import os
import sys
import time

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--set', action='append', default=[],
                   metavar='SECTION.KEY=VALUE')
    p.add_argument('--steps', type=int, default=64)
    p.add_argument('--batches', type=int, default=3)
    args = p.parse_args(argv)
    from snntb_adaptive import log
    from snntb_adaptive.compare import parse_overrides
    from snntb_adaptive.session import Session
    log.setup()
    overrides = parse_overrides(args.set + [
        'simulation.duration={}'.format(args.steps),
        'tools.evaluate_ann=False'])
    session = Session(args.config, overrides=overrides).prepare()
    snn = session.build('authors_executed:eta_scale=1', label='step_time')
    x = session.testset['x_test']
    b = snn.batch_size
    snn.simulate_batch(x[:b])                 # warm-up (tracing)
    snn.reset(0)
    t0 = time.perf_counter()
    for k in range(args.batches):
        snn.simulate_batch(x[(k + 1) * b:(k + 2) * b])
        snn.reset(0)
    seconds = time.perf_counter() - t0
    per_step = seconds / (args.batches * args.steps)
    print("{}: {} batches of {} images x {} steps in {:.1f} s: {:.1f} ms per "
          "step for a batch, {:.2f} ms per step and image".format(
              os.path.basename(args.config), args.batches, b, args.steps,
              seconds, 1000 * per_step, 1000 * per_step / b))
    return 0


if __name__ == '__main__':
    sys.exit(main())
