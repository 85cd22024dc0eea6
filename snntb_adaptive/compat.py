"""Compatibility shims for unmodified ``snntoolbox==0.6.0`` on NumPy 2 and
TensorFlow 2.21 / tf-keras 2.21.

Each shim is applied by :mod:`snntb_adaptive.registration` right after the
SNN-TB module it mends has been executed, whatever the spike code; no file of
SNN-TB is edited. The shims:

``conversion.utils``
    * ``get_scale_fac`` returns ``np.float32``, which ``json.dump`` refuses;
      the shim returns a Python ``float`` (same value).
    * the scale-factor JSON is written with ``open(path, 'w')`` and
      ``json.dump``: a crash in between leaves a truncated file that breaks
      every later run. The module's ``open`` is replaced by one that writes
      ``.json`` files atomically (temporary file, then rename).
``simulation.utils``
    uses ``np.product`` and ``np.bool`` (both removed in NumPy 2), and with
    ``[output] log_vars`` saves ragged lists (spike trains of layers of
    different shapes) with ``np.savez_compressed``, which NumPy 2 refuses
    ("inhomogeneous shape"); the module's ``np`` is replaced by a view of
    NumPy that provides the aliases and saves a ragged list as an object
    array, as NumPy 1 did.
``datasets.utils``
    ``try_get_normset_from_scalefacs`` loads the scale-factor JSON with a bare
    ``json.load``; a corrupt file now raises :class:`CorruptFileError` naming
    the file and the fix.
``bin.utils``
    ``update_setup`` reads the user's config with ``configparser``'s
    default encoding: a UTF-8 byte-order mark became text before the first
    section; the config it reads into takes it as a byte-order mark
    (:func:`read_with_bom`).
every module that reads config values with ``eval``
    (``bin.utils``, ``conversion.utils``, ``datasets.utils``,
    ``parsing.utils``, ``simulation.utils``, ``simulation.plotting``):
    ``eval`` runs whatever a config file holds (``plot_vars =
    __import__('os').system(...)``). The module's ``eval`` is replaced by
    :func:`literal_value`, which reads Python literals only (numbers,
    strings, lists, tuples, sets, dicts) and refuses anything else with a
    :class:`ConfigError`.
"""

import ast
import functools
import io
import json
import os
import tempfile
import types

import numpy as np

from snntb_adaptive.errors import ConfigError, CorruptFileError
from snntb_adaptive.log import log


# --------------------------------------------------------------------------
# Atomic writes


class AtomicWriter(io.StringIO):
    """A text file object that replaces ``path`` only when closed without
    error. Used as ``with AtomicWriter(path) as f: f.write(...)``."""

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)
        self._failed = False

    def __exit__(self, exc_type, exc, tb):
        self._failed = exc_type is not None
        return super().__exit__(exc_type, exc, tb)

    def close(self):
        if not self.closed and not self._failed:
            write_atomic(self.path, self.getvalue())
        super().close()


def write_atomic(path, text):
    """Write ``text`` to ``path`` atomically: a reader sees the old file or
    the complete new one, never a part. The data is flushed and synced."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=folder)
    try:
        # mkstemp makes the file private (0600); give it the mode any new
        # file of the user's gets (0666 less the umask)
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def current_umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json_atomic(path, data, **kwargs):
    """Serialise ``data`` completely, then write it atomically."""
    write_atomic(path, json.dumps(data, **kwargs))


def _atomic_json_open(file, mode='r', *args, **kwargs):
    """``open`` for SNN-TB's ``conversion.utils``: JSON files opened for
    writing are written atomically; everything else is the builtin."""
    if mode == 'w' and str(file).endswith('.json') and not args \
            and not kwargs:
        return AtomicWriter(file)
    return open(file, mode, *args, **kwargs)


def read_json_file(path, what):
    """Load a JSON file left by an earlier run; a corrupt one raises
    :class:`CorruptFileError` that names the file and the fix."""
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CorruptFileError(
            "{} {} is corrupt ({}); it was probably left by a run that "
            "crashed. Delete or rename it and run again; it will be "
            "recomputed.".format(what, path, e)) from None


#: the range a scale factor may take: the weights are divided by it in
#: float32, and the quotient of two must stay finite and non-zero there
SCALE_RANGE = (1e-15, 1e15)


def check_scale_factors(facs, path, layer_names=None):
    """SNN-TB's cached scale factors must be a mapping of layer names to
    positive numbers within :data:`SCALE_RANGE` (finite and non-zero in the
    float32 the weights are scaled in), name every layer of
    ``layer_names``, and give the input layer (the first of
    ``layer_names``) SNN-TB's factor 1; otherwise :class:`CorruptFileError`
    names the file and the fix."""
    def bad(why):
        return CorruptFileError(
            "SNN-TB scale-factor file {} {}; delete it (the factors are "
            "computed again) or use a new [paths] runlabel".format(path, why))
    if not isinstance(facs, dict):
        raise bad("does not hold a mapping of layer names to factors")
    low, high = SCALE_RANGE
    for name, value in facs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not low <= value <= high:    # also NaN and infinities
            raise bad("has the factor {!r} for layer {}, not a positive "
                      "number from {:g} to {:g}".format(value, name, low,
                                                        high))
    if layer_names and layer_names[0] in facs and facs[layer_names[0]] != 1:
        raise bad("gives the input layer {} the factor {!r}; SNN-TB's is 1"
                  "".format(layer_names[0], facs[layer_names[0]]))
    missing = [n for n in layer_names or () if n not in facs]
    if missing:
        raise bad("has no factor for layer(s) {} of this model (was it "
                  "written for another model?)".format(', '.join(missing)))


# --------------------------------------------------------------------------
# Shims, one function per SNN-TB module


def _as_saveable(value):
    """``value`` as ``np.savez`` can store it: a ragged sequence becomes a
    1-D object array of its items (what NumPy 1 made of it)."""
    try:
        return np.asanyarray(value)
    except ValueError:
        arr = np.empty(len(value), dtype=object)
        for i, item in enumerate(value):
            arr[i] = item
        return arr


def _savez_compressed(file, *args, **kwds):
    np.savez_compressed(file, *[_as_saveable(a) for a in args],
                        **{k: _as_saveable(v) for k, v in kwds.items()})


def _numpy_with_removed_aliases():
    """A module object that behaves as ``numpy`` and also provides the
    aliases NumPy 2 removed and SNN-TB still uses, and a
    ``savez_compressed`` that stores ragged lists as NumPy 1 did."""
    view = types.ModuleType('numpy')
    view.__dict__.update(np.__dict__)
    view.product = np.prod
    view.bool = np.bool_
    view.savez_compressed = _savez_compressed
    return view


def mark_patched(wrapper, original):
    """Give ``wrapper`` the name and docstring of the SNN-TB function it
    replaces, keep the original as ``wrapper.original``, and mark it so that
    patching twice is a no-op (see :func:`is_patched`)."""
    functools.update_wrapper(wrapper, original)
    wrapper._snntb_adaptive = True
    wrapper.original = original
    return wrapper


def is_patched(func):
    return getattr(func, '_snntb_adaptive', False)


def _literal(node):
    """A literal, or literals joined by ``|`` or ``+`` (SNN-TB's defaults
    join sets of simulators so)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op,
                                                  (ast.BitOr, ast.Add)):
        left, right = _literal(node.left), _literal(node.right)
        if type(left) is not type(right) or not isinstance(
                left, (set, frozenset, list, tuple)):
            raise ValueError('only sets, lists or tuples are joined')
        return left | right if isinstance(node.op, ast.BitOr) \
            else left + right
    return ast.literal_eval(node)


def literal_value(text, *_):
    """What SNN-TB's ``eval(config.get(...))`` reads, as a Python literal
    only (or literals joined by ``|`` or ``+``, as in SNN-TB's defaults);
    anything else (a call, a name, another operator) is a
    :class:`ConfigError` instead of code that runs."""
    try:
        return _literal(ast.parse(str(text).strip(), mode='eval').body)
    except (ValueError, TypeError, SyntaxError, MemoryError,
            RecursionError):
        shown = str(text)
        shown = shown if len(shown) <= 120 else shown[:117] + '...'
        raise ConfigError(
            "a config value SNN-TB reads as a Python value is not a literal: "
            "{!r}. Write it as a number, string, list, set or dict (SNN-TB "
            "would have run it as code; nothing was run).".format(
                shown)) from None


def read_with_bom(config):
    """Make ``config.read`` (what SNN-TB's ``update_setup`` reads the
    user's file with) take a UTF-8 byte-order mark, which some editors
    write, as such (``configparser`` reads it as text before the first
    section)."""
    read = type(config).read

    def read_utf8_sig(filenames, encoding='utf-8-sig'):
        return read(config, filenames, encoding=encoding)
    config.read = read_utf8_sig


def literal_config_values(module):
    """Shadow the builtin ``eval`` in an SNN-TB module by
    :func:`literal_value` (its ``eval`` calls read config values)."""
    module.eval = literal_value


def patch_conversion_utils(module):
    original = module.get_scale_fac
    if is_patched(original):
        return

    def get_scale_fac(activations, percentile):
        return float(original(activations, percentile))

    module.get_scale_fac = mark_patched(get_scale_fac, original)
    module.open = _atomic_json_open


def patch_simulation_utils(module):
    if module.np is np:
        module.np = _numpy_with_removed_aliases()


def patch_datasets_utils(module):
    original = module.try_get_normset_from_scalefacs
    if is_patched(original):
        return

    def try_get_normset_from_scalefacs(config):
        newpath = os.path.join(config.get('paths', 'log_dir_of_current_run'),
                               'normalization')
        os.makedirs(newpath, exist_ok=True)
        filepath = os.path.join(newpath, config.get(
            'normalization', 'percentile') + '.json')
        if os.path.isfile(filepath):
            log.info("loading scale factors from disk instead of "
                     "recalculating: {}".format(filepath))
            facs = read_json_file(filepath, 'SNN-TB scale-factor file')
            check_scale_factors(facs, filepath)
            return {'scale_facs': facs}
        return {}

    module.try_get_normset_from_scalefacs = mark_patched(
        try_get_normset_from_scalefacs, original)

