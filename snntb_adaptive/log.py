"""Library output: one logger, ``snntb_adaptive``, and the quiet TensorFlow.

Modules write what a user should see with ``log.info(...)`` (progress,
settings, where results went) and ``log.warning(...)`` (a fallback was
taken). :func:`setup` installs the handler that prints these lines with the
``snntb-adaptive:`` prefix on standard output; the command line and the
hooks on SNN-TB's ``snntoolbox`` command call it, a library user may install
their own handlers instead (``logging.getLogger('snntb_adaptive')``).

:func:`quiet_tensorflow` removes the messages a user cannot act on:
TensorFlow's C++ start-up notes (written before its logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not reach them: oneDNN is on, no CUDA driver
on a CPU machine), and the ``tf.function`` retracing warnings that SNN-TB's
layers trigger by design (one trace per layer instance). Any other line
TensorFlow writes at start-up is passed on.
"""

import logging
import os
import sys
import tempfile

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
    """``snntb-adaptive: `` before a message; tables and progress lines
    logged through :func:`table` (``extra={'raw': True}``) are left as they
    are."""

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


#: start-up lines of TensorFlow's C++ side that say nothing to act on
STARTUP_NOISE = (
    'All log messages before absl::InitializeLog() is called',
    'oneDNN custom operations are on',
    'Could not find cuda drivers',
    'failed call to cuInit',
    'TF-TRT Warning',
    'Unable to register cu',
    'computation_placer.cc',
    'This TensorFlow binary is optimized to use available CPU instructions',
    'To enable the following instructions',
)


def quiet_tensorflow():
    """Import TensorFlow (and tf-keras) with its start-up notes filtered out
    of standard error, and drop the retracing warnings. Does nothing to the
    import when TensorFlow is already loaded; the filter is added once."""
    tf_logger = logging.getLogger('tensorflow')
    if not any(isinstance(f, _NoRetracing) for f in tf_logger.filters):
        tf_logger.addFilter(_NoRetracing())
    if 'tensorflow' in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()   # the device start-up notes
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors='replace').splitlines():
                if line.strip() and not any(n in line for n in STARTUP_NOISE):
                    sys.stderr.write(line + '\n')
