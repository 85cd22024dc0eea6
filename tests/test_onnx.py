"""ONNX models into tf-keras (snntb_adaptive.onnx_import): every operator
of the coverage list, exported from a small torch model, converts to a Keras
model with the outputs of torch and ONNX Runtime (largest absolute
difference below 1e-4 on float32 inputs); anything else is refused in one
line naming the operator and the node; a failed conversion writes nothing."""

import os

import numpy as np
import pytest

from snntb_adaptive.errors import ConfigError

torch = pytest.importorskip('torch')
onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
nn = torch.nn

from snntb_adaptive import onnx_import  # noqa: E402


class Net(nn.Module):
    """``body`` (on an input of ``shape``), then flatten and a linear
    classifier."""

    def __init__(self, body, shape, flatten=True):
        super().__init__()
        self.body, self.shape, self.flatten = body, shape, flatten
        with torch.no_grad():
            n = int(np.prod(body(torch.zeros((1,) + shape)).shape[1:]))
        self.fc = nn.Linear(n, 10)

    def forward(self, x):
        y = self.body(x)
        return self.fc(torch.flatten(y, 1) if self.flatten else y)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.a(x))
        return torch.relu(y + self.b(y))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 5, 3, padding=1)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class Clip6(nn.Module):
    def forward(self, x):
        return torch.clamp(x, 0, 6)


def _bn(c):
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(-2, 2)
        bn.bias.uniform_(-1, 1)
    return bn


IMG = (3, 12, 12)
CASES = {
    'conv': lambda: Net(nn.Conv2d(3, 6, 3), IMG),
    'conv_padding': lambda: Net(nn.Conv2d(3, 6, 3, padding=1), IMG),
    'conv_padding_asymmetric': lambda: Net(nn.Sequential(
        nn.ZeroPad2d((0, 1, 2, 0)), nn.Conv2d(3, 6, 3)), IMG),
    'conv_stride': lambda: Net(nn.Conv2d(3, 6, 3, stride=2, padding=1), IMG),
    'conv_dilation': lambda: Net(nn.Conv2d(3, 6, 3, dilation=2, padding=2),
                                 IMG),
    'conv_depthwise': lambda: Net(nn.Conv2d(3, 6, 3, groups=3, padding=1),
                                  IMG),
    'conv1d': lambda: Net(nn.Conv1d(4, 6, 3, padding=1), (4, 20)),
    'gemm': lambda: Net(nn.Identity(), (20,)),
    'matmul_add': lambda: Net(nn.Linear(20, 7), (20,)),
    'relu': lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU()), IMG),
    'clip6': lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3), Clip6()), IMG),
    'batchnorm': lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3), _bn(6),
                                           nn.ReLU()), IMG),
    'avgpool': lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3),
                                         nn.AvgPool2d(2)), IMG),
    'maxpool': lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3),
                                         nn.MaxPool2d(2, 2)), IMG),
    'global_avgpool': lambda: Net(nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1)), IMG),
    'flatten_1x1': lambda: Net(nn.Conv2d(3, 6, 12), IMG),
    'pad': lambda: Net(nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(3, 6, 3)),
                       IMG),
    'residual_add': lambda: Net(Residual(), IMG),
    'concat': lambda: Net(Concat(), IMG),
    'dropout': lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3),
                                         nn.Dropout(0.5)), IMG),
    'softmax_out': lambda: nn.Sequential(nn.Flatten(), nn.Linear(432, 10),
                                         nn.Softmax(1)),
}


def _export(model, shape, path, dynamo=False, folding=True):
    """The legacy exporter with a dynamic batch (``folding = False`` keeps
    BatchNormalization apart), or torch's default one."""
    model.eval()
    x = torch.rand((2,) + shape)
    kw = dict(dynamo=False, do_constant_folding=folding,
              dynamic_axes={'x': {0: 'n'}}) if not dynamo else {}
    torch.onnx.export(model, (x,), path, input_names=['x'], **kw)
    return onnx.load(path)


@pytest.mark.parametrize('case', sorted(CASES))
def test_every_operator_converts_exactly(case, tmp_path):
    torch.manual_seed(0)
    model = CASES[case]()
    shape = getattr(model, 'shape', IMG)
    graph = _export(model, shape, str(tmp_path / 'm.onnx'),
                    folding=case != 'batchnorm')
    if case == 'batchnorm':
        assert 'BatchNormalization' in [n.op_type for n in graph.graph.node]
    keras_model, diff = onnx_import.convert(graph)
    assert diff < 1e-4
    x = np.random.default_rng(1).random((5,) + shape, np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = keras_model.predict(onnx_import.to_keras_layout(x), verbose=0)
    assert np.max(np.abs(want - got)) < 1e-4
    names = [layer.__class__.__name__ for layer in keras_model.layers]
    assert 'Lambda' not in names
    expect = {'batchnorm': 'BatchNormalization', 'conv_depthwise':
              'DepthwiseConv2D', 'conv1d': 'Conv1D', 'residual_add': 'Add',
              'concat': 'Concatenate', 'maxpool': 'MaxPooling2D',
              'avgpool': 'AveragePooling2D', 'global_avgpool':
              'GlobalAveragePooling2D', 'pad': 'ZeroPadding2D',
              'clip6': 'ReLU'}.get(case)
    if expect:
        assert expect in names, names
    if case == 'softmax_out':
        assert keras_model.layers[-1].get_config()['activation'] == 'softmax'


def test_torch_default_exporter_converts_too(tmp_path):
    torch.manual_seed(0)
    model = Net(Residual(), IMG)
    graph = _export(model, IMG, str(tmp_path / 'm.onnx'), dynamo=True)
    _, diff = onnx_import.convert(graph)
    assert diff < 1e-4


@pytest.mark.parametrize('module,op', [
    (lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3), nn.Sigmoid()), IMG),
     'Sigmoid'),
    (lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3), nn.Tanh()), IMG), 'Tanh'),
    (lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 1),
                               nn.Conv2d(6, 6, 3, groups=2)), IMG),
     'group = 2'),
    (lambda: Net(nn.Sequential(nn.Conv2d(3, 6, 3), nn.Upsample(
        scale_factor=2)), IMG), 'Resize'),
])
def test_unsupported_operator_is_one_line(module, op, tmp_path):
    torch.manual_seed(0)
    graph = _export(module(), IMG, str(tmp_path / 'm.onnx'))
    with pytest.raises(onnx_import.ConversionError) as e:
        onnx_import.convert(graph)
    msg = str(e.value)
    assert op in msg and 'ONNX node' in msg and '\n' not in msg


def test_convert_file_writes_only_a_checked_model(tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = str(tmp_path / 'm.onnx')
    _export(Net(Residual(), IMG), IMG, path)
    out = str(tmp_path / 'm.h5')
    written, diff = onnx_import.convert_file(path, out)
    assert written == out and os.path.isfile(out) and diff < 1e-4
    with pytest.raises(ConfigError, match='exists'):
        onnx_import.convert_file(path, out)
    # a conversion that does not match ONNX Runtime leaves nothing behind
    monkeypatch.setattr(onnx_import, 'TOLERANCE', -1.0)
    bad = str(tmp_path / 'bad.h5')
    with pytest.raises(onnx_import.ConversionError, match='nothing was '
                       'written'):
        onnx_import.convert_file(path, bad)
    assert sorted(os.listdir(tmp_path)) == ['m.h5', 'm.onnx']


def test_convert_onnx_command(tmp_path, capsys):
    from snntb_adaptive.cli import main
    torch.manual_seed(0)
    path = str(tmp_path / 'm.onnx')
    _export(Net(Residual(), IMG), IMG, path)
    out = str(tmp_path / 'm.h5')
    assert main(['convert-onnx', path, '--out', out]) == 0
    said = capsys.readouterr().out
    assert 'largest absolute difference' in said and out in said
    from snntb_adaptive.checks import check_model_file
    check_model_file(out)              # a model SNN-TB's checks accept
    (tmp_path / 'junk.onnx').write_bytes(b'not onnx')
    assert main(['convert-onnx', str(tmp_path / 'junk.onnx'), '--out',
                 str(tmp_path / 'j.h5')]) == 2
    assert 'is not a valid ONNX model' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'j.h5')
