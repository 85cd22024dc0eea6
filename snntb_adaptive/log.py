"""Library output: one logger, ``snntb_adaptive``, and the quiet TensorFlow.

Modules write what a user should see with ``log.info(...)`` (progress,
settings, where results went) and ``log.warning(...)`` (a fallback was
taken). :func:`setup` installs the handler that prints these lines with the
``snntb-adaptive:`` prefix on standard output; the command line and the
hooks on SNN-TB's ``snntoolbox`` command call it, a library user may install
their own handlers instead (``logging.getLogger('snntb_adaptive')``).

:func:`quiet_tensorflow` removes the messages a user cannot act on:
TensorFlow's C++ start-up notes (``TF_CPP_MIN_LOG_LEVEL = 1`` unless the
user set it) and the ``tf.function`` retracing warnings that SNN-TB's layers
trigger by design (one trace per layer instance).
"""

import logging
import os
import sys

NAME = 'snntb_adaptive'
PREFIX = 'snntb-adaptive: '

log = logging.getLogger(NAME)


class _StdoutHandler(logging.StreamHandler):
    """Writes to the ``sys.stdout`` of the moment (so redirection and test
    capture see the lines)."""

    def __init__(self):
        super().__init__(sys.stdout)

    def emit(self, record):
        self.stream = sys.stdout
        super().emit(record)


class _Prefix(logging.Formatter):
    """``snntb-adaptive: `` before the first line of a message; lines that
    begin with a blank line or are a table keep their layout."""

    def format(self, record):
        text = super().format(record)
        if getattr(record, 'raw', False):
            return text
        return PREFIX + text


def setup(level=logging.INFO):
    """Print the plugin's messages (once per process)."""
    if any(isinstance(h, _StdoutHandler) for h in log.handlers):
        return
    handler = _StdoutHandler()
    handler.setFormatter(_Prefix('%(message)s'))
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def table(text):
    """Log ``text`` (a table or progress line) without the prefix."""
    log.info(text, extra={'raw': True})


class _NoRetracing(logging.Filter):
    def filter(self, record):
        return 'triggered tf.function retracing' not in record.getMessage()


def quiet_tensorflow():
    """Hide TensorFlow's start-up notes and retracing warnings. Call before
    TensorFlow is imported for the first part; the filter can be added any
    time."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
    tf_logger = logging.getLogger('tensorflow')
    if not any(isinstance(f, _NoRetracing) for f in tf_logger.filters):
        tf_logger.addFilter(_NoRetracing())
