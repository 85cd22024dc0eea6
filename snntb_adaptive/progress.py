"""Durable progress of a simulation run, and resuming it.

During a run every finished batch is appended to ``progress.jsonl`` in the
run's log folder as one JSON line, flushed and synced to disk before the next
batch starts. The first line is a header with a fingerprint of everything the
numbers depend on (settings, the parsed and normalised model's parameters,
the test data). A run killed at any point loses at most the batch it was
simulating: with ``[adaptive_threshold] resume = True`` (or
``python -m snntb_adaptive -t CONFIG --resume``) the next run with the same
config reads the finished batches back, simulates only the rest and writes a
``results.json`` identical to that of an uninterrupted run (apart from
``created`` and ``wall_seconds``).

Every line carries ``chain``, a SHA-256 over the previous line's ``chain``
and the line's own content (the header's over its content alone), so a
line edited or damaged after it was written, or a line missing, is found on
resume: the file is refused, naming the line. A last line cut short by the
crash (not JSON) is the batch being written when the run died: it is
dropped.

Without ``resume`` an existing ``progress.jsonl`` is kept, renamed
``progress.<its modification time>.jsonl``, when the new run records its
first batch (a run that fails before that changes nothing); nothing is
overwritten. On resume, every record must also be one this run could have
written (:func:`implausible`: batch index in range and not repeated, counts
within the batch size, tables of the run's shape): the chain alone cannot
tell, since anyone can recompute it.
"""

import hashlib
import json
import os
import time

import numpy as np

from snntb_adaptive.compat import write_atomic
from snntb_adaptive.errors import ConfigError
from snntb_adaptive.log import log

PROGRESS_FILE = 'progress.jsonl'
FORMAT = 2
#: what a batch record must hold (see metrics.RunRecorder.batch_record)
RECORD_FIELDS = ('batch', 'n', 'correct1', 'correctk', 'spikes_per_step',
                 'theta_sum', 'theta_min', 'theta_max', 'ann1', 'annk')


def chain_digest(previous, content):
    """The ``chain`` of a line: SHA-256 over the previous line's chain and
    the line's content (JSON, keys sorted)."""
    return hashlib.sha256((previous + json.dumps(
        content, sort_keys=True)).encode()).hexdigest()


def chained_line(previous, content):
    """``(line, chain)``: ``content`` with its ``chain``, as one JSON line."""
    chain = chain_digest(previous, content)
    return json.dumps(dict(content, chain=chain), sort_keys=True) + '\n', \
        chain


def fingerprint(settings, layers, weights, x_test, y_test):
    """SHA-256 over the settings, the layer table, every parameter array and
    the test data of the run."""
    h = hashlib.sha256()
    h.update(json.dumps([settings, layers], sort_keys=True,
                        default=str).encode())
    for arr in list(weights) + [x_test, y_test]:
        a = np.ascontiguousarray(arr)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _jsonable(rec):
    out = {}
    for k, v in rec.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def keep_aside(path):
    """Rename ``path`` to ``<stem>.<its modification time><ext>`` (a free
    name); returns the new path."""
    stem, ext = os.path.splitext(path)
    stamp = time.strftime('%Y%m%d-%H%M%S',
                          time.localtime(os.path.getmtime(path)))
    new = '{}.{}{}'.format(stem, stamp, ext)
    k = 1
    while os.path.exists(new):
        new = '{}.{}-{}{}'.format(stem, stamp, k, ext)
        k += 1
    os.replace(path, new)
    return new


def read_progress(path):
    """Header and batch records of a progress file, each line checked
    against its ``chain``. A last line cut short by a crash is ignored; any
    other damaged, edited or incomplete line is a :class:`ConfigError` that
    names it."""
    with open(path) as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()

    def damaged(i, why):
        return ConfigError(
            "{} is damaged at line {} ({}); rename or delete it to start the "
            "run afresh".format(path, i + 1, why))

    parsed, previous = [], ''
    for i, line in enumerate(lines):
        try:
            content = json.loads(line)
        except (ValueError, RecursionError):
            if i == len(lines) - 1 and i > 0:
                break          # the batch being written when the run died
            raise damaged(i, 'not JSON') from None
        if i == 0 and (not isinstance(content, dict) or
                       content.get('format') != FORMAT):
            raise ConfigError("{} is not a progress file of this version; "
                              "rename or delete it to start afresh".format(
                                  path))
        if not isinstance(content, dict) or 'chain' not in content:
            raise damaged(i, 'no chain')
        chain = content.pop('chain')
        if chain != chain_digest(previous, content):
            raise damaged(i, 'its content does not match its chain: edited, '
                          'or a line before it is missing')
        missing = [k for k in RECORD_FIELDS if k not in content]
        if i > 0 and missing:
            raise damaged(i, 'missing ' + ', '.join(missing))
        parsed.append(content)
        previous = chain
    return parsed[0], parsed[1:]


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _whole(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _table(v, shape):
    """``v`` as a float64 array of ``shape`` (None: any), or None when it is
    not a (nested) list of numbers of that shape."""
    def numbers(x):
        return all(numbers(e) for e in x) if isinstance(x, list) \
            else _number(x)
    if not isinstance(v, list) or not numbers(v):
        return None
    try:
        a = np.asarray(v, np.float64)
    except (ValueError, OverflowError):
        return None          # ragged, or an int beyond float range
    if a.dtype != np.float64 or (shape is not None and a.shape != shape):
        return None
    return a


def implausible(record, num_batches, batch_size=None, steps=None,
                layers=None):
    """Why a batch record (as :meth:`Progress.append` wrote it) cannot be
    what a run of ``num_batches`` batches of ``batch_size`` images over
    ``steps`` steps with ``layers`` spiking layers recorded, or None. The
    chain protects against accidental damage only (anyone can recompute
    it); this catches records a run cannot have written."""
    b, n = record.get('batch'), record.get('n')
    if not _whole(b) or not 0 <= b < num_batches:
        return 'batch {!r} is not one of 0..{}'.format(b, num_batches - 1)
    if not _whole(n) or n < 1 or (batch_size is not None and
                                  n != batch_size):
        return 'n = {!r}, but batches hold {} images'.format(
            n, batch_size or 'at least 1')
    correct = {}
    for key in ('correct1', 'correctk'):
        v = record.get(key)
        if not isinstance(v, list) or not v or not all(
                _whole(c) and 0 <= c <= n for c in v) or (
                    steps is not None and len(v) != steps):
            return '{} is not {} whole numbers from 0 to n = {}'.format(
                key, steps or 'a list of', n)
        correct[key] = v
    if len(correct['correct1']) != len(correct['correctk']) or any(
            c1 > ck for c1, ck in zip(correct['correct1'],
                                      correct['correctk'])):
        return 'correct1 exceeds correctk'
    a1, ak = record.get('ann1'), record.get('annk')
    if not (_whole(a1) and _whole(ak) and 0 <= a1 <= ak <= n):
        return 'ann1 = {!r}, annk = {!r}: not 0 <= ann1 <= annk <= n'.format(
            a1, ak)
    shape = None if steps is None or layers is None else (steps, layers)
    for key in ('spikes_per_step', 'theta_sum', 'theta_min', 'theta_max',
                'synops_per_step'):
        if key == 'synops_per_step' and key not in record:
            continue
        a = _table(record.get(key), shape)
        if a is None:
            return '{} is not a table of numbers{}'.format(
                key, '' if shape is None else ' of shape {}'.format(shape))
        counts = key in ('spikes_per_step', 'synops_per_step')
        if np.isinf(a).any() or (counts and not (a >= 0).all()):
            return '{} holds {} values'.format(
                key, 'negative or NaN' if counts else 'infinite')
    return None


class Progress:
    """The progress file of one run. A fresh run changes nothing on disk
    until its first batch is recorded (an earlier file is kept aside then),
    so a run that fails before it starts leaves the folder as it was."""

    def __init__(self, log_dir, fp, resume, num_batches, batch_size=None,
                 steps=None, layers=None):
        os.makedirs(log_dir, exist_ok=True)
        self.path = os.path.join(log_dir, PROGRESS_FILE)
        self.done = {}
        self._fp, self._file = fp, None
        if os.path.exists(self.path):
            if resume:
                header, records = read_progress(self.path)
                if header.get('fingerprint') != fp:
                    raise ConfigError(
                        "resume: {} was written by a run with other settings, "
                        "model parameters or test data than this one. Use a "
                        "new [paths] runlabel, or set [adaptive_threshold] "
                        "resume = False to start afresh (the old file is then "
                        "kept under another name).".format(self.path))
                for i, r in enumerate(records):
                    why = implausible(r, num_batches, batch_size, steps,
                                      layers)
                    if why is None and r['batch'] in self.done:
                        why = 'batch {} is recorded twice'.format(r['batch'])
                    if why is not None:
                        raise ConfigError(
                            "resume: {} line {} cannot have been written by "
                            "this run ({}); rename or delete the file to "
                            "start the run afresh".format(self.path, i + 2,
                                                          why))
                    self.done[r['batch']] = r
                # Rewrite without a partial last line, atomically.
                text, self._chain = '', ''
                for content in [header] + records:
                    line, self._chain = chained_line(self._chain, content)
                    text += line
                write_atomic(self.path, text)
                log.info("resuming, {} of {} batches already done "
                         "({})".format(len(self.done), num_batches,
                                       self.path))
                self._file = open(self.path, 'a')
        elif resume:
            log.info("resume: no progress file {} yet; starting from the "
                     "first batch".format(self.path))

    def _start(self):
        """Keep an earlier file aside and write the header (first append)."""
        if os.path.lexists(self.path):
            kept = keep_aside(self.path)
            log.info("kept the previous progress file as {}".format(kept))
        line, self._chain = chained_line('', {
            'format': FORMAT, 'fingerprint': self._fp,
            'created': time.strftime('%Y-%m-%dT%H:%M:%S%z')})
        write_atomic(self.path, line)
        self._file = open(self.path, 'a')

    def append(self, batch, record, **extra):
        """Append one finished batch durably (flushed and synced)."""
        if self._file is None:
            self._start()
        line, chain = chained_line(
            self._chain, dict(_jsonable(record), batch=batch, **extra))
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._chain = chain

    def close(self):
        if self._file is not None:
            self._file.close()


LOCK_FILE = '.snntb_adaptive.lock'
_locks = {}   # lock file (device, inode) -> (path, open file), held until exit
_model_locks = set()   # those of model files (released after each run)


def lock_run_folder(log_dir):
    """Take the run folder for this process (an exclusive ``flock`` on
    ``<log_dir>/.snntb_adaptive.lock``, released, and the file removed,
    when the process ends). A second process that wants the same folder
    gets a :class:`ConfigError` naming the process that holds it. Taking it
    again in the same process is a no-op."""
    take_lock(os.path.join(log_dir, LOCK_FILE),
              "the run folder {} is in use by {{}}; wait for that run to end, "
              "or give this one its own [paths] runlabel".format(log_dir),
              'give the run another [paths] runlabel')


def lock_model_file(path, key):
    """Take the model file ``path`` of ``path_wd`` (the parsed model or the
    SNN, which runs with other run labels share; ``key`` the ``[paths]``
    key that names it) for this process, as :func:`lock_run_folder` takes
    the run folder: two runs that write or read one such file at the same
    time (an HDF5 lock error, or a half-written model read) are refused
    with one line instead."""
    folder, name = os.path.split(path)
    _model_locks.add(take_lock(os.path.join(folder, '.{}{}'.format(
        name, LOCK_FILE)),
              "the model file {} is in use by {{}} (a run with another run "
              "label on the same model); wait for that run to end, or give "
              "this one its own [paths] {}".format(path, key),
              'give [paths] {} another name'.format(key)))


def release_model_locks():
    """Release the model-file locks this process took (at the end of a
    run in a process that goes on: a notebook, ``compare``, the tests), so
    that runs with other labels may use the model again. The run folder's
    lock stays until the process ends."""
    for key in list(_model_locks):
        entry = _locks.pop(key, None)
        if entry is not None:
            _remove_and_close(key, *entry)
    _model_locks.clear()


def take_lock(path, busy, fix):
    """An exclusive ``flock`` on the lock file ``path`` (opened without
    following links), held until the process ends, then removed. ``busy``:
    the message (``{}`` for the holder) when another process holds it;
    ``fix``: what to do when the file cannot be opened."""
    import fcntl
    while True:
        try:     # never through a link planted under the lock's name
            f = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT |
                                  os.O_NOFOLLOW, 0o644), 'r+')
        except OSError as e:
            raise ConfigError(
                "the lock file {} cannot be opened ({}); remove it if it is a "
                "symbolic link, or {}".format(path, e.strerror or e, fix)
            ) from None
        st = os.fstat(f.fileno())
        key = (st.st_dev, st.st_ino)     # the folder may have been moved
        if key in _locks:
            f.close()
            return key
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or 'another process'
            f.close()
            raise ConfigError(busy.format(holder)) from None
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_dev, now.st_ino) == key:
            break
        f.close()      # its holder removed the file as it ended: again
    f.seek(0)
    f.truncate()
    f.write('process {}'.format(os.getpid()))
    f.flush()
    if not _locks:
        import atexit
        atexit.register(_release_locks)
    _locks[key] = (path, f)
    return key


def _release_locks():
    """At exit: remove the lock files this process holds (while still
    holding them, so that no other process took one), then release them."""
    for key, (path, f) in list(_locks.items()):
        _remove_and_close(key, path, f)
    _locks.clear()


def _remove_and_close(key, path, f):
    """Remove a held lock file (if it is still the one locked), then
    release it."""
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == key:
            os.remove(path)
    except OSError:
        pass
    f.close()


def rss_bytes():
    """Resident memory of this process in bytes (Linux ``/proc``)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def rss_mb():
    """Resident memory of this process in MB, or None where ``/proc`` is
    missing."""
    try:
        return rss_bytes() / 2 ** 20
    except (OSError, ValueError):
        return None
