"""Peers on the same weights: SpikingJelly's ANN-to-SNN converter on our
Keras models, ported to PyTorch, on the same test images as our tables.

Not part of the package (PyTorch is the optional extra ``[peers]``):

    .venv/bin/pip install -e ".[peers]"
    .venv/bin/python benchmarks/peers.py --model ../shared/models/cifar10_vgg7.h5 \\
        --first-test 5000 --num-test 5000 --steps 64 --out docs/results/peers_vgg7

What it does:

1. reads a tf-keras ``.h5`` (Conv2D, Dense, BatchNormalization, ReLU
   activations, AveragePooling2D, MaxPooling2D, Flatten, Dropout: the
   layers of our CIFAR-10 VGGs) and builds the same network in PyTorch (NCHW;
   the feature map is put back in Keras' NHWC order before Flatten, so the
   Dense weights apply unchanged); the port is checked against Keras on the
   first images (largest absolute difference of the outputs printed, and
   bounded);
2. converts it with SpikingJelly's rate-coding recipe (``FXConverter`` with
   ``RateCodingRecipe``: Conv-BN fusion, per-layer scaling by the maximum or
   the 99.9th percentile of the activations on the normalisation images,
   ReLU -> IF neurons with reset by subtraction; the output layer stays
   analog and its outputs are summed over steps, as SpikingJelly's own
   examples evaluate), for each ``--modes`` entry;
3. simulates every test image for ``--steps`` steps and writes the accuracy
   after each step (``<out>/<mode>.json``) and a table (``summary.md``)
   with the versions used.

4. with ``--li-repo PATH`` (a checkout of Li et al.'s published code,
   github.com/yhhhli/SNN_Calibration, which the project does not contain),
   runs their calibration on the same weights: the network is built as
   their ``SpikeModel`` expects it (it makes every ``Conv2d`` spiking and
   leaves ``Linear`` layers analog: our hidden FC layers become 1x1
   convolutions, only the classifier stays ``Linear``, so it is read out as
   an analog sum, and average pooling stays a plain average), with their
   BatchNorm folding, their MSE threshold search (``get_maximum_activation``,
   per layer, 5 batches of 128 ``x_norm`` images as in their script) and
   their ``bias_corr_model`` on one batch (``light``: bias correction;
   ``advanced``: ``correct_mempot=True``, the potential correction their
   CIFAR script uses), for each ``--li-steps`` T; then their spiking
   modules are stepped T times and the accuracy read after each step.

The normalisation images are the first ``--num-norm`` of ``x_norm`` (the
same file our configs use); the test images ``x_test[first : first+num]``
of the CIFAR-10 test file, scaled to [0, 1] like our data folders.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def keras_layers(path):
    """The layers of a tf-keras ``.h5`` model, with their weights."""
    import tf_keras
    model = tf_keras.models.load_model(path, compile=False)
    return model, model.layers


def port(model, fc_as_conv=False):
    """The tf-keras model as a ``torch.nn.Sequential`` (eval mode). With
    ``fc_as_conv`` every Dense layer but the last is a 1x1 convolution on a
    ``(N, F, 1, 1)`` map (the same function), for Li et al.'s code."""
    import torch
    from torch import nn
    dense = [layer for layer in model.layers
             if type(layer).__name__ == 'Dense']
    mods = []
    as_map = False           # the features are (N, F, 1, 1)
    for layer in model.layers:
        kind = type(layer).__name__
        w = layer.get_weights()
        if kind == 'InputLayer' or kind == 'Dropout':
            continue
        if kind == 'Conv2D':
            k = layer.kernel_size
            if layer.padding == 'same' and (k[0] % 2 == 0 or k[1] % 2 == 0 or
                                            layer.strides != (1, 1)):
                raise SystemExit('{}: only odd kernels with stride 1 for '
                                 "padding 'same'".format(layer.name))
            conv = nn.Conv2d(w[0].shape[2], w[0].shape[3], k,
                             stride=layer.strides,
                             padding=(k[0] // 2, k[1] // 2)
                             if layer.padding == 'same' else 0,
                             bias=layer.use_bias)
            conv.weight.data = torch.tensor(w[0].transpose(3, 2, 0, 1))
            if layer.use_bias:
                conv.bias.data = torch.tensor(w[1])
            mods.append(conv)
        elif kind == 'Dense' and fc_as_conv and layer is not dense[-1]:
            if not as_map:
                mods.append(ToMap())
                as_map = True
            fc = nn.Conv2d(w[0].shape[0], w[0].shape[1], 1,
                           bias=layer.use_bias)
            fc.weight.data = torch.tensor(w[0].T.copy()[:, :, None, None])
            if layer.use_bias:
                fc.bias.data = torch.tensor(w[1])
            mods.append(fc)
        elif kind == 'Dense':
            if as_map:
                mods.append(nn.Flatten())
                as_map = False
            fc = nn.Linear(w[0].shape[0], w[0].shape[1], bias=layer.use_bias)
            fc.weight.data = torch.tensor(w[0].T.copy())
            if layer.use_bias:
                fc.bias.data = torch.tensor(w[1])
            mods.append(fc)
        elif kind == 'BatchNormalization':
            gamma, beta, mean, var = w
            bn = (nn.BatchNorm2d if len(layer.output_shape) == 4 or as_map
                  else nn.BatchNorm1d)(len(gamma), eps=layer.epsilon)
            bn.weight.data = torch.tensor(gamma)
            bn.bias.data = torch.tensor(beta)
            bn.running_mean.data = torch.tensor(mean)
            bn.running_var.data = torch.tensor(var)
            mods.append(bn)
        elif kind in ('Activation', 'ReLU'):
            name = getattr(layer.activation, '__name__', 'relu') \
                if kind == 'Activation' else 'relu'
            if name != 'relu':
                raise SystemExit('{}: activation {} not supported'.format(
                    layer.name, name))
            mods.append(nn.ReLU())
        elif kind in ('AveragePooling2D', 'MaxPooling2D'):
            cls = nn.AvgPool2d if kind == 'AveragePooling2D' else \
                nn.MaxPool2d
            mods.append(cls(layer.pool_size, layer.strides))
        elif kind == 'Flatten':
            mods.append(NHWCFlatten())
        else:
            raise SystemExit('{}: layer type {} not supported by the port'
                             ''.format(layer.name, kind))
        act = getattr(layer, 'activation', None)
        if kind in ('Conv2D', 'Dense') and getattr(act, '__name__',
                                                   'linear') == 'relu':
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


def _modules():
    from torch import nn

    class NHWCFlatten(nn.Module):
        """Flatten in Keras' channels-last order."""

        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    class ToMap(nn.Module):
        """``(N, F)`` -> ``(N, F, 1, 1)``."""

        def forward(self, x):
            return x.reshape(x.shape[0], -1, 1, 1)
    return NHWCFlatten, ToMap


NHWCFlatten = ToMap = None


def li_calibration(keras_model, x_norm, x, y, steps, calib, repo, batch):
    """Li et al.'s calibration (their code, from ``repo``) on the same
    weights; accuracy after each step."""
    import torch
    sys.path.insert(0, os.path.abspath(repo))
    from models.calibration import bias_corr_model
    from models.fold_bn import search_fold_and_remove_bn
    from models.spiking_layer import SpikeModel, get_maximum_activation
    ann = port(keras_model, fc_as_conv=True)
    search_fold_and_remove_bn(ann)
    snn = SpikeModel(model=ann, sim_length=steps)
    loader = [(torch.tensor(x_norm[s:s + 128].transpose(0, 3, 1, 2)),
               torch.zeros(len(x_norm[s:s + 128]), dtype=torch.long))
              for s in range(0, len(x_norm), 128)]
    get_maximum_activation(loader, model=snn, momentum=0.9, iters=5,
                           mse=True, percentile=None, sim_length=steps,
                           channel_wise=False)
    bias_corr_model(model=snn, train_loader=loader,
                    correct_mempot=calib == 'advanced')
    snn.set_spike_state(use_spike=True)
    correct = np.zeros(steps)
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.tensor(x[start:start + batch].transpose(0, 3, 1, 2))
            yb = torch.tensor(y[start:start + batch])
            snn.init_membrane_potential()
            out = 0
            for t in range(steps):
                out = out + snn.model(xb)
                correct[t] += (out.argmax(1) == yb).sum().item()
    return correct / len(x)


def _git_head(repo):
    import subprocess
    try:
        return subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'],
                              capture_output=True, text=True,
                              check=True).stdout.strip()[:12]
    except (OSError, subprocess.CalledProcessError):
        return 'unknown commit'


def load_images(path, key, first, num):
    with np.load(path) as f:
        x = f[key][first:first + num] if num else f[key][first:]
    x = x.astype(np.float32)
    if x.max() > 1:
        x = x / 255.0
    return x


def simulate(snn, x, y, steps, batch):
    """Accuracy after each step (outputs summed over steps)."""
    import torch
    from spikingjelly.activation_based import functional
    correct = np.zeros(steps)
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.tensor(x[start:start + batch].transpose(0, 3, 1, 2))
            yb = torch.tensor(y[start:start + batch])
            functional.reset_net(snn)
            out = None
            for t in range(steps):
                step = snn(xb)
                out = step if out is None else out + step
                correct[t] += (out.argmax(1) == yb).sum().item()
    return correct / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', required=True, help='tf-keras .h5 model')
    p.add_argument('--test-file', default='../shared/data/cifar10_test.npz')
    p.add_argument('--first-test', type=int, default=0)
    p.add_argument('--num-test', type=int, default=1000)
    p.add_argument('--norm-file', default='../shared/data/cifar10_norm.npz')
    p.add_argument('--num-norm', type=int, default=1000)
    p.add_argument('--steps', type=int, default=64)
    p.add_argument('--batch', type=int, default=50)
    p.add_argument('--modes', default='max,99.9%',
                   help="SpikingJelly's scaling modes, comma-separated "
                   "(empty: none)")
    p.add_argument('--li-repo', default=None,
                   help="a checkout of Li et al.'s SNN_Calibration code: "
                   'also run their calibration')
    p.add_argument('--li-calib', default='light,advanced',
                   help='their pipelines, comma-separated')
    p.add_argument('--li-steps', default='8,16',
                   help='the T each calibration is made for (their '
                   'threshold search and shift depend on it)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', required=True, help='output folder')
    args = p.parse_args(argv)

    import torch
    from spikingjelly.activation_based import ann2snn
    global NHWCFlatten, ToMap
    NHWCFlatten, ToMap = _modules()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    keras_model, _ = keras_layers(args.model)
    ann = port(keras_model)
    x = load_images(args.test_file, 'x_test', args.first_test, args.num_test)
    with np.load(args.test_file) as f:
        y = f['y_test'].ravel()[args.first_test:args.first_test + len(x)]
    x_norm = load_images(args.norm_file, 'x_norm', 0, args.num_norm)
    with torch.no_grad():
        ours = ann(torch.tensor(x[:100].transpose(0, 3, 1, 2))).numpy()
    theirs = np.asarray(keras_model.predict(x[:100], verbose=0))
    diff = float(np.abs(ours - theirs).max())
    print('port: largest absolute difference to Keras on 100 images: '
          '{:.2e}'.format(diff))
    if diff > 1e-3:
        raise SystemExit('the PyTorch port differs from the Keras model')
    with torch.no_grad():
        guesses = np.concatenate([
            ann(torch.tensor(x[s:s + 500].transpose(0, 3, 1, 2))).argmax(1)
            .numpy() for s in range(0, len(x), 500)])
    ann_acc = float(np.mean(guesses == y))
    loader = [(torch.tensor(x_norm[s:s + args.batch].transpose(0, 3, 1, 2)),
               torch.zeros(len(x_norm[s:s + args.batch]), dtype=torch.long))
              for s in range(0, len(x_norm), args.batch)]
    from importlib.metadata import version
    versions = {'torch': torch.__version__,
                'spikingjelly': version('spikingjelly')}
    rows = []
    for mode in [m for m in args.modes.split(',') if m]:   # '' for none
        t0 = time.time()
        import copy
        recipe = ann2snn.RateCodingRecipe(dataloader=loader, mode=mode)
        snn = ann2snn.FXConverter(recipe=recipe).convert(copy.deepcopy(ann))
        acc = simulate(snn, x, y, args.steps, args.batch)
        seconds = time.time() - t0
        res = {'mode': mode, 'accuracy_top1_per_step': acc.tolist(),
               'ann_accuracy_top1': ann_acc, 'num_samples': len(x),
               'first_test': args.first_test, 'steps': args.steps,
               'num_norm': len(x_norm), 'port_max_abs_diff': diff,
               'seconds': round(seconds, 1), 'versions': versions,
               'model': os.path.basename(args.model)}
        with open(os.path.join(args.out, 'spikingjelly_{}.json'.format(
                mode.replace('%', 'pct'))), 'w') as f:
            json.dump(res, f, indent=1)
        rows.append(res)
        print('SpikingJelly {}: {}'.format(mode, ', '.join(
            'acc@{} {:.2f} %'.format(t, 100 * acc[t - 1])
            for t in (4, 8, 16, 32, 64) if t <= args.steps)), flush=True)
    if args.li_repo:
        # the same function with the hidden FC layers as 1x1 convolutions
        with torch.no_grad():
            mapped = port(keras_model, fc_as_conv=True)(torch.tensor(
                x[:100].transpose(0, 3, 1, 2))).numpy()
        if float(np.abs(mapped - theirs).max()) > 1e-3:
            raise SystemExit('the 1x1-convolution port differs from Keras')
        versions['li_et_al'] = _git_head(args.li_repo)
    for calib in (args.li_calib.split(',') if args.li_repo else []):
        for steps in [int(t) for t in args.li_steps.split(',')]:
            t0 = time.time()
            acc = li_calibration(keras_model, x_norm, x, y, steps, calib,
                                 args.li_repo, args.batch)
            res = {'mode': 'Li et al. {} (T = {})'.format(calib, steps),
                   'accuracy_top1_per_step': acc.tolist(),
                   'ann_accuracy_top1': ann_acc, 'num_samples': len(x),
                   'first_test': args.first_test, 'steps': steps,
                   'num_norm': len(x_norm), 'seconds':
                   round(time.time() - t0, 1), 'versions': versions,
                   'model': os.path.basename(args.model)}
            with open(os.path.join(args.out, 'li_{}_T{}.json'.format(
                    calib, steps)), 'w') as f:
                json.dump(res, f, indent=1)
            rows.append(res)
            print('{}: {}'.format(res['mode'], ', '.join(
                'acc@{} {:.2f} %'.format(t, 100 * acc[t - 1])
                for t in (4, 8, 16, 32, 64) if t <= steps)), flush=True)
    cols = [t for t in (4, 8, 16, 32, 64) if t <= args.steps]
    lines = ['{}: test images {}-{}, T = {}; ANN {:.2f} %; {}.'.format(
        os.path.basename(args.model), args.first_test,
        args.first_test + len(x) - 1, args.steps, 100 * ann_acc,
        ', '.join('{} {}'.format(k, v) for k, v in versions.items())), '',
        '| setting | ' + ' | '.join('acc@{}'.format(t) for t in cols) +
        ' | ANN |', '|---|' + '---|' * (len(cols) + 1)]
    for r in rows:
        acc = r['accuracy_top1_per_step']
        name = r['mode'] if r['mode'].startswith('Li') else \
            'SpikingJelly ' + r['mode']
        lines.append('| {} | '.format(name) + ' | '.join(
            '{:.2f} %'.format(100 * acc[t - 1]) if t <= len(acc) else '-'
            for t in cols) + ' | {:.2f} % |'.format(100 * ann_acc))
    with open(os.path.join(args.out, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
