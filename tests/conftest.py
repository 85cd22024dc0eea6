"""Shared test fixtures: small SNN-TB work folders on scikit-learn digits and
helpers that run SNN-TB's own parse -> normalise -> build steps in-process."""

import os
import shutil

os.environ['TF_USE_LEGACY_KERAS'] = '1'
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snntb_adaptive import pipeline, registration  # noqa: E402

registration.install()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS_MODEL = os.path.join(ROOT, 'models', 'digits_cnn.h5')

BASE_INI = """
[paths]
path_wd = {wd}
dataset_path = {data}
filename_ann = {ann}
runlabel = {label}

[tools]
evaluate_ann = False
normalize = {normalize}

[conversion]
spike_code = {spike_code}
softmax_to_relu = {softmax_to_relu}

[simulation]
simulator = INI
duration = {duration}
batch_size = {batch_size}
num_to_test = {num_to_test}
top_k = 5
{simulation}
[output]
verbose = 0
{output}
"""


def write_config(wd, extra='', **kw):
    """Write a config into ``wd`` and return its path. ``simulation`` and
    ``output`` are lines added to those sections; ``extra`` is appended
    verbatim (more sections)."""
    values = dict(data=os.path.join(wd, 'data'), ann='model', label='test',
                  normalize=True, spike_code='adaptive_threshold',
                  duration=30, batch_size=10, num_to_test=20, simulation='',
                  softmax_to_relu=True,
                  output='')
    values.update(kw)
    path = os.path.join(wd, values.pop('name', 'config.ini'))
    with open(path, 'w') as f:
        f.write(BASE_INI.format(wd=wd, **values) + extra)
    return path


def make_workdir(tmp, model_path=DIGITS_MODEL, num_test=40, num_norm=300):
    """A work folder with ``model.h5`` and a digits data folder."""
    from snntb_adaptive import data
    os.makedirs(tmp, exist_ok=True)
    shutil.copy(model_path, os.path.join(tmp, 'model.h5'))
    x_tr, y_tr, x_te, y_te = data.load_digits()
    data.write_snntb_dataset(os.path.join(tmp, 'data'), x_te[:num_test],
                             y_te[:num_test], x_tr[:num_norm], 10)
    return tmp


def setup(config_path):
    """The validate stage: SNN-TB's ``update_setup`` with the plugin's
    hooks."""
    return pipeline.validate(config_path)


def parse_and_normalise(config, model=None):
    """The parse and Phase-1 stages. Returns ``(parsed_model, testset)``."""
    prepared = pipeline.prepare(config, model)
    return prepared.parsed, prepared.testset


def build_snn(config, parsed, testset=None):
    """The build stage."""
    return pipeline.build(config, parsed, testset)


#: ``preset = calibrated`` for exactly T = 8 steps (horizon 1) on 200
#: images: the calibration tests' setting (the pinned calibration's too)
CALIBRATED_T8 = ("\n[adaptive_threshold]\npreset = calibrated\n"
                 "calibration_steps = 8\ncalibration_samples = 200\n"
                 "calibration_horizon = 1\n")


def run_phase1(wd, label, extra, **kw):
    """Validate, parse and run Phase 1 (a calibration, with ``preset =
    calibrated``) on a config written into ``wd`` (label ``label``,
    ``extra`` appended): ``(config, parsed model, testset, path of the
    run's calibration.json)``."""
    from snntb_adaptive import calibration
    cfg = setup(write_config(wd, name=label + '.ini', label=label,
                             extra=extra, **kw))
    parsed, testset = parse_and_normalise(cfg)
    path = os.path.join(cfg.get('paths', 'log_dir_of_current_run'),
                        calibration.CALIBRATION_FILE)
    return cfg, parsed, testset, path


def accuracy_per_step(snn, testset):
    """Top-1 accuracy after each step on the whole test set, batch by
    batch in the compiled loop."""
    x, y = testset['x_test'], np.argmax(testset['y_test'], axis=1)
    correct = 0
    for start in range(0, len(x), snn.batch_size):
        readout, _, _ = snn.simulate_batch(x[start:start + snn.batch_size])
        snn.reset(0)
        scores = snn.readout_scores(readout)
        correct = correct + np.sum(np.argmax(scores, axis=2) ==
                                   y[start:start + snn.batch_size], axis=1)
    return correct / len(x)


@pytest.fixture(scope='session')
def digits_dir(tmp_path_factory):
    return make_workdir(str(tmp_path_factory.mktemp('digits')))


@pytest.fixture(scope='session')
def digits_data():
    from snntb_adaptive import data
    return data.load_digits()


def assert_spikes_equal(a, b, what=''):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    diff = np.argwhere(a != b)
    assert diff.size == 0, "{}: {} of {} entries differ, first at {}".format(
        what, len(diff), a.size, diff[:3].tolist())
