"""The table of Phase-1 methods: how a run's initial thresholds (and the
network's parameters) are set at normalisation time.

Each method is one module with a function ``phase1(model, config,
x_norm=None, **kwargs)`` that sets the parsed model's parameters, writes
``phase1_thresholds.json`` and returns the table's rows; :data:`METHODS`
names that function and what the rest of the plugin needs to know about
the method, so that the configuration, the hook and the comparison read the
table instead of testing method names. A new method is a module and one
:func:`register` line here::

    register(Method('my_norm', 'snntb_adaptive.my_norm:phase1',
                    presets=('my',), sets_thresholds=True))

(and ``'my': ('none', 'batch')`` in :data:`snntb_adaptive.config.PRESETS`).

Importing this module is cheap (no NumPy, no TensorFlow): the method's
module is imported when it runs.
"""

import importlib
from typing import Dict, NamedTuple, Tuple


class Method(NamedTuple):
    """A Phase-1 method."""

    name: str
    #: ``'module:function'``: the ``function(model, config, x_norm=None,
    #: **kwargs)`` that runs it
    entry: str
    #: the presets that use it (any other preset: ``weight_norm``)
    presets: Tuple[str, ...] = ()
    #: True: the method sets the thresholds itself (``V_init = V_max``,
    #: ``eta`` 1, unless an update rule is set explicitly)
    sets_thresholds: bool = False
    #: what an empty ``[adaptive_threshold]`` key means under this method
    #: (``readout``, ``avg_pooling``, ``mem_init``); others: the plugin's
    defaults: Dict[str, str] = {}
    #: the :class:`~snntb_adaptive.config.Settings` fields its result
    #: depends on besides which layers have neurons (a comparison gives
    #: each distinct combination its own parsed model)
    depends_on: Tuple[str, ...] = ()
    #: False: it measures with one spike per step (``max_spikes_per_step``
    #: must be 1)
    burst_spikes: bool = True


#: method name -> :class:`Method`, in the order registered
METHODS = {}


def register(method):
    METHODS[method.name] = method
    return method


register(Method('weight_norm', 'snntb_adaptive.normalisation:weight_norm'))
register(Method('spike_norm', 'snntb_adaptive.spike_norm:phase1',
                presets=('spike_norm',), sets_thresholds=True,
                burst_spikes=False))
register(Method('calibrated', 'snntb_adaptive.calibration:phase1',
                presets=('calibrated',), sets_thresholds=True,
                defaults={'readout': 'membrane', 'avg_pooling': 'linear',
                          'mem_init': '0.5'},
                depends_on=('calibration_steps', 'calibration_horizon',
                            'calibration_samples',
                            'calibration_thresholds', 'calibration_correction',
                            'calibration_potential', 'mem_init',
                            'max_spikes')))


def of_preset(preset):
    """The :class:`Method` a preset uses."""
    for method in METHODS.values():
        if preset in method.presets:
            return method
    return METHODS['weight_norm']


def run(name, model, config, **kwargs):
    """Run Phase-1 method ``name`` on a parsed model."""
    module, function = METHODS[name].entry.split(':')
    return getattr(importlib.import_module(module), function)(
        model, config, **kwargs)
