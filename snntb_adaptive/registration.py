"""Registration with an unmodified SNN-TB.

SNN-TB picks its INI simulator by module name:

* ``snntoolbox.simulation.target_simulators.INI_<spike_code>_target_sim``
* ``snntoolbox.simulation.backends.inisim.<spike_code>``

and ``update_setup`` accepts only the spike codes listed in its
``config_defaults``. :func:`install` puts a small finder at the front of
``sys.meta_path`` that

1. serves the two module names above for ``spike_code = adaptive_threshold``
   from :mod:`snntb_adaptive.target_sim` and :mod:`snntb_adaptive.layers`;
2. runs a patch right after certain SNN-TB modules have executed: the
   compatibility shims of :mod:`snntb_adaptive.compat`, the plugin's config
   defaults and validation in ``snntoolbox.bin.utils``, and the Phase-1
   normalisation hook in ``snntoolbox.conversion.utils``;
3. sets ``TF_USE_LEGACY_KERAS=1`` when ``snntoolbox`` is first imported, so
   that SNN-TB gets Keras 2 (tf-keras).

The installed ``snntb_adaptive.pth`` calls :func:`install` at interpreter
start. This module imports nothing heavy (no NumPy, no TensorFlow): the cost
at start-up is one small module and one object on ``sys.meta_path``.
``python -m snntb_adaptive`` calls :func:`install` itself, so it works without
the ``.pth``.
"""

import os
import sys

TARGET_SIM = ('snntoolbox.simulation.target_simulators.'
              'INI_adaptive_threshold_target_sim')
BACKEND = 'snntoolbox.simulation.backends.inisim.adaptive_threshold'

#: SNN-TB module name -> plugin module that serves it
ALIASES = {
    TARGET_SIM: 'snntb_adaptive.target_sim',
    BACKEND: 'snntb_adaptive.layers',
    # [input] model_lib = pytorch | onnx (see foreign_models.py)
    'snntoolbox.parsing.model_libs.pytorch_input_lib':
        'snntb_adaptive.model_lib_pytorch',
    'snntoolbox.parsing.model_libs.onnx_input_lib':
        'snntb_adaptive.model_lib_onnx',
}

#: SNN-TB modules patched after they execute -> (plugin module, function)
PATCHES = {
    'snntoolbox.conversion.utils': ('snntb_adaptive.hooks', 'patch_conversion'),
    'snntoolbox.simulation.utils': ('snntb_adaptive.hooks', 'patch_simulation'),
    'snntoolbox.datasets.utils': ('snntb_adaptive.hooks', 'patch_datasets'),
    'snntoolbox.bin.utils': ('snntb_adaptive.hooks', 'patch_bin_utils'),
    'snntoolbox.bin.run': ('snntb_adaptive.hooks', 'patch_bin_run'),
    'snntoolbox.parsing.utils': ('snntb_adaptive.hooks', 'patch_literal'),
    'snntoolbox.simulation.plotting': ('snntb_adaptive.hooks',
                                       'patch_literal'),
}


KERAS3_LOADED = (
    "TensorFlow was imported before snntoolbox without TF_USE_LEGACY_KERAS=1, "
    "so tensorflow.keras is Keras 3, which SNN-TB 0.6.0 cannot use. Set "
    "os.environ['TF_USE_LEGACY_KERAS'] = '1' (or import snntoolbox) before "
    "the first 'import tensorflow' of your script, or export "
    "TF_USE_LEGACY_KERAS=1 in the shell.")


def keras3_is_tf_keras():
    """True when TensorFlow is loaded and its ``keras`` is Keras 3 (it was
    imported without ``TF_USE_LEGACY_KERAS``): then setting the variable is
    too late for this process."""
    return ('tensorflow' in sys.modules and 'keras.src' in sys.modules
            and 'tf_keras' not in sys.modules)


def ensure_legacy_keras():
    """Make ``tensorflow.keras`` resolve to tf-keras (Keras 2), as SNN-TB
    needs. Must run before TensorFlow first resolves ``tf.keras``; raises
    :class:`~snntb_adaptive.errors.KerasVersionError` when that happened
    already with Keras 3."""
    os.environ['TF_USE_LEGACY_KERAS'] = '1'
    if keras3_is_tf_keras():
        from snntb_adaptive.errors import KerasVersionError
        raise KerasVersionError(KERAS3_LOADED)


class _AliasLoader:
    """Loads an SNN-TB module name as an existing plugin module."""

    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        __import__(self.target)
        return sys.modules[self.target]

    def exec_module(self, module):
        pass


class _PatchingLoader:
    """Wraps SNN-TB's own loader and patches the module after it ran."""

    def __init__(self, loader, fullname):
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        plugin, func = PATCHES[self._fullname]
        __import__(plugin)
        getattr(sys.modules[plugin], func)(module)

    def __getattr__(self, name):  # get_source, is_package, ... for tools
        return getattr(self._loader, name)


class SnntbAdaptiveFinder:
    """Meta-path finder: aliases and patches for SNN-TB modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'snntoolbox':
            ensure_legacy_keras()
            return None
        if not fullname.startswith('snntoolbox.'):
            return None
        from importlib.machinery import ModuleSpec
        if fullname in ALIASES:
            return ModuleSpec(fullname, _AliasLoader(ALIASES[fullname]))
        if fullname in PATCHES:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, 'find_spec'):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None:
                        spec.loader = _PatchingLoader(spec.loader, fullname)
                    return spec
        return None


def install():
    """Put the finder at the front of ``sys.meta_path`` (once). Modules that
    were imported before are patched now."""
    if any(isinstance(f, SnntbAdaptiveFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, SnntbAdaptiveFinder())
    loaded = [name for name in PATCHES if name in sys.modules]
    for name in loaded:
        plugin, func = PATCHES[name]
        __import__(plugin)
        getattr(sys.modules[plugin], func)(sys.modules[name])
