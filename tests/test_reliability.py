"""Long runs that lose nothing, determinism, nothing overwritten unasked,
flat memory over many batches."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, make_workdir, write_config

VOLATILE = ('created', 'wall_seconds')


def _results(log):
    with open(os.path.join(log, 'results.json')) as f:
        res = json.load(f)
    for k in VOLATILE:
        res.pop(k)
    return res


@pytest.fixture(scope='module')
def long_dir(tmp_path_factory):
    return make_workdir(str(tmp_path_factory.mktemp('long')), num_test=360,
                        num_norm=200)


def _config(wd, label, **kw):
    values = dict(duration=150, num_to_test=360, batch_size=10)
    values.update(kw)
    return write_config(wd, name=label + '.ini', label=label, **values)


def _log(wd, label):
    return os.path.join(wd, 'log', 'gui', label)


def _run(cfg, *extra):
    p = subprocess.run([sys.executable, '-m', 'snntb_adaptive', '-t', cfg]
                       + list(extra), capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p


def test_kill_9_and_resume_gives_identical_results(long_dir):
    """A run killed with SIGKILL mid-simulation, resumed with one option,
    ends with the results.json of an uninterrupted run."""
    _run(_config(long_dir, 'whole'))
    whole = _results(_log(long_dir, 'whole'))

    cfg = _config(long_dir, 'killed')
    progress = os.path.join(_log(long_dir, 'killed'), 'progress.jsonl')
    proc = subprocess.Popen([sys.executable, '-m', 'snntb_adaptive', '-t',
                             cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 300
    lines = 0
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(progress):
            with open(progress) as f:
                lines = f.read().count('\n')
            if lines >= 6:          # header + at least 5 finished batches
                break
        time.sleep(0.02)
    assert proc.poll() is None, 'the run finished before it could be killed'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(_log(long_dir, 'killed'),
                                           'results.json'))
    with open(progress) as f:
        done = f.read().count('\n') - 1
    assert 5 <= done < 36

    p = _run(cfg, '--resume')
    assert 'resuming, {} of 36 batches already done'.format(done) in p.stdout
    assert _results(_log(long_dir, 'killed')) == whole
    # every batch exactly once in the progress file
    with open(progress) as f:
        batches = [json.loads(line)['batch'] for line in f.readlines()[1:]]
    assert sorted(batches) == list(range(36))


def test_resume_refuses_other_settings(long_dir, capsys):
    from snntb_adaptive.cli import main
    cfg = _config(long_dir, 'whole_other', num_to_test=40)
    assert main(['-t', cfg]) == 0
    other = write_config(long_dir, name='whole_other2.ini',
                         label='whole_other', duration=150, num_to_test=40,
                         batch_size=10,
                         extra='\n[adaptive_threshold]\neta_scale = 0.8\n')
    assert main(['-t', other, '--resume']) == 2
    err = capsys.readouterr().err
    assert 'other settings, model parameters or test data' in err


def test_same_config_twice_gives_identical_results(long_dir):
    """Determinism in one process, and across processes (the kill test
    compares two processes)."""
    from snntb_adaptive.cli import main
    cfg = _config(long_dir, 'twice', num_to_test=60)
    assert main(['-t', cfg]) == 0
    first = _results(_log(long_dir, 'twice'))
    assert main(['-t', cfg]) == 0
    assert _results(_log(long_dir, 'twice')) == first


def test_nothing_overwritten_unasked(long_dir):
    """A new run with the same label keeps the previous results and progress
    under other names."""
    from snntb_adaptive.cli import main
    cfg = _config(long_dir, 'again', num_to_test=20, duration=20)
    log = _log(long_dir, 'again')
    assert main(['-t', cfg]) == 0
    with open(os.path.join(log, 'results.json')) as f:
        first = f.read()
    os.utime(os.path.join(log, 'results.json'), (1e9, 1e9))
    os.utime(os.path.join(log, 'progress.jsonl'), (1e9, 1e9))
    assert main(['-t', cfg]) == 0
    files = sorted(os.listdir(log))
    kept = [f for f in files if f.startswith('results.2001')]
    assert len(kept) == 1
    with open(os.path.join(log, kept[0])) as f:
        assert f.read() == first
    assert any(f.startswith('progress.2001') for f in files)
    assert not any(f.endswith('.tmp') for f in files)


def test_memory_flat_over_many_batches(long_dir):
    """RSS recorded after each of 36 batches: no growth after warm-up."""
    log = _log(long_dir, 'whole')
    if not os.path.exists(os.path.join(log, 'progress.jsonl')):
        _run(_config(long_dir, 'whole'))
    with open(os.path.join(log, 'progress.jsonl')) as f:
        rss = [json.loads(line)['rss_mb'] for line in f.readlines()[1:]]
    assert len(rss) == 36
    growth = rss[-1] - rss[5]
    assert growth < 8, 'RSS grew by {:.1f} MB over 30 batches: {}'.format(
        growth, np.round(rss, 1).tolist())
