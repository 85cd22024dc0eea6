"""Train models/cifar10_torch.py's residual CNN on CIFAR-10 training images
and save its state_dict as ``models/cifar10_torch.pth`` (the model of
``configs/cifar10_torch.ini`` and the PyTorch table in docs/results.md).

    python models/train_cifar10_torch.py \
        [--data ../shared/data/cifar10_norm.npz] [--keras-download]
        [--val ../shared/data/cifar10_test.npz] [--epochs 80]
        [--threads 2] [--out models/cifar10_torch.pth]

Training images: ``x_norm``/``y_norm`` (or ``x_train``/``y_train``) of
``--data``: in this workplace the 5,000 training images of
``cifar10_norm.npz`` (every 10th image of the training set), the same
images SNN-TB normalises and calibrates on; elsewhere ``--keras-download``
takes every 10th image of Keras' CIFAR-10 training set (the same images,
exact instead of from a JPEG copy). Random crops (padding 4) and
horizontal flips, SGD with momentum and a one-cycle learning rate, seeded.
``--val`` prints the accuracy on the first 1,000 test images (the
development images; nothing is chosen on them here). Takes about
13 minutes on two quiet CPU cores (9-10 s per epoch; 28.5 minutes while
other work shared them).
"""

import argparse
import importlib.util
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))


def load_model_class():
    spec = importlib.util.spec_from_file_location(
        'cifar10_torch', os.path.join(HERE, 'cifar10_torch.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Model


def training_images(args):
    """(x uint8 NHWC, y int) of the training images."""
    import numpy as np
    from snntb_adaptive import data
    if args.keras_download:
        x, y, _, _ = data.load_keras_dataset('cifar10')
        return x[::10], y[::10]
    if args.data is None:
        raise SystemExit('give --data PATH.npz (x_norm/y_norm or '
                         'x_train/y_train) or --keras-download')
    with np.load(args.data) as f:
        keys = ('x_norm', 'y_norm') if 'x_norm' in f.files else \
            ('x_train', 'y_train')
    x, y = data.load_npz(args.data, keys)
    return x, np.asarray(y).reshape(-1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', help='.npz with x_norm/y_norm or '
                   'x_train/y_train (uint8 NHWC)')
    p.add_argument('--keras-download', action='store_true',
                   help="every 10th image of Keras' CIFAR-10 training set")
    p.add_argument('--val', help='.npz with x_test/y_test: accuracy on its '
                   'first 1,000 images after each epoch')
    p.add_argument('--epochs', type=int, default=80)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=0.1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=os.path.join(HERE, 'cifar10_torch.pth'))
    args = p.parse_args(argv)
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x, y = training_images(args)
    xt = torch.from_numpy(np.ascontiguousarray(
        np.moveaxis(x, -1, 1))).float() / 255
    yt = torch.from_numpy(y.astype(np.int64))
    val = None
    if args.val:
        from snntb_adaptive import data
        xv, yv = data.load_npz(args.val, ('x_test', 'y_test'))
        val = (torch.from_numpy(np.ascontiguousarray(
            np.moveaxis(xv[:1000], -1, 1))).float() / 255,
            np.asarray(yv[:1000]).reshape(-1))
    model = load_model_class()()
    steps = args.epochs * ((len(xt) + args.batch_size - 1) //
                           args.batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                          weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr,
                                                total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(xt)))
        total = 0.0
        for k in range(0, len(xt), args.batch_size):
            idx = perm[k:k + args.batch_size]
            xb = F.pad(xt[idx], (4, 4, 4, 4))
            n = len(idx)     # a random 32x32 crop per image
            r = torch.from_numpy(rng.integers(0, 9, (n, 1))) + \
                torch.arange(32)
            c = torch.from_numpy(rng.integers(0, 9, (n, 1))) + \
                torch.arange(32)
            xb = xb[torch.arange(n)[:, None, None, None],
                    torch.arange(3)[None, :, None, None],
                    r[:, None, :, None], c[:, None, None, :]]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        line = 'epoch {:2d}: loss {:.3f}, {:.0f} s'.format(
            epoch + 1, total / len(xt), time.time() - t0)
        if val is not None:
            model.eval()
            with torch.no_grad():
                acc = (model(val[0]).argmax(1).numpy() == val[1]).mean()
            line += ', development accuracy {:.2%}'.format(acc)
        print(line, flush=True)
    model.eval()
    torch.save(model.state_dict(), args.out)
    print('saved {} ({:.0f} s)'.format(args.out, time.time() - t0))


if __name__ == '__main__':
    main()
