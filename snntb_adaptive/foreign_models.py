"""PyTorch and ONNX models in SNN-TB's pipeline (``[input] model_lib =
pytorch`` or ``onnx``).

SNN-TB's convention for PyTorch is kept: ``<path_wd>/<filename_ann>.py``
defines ``Model`` (built with the module's ``kwargs``, if any) and the
input shape without the batch axis, ``input_shape`` (on the module or the
model, ``(C, H, W)``), and ``<filename_ann>.pth`` (or ``.pkl``) holds its
``state_dict``. The script is the user's own code, which SNN-TB runs by
design; the weights are read with ``torch.load(..., weights_only=True)``
(tensors only, no pickled code). ``model_lib = onnx`` reads
``<filename_ann>.onnx`` and needs no PyTorch.

Both become a tf-keras model through :mod:`snntb_adaptive.onnx_import`
(checked against ONNX Runtime, and for PyTorch against the model itself),
in memory: no ``.h5`` is written next to the model. SNN-TB then parses it
as any Keras model. The plugin serves the two SNN-TB modules
``snntoolbox.parsing.model_libs.pytorch_input_lib`` (replacing SNN-TB's,
whose ``onnx2keras`` path fails on this stack) and ``..onnx_input_lib``
(:mod:`snntb_adaptive.model_lib_pytorch`,
:mod:`snntb_adaptive.model_lib_onnx`).

Data: test and normalisation images may be channels first, as a PyTorch
user holds them (``N, C, H, W``, SNN-TB's own PyTorch example saves them
so) or channels last; :func:`to_channels_last` puts them in the Keras
layout when SNN-TB loads them.
"""

import io
import os

import numpy as np

from snntb_adaptive.errors import ConfigError

FOREIGN = ('pytorch', 'onnx')
#: model file -> ONNX input shape without the batch axis (C, H, W), found by
#: the checks, used to lay out the data
_INPUT_SHAPES = {}


def model_lib(config):
    return config.get('input', 'model_lib', fallback='keras').strip()


def model_files(config):
    """The files that define the ANN of a run, for fingerprints and
    ``results.json``: ``<filename_ann>.h5`` (Keras), ``.onnx``, or the
    PyTorch script and its weights (``.pth``, else ``.pkl``: the one SNN-TB
    loads), in ``path_wd``."""
    base = os.path.join(config.get('paths', 'path_wd'),
                        config.get('paths', 'filename_ann'))
    lib = model_lib(config)
    if lib == 'onnx':
        return [base + '.onnx']
    if lib == 'pytorch':
        weights = [base + ext for ext in ('.pth', '.pkl')
                   if os.path.isfile(base + ext)]
        return [base + '.py'] + weights[:1]
    return [base + '.h5']


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ConfigError("[input] model_lib = pytorch needs PyTorch: pip "
                          "install -e '.[torch]'") from None
    return torch


def read_torch_model(path_wd, filename):
    """The user's PyTorch model with its weights loaded, and its input shape
    ``(C, H, W)``; one :class:`ConfigError` line for a missing script,
    ``Model`` or ``input_shape``, missing weights, or a ``state_dict`` that
    does not fit."""
    torch = _import_torch()
    script = os.path.join(path_wd, filename + '.py')
    if not os.path.isfile(script):
        raise ConfigError(
            "[input] model_lib = pytorch: the model script {} is not there; "
            "SNN-TB imports <filename_ann>.py, which defines Model and "
            "input_shape".format(script))
    from snntoolbox.utils.utils import import_script
    try:
        module = import_script(path_wd, filename)
    except Exception as e:     # the user's code
        raise ConfigError("the model script {} fails to import: {}: {}"
                          "".format(script, type(e).__name__, e)) from None
    if not hasattr(module, 'Model'):
        raise ConfigError(
            "the model script {} defines no Model (SNN-TB builds "
            "Model(**kwargs) from it)".format(script))
    try:
        model = module.Model(**getattr(module, 'kwargs', {}))
    except Exception as e:
        raise ConfigError("{}: Model(**kwargs) fails: {}: {}".format(
            script, type(e).__name__, e)) from None
    shape = getattr(model, 'input_shape', getattr(module, 'input_shape',
                                                  None))
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) not in (1, 2, 3) or min(shape) < 1:
        raise ConfigError(
            "{}: input_shape = {!r}; give the input's shape without the batch "
            "axis, e.g. input_shape = (3, 32, 32), on the module or the "
            "model".format(script, getattr(model, 'input_shape', getattr(
                module, 'input_shape', None))))
    weights = [os.path.join(path_wd, filename + ext) for ext in
               ('.pth', '.pkl')]
    found = [w for w in weights if os.path.isfile(w)]
    if not found:
        raise ConfigError(
            "[input] model_lib = pytorch: no weights {} or {}; save them with "
            "torch.save(model.state_dict(), path)".format(*weights))
    try:
        state = torch.load(found[0], map_location='cpu', weights_only=True)
    except Exception as e:
        raise ConfigError(
            "{} cannot be read as a state_dict of tensors ({}); save it with "
            "torch.save(model.state_dict(), path)".format(
                found[0], ' '.join(str(e).split())[:160])) from None
    if not isinstance(state, dict):
        raise ConfigError("{} holds a {}, not a state_dict; save it with "
                          "torch.save(model.state_dict(), path)".format(
                              found[0], type(state).__name__))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ConfigError(
            "the weights {} do not fit {}'s Model: {}".format(
                found[0], script, ' '.join(str(e).split())[:300])) from None
    model.eval()
    return model, shape


def torch_to_onnx(model, shape):
    """The ONNX graph of a PyTorch model (TorchScript exporter, constants
    folded, a dynamic batch axis)."""
    torch = _import_torch()
    import onnx
    buffer = io.BytesIO()
    x = torch.rand((2,) + tuple(shape))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (x,), buffer, dynamo=False,
                          input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch'},
                                        'output': {0: 'batch'}})
    return onnx.load_from_string(buffer.getvalue())


def load_pytorch(path, filename):
    """SNN-TB's ``load`` for ``model_lib = pytorch``: ``{'model': tf-keras
    model, 'val_fn': its evaluate}``."""
    from snntb_adaptive import onnx_import
    from snntb_adaptive.log import log
    torch = _import_torch()
    model, shape = read_torch_model(path, filename)
    graph = torch_to_onnx(model, shape)
    x = np.random.default_rng(0).random((8,) + shape, np.float32)
    keras_model, diff = onnx_import.convert(graph, x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = keras_model.predict(onnx_import.to_keras_layout(x), verbose=0)
    diff_torch = float(np.max(np.abs(want - got)))
    scale = max(1.0, float(np.max(np.abs(want))))
    if not diff_torch <= onnx_import.TOLERANCE * scale:
        raise onnx_import.ConversionError(
            "the converted model differs from the PyTorch model by up to "
            "{:.3g} (allowed {:.1g})".format(diff_torch,
                                             onnx_import.TOLERANCE * scale))
    log.info("PyTorch model {} converted to tf-keras: largest difference "
             "{:.1e} to PyTorch, {:.1e} to ONNX Runtime".format(
                 os.path.join(path, filename + '.py'), diff_torch, diff))
    return {'model': keras_model, 'val_fn': keras_model.evaluate}


def load_onnx(path, filename):
    """SNN-TB's ``load`` for ``model_lib = onnx``."""
    from snntb_adaptive import onnx_import
    from snntb_adaptive.log import log
    file = os.path.join(path, filename + '.onnx')
    keras_model, diff = onnx_import.convert(onnx_import.load_onnx(file))
    log.info("ONNX model {} converted to tf-keras: largest difference {:.1e} "
             "to ONNX Runtime".format(file, diff))
    return {'model': keras_model, 'val_fn': keras_model.evaluate}


def onnx_input_shape(graph, file):
    dims = [d.dim_value if d.HasField('dim_value') else None
            for d in graph.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d is None for d in dims[1:]):
        raise ConfigError("{}: input shape {} (give fixed sizes but for the "
                          "batch axis)".format(file, dims))
    return tuple(dims[1:])


def check_model(config):
    """The checks' model information for a PyTorch or ONNX model (the
    Keras model's is :func:`snntb_adaptive.checks.check_model_file`), once
    its script, weights and operators are found usable (converted without
    the comparison, which follows when SNN-TB loads it):
    ``{'input_shape'`` (channels last), ``'channels_first_shape'``,
    ``'output_units'}``, found before any work."""
    from snntb_adaptive import onnx_import
    path_wd = config.get('paths', 'path_wd')
    filename = config.get('paths', 'filename_ann')
    if model_lib(config) == 'pytorch':
        torch = _import_torch()
        model, shape = read_torch_model(path_wd, filename)
        with torch.no_grad():
            try:
                out = model(torch.zeros((1,) + shape))
            except Exception as e:
                raise ConfigError(
                    "the PyTorch model of {} fails on an input of shape {}: "
                    "{}: {}".format(os.path.join(path_wd, filename + '.py'),
                                    (1,) + shape, type(e).__name__,
                                    e)) from None
        units = int(out.shape[-1]) if out.ndim == 2 else None
        key = os.path.join(path_wd, filename + '.py')
        graph = torch_to_onnx(model, shape)
    else:
        file = os.path.join(path_wd, filename + '.onnx')
        graph = onnx_import.load_onnx(file)
        shape = onnx_input_shape(graph, file)
        out = graph.graph.output[0].type.tensor_type.shape.dim
        units = out[-1].dim_value if len(out) == 2 and out[-1].HasField(
            'dim_value') else None
        key = file
    # every operator convertible (the check against ONNX Runtime follows
    # when SNN-TB loads the model)
    onnx_import.convert(graph, check=False)
    _INPUT_SHAPES[os.path.abspath(key)] = shape
    return {'input_shape': shape[1:] + shape[:1] if len(shape) > 1 else shape,
            'channels_first_shape': shape, 'output_units': units}


def _shape_of(config):
    path_wd = config.get('paths', 'path_wd')
    filename = config.get('paths', 'filename_ann')
    ext = '.py' if model_lib(config) == 'pytorch' else '.onnx'
    key = os.path.abspath(os.path.join(path_wd, filename + ext))
    if key not in _INPUT_SHAPES:     # no checks ran (e.g. a stock run):
        # the input shape alone, without exporting or converting
        if ext == '.py':
            _INPUT_SHAPES[key] = read_torch_model(path_wd, filename)[1]
        else:
            from snntb_adaptive import onnx_import
            _INPUT_SHAPES[key] = onnx_input_shape(
                onnx_import.load_onnx(key), key)
    return _INPUT_SHAPES[key]


def to_channels_last(x, shape):
    """Images ``x`` of a model whose input is ``shape`` (ONNX layout, no
    batch axis) in the Keras layout: channels-first arrays are transposed,
    channels-last ones returned as they are."""
    if x is None or len(shape) < 2:
        return x
    x = np.asarray(x)
    if tuple(x.shape[1:]) == tuple(shape):
        return np.ascontiguousarray(np.moveaxis(x, 1, -1))
    return x


def lay_out_dataset(config, normset, testset):
    """SNN-TB's data sets for a PyTorch or ONNX model, channels last."""
    if model_lib(config) not in FOREIGN:
        return normset, testset
    shape = _shape_of(config)
    for data, key in ((normset, 'x_norm'), (testset, 'x_test')):
        if data and data.get(key) is not None:
            data[key] = to_channels_last(data[key], shape)
    return normset, testset
