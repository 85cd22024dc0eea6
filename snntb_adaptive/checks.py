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
* the log folder: cannot be created or written;
* containment: a model file SNN-TB would write outside ``path_wd``, a
  symbolic link on the way to any file the run writes.
"""

import json
import os
import zipfile

import numpy as np

from snntb_adaptive.errors import ConfigError, DataError
from snntb_adaptive.network import CONVERTIBLE, SPIKING_TYPES
KERAS3_FIX = ("Rebuild it as a tf-keras .h5 with 'python -m snntb_adaptive "
              "convert-keras3 MODEL OUT.h5' (see the README), and point "
              "[paths] filename_ann at OUT.")


def model_path(config):
    return os.path.join(config.get('paths', 'path_wd'),
                        config.get('paths', 'filename_ann') + '.h5')


def parsed_model_path(config):
    """The parsed model SNN-TB loads when ``[tools] parse = False`` (its
    default name as SNN-TB's ``update_setup`` sets it)."""
    name = config.get('paths', 'filename_parsed_model') or \
        config.get('paths', 'filename_ann') + '_parsed'
    return os.path.join(config.get('paths', 'path_wd'), name + '.h5')


def code_layers(model_config):
    """Names and classes of the layers in a Keras model config (nested
    models included) whose configuration carries code that Keras would run
    when it loads them: ``Lambda`` layers and anything with a marshalled
    function (``function_type``)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            config = node.get('config')
            if node.get('class_name') == 'Lambda' or (
                    isinstance(config, dict) and 'function_type' in config):
                found.append('{} ({})'.format(
                    (config or {}).get('name', '?') if isinstance(
                        config, dict) else '?', node.get('class_name')))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(model_config)
    return found


def read_model_config(path):
    """The ``model_config`` of a Keras ``.h5``, read from its HDF5
    attributes without deserialising anything (None when absent)."""
    import h5py
    try:
        with h5py.File(path, 'r') as f:
            raw = f.attrs.get('model_config')
    except OSError as e:
        raise ConfigError("model file {} cannot be read as HDF5 ({}): give "
                          "a tf-keras .h5 model".format(path, e)) from None
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except RecursionError:
        raise ConfigError("model file {}: its architecture (model_config) is "
                          "nested too deeply to read; save the model again "
                          "with model.save(path)".format(path)) from None
    except (TypeError, ValueError) as e:
        raise ConfigError("model file {}: its architecture (model_config) "
                          "is not readable JSON ({}); save the model again "
                          "with model.save(path)".format(path, e)) from None


def check_structure(path, config):
    """The parts of a model file's ``model_config`` and ``training_config``
    SNN-TB and Keras read, of the types they expect (a damaged or forged
    file otherwise ends in a traceback deep inside Keras)."""
    def bad(what):
        return ConfigError(
            "model file {}: {}; it was not written by tf-keras' model.save "
            "(or was damaged): save the model again with model.save(path)"
            "".format(path, what))
    if not isinstance(config, dict) or not isinstance(
            config.get('class_name'), str) or not isinstance(
            config.get('config'), dict):
        raise bad('its architecture (model_config) is not a Keras model '
                  'description')
    layers = config['config'].get('layers')
    if not isinstance(layers, list) or not layers:
        raise bad('its architecture lists no layers')
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(
                layer.get('class_name'), str) or not isinstance(
                layer.get('config'), dict) or not isinstance(
                layer['config'].get('name', ''), str):
            raise bad('layer {} of its architecture is not a Keras layer '
                      'description'.format(i))
        module = layer.get('module')
        if module is not None and not (isinstance(module, str) and (
                module.startswith('keras') or module.startswith('tf_keras'))):
            raise bad('layer {} ({}) names the module {!r}, not a Keras one'
                      ''.format(i, layer['class_name'], module))
    import h5py
    with h5py.File(path, 'r') as f:
        raw = f.attrs.get('training_config')
    try:
        training = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        training = None
    if not isinstance(training, dict) or 'loss' not in training:
        raise bad('its training configuration is not readable (SNN-TB reads '
                  'the loss from it)')


def check_no_code(path, config=None):
    """Refuse a model file whose layers carry code, before Keras loads it
    (loading would run that code). ``config``: its ``model_config``, when
    already read."""
    if config is None:
        config = read_model_config(path)
    found = code_layers(config) if config is not None else []
    if found:
        raise ConfigError(
            "model file {} holds layers whose code would run when it is "
            "loaded: {}. The file was not loaded. SNN-TB cannot convert "
            "such layers; rebuild the model without them.".format(
                path, ', '.join(found)))


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
        if path.endswith('.h5.h5') and os.path.isfile(path[:-3]):
            raise ConfigError(
                "[paths] filename_ann ends in .h5, and SNN-TB adds .h5 "
                "itself (it looked for {}): drop the extension, "
                "filename_ann = {}".format(path, os.path.basename(
                    path[:-6])))
        raise ConfigError(
            "model file {} not found: set [paths] path_wd and filename_ann "
            "(without .h5) to a tf-keras .h5 model".format(path))
    check_regular_file(path, 'model file')
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
        try:
            version = str(f.attrs.get('keras_version', ''))
            has_config = 'model_config' in f.attrs
            has_training = 'training_config' in f.attrs
        except OSError as e:
            raise ConfigError(
                "model file {}: its HDF5 attributes cannot be read ({}); "
                "save the model again with model.save(path) in tf-keras"
                "".format(path, e)) from None
        if version.startswith('3'):
            raise ConfigError(
                "model file {} was saved by Keras {}; SNN-TB 0.6.0 needs a "
                "tf-keras (Keras 2) model. {}".format(path, version,
                                                      KERAS3_FIX))
        if not has_config:
            raise ConfigError(
                "model file {} holds weights only (no architecture); save "
                "the whole model with model.save(path) in tf-keras".format(
                    path))
        if not has_training:
            raise ConfigError(
                "model file {} was saved without its training configuration "
                "(load_model(..., compile=False) then save), and SNN-TB's "
                "parser reads the model's loss. Compile and save it again: "
                "m = tf_keras.models.load_model(path, compile=False); "
                "m.compile('sgd', 'categorical_crossentropy', ['accuracy']); "
                "m.save(path)".format(path))
    config = read_model_config(path)
    check_structure(path, config)
    check_no_code(path, config)
    with h5py.File(path, 'r') as f:
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
    check_batchnorm_order(path, layers, config.get('class_name') ==
                          'Sequential')
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


#: layers a BatchNormalization may sit behind (walking back to the layer
#: SNN-TB folds it into) without changing what the folded network computes
_LINEAR_BETWEEN = ('Dropout', 'Flatten', 'Reshape', 'ZeroPadding2D',
                   'AveragePooling2D', 'GlobalAveragePooling2D')
_WITH_WEIGHTS = ('Conv1D', 'Conv2D', 'DepthwiseConv2D', 'Dense')


def _predecessors(layers, sequential):
    """``{name: the name of the layer feeding it}`` (one inbound only; None
    for the first layer or where the file does not say)."""
    names = [(layer.get('config') or {}).get('name') for layer in layers]
    before = {}
    for i, layer in enumerate(layers):
        if sequential:
            before[names[i]] = names[i - 1] if i > 0 else None
            continue
        try:
            before[names[i]] = layer['inbound_nodes'][0][0][0]
        except (KeyError, IndexError, TypeError):
            before[names[i]] = None
    return before


def check_batchnorm_order(path, layers, sequential):
    """SNN-TB folds a BatchNormalization into the layer with weights before
    it, also across a ReLU, which computes another network (issue 18, 7:
    97.5 % became 95.0 %): refuse a BatchNormalization behind a
    nonlinearity, or with no layer with weights before it."""
    by_name = {(layer.get('config') or {}).get('name'): layer
               for layer in layers}
    before = _predecessors(layers, sequential)
    for layer in layers:
        if layer.get('class_name') != 'BatchNormalization':
            continue
        name = layer['config'].get('name')
        prev = by_name.get(before.get(name))
        why = None
        while why is None:
            cls = None if prev is None else prev.get('class_name')
            c = (prev or {}).get('config') or {}
            if cls in _WITH_WEIGHTS:
                if c.get('activation') not in (None, 'linear'):
                    why = "after the {} activation of {!r} ({})".format(
                        c.get('activation'), c.get('name'), cls)
                break
            if cls in _LINEAR_BETWEEN:
                prev = by_name.get(before.get(c.get('name')))
                continue
            why = "with no Conv or Dense layer before it" if cls in (
                None, 'InputLayer') else "after {!r} ({}), a nonlinearity" \
                "".format(c.get('name'), cls)
        if why is not None:
            raise ConfigError(
                "model {}: BatchNormalization layer {!r} comes {}; SNN-TB "
                "folds it into the Conv or Dense layer before it, as if it "
                "came before the nonlinearity, and would simulate a different "
                "network. Put each BatchNormalization directly after a "
                "linear Conv or Dense layer (activation in a separate layer "
                "after it) and retrain, or fold it yourself".format(
                    path, name, why))


def check_regular_file(path, what, error=ConfigError):
    """An ``error`` for a path that is not a regular file (a folder, a
    pipe, a device), before anything opens it: opening a pipe would wait
    for a writer forever."""
    if not os.path.isfile(path):
        kind = 'a folder' if os.path.isdir(path) else \
            'not a regular file (a pipe, socket or device)'
        raise error("{} {} is {}; give a file".format(what, path, kind))


def check_npz_size(path, archive):
    """A :class:`DataError` when ``arr_0``'s header (read without loading
    the array) claims more bytes than half the available memory, or than
    the archive could hold (a forged header asked for 10^9 images and ended
    in a MemoryError)."""
    if archive is None:
        return
    try:
        with archive.open('arr_0.npy') as member:
            fmt = np.lib.format
            read = fmt.read_array_header_1_0 if fmt.read_magic(
                member) == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(member)
    except (KeyError, ValueError, OSError, EOFError, SyntaxError):
        return          # np.load says what is wrong with it
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    have = available_memory()
    if have is not None and need > 0.5 * have:
        raise DataError(
            "{}: its header says {} values of shape {} ({:.1f} GiB), more "
            "than half the available memory ({:.1f} GiB); give fewer "
            "samples (prepare-data --num-test / --num-norm) or check the "
            "file".format(path, dtype, tuple(shape), need / 2 ** 30,
                          have / 2 ** 30))


def load_arr0(folder, name):
    """SNN-TB's array ``arr_0`` of ``folder/name``; None when the file is
    missing; a :class:`DataError` for a folder, a pipe, an unreadable or
    empty file."""
    path = os.path.join(folder, name)
    if os.path.isdir(path):
        raise DataError("{} is a folder, not an .npz file; make the data "
                        "folder with 'python -m snntb_adaptive "
                        "prepare-data'".format(path))
    if not os.path.lexists(path):
        return None
    check_regular_file(path, 'data file', DataError)
    try:
        with np.load(path) as f:
            if 'arr_0' not in f.files:
                raise DataError(
                    "{} holds {} but SNN-TB reads the array 'arr_0': write "
                    "it with np.savez_compressed(path, array), or use "
                    "'python -m snntb_adaptive prepare-data'".format(
                        path, ', '.join(f.files) or 'no arrays'))
            check_npz_size(path, f.zip if hasattr(f, 'zip') else None)
            arr = f['arr_0']
    except DataError:
        raise
    except (OSError, ValueError, EOFError, TypeError, AttributeError,
            zipfile.BadZipFile) as e:
        raise DataError("{} is not a readable .npz file ({}); write it "
                        "again, e.g. with 'python -m snntb_adaptive "
                        "prepare-data'".format(path, e)) from None
    if arr.size == 0:
        raise DataError("{} holds no samples (shape {}); it must hold at "
                        "least one batch".format(path, arr.shape))
    return arr


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
    x = load_arr0(folder, 'x_test.npz')
    y = load_arr0(folder, 'y_test.npz')
    missing = [n for n, a in (('x_test.npz', x), ('y_test.npz', y))
               if a is None]
    normalize = config.getboolean('tools', 'normalize')
    xn = load_arr0(folder, 'x_norm.npz') if normalize else None
    if normalize and xn is None:
        missing.append('x_norm.npz')
    if missing:
        hint = (" (x_norm.npz holds the normalisation images; or set [tools] "
                "normalize = False)" if 'x_norm.npz' in missing else '')
        raise DataError("{} missing in [paths] dataset_path = {}; make the "
                        "folder with 'python -m snntb_adaptive prepare-data'"
                        "{}".format(', '.join(missing), folder, hint))
    shape = info.get('input_shape')
    first = info.get('channels_first_shape')   # PyTorch / ONNX models
    for name, arr in (('x_test.npz', x), ('x_norm.npz', xn)):
        if arr is not None:
            _check_images(os.path.join(folder, name), arr, shape if first is
                          None or tuple(arr.shape[1:]) != tuple(first)
                          else first)
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


def available_memory():
    """Bytes of memory available to a new allocation (Linux
    ``MemAvailable``), or None where it cannot be read."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_memory(config, info):
    """Bytes the per-step records of one batch take at the peak: the
    simulator's output (T, B, C) and per-layer spikes and thresholds
    (T, B, L) in float32, held about four times over (loop buffers, the
    stacked tensors, NumPy copies, scores), and the run's sums (T, L) in
    float64."""
    steps = config.getint('simulation', 'duration')
    batch = config.getint('simulation', 'batch_size')
    classes = info.get('output_units') or 10
    spiking = sum(1 for layer in info.get('layers', ())
                  if layer.get('class_name') in SPIKING_TYPES +
                  ('GlobalAveragePooling2D',)) or 1
    return (4 * steps * batch * (classes + 2 * spiking) * 4 +
            steps * (4 * spiking + 2) * 8)


def check_memory(config, info):
    """Refuse a run whose per-step records cannot fit in memory, before
    parsing and normalisation."""
    need, have = run_memory(config, info), available_memory()
    if have is not None and need > 0.8 * have:
        raise ConfigError(
            "[simulation] duration = {} with batch_size = {} needs about "
            "{:.1f} GiB for the per-step records of a batch, but {:.1f} GiB "
            "of memory are available; lower duration or batch_size".format(
                config.get('simulation', 'duration'),
                config.get('simulation', 'batch_size'), need / 2 ** 30,
                have / 2 ** 30))


def _inside(path, folder):
    """Whether ``path`` lies inside ``folder`` (both resolved, links
    followed), and is not ``folder`` itself."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path != folder and os.path.commonpath([path, folder]) == folder


def run_log_dir(config):
    """The run's log folder, contained: ``[paths] runlabel`` must name a
    folder inside ``<path_wd>/log/gui`` (a plain relative name, as SNN-TB
    means it), and an explicit ``log_dir_of_current_run`` must lie inside
    ``path_wd``; anything else is refused before anything is written."""
    path_wd = config.get('paths', 'path_wd')
    explicit = config.get('paths', 'log_dir_of_current_run')
    if explicit:
        if not _inside(explicit, path_wd):
            raise ConfigError(
                "[paths] log_dir_of_current_run = {}: outside path_wd = {}; "
                "the run writes only inside its working folder. Leave the key "
                "empty (the log folder is then <path_wd>/log/gui/<runlabel>) "
                "or give a folder inside path_wd".format(explicit, path_wd))
        return explicit
    label = config.get('paths', 'runlabel')
    base = os.path.join(path_wd, 'log', 'gui')
    log_dir = os.path.join(base, label)
    rel = os.path.relpath(os.path.normpath(os.path.abspath(log_dir)),
                          os.path.abspath(base))   # lexically: links are
    # check_writes' to refuse
    if not label.strip() or os.path.isabs(label) or rel in (
            os.curdir, os.pardir) or rel.startswith(os.pardir + os.sep):
        raise ConfigError(
            "[paths] runlabel = {!r}: the run's log folder would be {}, "
            "outside {}; give a plain name such as runlabel = my_run".format(
                label, os.path.normpath(log_dir), base))
    return log_dir


def _first_link(folder, target):
    """The first symbolic link on the way from ``folder`` down to
    ``target`` (``target`` itself included; ``folder`` itself is the user's
    to choose), or None. ``target`` lies lexically inside ``folder``."""
    here = os.path.abspath(folder)
    rel = os.path.relpath(os.path.abspath(target), here)
    for part in rel.split(os.sep):
        here = os.path.join(here, part)
        if os.path.islink(here):
            return here
        if not os.path.lexists(here):
            return None
    return None


def _model_files(config, reads=False):
    """``(key, name, path)`` of the model files SNN-TB writes into
    ``path_wd`` (the parsed model when ``[tools] parse``, the converted SNN
    when ``convert``; with ``reads``, also the parsed model it reads when
    ``convert`` without ``parse``), named as SNN-TB's ``update_setup`` will
    name them."""
    ann = config.get('paths', 'filename_ann')
    defaults = {'filename_parsed_model': ann + '_parsed',
                'filename_snn': '{}_{}'.format(
                    ann, config.get('simulation', 'simulator',
                                    fallback='INI'))}
    for key, tool in (('filename_parsed_model', 'parse'),
                      ('filename_snn', 'convert')):
        used = config.getboolean('tools', tool, fallback=True) or (
            reads and key == 'filename_parsed_model' and
            config.getboolean('tools', 'convert', fallback=True))
        if used:
            name = config.get('paths', key) or defaults[key]
            yield key, name, os.path.join(config.get('paths', 'path_wd'),
                                          name + '.h5')


def check_writes(config):
    """Every file the run writes lies inside ``path_wd`` and is a real file
    in real folders there: the parsed model and the SNN file must not point
    outside (``..``, an absolute name, or SNN-TB's default next to a model
    outside ``path_wd``), and no symbolic link may sit on the way to them or
    anywhere in the run's log folder (a planted link would make the run
    overwrite its target). Checked before anything is written."""
    path_wd = config.get('paths', 'path_wd')
    wd = os.path.abspath(path_wd)
    for key, name, path in _model_files(config):
        rel = os.path.relpath(os.path.normpath(os.path.abspath(path)), wd)
        if os.path.isabs(name) or rel == os.pardir or rel.startswith(
                os.pardir + os.sep):
            where = "[paths] {} = {}".format(key, name) if config.get(
                'paths', key) else "[paths] {} is empty, so SNN-TB names " \
                "the file after filename_ann".format(key)
            raise ConfigError(
                "{}: the run would write {}, outside path_wd = {}; give a "
                "plain file name, e.g. {} = {}".format(
                    where, os.path.normpath(path), path_wd, key,
                    os.path.basename(name)))
        link = _first_link(wd, path)
        if link is not None:
            raise ConfigError(
                "{} is a symbolic link (to {}); the run would write through "
                "it. Remove the link, or give [paths] {} another name".format(
                    link, os.readlink(link), key))
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(folder) and not os.access(folder, os.W_OK):
            raise ConfigError(
                "{} cannot be written (the folder {} is read-only), and SNN-TB "
                "writes the {} there; make the folder writable, or set "
                "[paths] path_wd to a writable folder that holds the model"
                "".format(path, folder, 'parsed model' if key ==
                          'filename_parsed_model' else 'converted SNN'))
    log_dir = run_log_dir(config)
    link = _first_link(wd, log_dir)
    if link is None and os.path.isdir(log_dir):
        for top, dirs, files in os.walk(log_dir):
            for name in dirs + files:
                if os.path.islink(os.path.join(top, name)):
                    link = os.path.join(top, name)
                    break
            if link is not None:
                break
    if link is not None:
        raise ConfigError(
            "{} is a symbolic link (to {}) in the run's log folder {}; the "
            "run writes only real files inside path_wd. Remove the link, or "
            "give the run another [paths] runlabel".format(
                link, os.readlink(link), log_dir))


def check_log_dir(config):
    """The run's log folder: contained (:func:`run_log_dir`), writable, and
    taken for this process (a second run on it is refused)."""
    from snntb_adaptive.progress import lock_model_file, lock_run_folder
    log_dir = run_log_dir(config)
    try:
        os.makedirs(log_dir, exist_ok=True)
        probe = os.path.join(log_dir, '.snntb_adaptive_write_test')
        if os.path.isfile(probe) and not os.path.islink(probe):
            os.remove(probe)          # left by a run that was killed here
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                     os.O_NOFOLLOW, 0o600)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise ConfigError(
            "log folder {} cannot be written ({}); set [paths] "
            "log_dir_of_current_run (or path_wd / runlabel) to a writable "
            "folder".format(log_dir, e.strerror or e)) from None
    lock_run_folder(log_dir)
    for key, _, path in _model_files(config, reads=True):
        if os.path.isdir(os.path.dirname(path)):
            lock_model_file(path, key)


#: what gave ``ray_address`` when not the config file (the command line's
#: ``--ray-address``, set by :mod:`snntb_adaptive.cli` for its run)
ADDRESS_SOURCE = None


def check_cluster(config):
    """With ``executor = ray`` and a ``ray_address``: the cluster answers
    (:func:`executors.check_cluster
    <snntb_adaptive.executors.check_cluster>`), before any work."""
    from snntb_adaptive.config import execution_from_config
    execution = execution_from_config(config)
    if execution.executor == 'ray' and execution.ray_address:
        from snntb_adaptive.executors import check_cluster as check
        check(execution, ADDRESS_SOURCE or
              '[adaptive_threshold] ray_address')


def precheck(config):
    """All checks, on SNN-TB's merged config (defaults + user file), before
    SNN-TB's own ``update_setup`` runs."""
    path_wd = config.get('paths', 'path_wd')
    if path_wd and not os.path.isdir(path_wd):
        if os.path.exists(path_wd):
            why = 'a file, not a folder'
        elif os.path.isabs(path_wd):
            why = 'folder not found'
        else:
            why = 'folder not found (a relative path is taken from the ' \
                  'folder the command runs in, {})'.format(os.getcwd())
        raise ConfigError("[paths] path_wd = {}: {}; give the working folder "
                          "that holds the model".format(path_wd, why))
    for key in ('filename_ann', 'dataset_path'):
        if not config.get('paths', key, fallback='').strip():
            raise ConfigError(
                "[paths] {} is not set: {}".format(key, {
                    'filename_ann': 'name the model file, without .h5, '
                    'relative to path_wd',
                    'dataset_path': 'give the folder with x_test.npz, '
                    "y_test.npz and x_norm.npz (make it with 'python -m "
                    "snntb_adaptive prepare-data')"}[key]))
    info = {}
    from snntb_adaptive.foreign_models import (FOREIGN, check_model,
                                               model_lib)
    if config.getboolean('tools', 'parse') or \
            config.getboolean('tools', 'evaluate_ann'):
        info = check_model(config) if model_lib(config) in FOREIGN else \
            check_model_file(model_path(config))
    if not config.getboolean('tools', 'parse') and \
            config.getboolean('tools', 'convert'):
        # SNN-TB loads the parsed model of an earlier run instead
        parsed = parsed_model_path(config)
        if not os.path.lexists(parsed):
            raise ConfigError(
                "[tools] parse = False, but the parsed model {} is not there; "
                "set parse = True".format(parsed))
        check_regular_file(parsed, 'parsed model')
        check_no_code(parsed)
    check_dataset(config, info)
    check_memory(config, info)
    check_cluster(config)
    check_writes(config)
    check_log_dir(config)
    return info
