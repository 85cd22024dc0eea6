"""ONNX models as tf-keras models SNN-TB can parse, exactly.

SNN-TB reads Keras models; PyTorch models reach it through ONNX. Its own
path (``onnx2keras``) is broken on this stack (see docs/architecture.md,
"ONNX and PyTorch models"), so this module converts an ONNX graph itself,
on the ``onnx`` package and NumPy alone, into plain tf-keras layers (no
``Lambda``), channels last:

* tensors of rank 4 (``N, C, H, W``) become ``N, H, W, C``, rank 3
  (``N, C, L``) ``N, L, C``; weights are transposed to match;
* ``Flatten`` (or a ``Reshape`` to ``N, -1``) of a feature map keeps Keras'
  ``H, W, C`` order, and the rows of the ``Gemm``/``MatMul`` that reads it
  are permuted to ONNX's ``C, H, W`` order, so that the network computes
  the same function;
* ``MatMul`` followed by ``Add`` of a constant becomes one ``Dense``; a
  ``Softmax`` after a ``Dense`` its activation (as in a Keras model).

Supported operators (:data:`OPS`): Conv (1-D and 2-D; padding, stride,
dilation; groups 1 or depthwise), Gemm, MatMul (+ Add), Relu, Clip (0..6),
BatchNormalization, AveragePool, MaxPool, GlobalAveragePool, Flatten,
Reshape (to ``N, -1``), Pad (zeros, spatial), Add (two tensors), Concat
(channels), Dropout, Identity, Softmax (last). Anything else is refused
with one line naming the operator and the node.

:func:`convert` checks the Keras model against ONNX Runtime on sample
inputs before it returns; :func:`convert_file` writes the ``.h5`` only
after that check passed (no half-written file on failure).
"""

import os
import tempfile

import numpy as np

from snntb_adaptive.errors import ConfigError

#: largest absolute output difference (Keras vs ONNX Runtime, float32)
#: accepted by :func:`check_against_onnxruntime`, relative to the largest
#: absolute output (and at least this, absolutely)
TOLERANCE = 1e-4


class ConversionError(ConfigError):
    """An ONNX model the converter cannot turn into an exact Keras model."""


class _Value:
    """An ONNX value during conversion: a constant (``const``), or a Keras
    tensor with its ONNX rank and, for a flattened feature map, ``perm``
    (Keras feature index -> ONNX feature index)."""

    def __init__(self, tensor=None, rank=None, const=None, perm=None):
        self.tensor, self.rank, self.const, self.perm = \
            tensor, rank, const, perm


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _name(node, i):
    return node.name or '{}_{}'.format(node.op_type, i)


class _Converter:
    def __init__(self, model):
        from onnx import numpy_helper
        from tensorflow import keras
        self.keras = keras
        self.L = keras.layers
        self.graph = model.graph
        self.env = {}
        for init in self.graph.initializer:
            self.env[init.name] = _Value(const=numpy_helper.to_array(init))
        self.consumers = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.fused = set()      # nodes folded into the one before them
        self.layer_count = 0
        self.weights = []       # (layer, weights), set once the model exists

    # -- helpers ---------------------------------------------------------

    def fail(self, node, i, why):
        raise ConversionError(
            "ONNX node {!r} ({}): {}".format(_name(node, i), node.op_type,
                                             why))

    def value(self, name, node, i):
        if name not in self.env:
            self.fail(node, i, 'input {!r} is not produced by a supported '
                      'node'.format(name))
        return self.env[name]

    def const(self, name, node, i, what):
        v = self.value(name, node, i)
        if v.const is None:
            self.fail(node, i, '{} must be a constant (an initializer)'
                      ''.format(what))
        return v.const

    def tensor(self, name, node, i):
        v = self.value(name, node, i)
        if v.tensor is None:
            self.fail(node, i, 'a constant where a tensor is expected')
        return v

    def layer_name(self, node, i):
        self.layer_count += 1
        base = ''.join(c if c.isalnum() or c == '_' else '_'
                       for c in (node.name or node.op_type)).strip('_')
        return '{}_{}'.format(base or node.op_type, self.layer_count)

    def fold(self, node):
        """Evaluate a node whose inputs are all constants (an exporter's
        arithmetic on constants, e.g. Unsqueeze of a bias) with ONNX's
        reference evaluator; False if some input is not a constant."""
        names = [n for n in node.input if n]
        if not names or any(n not in self.env or self.env[n].const is None
                            for n in names):
            return False
        from onnx.reference import ReferenceEvaluator
        outputs = ReferenceEvaluator(node).run(
            None, {n: self.env[n].const for n in names})
        for name, value in zip(node.output, outputs):
            self.env[name] = _Value(const=np.asarray(value))
        return True

    def only_consumer(self, name):
        users = self.consumers.get(name, [])
        outputs = {o.name for o in self.graph.output}
        return users[0] if len(users) == 1 and name not in outputs else None

    # -- the graph -------------------------------------------------------

    def run(self):
        keras = self.keras
        inputs = [i for i in self.graph.input if i.name not in self.env]
        if len(inputs) != 1:
            raise ConversionError("the ONNX model has {} inputs; SNN-TB "
                                  "simulates models with one".format(
                                      len(inputs)))
        dims = [d.dim_value if d.HasField('dim_value') else None
                for d in inputs[0].type.tensor_type.shape.dim]
        if len(dims) not in (2, 3, 4) or any(d is None for d in dims[1:]):
            raise ConversionError(
                "ONNX input {!r} has shape {}: give a model whose input is "
                "(N, C, H, W), (N, C, L) or (N, F) with fixed sizes".format(
                    inputs[0].name, dims))
        shape = (dims[2:] + dims[1:2]) if len(dims) > 2 else dims[1:]
        inp = keras.Input(tuple(shape), name='input')
        self.env[inputs[0].name] = _Value(inp, len(dims))
        for i, node in enumerate(self.graph.node):
            if id(node) in self.fused:
                continue
            if self.fold(node):
                continue
            handler = OPS.get(node.op_type)
            if handler is None:
                self.fail(node, i, 'operator not supported (supported: {}; '
                          'and any operator on constants only)'.format(
                              ', '.join(sorted(OPS))))
            handler(self, node, i, _attrs(node))
        if len(self.graph.output) != 1:
            raise ConversionError("the ONNX model has {} outputs; SNN-TB "
                                  "simulates models with one".format(
                                      len(self.graph.output)))
        out = self.env.get(self.graph.output[0].name)
        if out is None or out.tensor is None or out.rank != 2:
            raise ConversionError(
                "the ONNX model's output {!r} is not a (N, classes) tensor "
                "computed from the input".format(self.graph.output[0].name))
        model = keras.Model(inp, out.tensor)
        for layer, weights in self.weights:
            layer.set_weights(weights)
        return model

    def add(self, layer, x, out_name, rank, weights=None, perm=None):
        y = layer(x)
        if weights is not None:
            self.weights.append((layer, weights))
        self.env[out_name] = _Value(y, rank, perm=perm)
        return y


# -- operators ---------------------------------------------------------------

def _spatial_padding(conv, node, i, attrs, nd):
    pads = list(attrs.get('pads', [0] * (2 * nd)))
    if attrs.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET',
                                                 b'VALID', 'VALID'):
        conv.fail(node, i, 'auto_pad = {}: export the model with explicit '
                  'pads'.format(attrs['auto_pad']))
    return pads[:nd], pads[nd:]


def _pad_layer(conv, node, i, x, begin, end, nd):
    """Explicit zero padding before a 'valid' layer (None if none)."""
    if not any(begin) and not any(end):
        return x
    L = conv.L
    name = conv.layer_name(node, i) + '_pad'
    if nd == 2:
        return L.ZeroPadding2D(((begin[0], end[0]), (begin[1], end[1])),
                               name=name)(x)
    conv.fail(node, i, 'asymmetric or non-"same" padding of a 1-D '
              'convolution (SNN-TB has no 1-D zero padding)')


def op_conv(conv, node, i, attrs):
    L = conv.L
    x = conv.tensor(node.input[0], node, i)
    W = conv.const(node.input[1], node, i, 'the weight')
    B = conv.const(node.input[2], node, i, 'the bias') \
        if len(node.input) > 2 and node.input[2] else None
    nd = W.ndim - 2
    if nd not in (1, 2) or x.rank != nd + 2:
        conv.fail(node, i, '{}-D convolutions are not supported (1-D and '
                  '2-D are)'.format(nd))
    kernel = tuple(int(k) for k in W.shape[2:])
    strides = tuple(attrs.get('strides', [1] * nd))
    dil = tuple(attrs.get('dilations', [1] * nd))
    begin, end = _spatial_padding(conv, node, i, attrs, nd)
    same = all(s == 1 for s in strides) and all(
        b == e and b * 2 == d * (k - 1) for b, e, d, k in zip(
            begin, end, dil, kernel))
    t = x.tensor
    if not same:
        t = _pad_layer(conv, node, i, t, begin, end, nd)
    padding = 'same' if same and any(begin) else 'valid'
    group = int(attrs.get('group', 1))
    c_in = int(x.tensor.shape[-1])
    out = int(W.shape[0])
    name = conv.layer_name(node, i)
    if group == 1:
        kernel_w = np.transpose(W, tuple(range(2, 2 + nd)) + (1, 0))
        layer = (L.Conv2D if nd == 2 else L.Conv1D)(
            out, kernel, strides=strides, padding=padding,
            dilation_rate=dil, use_bias=B is not None, name=name)
    elif group == c_in and W.shape[1] == 1 and nd == 2:
        mult = out // c_in
        kernel_w = np.transpose(W.reshape(c_in, mult, *kernel), (2, 3, 0, 1))
        layer = L.DepthwiseConv2D(kernel, strides=strides, padding=padding,
                                  depth_multiplier=mult, dilation_rate=dil,
                                  use_bias=B is not None, name=name)
    else:
        conv.fail(node, i, 'group = {} (only 1, or depthwise with one '
                  'input channel per group, are supported)'.format(group))
    weights = [kernel_w.astype(np.float32)] + (
        [] if B is None else [B.astype(np.float32)])
    conv.add(layer, t, node.output[0], x.rank, weights)


def _dense(conv, node, i, x, W, B, activation=None):
    """A Dense layer ``y = x W + B`` (``W`` as (in, out) in ONNX's feature
    order; permuted when ``x`` is a flattened feature map)."""
    if x.rank != 2:
        conv.fail(node, i, 'a matrix product of a rank-{} tensor (flatten '
                  'it first)'.format(x.rank))
    if x.perm is not None:
        W = W[x.perm]
    units = int(W.shape[1])
    layer = conv.L.Dense(units, activation=activation,
                         use_bias=B is not None,
                         name=conv.layer_name(node, i))
    weights = [W.astype(np.float32)] + ([] if B is None else [
        np.broadcast_to(B, (units,)).astype(np.float32)])
    return layer, weights


def _softmax_after(conv, out_name):
    """The Softmax node that alone reads ``out_name`` (fused as the Dense's
    activation), or None."""
    nxt = conv.only_consumer(out_name)
    if nxt is not None and nxt.op_type == 'Softmax':
        axis = _attrs(nxt).get('axis', -1)
        if axis in (1, -1):
            return nxt
    return None


def op_gemm(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    W = conv.const(node.input[1], node, i, 'B (the weight)')
    B = conv.const(node.input[2], node, i, 'C (the bias)') \
        if len(node.input) > 2 and node.input[2] else None
    if attrs.get('transA', 0):
        conv.fail(node, i, 'transA = 1')
    alpha, beta = attrs.get('alpha', 1.0), attrs.get('beta', 1.0)
    W = (W.T if attrs.get('transB', 0) else W) * np.float32(alpha)
    if B is not None:
        B = B * np.float32(beta)
        if B.ndim > 1:
            B = B.reshape(-1)
    _finish_dense(conv, node, i, x, W, B)


def _finish_dense(conv, node, i, x, W, B, out_name=None):
    out_name = out_name or node.output[0]
    soft = _softmax_after(conv, out_name)
    layer, weights = _dense(conv, node, i, x, W, B,
                            'softmax' if soft is not None else None)
    if soft is not None:
        conv.fused.add(id(soft))
        out_name = soft.output[0]
    conv.add(layer, x.tensor, out_name, 2, weights)


def op_matmul(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    W = conv.const(node.input[1], node, i, 'the second operand (weight)')
    if W.ndim != 2:
        conv.fail(node, i, 'a weight of rank {}'.format(W.ndim))
    B, out_name = None, node.output[0]
    add = conv.only_consumer(node.output[0])
    if add is not None and add.op_type == 'Add':
        other = [n for n in add.input if n != node.output[0]]
        if len(other) == 1 and other[0] in conv.env and \
                conv.env[other[0]].const is not None and \
                conv.env[other[0]].const.size == W.shape[1]:
            B = conv.env[other[0]].const.reshape(-1)
            conv.fused.add(id(add))
            out_name = add.output[0]
    _finish_dense(conv, node, i, x, W, B, out_name)


def op_relu(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    conv.add(conv.L.Activation('relu', name=conv.layer_name(node, i)),
             x.tensor, node.output[0], x.rank, perm=x.perm)


def op_clip(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    lo = attrs.get('min')
    hi = attrs.get('max')
    if len(node.input) > 1 and node.input[1]:
        lo = float(conv.const(node.input[1], node, i, 'min'))
    if len(node.input) > 2 and node.input[2]:
        hi = float(conv.const(node.input[2], node, i, 'max'))
    if lo != 0 or hi is None or not 0 < hi:
        conv.fail(node, i, 'Clip({}, {}): only Clip(0, max) (ReLU6) is '
                  'supported'.format(lo, hi))
    conv.add(conv.L.ReLU(max_value=float(hi),
                         name=conv.layer_name(node, i)),
             x.tensor, node.output[0], x.rank, perm=x.perm)


def op_batchnorm(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    gamma, beta, mean, var = (
        conv.const(n, node, i, what).astype(np.float32) for n, what in zip(
            node.input[1:5], ('scale', 'B', 'mean', 'var')))
    if x.perm is not None:
        conv.fail(node, i, 'batch normalisation of a flattened feature map')
    layer = conv.L.BatchNormalization(
        axis=-1, epsilon=float(attrs.get('epsilon', 1e-5)),
        momentum=float(attrs.get('momentum', 0.9)),
        name=conv.layer_name(node, i))
    conv.add(layer, x.tensor, node.output[0], x.rank,
             [gamma, beta, mean, var])


def _pool(conv, node, i, attrs, kind):
    x = conv.tensor(node.input[0], node, i)
    if x.rank != 4:
        conv.fail(node, i, 'pooling of a rank-{} tensor (2-D pooling is '
                  'supported)'.format(x.rank))
    kernel = tuple(attrs['kernel_shape'])
    strides = tuple(attrs.get('strides', [1, 1]))
    begin, end = _spatial_padding(conv, node, i, attrs, 2)
    if attrs.get('ceil_mode', 0):
        conv.fail(node, i, 'ceil_mode = 1')
    if tuple(attrs.get('dilations', [1, 1])) != (1, 1):
        conv.fail(node, i, 'dilated pooling')
    t = x.tensor
    if any(begin) or any(end):
        if kind == 'avg' and not attrs.get('count_include_pad', 0):
            conv.fail(node, i, 'padding with count_include_pad = 0 (the '
                      'padded zeros would count in Keras)')
        if kind == 'max':
            conv.fail(node, i, 'padded max pooling')
        t = _pad_layer(conv, node, i, t, begin, end, 2)
    layer = (conv.L.AveragePooling2D if kind == 'avg' else
             conv.L.MaxPooling2D)(kernel, strides=strides, padding='valid',
                                  name=conv.layer_name(node, i))
    conv.add(layer, t, node.output[0], 4)


def op_avgpool(conv, node, i, attrs):
    _pool(conv, node, i, attrs, 'avg')


def op_maxpool(conv, node, i, attrs):
    if len(node.output) > 1 and node.output[1]:
        conv.fail(node, i, 'the indices output')
    _pool(conv, node, i, attrs, 'max')


def op_global_avgpool(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    if x.rank != 4:
        conv.fail(node, i, 'global pooling of a rank-{} tensor'.format(
            x.rank))
    # ONNX keeps (N, C, 1, 1); a Flatten or Reshape after it is the identity
    y = conv.L.GlobalAveragePooling2D(name=conv.layer_name(node, i))(
        x.tensor)
    conv.env[node.output[0]] = _Value(y, 2)


def _flatten_value(conv, node, i, x):
    if x.rank == 2:
        return _Value(x.tensor, 2, perm=x.perm)
    shape = [int(d) for d in x.tensor.shape[1:]]        # Keras: (H, W, C)
    channels = shape[-1]
    spatial = int(np.prod(shape[:-1]))
    y = conv.L.Flatten(name=conv.layer_name(node, i))(x.tensor)
    perm = None
    if spatial > 1:
        # Keras index k = s * C + c holds ONNX feature c * S + s
        s, c = np.divmod(np.arange(spatial * channels), channels)
        perm = c * spatial + s
    return _Value(y, 2, perm=perm)


def op_flatten(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    if attrs.get('axis', 1) != 1:
        conv.fail(node, i, 'axis = {} (only 1)'.format(attrs['axis']))
    conv.env[node.output[0]] = _flatten_value(conv, node, i, x)


def op_reshape(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    target = [int(d) for d in conv.const(node.input[1], node, i,
                                         'the shape')]
    features = int(np.prod([int(d) for d in x.tensor.shape[1:]]))
    if len(target) == 2 and (target[1] == features or (
            target[1] == -1 and target[0] != -1)):
        conv.env[node.output[0]] = _flatten_value(conv, node, i, x)
        return
    conv.fail(node, i, 'Reshape to {} (only to (N, -1), a flatten, is '
              'supported)'.format(target))


def op_pad(conv, node, i, attrs):
    x = conv.tensor(node.input[0], node, i)
    mode = attrs.get('mode', b'constant')
    if mode not in (b'constant', 'constant'):
        conv.fail(node, i, 'mode = {} (only constant zeros)'.format(mode))
    pads = list(attrs['pads']) if 'pads' in attrs else [
        int(p) for p in conv.const(node.input[1], node, i, 'the pads')]
    if len(node.input) > 2 and node.input[2]:
        value = conv.const(node.input[2], node, i, 'the value')
        if np.any(value != 0):
            conv.fail(node, i, 'padding with {} (only zeros)'.format(value))
    if len(node.input) > 3 and node.input[3]:
        conv.fail(node, i, 'the axes input')
    if x.rank != 4 or any(pads[k] for k in (0, 1, 4, 5)):
        conv.fail(node, i, 'padding other than of the two spatial axes of '
                  'a feature map')
    t = conv.L.ZeroPadding2D(((pads[2], pads[6]), (pads[3], pads[7])),
                             name=conv.layer_name(node, i))(x.tensor)
    conv.env[node.output[0]] = _Value(t, 4)


def op_add(conv, node, i, attrs):
    if len(node.input) != 2 or any(conv.value(n, node, i).tensor is None
                                   for n in node.input):
        conv.fail(node, i, 'addition of a constant (only two tensors, a '
                  'residual connection, or MatMul + bias)')
    a, b = (conv.tensor(n, node, i) for n in node.input)
    if a.rank != b.rank or a.perm is not None or b.perm is not None or \
            tuple(a.tensor.shape[1:]) != tuple(b.tensor.shape[1:]):
        conv.fail(node, i, 'tensors of different shapes (no broadcasting)')
    conv.add(conv.L.Add(name=conv.layer_name(node, i)),
             [a.tensor, b.tensor], node.output[0], a.rank)


def op_concat(conv, node, i, attrs):
    xs = [conv.tensor(n, node, i) for n in node.input]
    axis = attrs.get('axis')
    rank = xs[0].rank
    if axis not in (1, 1 - rank) or any(x.rank != rank or x.perm is not None
                                        for x in xs):
        conv.fail(node, i, 'concatenation along axis {} (only the channel '
                  'axis 1)'.format(axis))
    conv.add(conv.L.Concatenate(axis=-1, name=conv.layer_name(node, i)),
             [x.tensor for x in xs], node.output[0], rank)


def op_identity(conv, node, i, attrs):
    if node.op_type == 'Dropout' and len(node.output) > 1 and node.output[1]:
        conv.fail(node, i, 'the mask output')
    conv.env[node.output[0]] = conv.value(node.input[0], node, i)


def op_constant(conv, node, i, attrs):
    from onnx import numpy_helper
    if 'value' not in attrs:
        conv.fail(node, i, 'a constant other than a tensor value')
    conv.env[node.output[0]] = _Value(const=numpy_helper.to_array(
        attrs['value']))


def op_cast(conv, node, i, attrs):
    """A cast of a constant (exporters cast Clip's bounds); a tensor cast
    to float32 is the identity."""
    from onnx import helper
    v = conv.value(node.input[0], node, i)
    dtype = helper.tensor_dtype_to_np_dtype(attrs['to'])
    if v.const is not None:
        conv.env[node.output[0]] = _Value(const=v.const.astype(dtype))
    elif dtype == np.float32:
        conv.env[node.output[0]] = v
    else:
        conv.fail(node, i, 'a cast of a tensor to {}'.format(dtype))


def op_softmax(conv, node, i, attrs):
    conv.fail(node, i, 'a Softmax that does not follow a Gemm or MatMul '
              'directly (only a softmax output layer is supported)')


#: ONNX operator -> handler (see the module docstring)
OPS = {'Conv': op_conv, 'Gemm': op_gemm, 'MatMul': op_matmul,
       'Relu': op_relu, 'Clip': op_clip,
       'BatchNormalization': op_batchnorm, 'AveragePool': op_avgpool,
       'MaxPool': op_maxpool, 'GlobalAveragePool': op_global_avgpool,
       'Flatten': op_flatten, 'Reshape': op_reshape, 'Pad': op_pad,
       'Add': op_add, 'Concat': op_concat, 'Dropout': op_identity,
       'Identity': op_identity, 'Constant': op_constant, 'Cast': op_cast,
       'Softmax': op_softmax}


# -- the entry points --------------------------------------------------------

def load_onnx(path):
    """The ONNX model at ``path`` (checked), or a :class:`ConversionError`
    that says what is wrong with the file."""
    if not os.path.lexists(path):
        raise ConversionError("ONNX model {} not found".format(path))
    if not os.path.isfile(path):      # a folder, or a pipe that would block
        raise ConversionError("ONNX model {} is not a regular file; give "
                              "the .onnx file".format(path))
    onnx = import_onnx()
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as e:       # onnx raises its own and protobuf errors
        raise ConversionError("{} is not a valid ONNX model ({})".format(
            path, ' '.join(str(e).split())[:200])) from None
    return model


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX models need the onnx package: pip install "
                          "-e '.[torch]' (onnx, onnxruntime, torch)"
                          "") from None
    return onnx


def convert(model, samples=None, check=True):
    """A tf-keras model computing what the ONNX ``model`` computes; with
    ``check``, compared against ONNX Runtime on ``samples`` (ONNX layout;
    default 8 uniform random inputs in [0, 1]). Returns ``(keras model,
    largest absolute difference or None)``."""
    from snntb_adaptive.registration import ensure_legacy_keras
    ensure_legacy_keras()
    keras_model = _Converter(model).run()
    from tensorflow.keras import metrics
    # as SNN-TB compiles the models it loads (its evaluate reads top-k too)
    keras_model.compile('sgd', 'categorical_crossentropy',
                        ['accuracy', metrics.top_k_categorical_accuracy])
    diff = check_against_onnxruntime(model, keras_model, samples) \
        if check else None
    return keras_model, diff


def to_keras_layout(x):
    """ONNX-layout inputs (``N, C, H, W`` / ``N, C, L``) in Keras' channels-
    last layout; rank-2 inputs unchanged."""
    x = np.asarray(x)
    return np.moveaxis(x, 1, -1) if x.ndim > 2 else x


def check_against_onnxruntime(model, keras_model, samples=None):
    """The largest absolute difference between the Keras model's outputs
    and ONNX Runtime's on ``samples``; a :class:`ConversionError` when it
    exceeds :data:`TOLERANCE` (times the outputs' scale, at least 1)."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("checking the conversion needs onnxruntime: pip "
                          "install -e '.[torch]'") from None
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider'])
    inp = session.get_inputs()[0]
    if samples is None:
        shape = [8] + [int(d) for d in keras_model.input_shape[1:]]
        shape = shape[:1] + shape[-1:] + shape[1:-1] if len(shape) > 2 \
            else shape
        samples = np.random.default_rng(0).random(shape, np.float32)
    samples = np.asarray(samples, np.float32)
    batch = inp.shape[0] if isinstance(inp.shape[0], int) else len(samples)
    want = np.concatenate([
        session.run(None, {inp.name: samples[k:k + batch]})[0]
        for k in range(0, len(samples) - batch + 1, batch)])
    samples = samples[:len(want)]
    got = keras_model.predict(to_keras_layout(samples), verbose=0)
    diff = float(np.max(np.abs(want - got)))
    scale = max(1.0, float(np.max(np.abs(want))))
    if not diff <= TOLERANCE * scale:
        raise ConversionError(
            "the converted Keras model differs from ONNX Runtime by up to "
            "{:.3g} on {} sample inputs (allowed {:.1g}); nothing was "
            "written. Please report the model's operators".format(
                diff, len(samples), TOLERANCE * scale))
    return diff


def convert_file(onnx_path, out_path, overwrite=False, samples=None):
    """Convert ``onnx_path`` and write the tf-keras ``.h5`` to ``out_path``
    (a temporary file renamed into place only after the check against ONNX
    Runtime passed). Returns ``(out_path, largest difference)``."""
    if not out_path.endswith('.h5'):
        raise ConfigError("--out {}: give a path ending in .h5".format(
            out_path))
    if os.path.lexists(out_path) and not overwrite:
        raise ConfigError("{} exists; choose another --out or pass "
                          "--overwrite".format(out_path))
    model = load_onnx(onnx_path)
    keras_model, diff = convert(model, samples)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(out_path) + '.',
                               suffix='.h5', dir=folder)
    os.close(fd)
    try:
        keras_model.save(tmp)
        os.replace(tmp, out_path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
    return out_path, diff
