"""PyTorch and ONNX models through SNN-TB's pipeline (``[input] model_lib =
pytorch | onnx``): the digits CNN of models/digits_torch.py runs through
``snntoolbox -t``; stock SNN-TB and the plugin at ``eta = 1, update = none``
give the same spikes on it; channels-first and channels-last data give the
same run; an ONNX file gives the run of its PyTorch model; a missing
``.pth``, weights that do not fit, a script without ``Model`` and an
unsupported operator each fail with one line before any work."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import (ROOT, assert_spikes_equal, build_snn, make_workdir,
                      parse_and_normalise, setup, write_config)
from snntb_adaptive.errors import ConfigError

pytest.importorskip('torch')
pytest.importorskip('onnxruntime')

TORCH = "\n[input]\nmodel_lib = {}\n"
AT_ONE = ("\n[adaptive_threshold]\npreset = authors_executed\neta_scale = 1\n"
          "update = none\n")


@pytest.fixture(scope='module')
def twd(tmp_path_factory):
    """A work folder with the PyTorch model (model.py, model.pth), its ONNX
    export (onnx_model.onnx), and the digits both channels last (data) and
    channels first (data_nchw)."""
    wd = make_workdir(str(tmp_path_factory.mktemp('torch')), num_test=40,
                      num_norm=100)
    os.remove(os.path.join(wd, 'model.h5'))
    shutil.copy(os.path.join(ROOT, 'models', 'digits_torch.py'),
                os.path.join(wd, 'model.py'))
    shutil.copy(os.path.join(ROOT, 'models', 'digits_torch.pth'),
                os.path.join(wd, 'model.pth'))
    os.makedirs(os.path.join(wd, 'data_nchw'))
    for name in ('x_test', 'x_norm', 'y_test'):
        a = np.load(os.path.join(wd, 'data', name + '.npz'))['arr_0']
        if name != 'y_test':
            a = np.ascontiguousarray(np.moveaxis(a, -1, 1))
        np.savez_compressed(os.path.join(wd, 'data_nchw', name + '.npz'), a)
    from snntb_adaptive.foreign_models import read_torch_model, torch_to_onnx
    graph = torch_to_onnx(*read_torch_model(wd, 'model'))
    with open(os.path.join(wd, 'onnx_model.onnx'), 'wb') as f:
        f.write(graph.SerializeToString())
    return wd


def _config(wd, label, lib='pytorch', extra='', **kw):
    return write_config(wd, name=label + '.ini', label=label,
                        extra=TORCH.format(lib) + extra, **kw)


def _results(wd, label):
    with open(os.path.join(wd, 'log', 'gui', label, 'results.json')) as f:
        return json.load(f)


def test_snntoolbox_t_runs_a_pytorch_model(twd):
    cfg = _config(twd, 'torch_paper', duration=20,
                  extra='\n[adaptive_threshold]\npreset = paper\n')
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'snntoolbox'), '-t',
         cfg], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = _results(twd, 'torch_paper')
    assert res['ann_accuracy_top1'] > 0.9
    assert res['final_accuracy_top1'] > 0.8
    # no .h5 written next to the model (SNN-TB's own path left one behind)
    assert not os.path.exists(os.path.join(twd, 'model.h5'))


def test_stock_and_plugin_at_one_agree_spike_for_spike(twd):
    stock_cfg = setup(_config(
        twd, 'torch_stock', spike_code='temporal_mean_rate',
        output="log_vars = {'spiketrains_n_b_l_t'}"))
    at_cfg = setup(_config(twd, 'torch_at1', extra=AT_ONE))
    parsed, testset = parse_and_normalise(stock_cfg)
    stock = build_snn(stock_cfg, parsed, testset)
    at = build_snn(at_cfg, parsed, testset)
    x, y = testset['x_test'][:10], testset['y_test'][:10]
    stock.init_log_vars()
    stock.simulate(x_b_l=x, truth_b=np.argmax(y, 1))
    trains_stock = [np.moveaxis(s > 0, -1, 0)
                    for s, _ in stock.spiketrains_n_b_l_t]
    trains_at = at.simulate_spikes(x)
    assert len(trains_at) == len(trains_stock) >= 4
    for k, (a, s) in enumerate(zip(trains_at, trains_stock)):
        assert_spikes_equal(a != 0, s, 'layer {}'.format(k))
    assert sum(int(s.sum()) for s in trains_stock) > 500


def test_channels_first_data_and_onnx_give_the_same_run(twd):
    from snntb_adaptive.cli import main
    runs = {'nhwc': dict(), 'nchw': dict(data=os.path.join(twd,
                                                           'data_nchw')),
            'onnx': dict(lib='onnx', ann='onnx_model')}
    acc = {}
    for label, kw in runs.items():
        assert main(['-t', _config(twd, 'lay_' + label, duration=15,
                                   **kw)]) == 0
        res = _results(twd, 'lay_' + label)
        acc[label] = (res['accuracy_top1_per_step'],
                      res['spikes_per_layer'])
    assert acc['nhwc'] == acc['nchw'] == acc['onnx']


def test_calibrated_pytorch_run_fingerprints_script_and_weights(twd,
                                                                 tmp_path):
    """preset = calibrated on a PyTorch model: the calibration's fingerprint
    covers the script and the weights (other weights calibrate again), and
    results.json names the weights as the model file."""
    from snntb_adaptive import calibration
    from snntb_adaptive.cli import main
    from snntb_adaptive.foreign_models import model_files
    wd = str(tmp_path / 'cal')
    shutil.copytree(twd, wd, ignore=shutil.ignore_patterns('log'))
    extra = ("\n[adaptive_threshold]\npreset = calibrated\n"
             "calibration_steps = 8\ncalibration_samples = 50\n")
    cfg = _config(wd, 'torch_cal', duration=8, extra=extra)
    assert main(['-t', cfg]) == 0
    res = _results(wd, 'torch_cal')
    assert res['settings']['model_file'] == os.path.join(wd, 'model.pth')
    assert res['final_accuracy_top1'] > 0.85
    path = os.path.join(wd, 'log', 'gui', 'torch_cal',
                        calibration.CALIBRATION_FILE)
    first = calibration.read(path)['fingerprint']
    config = setup(cfg)
    assert model_files(config) == [os.path.join(wd, 'model.py'),
                                   os.path.join(wd, 'model.pth')]
    # other weights (the same shapes): calibrated again
    import torch
    state = torch.load(os.path.join(wd, 'model.pth'), weights_only=True)
    state['classifier.3.bias'] += 0.01
    torch.save(state, os.path.join(wd, 'model.pth'))
    assert main(['-t', cfg]) == 0
    assert calibration.read(path)['fingerprint'] != first


def _broken(twd, tmp_path, change):
    wd = str(tmp_path / 'wd')
    shutil.copytree(twd, wd, ignore=shutil.ignore_patterns('log', '*.h5'))
    change(wd)
    return _config(wd, 'broken')


@pytest.mark.parametrize('change,why', [
    (lambda wd: os.remove(os.path.join(wd, 'model.pth')),
     'no weights'),
    (lambda wd: open(os.path.join(wd, 'model.py'), 'a').write(
        '\n\nclass Model(nn.Module):\n    input_shape = (1, 8, 8)\n\n'
        '    def __init__(self):\n        super().__init__()\n'
        '        self.fc = nn.Linear(64, 10)\n\n'
        '    def forward(self, x):\n        return self.fc(x.flatten(1))\n'),
     'do not fit'),
    (lambda wd: open(os.path.join(wd, 'model.py'), 'w').write(
        'input_shape = (1, 8, 8)\n'), 'defines no Model'),
    (lambda wd: os.remove(os.path.join(wd, 'model.py')),
     'model script'),
    (lambda wd: open(os.path.join(wd, 'model.py'), 'a').write(
        '\n\n_forward = Model.forward\nModel.forward = lambda self, x: '
        '_forward(self, x).sigmoid()\n'), "(Sigmoid): operator not"),
])
def test_bad_pytorch_models_are_one_line_before_any_work(twd, tmp_path,
                                                         change, why):
    cfg = _broken(twd, tmp_path, change)
    with pytest.raises(ConfigError) as e:
        setup(cfg)
    assert why in str(e.value) and '\n' not in str(e.value), str(e.value)
    wd = os.path.dirname(cfg)
    assert not os.path.exists(os.path.join(wd, 'log', 'gui', 'broken',
                                           'normalization'))
    assert not [n for n in os.listdir(wd) if n.endswith('.h5')]


def test_the_cifar_residual_model_converts_exactly_and_parses():
    """models/cifar10_torch.py with its weights: the tf-keras twin equals
    the PyTorch model on real-valued inputs (largest difference printed by
    the loader, bounded here), and SNN-TB's parser turns its residual Add
    into a Concatenate and a summing 1x1 Conv2D."""
    import torch
    from snntb_adaptive import onnx_import
    from snntb_adaptive.foreign_models import load_pytorch, read_torch_model
    models = os.path.join(ROOT, 'models')
    keras_model = load_pytorch(models, 'cifar10_torch')['model']
    kinds = [type(lay).__name__ for lay in keras_model.layers]
    # (PyTorch's exporter folds the BatchNorms into the convolutions)
    assert {'Add', 'MaxPooling2D', 'AveragePooling2D'} <= set(kinds)
    torch_model, shape = read_torch_model(models, 'cifar10_torch')
    x = np.random.default_rng(1).random((4,) + shape, np.float32)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(x)).numpy()
    got = keras_model.predict(onnx_import.to_keras_layout(x), verbose=0)
    assert np.max(np.abs(want - got)) < 1e-4 * max(1, np.abs(want).max())
    import configparser
    import snntoolbox
    cfg = configparser.ConfigParser()   # SNN-TB's defaults
    cfg.read(os.path.join(os.path.dirname(snntoolbox.__file__),
                          'config_defaults'))
    from snntoolbox.parsing.model_libs.keras_input_lib import ModelParser
    parser = ModelParser(keras_model, cfg)
    with contextlib.redirect_stdout(io.StringIO()):
        parser.parse()
        parsed = parser.build_parsed_model()
    types = [type(lay).__name__ for lay in parsed.layers]
    k = types.index('Concatenate')
    assert types[k + 1] == 'Conv2D'
    w = parsed.layers[k + 1].get_weights()[0]
    assert w.shape == (1, 1, 128, 64) and set(np.unique(w)) == {0.0, 1.0}
