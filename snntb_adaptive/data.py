"""Data sets and SNN-TB data folders.

SNN-TB's ``dataset_format = npz`` reads a folder with ``x_test.npz``,
``y_test.npz`` (one-hot) and, for normalisation, ``x_norm.npz``, each holding
one array ``arr_0``. :func:`write_snntb_dataset` writes such a folder;
loaders return images scaled to [0, 1] (as the paper does), channels last.

* :func:`load_digits` - scikit-learn's bundled 8x8 digits (offline);
* :func:`load_npz` - any ``.npz`` with given keys (the files in
  ``../shared/data``);
* :func:`load_keras_dataset` - the usual Keras download, only when asked.
"""

import os
import tempfile

import numpy as np

from snntb_adaptive.compat import current_umask
from snntb_adaptive.errors import DataError


def to_unit_range(x):
    """Scale images to float32 in [0, 1]: uint8 by 255; float data must
    already lie in [0, 1]."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / 255.0)
    x = x.astype(np.float32)
    if x.size and not np.all(np.isfinite(x)):
        raise DataError("images contain NaN or Inf values")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(
            "float images must lie in [0, 1] (found [{:.4g}, {:.4g}]); scale "
            "them, or pass uint8 images".format(float(x.min()),
                                                float(x.max())))
    return x


def with_channel_axis(x):
    """Add a trailing channel axis to grey images (N, H, W)."""
    return x[..., None] if x.ndim == 3 else x


def one_hot(y, num_classes=None):
    """Class labels (one per sample: shape ``(N,)`` or ``(N, 1)``, whole
    numbers from 0) as one-hot rows; a :class:`DataError` for anything else
    (images given as labels, fractions, a class count that is too small)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(
            y.dtype, np.number) or not np.all(np.isfinite(y)) or \
            np.any(y != np.round(y)) or y.min() < 0:
        raise DataError(
            "the labels have shape {} and type {}: give one whole-number "
            "class label from 0 per test image (check --y-key)".format(
                y.shape, y.dtype))
    y = y.astype(np.int64)
    if num_classes is None:
        num_classes = int(y.max()) + 1
    if num_classes <= y.max():
        raise DataError("--num-classes {}: the labels go up to {}; give at "
                        "least {}".format(num_classes, int(y.max()),
                                          int(y.max()) + 1))
    out = np.zeros((len(y), num_classes), np.float32)
    out[np.arange(len(y)), y] = 1
    return out


def load_digits(seed=0, test_fraction=0.2):
    """scikit-learn's 8x8 digits, (x_train, y_train, x_test, y_test), images
    (N, 8, 8, 1) in [0, 1], integer labels; a fixed stratified split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split
    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, d.target, test_size=test_fraction, random_state=seed,
        stratify=d.target)
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def load_npz(path, keys):
    """Arrays ``keys`` of the ``.npz`` at ``path``; a clear error names a
    missing file or key."""
    if not os.path.isfile(path):
        raise DataError("data file {} not found".format(path))
    try:
        with np.load(path) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise DataError(
                    "{} has no array(s) {}; it holds: {}".format(
                        path, ', '.join(missing), ', '.join(f.files)))
            return [f[k] for k in keys]
    except (OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError("{} is not a readable .npz file ({})".format(
            path, e)) from None


def load_keras_dataset(name):
    """Download (or take from the Keras cache) ``mnist``, ``cifar10`` or
    ``cifar100``: (x_train, y_train, x_test, y_test)."""
    from snntb_adaptive.registration import ensure_legacy_keras
    ensure_legacy_keras()
    from tensorflow import keras
    datasets = {'mnist': keras.datasets.mnist,
                'cifar10': keras.datasets.cifar10,
                'cifar100': keras.datasets.cifar100}
    if name not in datasets:
        raise DataError("unknown Keras data set {!r}; choose {}".format(
            name, ', '.join(datasets)))
    (x_tr, y_tr), (x_te, y_te) = datasets[name].load_data()
    return x_tr, y_tr.reshape(-1), x_te, y_te.reshape(-1)


def write_snntb_dataset(out_dir, x_test, y_test, x_norm, num_classes=None,
                        overwrite=False):
    """Write ``x_test.npz``, ``y_test.npz`` (one-hot) and ``x_norm.npz`` into
    ``out_dir``. Existing files are not replaced unless ``overwrite``."""
    files = {'x_test.npz': with_channel_axis(to_unit_range(x_test)),
             'y_test.npz': one_hot(y_test, num_classes),
             'x_norm.npz': with_channel_axis(to_unit_range(x_norm))}
    os.makedirs(out_dir, exist_ok=True)      # after the checks above
    existing = [f for f in files if os.path.lexists(os.path.join(out_dir,
                                                                  f))]
    if existing and not overwrite:
        raise DataError(
            "{} already holds {}; choose another folder or pass --overwrite"
            "".format(out_dir, ', '.join(existing)))
    for name, arr in files.items():
        path = os.path.join(out_dir, name)
        # a new file of a name no one could plant (O_EXCL), then renamed
        # over the destination (a link there is replaced, not followed)
        fd, tmp = tempfile.mkstemp(prefix='.' + name + '.', suffix='.tmp',
                                   dir=out_dir)
        try:
            with os.fdopen(fd, 'wb') as f:
                np.savez_compressed(f, arr)
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.remove(tmp)
            raise
    return {k: v.shape for k, v in files.items()}
