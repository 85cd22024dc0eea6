"""snntb-adaptive: the adaptive threshold of Chen et al. (Neurocomputing) as a
plugin for SNN-Toolbox 0.6.0.

Module map (``docs/architecture.md`` says how to add a rule, a metric, a
shim or a command):

Registration with SNN-TB

* :mod:`~snntb_adaptive.registration` - the meta-path finder that registers the
  plugin with an unmodified SNN-TB (installed by ``snntb_adaptive.pth``);
* :mod:`~snntb_adaptive.hooks` - what is patched into which SNN-TB module;
* :mod:`~snntb_adaptive.compat` - shims for SNN-TB 0.6.0 on NumPy 2 / TF 2.21;

The method

* :mod:`~snntb_adaptive.dynamics` - typed neuron state, the update rules and
  one step, pure functions of tensors (read it next to ``docs/spec.md``);
* :mod:`~snntb_adaptive.kernel` - the table of step kernels: the fused C++
  op and TensorFlow ops, same results; the event-driven synapses' op;
* :mod:`~snntb_adaptive.layers` - the Keras spiking layers;
* :mod:`~snntb_adaptive.network` - supported layers and the layer table;
* :mod:`~snntb_adaptive.phase1` - the table of Phase-1 methods;
* :mod:`~snntb_adaptive.normalisation` - the Phase-1 hook and SNN-TB's
  weight normalisation (its scale factors, streaming; ``V_init = eta *
  V_max``);
* :mod:`~snntb_adaptive.spike_norm` - Spike-Norm as Phase 1;
* :mod:`~snntb_adaptive.calibration` - post-training calibration as Phase 1
  (``preset = calibrated``) and its parameter file;
* :mod:`~snntb_adaptive.target_sim` - the INI target simulator;

The pipeline and its inputs

* :mod:`~snntb_adaptive.pipeline` - the stages in order: validate, parse,
  Phase 1, build, simulate, record;
* :mod:`~snntb_adaptive.executors` - the simulate stage on a Ray cluster;
* :mod:`~snntb_adaptive.config` - the ``[adaptive_threshold]`` section;
* :mod:`~snntb_adaptive.checks` - input checks before any work;
* :mod:`~snntb_adaptive.data` - data sets and SNN-TB data folders;
* :mod:`~snntb_adaptive.keras3` - Keras-3 models rebuilt for tf-keras;
* :mod:`~snntb_adaptive.onnx_import` - ONNX models converted exactly to
  tf-keras (checked against ONNX Runtime);
* :mod:`~snntb_adaptive.foreign_models` - PyTorch and ONNX models in
  SNN-TB's pipeline (``[input] model_lib = pytorch | onnx``), served to
  SNN-TB as its model-lib modules by
  :mod:`~snntb_adaptive.model_lib_pytorch` and
  :mod:`~snntb_adaptive.model_lib_onnx`;
* :mod:`~snntb_adaptive.progress` - durable per-batch progress, resume;
* :mod:`~snntb_adaptive.errors` - :class:`~snntb_adaptive.errors.UserError`
  and its kinds;
* :mod:`~snntb_adaptive.log` - library output through ``logging``;

Results and tools

* :mod:`~snntb_adaptive.metrics` - accuracy per step, Eq. 7, Eq. 8,
  ``results.json``;
* :mod:`~snntb_adaptive.plots` - accuracy, firing rates, thresholds, Fig. 4;
* :mod:`~snntb_adaptive.session` - one model parsed and normalised once, run
  under several settings;
* :mod:`~snntb_adaptive.compare` - the ``compare`` and ``plot`` commands;
* :mod:`~snntb_adaptive.demo` - the offline demo;
* :mod:`~snntb_adaptive.bench` - the benchmark;
* :mod:`~snntb_adaptive.cli` - ``python -m snntb_adaptive`` and the
  ``snntb-adaptive`` command.

Importing this package is cheap: it imports neither NumPy nor TensorFlow.
"""

__version__ = '0.1.0'
