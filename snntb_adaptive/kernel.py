"""The fused step kernel: one TensorFlow op per spiking layer and time step.

``csrc/if_step.cc`` computes what :func:`snntb_adaptive.dynamics.neuron_step`
computes (threshold update, integrate, fire, reset, and the spike count per
sample) in one pass over the layer, instead of the five to eight elementwise
TensorFlow ops the pure function takes. It is an accelerator, not a gate: it
implements the update rules named in :data:`FUSED_RULES`, and any other rule
of :data:`snntb_adaptive.dynamics.RULES` runs on TensorFlow ops. The
simulator of :mod:`snntb_adaptive.target_sim` uses it when
``[adaptive_threshold] kernel`` is ``auto`` (the default; falls back to
TensorFlow ops with one notice) or ``fused`` (an error when it cannot run);
its results are bit-identical to the TensorFlow ops
(``tests/test_kernel.py``), so ``dynamics.py`` stays the readable
definition. :func:`fused_step` and :func:`tf_step` share the signature of
:func:`~snntb_adaptive.dynamics.neuron_step`.

The op is compiled on first use with the C++ compiler (``$CXX``, else
``g++``) and the flags TensorFlow reports (``tf.sysconfig``), for this CPU
(``-march=native``), into a cache directory (``$SNNTB_ADAPTIVE_CACHE``, else
``$XDG_CACHE_HOME/snntb_adaptive``, else ``~/.cache/snntb_adaptive``). The
file name holds a hash of the source, the TensorFlow version and flags, the
compiler and the CPU, so a changed stack builds a new library and never
loads a stale one. A build takes a few seconds.

The same library holds the event-driven synapses, ``csrc/sparse_synapse.cc``
(:func:`sparse_conv`): a spiking layer's input impulse computed from its
nonzero inputs only, each adding its weights into the outputs it reaches.
``kernel = sparse`` uses it for every layer that can (Conv1D, Conv2D,
Dense on flat input, depthwise convolutions, spiking average pooling
without padding; not for the first spiking layer, whose constant input
impulse is computed once per batch), with the fused neuron step; ``kernel =
auto`` uses it for a step where the layer's input has fewer than
:data:`SPARSE_CROSSOVER` nonzero values (``tf.cond`` on the count), the
dense op otherwise (layers of fewer than :data:`SPARSE_MIN_MACS`
multiply-accumulates per image keep the dense op under ``auto``). Its sums run in another order than oneDNN's, so a
neuron exactly at its threshold may fire one step apart
(docs/performance.md counts such spikes).
"""

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from typing import Callable, NamedTuple

_CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'csrc')
#: the op's sources, built into one library
SOURCES = (os.path.join(_CSRC, 'if_step.cc'),
           os.path.join(_CSRC, 'sparse_synapse.cc'))
#: below this fraction of nonzero inputs in a step, ``kernel = auto``
#: computes a layer's impulse with the event-driven op (measured on this
#: machine's CPU, benchmarks/sparse.py; docs/performance.md)
SPARSE_CROSSOVER = 0.15
#: ``kernel = auto`` chooses per step only for layers of at least this many
#: multiply-accumulates per image (the ANN's); smaller ones keep the dense
#: op, whose cost the choice itself (a count and a ``tf.cond`` per step)
#: would exceed
SPARSE_MIN_MACS = 1 << 20
#: the update rules the C++ op implements (its constructor accepts exactly
#: these names)
FUSED_RULES = ('clamp', 'window', 'none')

_state = {}   # 'module' or 'error', once tried


class KernelUnavailable(RuntimeError):
    """The fused kernel could not be built or loaded; the message says why."""


def cache_dir():
    """Where built libraries are kept."""
    if os.environ.get('SNNTB_ADAPTIVE_CACHE'):
        return os.environ['SNNTB_ADAPTIVE_CACHE']
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
        os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'snntb_adaptive')


def _cpu_flags():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(('flags', 'Features')):
                    return line
    except OSError:
        pass
    return platform.processor()


def cpu_has_bfloat16():
    """Whether the CPU reports bfloat16 instructions (avx512_bf16 or
    amx_bf16)."""
    return bool({'avx512_bf16', 'amx_bf16'} & set(_cpu_flags().split()))


def _build_command(compiler, sources, target):
    import tensorflow as tf
    return ([compiler, '-shared', '-fPIC', '-O3', '-march=native', '-w'] +
            list(sources) + ['-o', target] +
            tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags())


def library_path(compiler=None):
    """Path of the built library for this source, stack and CPU."""
    import tensorflow as tf
    compiler = compiler or os.environ.get('CXX', 'g++')
    h = hashlib.sha256()
    for source in SOURCES:
        with open(source, 'rb') as f:
            h.update(f.read())
    for part in ([tf.__version__, compiler, platform.machine(), _cpu_flags()]
                 + _build_command(compiler, (), '')):
        h.update(str(part).encode())
    return os.path.join(cache_dir(), 'snntb_ops_{}.so'.format(
        h.hexdigest()[:16]))


def build(compiler=None):
    """Compile the op unless the library exists; return its path. Raises
    :class:`KernelUnavailable` with the compiler's message."""
    compiler = compiler or os.environ.get('CXX', 'g++')
    target = library_path(compiler)
    if os.path.exists(target):
        return target
    if shutil.which(compiler) is None:
        raise KernelUnavailable(
            "no C++ compiler {!r} on PATH (install g++ or set CXX)".format(
                compiler))
    directory = os.path.dirname(target)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix='.so', dir=directory)
    except OSError as e:
        raise KernelUnavailable(
            "cannot write to the cache directory {} ({}); set "
            "SNNTB_ADAPTIVE_CACHE to a writable folder".format(
                directory, e.strerror or e)) from None
    os.close(fd)
    try:
        proc = subprocess.run(_build_command(compiler, SOURCES, tmp),
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise KernelUnavailable("{} failed: {}".format(
                compiler, ' | '.join(lines[-3:]) or 'exit status {}'.format(
                    proc.returncode)))
        os.replace(tmp, target)   # another process may build the same: fine
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load():
    """The op module (built and loaded once per process). Raises
    :class:`KernelUnavailable`."""
    if 'module' in _state:
        return _state['module']
    if 'error' in _state:
        raise KernelUnavailable(_state['error'])
    try:
        import tensorflow as tf
        path = build()
        try:
            module = tf.load_op_library(path)
        except Exception:   # tf raises NotFoundError and others
            # A damaged library in the cache: build it again, once.
            try:
                os.unlink(path)
            except OSError:
                pass
            path = build()
            try:
                module = tf.load_op_library(path)
            except Exception as e:
                raise KernelUnavailable("cannot load {}: {}".format(
                    path, str(e).splitlines()[0] if str(e)
                    else type(e).__name__)) from None
    except KernelUnavailable as e:
        _state['error'] = str(e)
        raise
    _state['module'] = module
    return module


def fused_step(params, state, impulse, z=None):
    """:func:`snntb_adaptive.dynamics.neuron_step` by the fused op (same
    signature, same :class:`~snntb_adaptive.dynamics.Step`). The op reads
    the scope from the rank of ``state.theta`` (``(B,)`` or scalar), as
    :func:`~snntb_adaptive.dynamics.initial_theta` shapes it."""
    import tensorflow as tf
    from snntb_adaptive.dynamics import NeuronState, Step
    module = load()
    given = z is not None
    spikes, mem, theta, count = module.snntb_adaptive_if_step(
        state.mem, impulse, state.theta, z if given else tf.zeros([0]),
        update=params.update, v_init=float(params.v_init),
        v_max=float(params.v_max), given_z=given)
    return Step(spikes, NeuronState(mem, theta), count)


def sparse_conv(x, kernel, strides, dilations, pads, out_size,
                depthwise=False):
    """The event-driven synapses (``csrc/sparse_synapse.cc``): TensorFlow's
    2-D cross-correlation of ``x`` ``(N, H, W, Ci)`` with ``kernel`` ``(KH,
    KW, Ci, Co)`` (depthwise: ``(KH, KW, C, 1)``, channel to channel), with
    ``strides``, ``dilations``, explicit padding ``pads = (top, left)`` and
    output size ``out_size = (OH, OW)``, computed from the nonzero entries
    of ``x`` only. No bias. Raises :class:`KernelUnavailable`."""
    return load().snntb_adaptive_sparse_conv(
        x, kernel, strides=[int(v) for v in strides],
        dilations=[int(v) for v in dilations], pads=[int(v) for v in pads],
        out_size=[int(v) for v in out_size], depthwise=bool(depthwise))


def tf_step(params, state, impulse, z=None):
    """The same step by TensorFlow ops:
    :func:`snntb_adaptive.dynamics.neuron_step`."""
    from snntb_adaptive.dynamics import neuron_step
    return neuron_step(params, state, impulse, z)


# --------------------------------------------------------------------------
# The table of kernels


def _fused_unavailable(rule, max_spikes):
    """Why the fused op cannot run a layer's step (None: it can)."""
    if rule not in FUSED_RULES:
        return "it implements the update rules {}, not {!r}".format(
            ', '.join(FUSED_RULES), rule)
    if max_spikes != 1:
        return ("it emits one spike per step, not max_spikes_per_step = {}"
                "".format(max_spikes))
    try:
        load()
    except KernelUnavailable as e:
        return str(e)
    return None


class Kernel(NamedTuple):
    """A way to compute a spiking layer's step: ``step(params, state,
    impulse, z=None) -> Step``, the signature of
    :func:`~snntb_adaptive.dynamics.neuron_step`, with the same results,
    and how the input impulse is computed (``synapses``)."""

    name: str
    step: Callable
    #: ``(rule, max_spikes) -> None`` where it can run, else why not
    unavailable: Callable
    #: how the messages name it
    description: str
    #: the input impulse: ``dense`` (the Keras layer's own op) or ``sparse``
    #: (:func:`sparse_conv` wherever a layer can use it)
    synapses: str = 'dense'


#: ``[adaptive_threshold] kernel`` name -> :class:`Kernel`, in order of
#: preference (``kernel = auto`` takes the first that can run; the last
#: runs everything)
KERNELS = {
    'fused': Kernel('fused', fused_step, _fused_unavailable,
                    'the fused step kernel'),
    'sparse': Kernel('sparse', fused_step, _fused_unavailable,
                     'the fused step kernel with event-driven synapses',
                     synapses='sparse'),
    'tf': Kernel('tf', tf_step, lambda rule, max_spikes: None,
                 'TensorFlow ops'),
}


def synapses_for(choice, name):
    """How the input impulses are computed for a ``kernel`` setting
    (``choice``) that resolved to the kernel ``name``: ``auto`` chooses per
    layer and step (``'auto'``) where the op library loads, else the
    kernel's own ``synapses``."""
    if choice == 'auto':
        try:
            load()
            return 'auto'
        except KernelUnavailable:
            return 'dense'
    return KERNELS[name].synapses


def resolve(choice, rule, max_spikes=1):
    """The kernel (its name in :data:`KERNELS`) to use for a ``kernel``
    setting, an update rule and the spikes a neuron may emit per step, and a
    note when ``auto`` did not get its first choice. A kernel named
    explicitly that cannot run raises :class:`KernelUnavailable`."""
    if choice != 'auto':
        why = KERNELS[choice].unavailable(rule, max_spikes)
        if why:
            raise KernelUnavailable(why)
        return choice, None
    first = next(iter(KERNELS.values()))
    first_why = None
    for k in KERNELS.values():
        why = k.unavailable(rule, max_spikes)
        if not why:
            note = None if k is first else (
                "{} is unavailable ({}); using {}: the same results, slower. "
                "Set [adaptive_threshold] kernel = {} to silence this."
                "".format(first.description, first_why, k.description,
                          k.name))
            return k.name, note
        first_why = first_why or why
    raise KernelUnavailable(first_why)
