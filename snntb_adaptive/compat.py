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
    uses ``np.product`` and ``np.bool`` (both removed in NumPy 2); the
    module's ``np`` is replaced by a view of NumPy that provides them.
``datasets.utils``
    ``try_get_normset_from_scalefacs`` loads the scale-factor JSON with a bare
    ``json.load``; a corrupt file now raises :class:`CorruptFileError` naming
    the file and the fix.
"""

import functools
import io
import json
import os
import tempfile
import types

import numpy as np

from snntb_adaptive.errors import CorruptFileError
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
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptFileError(
            "{} {} is corrupt ({}); it was probably left by a run that "
            "crashed. Delete or rename it and run again; it will be "
            "recomputed.".format(what, path, e)) from None


# --------------------------------------------------------------------------
# Shims, one function per SNN-TB module


def _numpy_with_removed_aliases():
    """A module object that behaves as ``numpy`` and also provides the
    aliases NumPy 2 removed and SNN-TB still uses."""
    view = types.ModuleType('numpy')
    view.__dict__.update(np.__dict__)
    view.product = np.prod
    view.bool = np.bool_
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


def patch_conversion_utils(module):
    original = module.get_scale_fac
    if is_patched(original):
        return

    def get_scale_fac(activations, percentile):
        return float(original(activations, percentile))

    module.get_scale_fac = mark_patched(get_scale_fac, original)
    module.open = _atomic_json_open


def patch_simulation_utils(module):
    if not hasattr(module.np, 'product') or not hasattr(module.np, 'bool'):
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
            return {'scale_facs': read_json_file(
                filepath, 'SNN-TB scale-factor file')}
        return {}

    module.try_get_normset_from_scalefacs = mark_patched(
        try_get_normset_from_scalefacs, original)

