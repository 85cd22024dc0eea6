"""snntb-adaptive: the adaptive threshold of Chen et al. (Neurocomputing) as a
plugin for SNN-Toolbox 0.6.0.

Module map:

* :mod:`~snntb_adaptive.registration` - the meta-path finder that registers the
  plugin with an unmodified SNN-TB (installed by ``snntb_adaptive.pth``);
* :mod:`~snntb_adaptive.compat` - shims for SNN-TB 0.6.0 on NumPy 2 / TF 2.21;
* :mod:`~snntb_adaptive.hooks` - what is patched into which SNN-TB module;
* :mod:`~snntb_adaptive.config` - the ``[adaptive_threshold]`` section;
* :mod:`~snntb_adaptive.dynamics` - the threshold update, pure functions;
* :mod:`~snntb_adaptive.layers` - the Keras spiking layers;
* :mod:`~snntb_adaptive.normalisation` - the Phase-1 hook;
* :mod:`~snntb_adaptive.target_sim` - the INI target simulator and its run;
* :mod:`~snntb_adaptive.metrics` - accuracy per step, Eq. 7, Eq. 8, results;
* :mod:`~snntb_adaptive.data` - data sets and SNN-TB data folders;
* :mod:`~snntb_adaptive.cli` - ``python -m snntb_adaptive``.

Importing this package is cheap: it imports neither NumPy nor TensorFlow.
"""

__version__ = '0.1.0'
