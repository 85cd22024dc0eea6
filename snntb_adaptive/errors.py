"""The errors that mean "the user's input must change".

Every check of the plugin raises a :class:`UserError` subclass whose message
names the problem and what to change. The command line
(:mod:`snntb_adaptive.cli`) and the hook on SNN-TB's ``snntoolbox`` command
(:mod:`snntb_adaptive.hooks`) catch :class:`UserError` alone and print it as
one line, ``snntb-adaptive: error: ...``, with exit status 2; anything else is
a bug and keeps its traceback.

This module imports nothing, so any module can use it.
"""


class UserError(Exception):
    """Base class: an input (configuration, file, data, option) the plugin
    cannot run with, or a run stopped from outside. The message says what to
    change; ``exit_status`` is the command's exit status."""

    exit_status = 2


class ConfigError(UserError, ValueError):
    """A configuration value, command-line option or model the plugin cannot
    run with."""


class DataError(UserError, ValueError):
    """A data file or array the plugin cannot use."""


class CorruptFileError(UserError, RuntimeError):
    """A file left by an earlier run cannot be read."""


class RunStopped(UserError):
    """A simulation stopped by Ctrl-C, SIGTERM or a full disk; the message
    says how many batches are saved and that ``--resume`` continues."""

    exit_status = 130


class KerasVersionError(UserError, ImportError):
    """TensorFlow's Keras is Keras 3 in this process; SNN-TB needs Keras 2."""
