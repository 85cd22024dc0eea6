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

Without ``resume`` an existing ``progress.jsonl`` is kept, renamed
``progress.<its modification time>.jsonl``; nothing is overwritten.
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
FORMAT = 1


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
    """Header and batch records of a progress file. A last line cut short by
    a crash is ignored; a damaged line before it is an error."""
    with open(path) as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    parsed = []
    for i, line in enumerate(lines):
        try:
            parsed.append(json.loads(line))
        except ValueError:
            if i == len(lines) - 1:
                break          # the batch being written when the run died
            raise ConfigError(
                "{} is damaged at line {}; rename or delete it to start the "
                "run afresh".format(path, i + 1)) from None
    if not parsed or parsed[0].get('format') != FORMAT:
        raise ConfigError("{} is not a progress file of this version; rename "
                          "or delete it to start afresh".format(path))
    return parsed[0], parsed[1:]


class Progress:
    """The progress file of one run."""

    def __init__(self, log_dir, fp, resume, num_batches):
        os.makedirs(log_dir, exist_ok=True)
        self.path = os.path.join(log_dir, PROGRESS_FILE)
        self.done = {}
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
                self.done = {r['batch']: r for r in records
                             if r['batch'] < num_batches}
                # Rewrite without a partial last line, atomically.
                write_atomic(self.path, ''.join(
                    json.dumps(line) + '\n' for line in
                    [header] + [self.done[b] for b in sorted(self.done)]))
                log.info("resuming, {} of {} batches already done "
                         "({})".format(len(self.done), num_batches,
                                       self.path))
            else:
                kept = keep_aside(self.path)
                log.info("kept the previous progress file as {}".format(
                    kept))
        if not os.path.exists(self.path):
            write_atomic(self.path, json.dumps({
                'format': FORMAT, 'fingerprint': fp,
                'created': time.strftime('%Y-%m-%dT%H:%M:%S%z')}) + '\n')
        self._file = open(self.path, 'a')

    def append(self, batch, record, **extra):
        line = dict(_jsonable(record), batch=batch, **extra)
        self._file.write(json.dumps(line) + '\n')
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        self._file.close()


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
