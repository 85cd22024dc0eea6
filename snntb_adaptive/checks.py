"""Input checks that run in SNN-TB's ``update_setup``, before any model is
built or any data is simulated (``spike_code = adaptive_threshold``).

Each failure raises :class:`~snntb_adaptive.errors.ConfigError` (or
:class:`~snntb_adaptive.errors.DataError`) with a message that names the
problem and the fix:

* the model file: missing, unreadable, not HDF5, a Keras-3 ``.keras`` archive
  or Keras-3 ``.h5`` (rebuild it with ``python -m snntb_adaptive
  convert-keras3``), weights only, NaN or Inf weights, layers that SNN-TB
  would silently drop;
* the data folder: missing files, files without SNN-TB's ``arr_0`` array,
  shapes that do not fit the model or each other, labels that are not
  one-hot, NaN / Inf, values outside [0, 1], fewer samples than one batch;
* the log folder: cannot be created or written.
"""

import json
import os
import zipfile

import numpy as np

from snntb_adaptive.errors import ConfigError, DataError
from snntb_adaptive.network import CONVERTIBLE
KERAS3_FIX = ("Rebuild it as a tf-keras .h5 with 'python -m snntb_adaptive "
              "convert-keras3 MODEL OUT.h5' (see the README), and point "
              "[paths] filename_ann at OUT.")


def model_path(config):
    return os.path.join(config.get('paths', 'path_wd'),
                        config.get('paths', 'filename_ann') + '.h5')


def check_model_file(path):
    """Return ``{'input_shape', 'output_units', 'layers'}`` of a tf-keras
    ``.h5``; raise with a clear message otherwise."""
    keras_path = path[:-3] + '.keras'
    if not os.path.exists(path):
        if os.path.exists(keras_path):
            raise ConfigError(
                "model {} not found, but {} exists: that is a Keras-3 model, "
                "which SNN-TB 0.6.0 cannot read. {}".format(path, keras_path,
                                                            KERAS3_FIX))
        raise ConfigError(
            "model file {} not found: set [paths] path_wd and filename_ann "
            "(without .h5) to a tf-keras .h5 model".format(path))
    if zipfile.is_zipfile(path):
        raise ConfigError("model file {} is a Keras-3 .keras archive, not an "
                          "HDF5 file. {}".format(path, KERAS3_FIX))
    import h5py
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise ConfigError("model file {} cannot be read as HDF5 ({}): "
                          "give a tf-keras .h5 model".format(path, e)) \
            from None
    with f:
        version = str(f.attrs.get('keras_version', ''))
        if version.startswith('3'):
            raise ConfigError(
                "model file {} was saved by Keras {}; SNN-TB 0.6.0 needs a "
                "tf-keras (Keras 2) model. {}".format(path, version,
                                                      KERAS3_FIX))
        if 'model_config' not in f.attrs:
            raise ConfigError(
                "model file {} holds weights only (no architecture); save "
                "the whole model with model.save(path) in tf-keras".format(
                    path))
        config = json.loads(f.attrs['model_config'])
        bad = []
        if 'model_weights' in f:
            f['model_weights'].visititems(
                lambda name, obj: bad.append(name) if isinstance(
                    obj, h5py.Dataset) and obj.dtype.kind == 'f' and not
                np.all(np.isfinite(obj[()])) else None)
        if bad:
            raise ConfigError(
                "model file {} has NaN or Inf weights in {}; retrain or "
                "repair the model".format(path, ', '.join(bad[:5])))
    layers = config.get('config', {}).get('layers', [])
    for layer in layers:
        cls = layer.get('class_name')
        if cls not in CONVERTIBLE:
            raise ConfigError(
                "model {}: layer {!r} of type {} cannot be converted: SNN-TB "
                "would silently drop it and simulate a different network. "
                "Supported layer types: {}.".format(
                    path, layer.get('config', {}).get('name'), cls,
                    ', '.join(sorted(CONVERTIBLE))))
    input_shape = None
    for layer in layers[:1]:
        c = layer.get('config', {})
        shape = c.get('batch_input_shape') or c.get('batch_shape')
        if shape:
            input_shape = tuple(shape[1:])
    units = None
    for layer in reversed(layers):
        if layer.get('class_name') == 'Dense':
            units = layer['config'].get('units')
            break
        if layer.get('class_name') not in ('Activation', 'Dropout',
                                            'BatchNormalization', 'ReLU'):
            break
    return {'input_shape': input_shape, 'output_units': units,
            'layers': layers}


def _load_arr0(folder, name):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path) as f:
            if 'arr_0' not in f.files:
                raise DataError(
                    "{} holds {} but SNN-TB reads the array 'arr_0': write "
                    "it with np.savez_compressed(path, array), or use "
                    "'python -m snntb_adaptive prepare-data'".format(
                        path, ', '.join(f.files) or 'no arrays'))
            return f['arr_0']
    except (OSError, ValueError) as e:
        raise DataError("{} is not a readable .npz file ({})".format(
            path, e)) from None


def _check_images(name, x, input_shape):
    if x.dtype.kind not in 'fiu':
        raise DataError("{}: dtype {} is not numeric".format(name, x.dtype))
    if input_shape and tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(
            "{}: samples have shape {}, the model expects {}; check the "
            "data's layout (channels last) and that it belongs to this "
            "model".format(name, tuple(x.shape[1:]), tuple(input_shape)))
    if not np.all(np.isfinite(x)):
        raise DataError("{} contains NaN or Inf values".format(name))
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        hint = (" It looks like 0-255 pixels: divide by 255 (prepare-data "
                "does)." if hi > 1 and hi <= 255 and lo >= 0 else "")
        raise DataError(
            "{}: values lie in [{:.4g}, {:.4g}], but inputs are constant "
            "currents in [0, 1] (as the paper's and these models' inputs). "
            "Scale the data to [0, 1].{}".format(name, lo, hi, hint))


def check_dataset(config, info):
    folder = config.get('paths', 'dataset_path')
    if not os.path.isdir(folder):
        raise DataError("[paths] dataset_path = {}: folder not found; make it "
                        "with 'python -m snntb_adaptive prepare-data'".format(
                            folder))
    x = _load_arr0(folder, 'x_test.npz')
    y = _load_arr0(folder, 'y_test.npz')
    missing = [n for n, a in (('x_test.npz', x), ('y_test.npz', y))
               if a is None]
    normalize = config.getboolean('tools', 'normalize')
    xn = _load_arr0(folder, 'x_norm.npz') if normalize else None
    if normalize and xn is None:
        missing.append('x_norm.npz')
    if missing:
        hint = (" (x_norm.npz holds the normalisation images; or set [tools] "
                "normalize = False)" if 'x_norm.npz' in missing else '')
        raise DataError("{} missing in [paths] dataset_path = {}; make the "
                        "folder with 'python -m snntb_adaptive prepare-data'"
                        "{}".format(', '.join(missing), folder, hint))
    shape = info.get('input_shape')
    _check_images(os.path.join(folder, 'x_test.npz'), x, shape)
    if xn is not None:
        _check_images(os.path.join(folder, 'x_norm.npz'), xn, shape)
    yp = os.path.join(folder, 'y_test.npz')
    if y.ndim != 2 or len(y) != len(x):
        raise DataError(
            "{}: shape {}; expected one one-hot row per test sample, ({}, "
            "classes)".format(yp, y.shape, len(x)))
    if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(1) == 1)):
        raise DataError("{}: labels must be one-hot rows (one 1, zeros "
                        "elsewhere); prepare-data writes them".format(yp))
    units = info.get('output_units')
    if units and y.shape[1] != units:
        raise DataError("{}: {} classes, but the model has {} outputs".format(
            yp, y.shape[1], units))
    batch = config.getint('simulation', 'batch_size')
    n = min(config.getint('simulation', 'num_to_test'), len(x))
    if n < batch:
        raise DataError(
            "{} test samples are fewer than one batch ([simulation] "
            "batch_size = {}); lower batch_size or add samples".format(
                n, batch))


def check_log_dir(config):
    path_wd = config.get('paths', 'path_wd')
    log_dir = config.get('paths', 'log_dir_of_current_run') or os.path.join(
        path_wd, 'log', 'gui', config.get('paths', 'runlabel'))
    try:
        os.makedirs(log_dir, exist_ok=True)
        probe = os.path.join(log_dir, '.snntb_adaptive_write_test')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        raise ConfigError(
            "log folder {} cannot be written ({}); set [paths] "
            "log_dir_of_current_run (or path_wd / runlabel) to a writable "
            "folder".format(log_dir, e.strerror or e)) from None


def precheck(config):
    """All checks, on SNN-TB's merged config (defaults + user file), before
    SNN-TB's own ``update_setup`` runs."""
    path_wd = config.get('paths', 'path_wd')
    if path_wd and not os.path.isdir(path_wd):
        raise ConfigError("[paths] path_wd = {}: folder not found".format(
            path_wd))
    info = {}
    if config.getboolean('tools', 'parse') or \
            config.getboolean('tools', 'evaluate_ann'):
        info = check_model_file(model_path(config))
    check_dataset(config, info)
    check_log_dir(config)
    return info
