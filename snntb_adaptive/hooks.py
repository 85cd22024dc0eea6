"""Patches applied to SNN-TB modules right after they load (see
:mod:`snntb_adaptive.registration`).

* every spike code: the NumPy-2 / TF-2.21 shims of :mod:`snntb_adaptive.compat`;
* ``snntoolbox.bin.utils``: the plugin's spike code and ``[adaptive_threshold]``
  defaults join SNN-TB's ``config_defaults``; ``update_setup`` first validates
  the plugin's settings, the SNN-TB options and the input files
  (:mod:`snntb_adaptive.checks`), then runs SNN-TB's own, then prints the
  effective settings;
* ``snntoolbox.bin.run``: ``main`` (the ``snntoolbox`` command) prints the
  plugin's messages (:func:`snntb_adaptive.log.setup`) and any
  :class:`~snntb_adaptive.errors.UserError` as one clear line, exit status 2,
  instead of a traceback;
* ``snntoolbox.conversion.utils``: ``normalize_parameters`` becomes the
  Phase-1 hook of :mod:`snntb_adaptive.normalisation` when
  ``spike_code = adaptive_threshold`` (same scale factors as SNN-TB's, computed
  streaming); for other spike codes SNN-TB's own runs.
"""

import configparser
import os
import sys

from snntb_adaptive import compat, log
from snntb_adaptive.errors import UserError


def patch_literal(module):
    """An SNN-TB module that reads config values with ``eval``: literals
    only."""
    compat.literal_config_values(module)


def patch_conversion(module):
    compat.literal_config_values(module)
    compat.patch_conversion_utils(module)
    original = module.normalize_parameters
    if compat.is_patched(original):
        return

    def normalize_parameters(model, config, **kwargs):
        from snntb_adaptive.config import is_adaptive
        if not is_adaptive(config):
            return original(model, config, **kwargs)
        from snntb_adaptive.normalisation import phase1
        return phase1(model, config, **kwargs)

    module.normalize_parameters = compat.mark_patched(normalize_parameters,
                                                      original)


def patch_simulation(module):
    compat.literal_config_values(module)
    compat.patch_simulation_utils(module)
    original = module.AbstractSNN.run
    if compat.is_patched(original):
        return

    def run(self, *args, **kwargs):
        from snntb_adaptive.pipeline import SIMULATION_STARTED
        SIMULATION_STARTED.append(True)     # for the message on Ctrl-C
        return original(self, *args, **kwargs)

    module.AbstractSNN.run = compat.mark_patched(run, original)


def patch_datasets(module):
    compat.literal_config_values(module)
    compat.patch_datasets_utils(module)
    get_dataset = module.get_dataset
    if compat.is_patched(get_dataset):
        return

    def get_dataset_channels_last(config):
        # PyTorch / ONNX models: channels-first images in Keras' layout
        from snntb_adaptive.foreign_models import lay_out_dataset
        return lay_out_dataset(config, *get_dataset(config))

    module.get_dataset = compat.mark_patched(get_dataset_channels_last,
                                             get_dataset)


#: ``{(section, key): value}`` the command line sets on top of the config
#: file (``--executor``, ``--ray-address``, ``--resume``): the checks see
#: them (see :func:`snntb_adaptive.cli.run_config`)
COMMAND_LINE = {}


def patch_bin_utils(module):
    compat.literal_config_values(module)
    load_config = module.load_config
    if compat.is_patched(load_config):
        return

    def load_config_with_plugin(filepath):
        config = load_config(filepath)
        if os.path.basename(filepath) == 'config_defaults':
            from snntb_adaptive.config import inject_defaults
            inject_defaults(config)
            # SNN-TB reads the user's file into this one: a byte-order mark
            # is not text before the first section
            compat.read_with_bom(config)
        return config

    update_setup = module.update_setup

    def update_setup_with_plugin(config_filepath):
        log.setup()
        from snntb_adaptive.config import (
            check_snntb_options, format_settings, is_adaptive,
            settings_from_config)
        from snntb_adaptive.errors import ConfigError
        if not os.path.isfile(config_filepath):
            raise ConfigError("config file {} {}; give the path of an .ini "
                              "file (see configs/ for examples)".format(
                                  config_filepath, 'is a folder' if
                                  os.path.isdir(config_filepath) else
                                  'not found'))
        # The plugin's checks first, on the merged config, so that bad
        # values and files fail with a clear message before SNN-TB's
        # own asserts and before any work.
        merged = module.load_config(os.path.join(
            os.path.dirname(module.__file__), '..', 'config_defaults'))
        read_user_config(merged, config_filepath)
        user = configparser.ConfigParser(interpolation=None)
        read_user_config(user, config_filepath)
        if not user.sections():
            raise ConfigError(
                "config file {} holds no settings; an SNN-TB config "
                "needs at least [paths] path_wd, dataset_path and "
                "filename_ann (see configs/ for examples)".format(
                    config_filepath))
        for (section, key), value in COMMAND_LINE.items():
            merged.set(section, key, value)
        if is_adaptive(merged):
            from snntb_adaptive.checks import precheck
            settings_from_config(merged)
            check_snntb_options(merged)
            if merged.get('paths', 'path_wd') == '':
                merged.set('paths', 'path_wd',
                           os.path.dirname(config_filepath))
            precheck(merged)
        try:
            config = update_setup(config_filepath)
        except AssertionError as e:   # SNN-TB's own checks of the config
            raise ConfigError("config file {}: {} (SNN-TB's check of the "
                              "config)".format(config_filepath, ' '.join(
                                  str(e).split()) or 'rejected')) from None
        if is_adaptive(config):
            log.table(format_settings(settings_from_config(config), config))
        return config

    module.load_config = compat.mark_patched(load_config_with_plugin,
                                             load_config)
    module.update_setup = compat.mark_patched(update_setup_with_plugin,
                                              update_setup)


def read_user_config(config, path):
    """``config.read(path)``, with a :class:`ConfigError` that names the
    line and the fix for a file ``configparser`` cannot read."""
    from snntb_adaptive.errors import ConfigError
    try:
        # utf-8-sig: a byte-order mark (some editors write one) is not text
        # before the first section
        config.read(path, encoding='utf-8-sig')
        # every value once, so that an interpolation error ('%' in a value)
        # is found here, with its key, not wherever SNN-TB reads it
        for section in config.sections():
            for key in config.options(section):
                config.get(section, key)
    except configparser.InterpolationError as e:
        raise ConfigError(
            "config file {}: [{}] {}: {} (a '%' starts a reference to "
            "another key; write %% for a percent sign)".format(
                path, e.section, e.option,
                ' '.join(str(e).split()))) from None
    except configparser.DuplicateSectionError as e:
        raise ConfigError(
            "config file {}: section [{}] appears twice (line {}); merge the "
            "two into one".format(path, e.section, e.lineno)) from None
    except configparser.DuplicateOptionError as e:
        raise ConfigError(
            "config file {}: key '{}' appears twice in [{}] (line {}); keep "
            "one".format(path, e.option, e.section, e.lineno)) from None
    except configparser.MissingSectionHeaderError as e:
        raise ConfigError(
            "config file {}: line {} ({}) stands before the first [section] "
            "header; put every key under its section, e.g. [simulation]"
            "".format(path, e.lineno, e.line.strip()[:60])) from None
    except configparser.Error as e:
        raise ConfigError("config file {} cannot be read: {}".format(
            path, ' '.join(str(e).split()))) from None
    except UnicodeDecodeError as e:
        raise ConfigError("config file {} is not text ({})".format(
            path, e.reason)) from None


def patch_bin_run(module):
    original = module.main
    if compat.is_patched(original):
        return

    def main(filepath=None):
        from snntb_adaptive.pipeline import (sigterm_as_interrupt,
                                             stopped_early_message)
        log.setup()
        log.quiet_tensorflow()
        try:
            with sigterm_as_interrupt():
                return original(filepath)
        except UserError as e:
            print("{}error: {}".format(log.PREFIX, e), file=sys.stderr)
            raise SystemExit(e.exit_status)
        except KeyboardInterrupt as e:
            print("{}{}".format(log.PREFIX, stopped_early_message(e)),
                  file=sys.stderr)
            raise SystemExit(130)

    module.main = compat.mark_patched(main, original)
