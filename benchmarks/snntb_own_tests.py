"""Run SNN-TB's own INI simulation tests (the ones its wheel installs) on
this stack, with the plugin installed: ``tests/simulation/test_conv.py`` and
``tests/simulation/test_pooling.py`` with SNN-TB's ``tests/conftest.py``.

    python benchmarks/snntb_own_tests.py [--shared ../shared] [--seeds 0,1,2]
        [-- PYTEST ARGS]

The wheel installs these files into site-packages but not the module they
import their two helpers from (``tests/core/test_models.py`` of SNN-TB's
repository), and its conftest downloads MNIST through Keras. This script
copies the installed test files into a temporary folder, adds a
``tests/core/test_models.py`` with the two helpers written here
(``get_ann_acc``: the saved ANN's accuracy on the run's test set;
``get_correlations``: SNN-TB's own ``spiketrains_to_rates`` and
``get_pearson_coefficients`` on the ``log_vars`` the run saved), serves
``mnist.load_data`` from ``../shared/data/mnist.npz``, sets
``TF_USE_LEGACY_KERAS=1`` and runs pytest there. Nothing of SNN-TB is
changed or kept.

Known flaky in SNN-TB itself: ``test_conv.py::TestConv1dINI::test_conv1d``
trains its model unseeded for one epoch and passes when the SNN's accuracy
on 100 test images is at least 0.98 times the ANN's (and the rate-activation
correlations are high); its output layer is a softmax, whose spikes SNN-TB's
INI simulator draws at random. Measured here with the plugin installed
(``--seeds 0,1 -- -k conv1d``): seed 0 SNN 0.85 vs ANN 0.87 (one image
short of the bound), seed 1 0.87 vs 0.94; unseeded it passed in both runs
here and failed once in the run that reported it (0.89 vs 0.96). No shim
changes a number SNN-TB computes (they restore NumPy 1 aliases with the
same functions, convert a float32 scale factor to the same float, write
JSON atomically, read config literals, check files), so the spread is the
test's own: a random model and random output spikes judged on 100 images.
The script says so when that test fails.
"""

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HELPERS = '''"""Helpers SNN-TB's shipped simulation tests import (written by
snntb-adaptive's benchmarks/snntb_own_tests.py)."""
import os

import numpy as np


def get_ann_acc(config):
    from tensorflow import keras
    path_wd = config.get('paths', 'path_wd')
    model = keras.models.load_model(os.path.join(
        path_wd, config.get('paths', 'filename_ann') + '.h5'))
    data = config.get('paths', 'dataset_path')
    x = np.load(os.path.join(data, 'x_test.npz'))['arr_0']
    y = np.load(os.path.join(data, 'y_test.npz'))['arr_0']
    n = config.getint('simulation', 'num_to_test')
    return model.evaluate(x[:n], y[:n], verbose=0)[1]


def get_correlations(config):
    from snntoolbox.simulation.plotting import get_pearson_coefficients
    from snntoolbox.simulation.utils import spiketrains_to_rates
    path = os.path.join(config.get('paths', 'log_dir_of_current_run'),
                        'log_vars', '0.npz')
    with np.load(path, allow_pickle=True) as logvars:
        trains = logvars['spiketrains_n_b_l_t']
        activations = logvars['activations_n_b_l']
    rates = spiketrains_to_rates(trains, config.getint('simulation',
                                                       'duration'),
                                 config.get('conversion', 'spike_code'))
    max_rate = 1. / config.getfloat('simulation', 'dt')
    return np.mean(get_pearson_coefficients(rates, activations, max_rate),
                   axis=1)
'''

MNIST_PLUGIN = '''"""pytest plugin: MNIST from a local .npz instead of the Keras download."""
import os

import numpy as np


def pytest_configure(config):
    from tensorflow.keras.datasets import mnist
    path = os.environ['SNNTB_OWN_TESTS_MNIST']

    def load_data():
        with np.load(path) as f:
            return ((f['x_train'], f['y_train']), (f['x_test'], f['y_test']))
    mnist.load_data = load_data
'''


SEED_PLUGIN = '''"""pytest plugin: seed NumPy, Python and TensorFlow before the tests
(SNN-TB's tests train their models unseeded, and its INI simulator draws
the spikes of a softmax output layer at random)."""
import os
import random


def pytest_configure(config):
    seed = int(os.environ['SNNTB_OWN_TESTS_SEED'])
    import numpy as np
    import tensorflow as tf
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
'''


FLAKY_CONV1D = (
    "note: TestConv1dINI::test_conv1d is flaky in SNN-TB itself (an unseeded "
    "model trained for one epoch, a softmax output whose spikes are drawn at "
    "random, judged within 2 % of the ANN on 100 images); no shim of the "
    "plugin changes a computed number. See this script's docstring.")


def installed_tests():
    """Paths of the test files the snntoolbox wheel installed."""
    files = importlib.metadata.files('snntoolbox') or []
    return [f for f in files if str(f).startswith('tests/') and
            str(f).endswith('.py')]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--shared', default=os.path.join(ROOT, '..', 'shared'),
                   help='folder with data/mnist.npz (default: ../shared)')
    p.add_argument('--seeds', default='',
                   help='comma-separated seeds: run the tests once per seed, '
                   'NumPy, Python and TensorFlow seeded, and print a line '
                   'per seed (default: one unseeded run)')
    p.add_argument('pytest_args', nargs='*',
                   help='passed to pytest (after --)')
    args = p.parse_args(argv)
    mnist = os.path.abspath(os.path.join(args.shared, 'data', 'mnist.npz'))
    if not os.path.isfile(mnist):
        p.error('{} not found; give --shared'.format(mnist))
    with tempfile.TemporaryDirectory() as tmp:
        for f in installed_tests():
            target = os.path.join(tmp, str(f))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(str(f.locate()), target)
        core = os.path.join(tmp, 'tests', 'core')
        os.makedirs(core, exist_ok=True)
        open(os.path.join(core, '__init__.py'), 'w').close()
        with open(os.path.join(core, 'test_models.py'), 'w') as fh:
            fh.write(HELPERS)
        with open(os.path.join(tmp, 'mnist_from_shared.py'), 'w') as fh:
            fh.write(MNIST_PLUGIN)
        with open(os.path.join(tmp, 'seeded.py'), 'w') as fh:
            fh.write(SEED_PLUGIN)
        env = dict(os.environ, TF_USE_LEGACY_KERAS='1',
                   SNNTB_OWN_TESTS_MNIST=mnist,
                   PYTHONPATH=tmp + os.pathsep + os.environ.get(
                       'PYTHONPATH', ''))
        cmd = [sys.executable, '-m', 'pytest', '-p', 'mnist_from_shared',
               '-p', 'no:cacheprovider', 'tests/simulation'] + \
            args.pytest_args
        if not args.seeds:
            print('running in {}: {}'.format(tmp, ' '.join(cmd)), flush=True)
            run = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True,
                                 text=True)
            sys.stdout.write(run.stdout)
            sys.stderr.write(run.stderr)
            if 'FAILED tests/simulation/test_conv.py::TestConv1dINI' in \
                    run.stdout:
                print(FLAKY_CONV1D, flush=True)
            return run.returncode
        failed = 0
        for seed in [int(s) for s in args.seeds.split(',')]:
            run = subprocess.run(
                cmd[:3] + ['-p', 'seeded'] + cmd[3:] + ['-q', '-rf',
                                                        '--tb=short'], cwd=tmp,
                env=dict(env, SNNTB_OWN_TESTS_SEED=str(seed)),
                capture_output=True, text=True)
            lines = (run.stdout + run.stderr).splitlines()
            summary = [line for line in lines if line.startswith((
                'FAILED', 'E  ')) or (line.split() and line.split()[0]
                                      .isdigit() and ' in ' in line and (
                                          ' passed' in line or
                                          ' failed' in line))]
            print('seed {}: {}'.format(seed, ' | '.join(summary) or
                                       'no summary (exit {})'.format(
                                           run.returncode)), flush=True)
            failed += run.returncode != 0
        return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
