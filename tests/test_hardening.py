"""Hostile files and careless input: no code from a model file runs, nothing
is written outside the run's folder, damaged state is found, and every bad
input is one line (ConfigError / DataError / RunStopped) before long work."""

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, make_workdir, setup, write_config
from snntb_adaptive.errors import (ConfigError, CorruptFileError, DataError,
                                   RunStopped)


@pytest.fixture
def wd(tmp_path):
    return make_workdir(str(tmp_path / 'wd'), num_test=20, num_norm=20)


def _cfg(wd, replace=(), **kw):
    path = write_config(wd, **kw)
    text = open(path).read()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    with open(path, 'w') as f:
        f.write(text)
    return path


def _fails(path, *parts, exc=(ConfigError, DataError)):
    with pytest.raises(exc) as e:
        setup(path)
    for part in parts:
        assert part in str(e.value), str(e.value)
    return str(e.value)


# -- 1. no code from a model file runs -------------------------------------

def _lambda_model(path, marker):
    from tensorflow import keras
    inp = keras.layers.Input((8, 8, 1))
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Lambda(
        lambda t, m=marker: (open(m, 'w').close(), t)[1])(x)
    out = keras.layers.Dense(10)(x)
    model = keras.Model(inp, out)
    model.compile('sgd', 'categorical_crossentropy')
    model.save(path)
    os.remove(marker)          # building the model ran the lambda once


@pytest.mark.parametrize('parse,evaluate', [(True, True), (True, False),
                                            (False, True), (False, False)])
def test_lambda_code_never_runs(wd, parse, evaluate):
    from snntb_adaptive.cli import main
    marker = os.path.join(wd, 'marker')
    for name in ('model.h5', 'model_parsed.h5'):
        _lambda_model(os.path.join(wd, name), marker)
    path = _cfg(wd, [('evaluate_ann = False', 'evaluate_ann = {}\nparse = {}'
                      .format(evaluate, parse))])
    assert main(['-t', path]) == 2
    assert not os.path.exists(marker)
    with pytest.raises(ConfigError, match='code would run when it is '
                       'loaded.*Lambda'):
        setup(path)
    assert not os.path.exists(marker)


# -- 2. nothing written outside the run's folder ---------------------------

@pytest.mark.parametrize('label', ['/', '../../../../x', '/tmp/elsewhere',
                                   '..', ''])
def test_runlabel_is_contained(wd, label):
    before = set(os.listdir(os.path.dirname(wd)))
    path = _cfg(wd, [('runlabel = test', 'runlabel = ' + label)])
    _fails(path, '[paths] runlabel = {!r}'.format(label), 'plain name')
    assert set(os.listdir(os.path.dirname(wd))) == before
    assert not os.path.exists('/tmp/elsewhere')


def test_explicit_log_folder_must_be_inside_path_wd(wd, tmp_path):
    outside = str(tmp_path / 'outside')
    path = _cfg(wd, [('[paths]\n', '[paths]\nlog_dir_of_current_run = {}\n'
                      .format(outside))])
    _fails(path, 'outside path_wd')
    assert not os.path.exists(outside)


# symbolic links planted where the run writes (issue 18, 2): refused before
# anything is written, the link's target untouched

def _plant(wd, rel, target_is_dir=False, tmp=None):
    target = os.path.join(tmp, 'victim')
    if target_is_dir:
        os.makedirs(target)
    else:
        with open(target, 'w') as f:
            f.write('precious')
    link = os.path.join(wd, rel)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(target, link)
    return target


@pytest.mark.parametrize('rel,is_dir', [
    ('log', True),                                   # path_wd/log -> outside
    ('log/gui/test', True),                          # the run folder itself
    ('log/gui/test/.snntb_adaptive.lock', False),
    ('log/gui/test/.snntb_adaptive_write_test', False),
    ('log/gui/test/.config', False),
    ('log/gui/test/normalization', True),
    ('log/gui/test/results.json', False),
    ('model_parsed.h5', False),
    ('model_INI.h5', False),
])
def test_planted_links_are_refused(wd, tmp_path, rel, is_dir):
    from snntb_adaptive.cli import main
    target = _plant(wd, rel, is_dir, str(tmp_path))
    path = _cfg(wd)
    _fails(path, 'symbolic link', 'Remove the link')
    assert main(['-t', path]) == 2
    if is_dir:
        assert os.listdir(target) == []
    else:
        assert open(target).read() == 'precious'


@pytest.mark.parametrize('key,value', [
    ('filename_parsed_model', '../escaped'),
    ('filename_parsed_model', '/tmp/escaped_parsed'),
    ('filename_snn', '../../escaped_snn'),
])
def test_model_files_written_inside_path_wd(wd, key, value):
    path = _cfg(wd, [('[paths]\n', '[paths]\n{} = {}\n'.format(key,
                                                                value))])
    _fails(path, '[paths] {} = {}'.format(key, value), 'outside path_wd',
           '{} = {}'.format(key, os.path.basename(value)))
    assert not os.path.exists('/tmp/escaped_parsed.h5')


def test_default_parsed_name_next_to_a_model_outside_is_refused(wd):
    # SNN-TB names the parsed model after filename_ann: a model given as
    # ../models/m would get ../models/m_parsed.h5, outside path_wd
    os.makedirs(os.path.join(wd, 'sub'))
    path = _cfg(os.path.join(wd, 'sub'), data=os.path.join(wd, 'data'),
                ann='../model')
    _fails(path, '[paths] filename_parsed_model is empty',
           'filename_parsed_model = model_parsed')
    path = _cfg(os.path.join(wd, 'sub'), data=os.path.join(wd, 'data'),
                ann='../model', replace=[(
                    '[paths]\n', '[paths]\nfilename_parsed_model = p\n'
                    'filename_snn = s\n')])
    setup(path)


def test_prepare_data_replaces_a_planted_link_never_its_target(tmp_path):
    from snntb_adaptive import data
    victim = tmp_path / 'victim'
    victim.write_text('precious')
    out = tmp_path / 'out'
    out.mkdir()
    os.symlink(victim, out / 'x_test.npz.tmp.npz')
    x = np.zeros((4, 8, 8), np.uint8)
    data.write_snntb_dataset(str(out), x, np.arange(4), x, 10)
    assert victim.read_text() == 'precious'
    os.symlink(victim, out / 'other')
    with pytest.raises(DataError, match='already holds'):
        os.remove(out / 'x_test.npz')
        os.symlink(victim, out / 'x_test.npz')
        data.write_snntb_dataset(str(out), x, np.arange(4), x, 10)
    assert victim.read_text() == 'precious'


# -- 3. files get the usual mode -------------------------------------------

def test_atomic_files_get_the_umask_mode(tmp_path):
    from snntb_adaptive.compat import write_atomic
    old = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / 'a.json'), '{}')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'a.json').st_mode) == 0o640


# -- 4. cached scale factors are validated ---------------------------------

@pytest.mark.parametrize('damage,why', [
    (lambda f: f.update({next(iter(list(f)[1:])): float('nan')}),
     'not a positive number from'),
    (lambda f: f.update({next(iter(list(f)[1:])): -2.0}),
     'not a positive number from'),
    # finite in float64, but not in the float32 the weights are scaled in
    # (issue 18, 4: weights became NaN and the ANN accuracy read 1.0)
    (lambda f: f.update({next(iter(list(f)[1:])): 1e300}),
     'not a positive number from'),
    (lambda f: f.update({next(iter(list(f)[1:])): 1e-300}),
     'not a positive number from'),
    (lambda f: f.update({list(f)[0]: 2.0}), "SNN-TB's is 1"),
    (lambda f: f.pop(list(f)[-1]), 'has no factor for layer'),
])
def test_cached_scale_factors_are_checked(wd, damage, why):
    from conftest import parse_and_normalise
    cfg = setup(_cfg(wd))
    parse_and_normalise(cfg)
    facs_path = os.path.join(cfg.get('paths', 'log_dir_of_current_run'),
                             'normalization', '99.9.json')
    with open(facs_path) as f:
        facs = json.load(f)
    damage(facs)
    with open(facs_path, 'w') as f:
        json.dump(facs, f)
    cfg = setup(_cfg(wd))
    with pytest.raises(CorruptFileError) as e:
        parse_and_normalise(cfg)
    assert why in str(e.value) and facs_path in str(e.value)
    assert 'delete it' in str(e.value)


# -- 5. progress records are verifiable ------------------------------------

def _progress_file(tmp_path, records=3):
    from snntb_adaptive.progress import Progress
    log_dir = str(tmp_path / 'log')
    p = Progress(log_dir, 'fp', False, records)
    for b in range(records):
        p.append(b, {'n': 10, 'correct1': [b, 9], 'correctk': [9, 9],
                     'spikes_per_step': [[1.0, 2.0]], 'theta_sum': [[7.0]],
                     'theta_min': [[0.5]], 'theta_max': [[1.0]],
                     'ann1': 9, 'annk': 10}, seconds=0.5, rss_mb=1.0)
    p.close()
    return log_dir, p.path


def test_progress_file_round_trips(tmp_path):
    from snntb_adaptive.progress import Progress
    log_dir, path = _progress_file(tmp_path)
    p = Progress(log_dir, 'fp', True, 3)
    p.close()
    assert sorted(p.done) == [0, 1, 2] and p.done[1]['correct1'] == [1, 9]


@pytest.mark.parametrize('edit,line', [
    (lambda lines: lines.__setitem__(2, lines[2].replace('[1, 9]',
                                                         '[2, 9]')), 3),
    (lambda lines: lines.__setitem__(2, '{}'), 3),
    (lambda lines: lines.pop(2), 3),              # a record removed
    (lambda lines: lines.__setitem__(1, '[]'), 2),
])
def test_edited_progress_is_refused_naming_the_line(tmp_path, edit, line):
    from snntb_adaptive.progress import Progress
    log_dir, path = _progress_file(tmp_path)
    with open(path) as f:
        lines = f.read().splitlines()
    edit(lines)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with pytest.raises(ConfigError, match='damaged at line {}'.format(line)):
        Progress(log_dir, 'fp', True, 3)


def _forge(path, change):
    """Rewrite a progress file with ``change(records)`` applied and every
    chain recomputed, as someone who knows the scheme could."""
    from snntb_adaptive.progress import chained_line
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    for line in lines:
        line.pop('chain')
    header, records = lines[0], lines[1:]
    records = change(records) or records
    text, chain = '', ''
    for content in [header] + records:
        line, chain = chained_line(chain, content)
        text += line
    with open(path, 'w') as f:
        f.write(text)


@pytest.mark.parametrize('change,why', [
    (lambda r: r[0].update(correct1=[12, 9]), 'correct1 is not 2 whole'),
    (lambda r: r[0].update(correct1=[-1, 9]), 'correct1 is not'),
    (lambda r: r[0].update(correct1=['9', 9]), 'correct1 is not'),
    (lambda r: r[0].update(correct1=[10 ** 30, 9]), 'correct1 is not'),
    (lambda r: r[0].update(correct1=[9.5, 9]), 'correct1 is not'),
    (lambda r: r[1].update(correctk=[0, 9]), 'correct1 exceeds correctk'),
    (lambda r: r[0].update(n=20), 'n = 20, but batches hold 10'),
    (lambda r: r[0].update(n='10'), "n = '10'"),
    (lambda r: r[0].update(batch=7), 'batch 7 is not one of 0..2'),
    (lambda r: r[0].update(batch=True), 'batch True'),
    (lambda r: r[2].update(batch=1), 'batch 1 is recorded twice'),
    (lambda r: r[0].update(ann1=11), 'ann1 = 11'),
    (lambda r: r[0].update(spikes_per_step=[[1.0]]), 'shape (2, 1)'),
    (lambda r: r[0].update(spikes_per_step=[[-1.0], [0.0]]), 'negative'),
    (lambda r: r[0].update(theta_sum=[['x'], [1.0]]), 'theta_sum is not'),
    (lambda r: r[0].update(theta_max=[[float('inf')], [1.0]]), 'infinite'),
    (lambda r: r[0].update(theta_max=[[{'a': 1}], [1.0]]), 'theta_max is'),
    (lambda r: r[0].pop('ann1') and None, 'missing ann1'),
])
def test_forged_progress_with_a_valid_chain_is_refused(tmp_path, change, why):
    # issue 18, 5: the chain has no key, so a recomputed chain is accepted;
    # every record must also be one this run could have written
    from snntb_adaptive.progress import Progress
    log_dir = str(tmp_path / 'log')
    p = Progress(log_dir, 'fp', False, 3, 10, 2, 1)
    for b in range(3):
        p.append(b, {'n': 10, 'correct1': [b, 9], 'correctk': [9, 9],
                     'spikes_per_step': [[1.0], [2.0]],
                     'theta_sum': [[7.0], [7.0]],
                     'theta_min': [[0.5], [0.5]], 'theta_max': [[1.0], [1.0]],
                     'ann1': 9, 'annk': 10}, seconds=0.5, rss_mb=1.0)
    p.close()
    Progress(log_dir, 'fp', True, 3, 10, 2, 1).close()     # as written: fine
    _forge(p.path, change)
    with pytest.raises(ConfigError, match='start the run afresh') as e:
        Progress(log_dir, 'fp', True, 3, 10, 2, 1)
    assert why in str(e.value), str(e.value)


def test_a_run_that_fails_before_its_first_batch_changes_nothing(tmp_path):
    # issue 18, 15: a failing run had moved the previous progress.jsonl aside
    # and left a header-only one
    from snntb_adaptive.progress import Progress
    log_dir, path = _progress_file(tmp_path)
    before = {n: open(os.path.join(log_dir, n)).read()
              for n in os.listdir(log_dir)}
    p = Progress(log_dir, 'other fp', False, 3)
    p.close()                               # e.g. the cluster was not there
    assert {n: open(os.path.join(log_dir, n)).read()
            for n in os.listdir(log_dir)} == before
    p = Progress(log_dir, 'other fp', False, 3)
    p.append(0, {'n': 1}, seconds=0.1)      # the first batch: now kept aside
    p.close()
    names = sorted(os.listdir(log_dir))
    assert len(names) == 2 and any(n.startswith('progress.2') for n in names)


def test_last_line_cut_short_is_dropped(tmp_path):
    from snntb_adaptive.progress import Progress
    log_dir, path = _progress_file(tmp_path)
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:-25])
    p = Progress(log_dir, 'fp', True, 3)
    p.close()
    assert sorted(p.done) == [0, 1]


# -- 7., 8., 9. one-line errors before long work ---------------------------

@pytest.mark.parametrize('value,msg', [
    ('1e9', "duration = '1e9': not an integer"),
    ('30.0', "duration = '30.0': not an integer"),
    ('1000000000', 'GiB of memory are available; lower duration'),
])
def test_duration_is_an_integer_that_fits_in_memory(wd, value, msg):
    path = _cfg(wd, [('duration = 30', 'duration = ' + value)])
    _fails(path, msg)


@pytest.mark.parametrize('text,msg', [
    ('duration = 5\n[paths]\n', 'line 1 (duration = 5) stands before the '
     'first [section]'),
    ('[simulation]\nduration = 5\n', "key 'duration' appears twice in "
     '[simulation]'),
])
def test_unreadable_ini_is_one_line(wd, text, msg):
    path = write_config(wd)
    body = open(path).read()
    with open(path, 'w') as f:
        f.write(text + body if text.startswith('duration') else body + text)
    if text.startswith('[simulation]'):   # duplicate key inside one section
        with open(path, 'w') as f:
            f.write(body.replace('[simulation]\n',
                                 '[simulation]\nduration = 5\n'))
    _fails(path, msg, 'config file')


def test_model_without_training_config(wd):
    import tf_keras
    path = os.path.join(wd, 'model.h5')
    m = tf_keras.models.load_model(path, compile=False)
    m.save(path)
    _fails(_cfg(wd), 'saved without its training configuration',
           "m.compile('sgd'")


def test_truncated_and_empty_data(wd):
    x = os.path.join(wd, 'data', 'x_test.npz')
    with open(x, 'rb') as f:
        data = f.read()
    with open(x, 'wb') as f:
        f.write(data[:len(data) // 2])
    _fails(_cfg(wd), 'x_test.npz is not a readable .npz file')
    np.savez_compressed(x, np.zeros((0, 8, 8, 1), np.float32))
    _fails(_cfg(wd), 'x_test.npz holds no samples')
    os.remove(x)
    os.mkdir(x)
    _fails(_cfg(wd), 'x_test.npz is a folder')


def test_unreadable_h5_attributes(wd):
    import h5py
    path = os.path.join(wd, 'model.h5')
    with h5py.File(path, 'a') as f:
        f.attrs['model_config'] = b'{not json'
    _fails(_cfg(wd), 'model_config) is not readable JSON')


def test_path_wd_is_a_file_and_paths_missing(wd, tmp_path):
    blocker = str(tmp_path / 'file')
    open(blocker, 'w').close()
    path = _cfg(wd, [('path_wd = ' + wd, 'path_wd = ' + blocker)])
    _fails(path, 'a file, not a folder')
    bare = str(tmp_path / 'bare.ini')
    with open(bare, 'w') as f:
        f.write('[conversion]\nspike_code = adaptive_threshold\n')
    _fails(bare, '[paths] filename_ann is not set')


# -- 10. Ctrl-C, SIGTERM, full disk ----------------------------------------

class _Model:
    def predict_on_batch(self, x):
        return np.zeros((len(x), 3))


def _run_loop(tmp_path, fail_at, how):
    from snntb_adaptive import pipeline
    from snntb_adaptive.metrics import RunRecorder
    from snntb_adaptive.progress import Progress
    progress = Progress(str(tmp_path / 'log'), 'fp', False, 4)
    x = np.zeros((8, 1), np.float32)
    y = np.eye(3)[[0] * 8]
    calls = []

    def simulate_batch(x_b, truth):
        calls.append(1)
        if len(calls) == fail_at:
            if how == 'sigint':
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        ones = np.ones((2, len(truth), 1), np.float32)
        return np.ones((2, len(truth), 3), np.int32), ones, ones, ones

    rec = RunRecorder([{'name': 'a', 'type': 'Dense', 'neurons': 3}], 2, 1,
                      3)
    try:
        pipeline.simulate(simulate_batch, lambda b: None, _Model(), x, y, 2,
                          8, rec, progress)
    finally:
        progress.close()


@pytest.mark.parametrize('how,word', [('sigint', 'interrupted'),
                                      ('sigterm', 'stopped by SIGTERM')])
def test_interrupt_says_what_is_saved(tmp_path, how, word):
    with pytest.raises(RunStopped) as e:
        _run_loop(tmp_path, 3, how)
    msg = str(e.value)
    assert msg.startswith(word) and '2 of 4 batches are saved' in msg
    assert '--resume' in msg and e.value.exit_status == 130
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.parametrize('entry', ['python', 'snntoolbox'])
def test_sigterm_during_calibration_is_one_line(tmp_path, entry):
    # issue 18, 11: SIGTERM while calibrating ended with exit 143 and no word
    wd = make_workdir(str(tmp_path / 'wd'), num_test=20, num_norm=300)
    path = _cfg(wd, extra='\n[adaptive_threshold]\npreset = calibrated\n'
                'calibration_steps = 400\ncalibration_samples = 300\n')
    cmd = [sys.executable, '-m', 'snntb_adaptive', '-t', path] \
        if entry == 'python' else [
            os.path.join(os.path.dirname(sys.executable), 'snntoolbox'), '-t',
            path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if 'calibrating for T = 400' in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert 'Traceback' not in err
    assert 'stopped by SIGTERM before the simulation began' in err, err
    assert not os.path.exists(os.path.join(wd, 'log', 'gui', 'test',
                                           'calibration.json'))


def test_full_disk_says_what_is_saved(tmp_path, monkeypatch):
    from snntb_adaptive import progress as progress_mod
    calls = []
    original = progress_mod.Progress.append

    def append(self, *args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return original(self, *args, **kw)
    monkeypatch.setattr(progress_mod.Progress, 'append', append)
    with pytest.raises(RunStopped) as e:
        _run_loop(tmp_path, 99, 'sigint')
    assert 'no space left on the device: 1 of 4 batches are saved' in \
        str(e.value)


# -- 11. one run per folder ------------------------------------------------

def test_second_run_on_the_same_folder_is_refused(wd):
    path = _cfg(wd)
    log_dir = os.path.join(wd, 'log', 'gui', 'test')
    os.makedirs(log_dir)
    code = ("import sys, time; from snntb_adaptive.progress import "
            "lock_run_folder; lock_run_folder(sys.argv[1]); print('held', "
            "flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, '-c', code, log_dir],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        _fails(path, 'is in use by process {}'.format(holder.pid),
               'runlabel')
    finally:
        holder.kill()
        holder.wait()
    setup(path)          # free again once the other run has ended


def test_two_labels_on_one_parsed_model_do_not_collide(wd):
    # issue 18, 13: two run labels on the same model and path_wd started
    # together crashed one run on the HDF5 lock of <model>_parsed.h5
    first = _cfg(wd, label='first', name='first.ini')
    second = _cfg(wd, label='second', name='second.ini')
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from conftest "
            "import setup; setup(sys.argv[1]); print('held', flush=True); "
            "import time; time.sleep(120)")
    holder = subprocess.Popen(
        [sys.executable, '-c', code, first, os.path.join(ROOT, 'tests')],
        stdout=subprocess.PIPE, text=True)
    try:
        for line in holder.stdout:          # setup prints its settings
            if line.strip() == 'held':
                break
        _fails(second, 'model file {}'.format(os.path.join(
            wd, 'model_parsed.h5')), 'in use by process {}'.format(
            holder.pid), 'filename_parsed_model')
        # with a parsed model of its own it runs beside the other
        setup(_cfg(wd, label='second', name='second.ini', replace=[(
            '[paths]\n', '[paths]\nfilename_parsed_model = second_parsed\n'
            'filename_snn = second_snn\n')]))
    finally:
        holder.kill()
        holder.wait()


def test_a_finished_run_frees_the_model_for_other_labels(wd):
    # a process that goes on after a run (a notebook, compare, the tests)
    # must not keep other labels off the model until it exits
    from snntb_adaptive.cli import main
    assert main(['-t', _cfg(wd, label='first', name='first.ini')]) == 0
    proc = subprocess.run(
        [sys.executable, '-m', 'snntb_adaptive', '-t',
         _cfg(wd, label='second', name='second.ini')],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]


# -- 12. resume follows contents, not locations ----------------------------

def test_resume_after_moving_the_folder(tmp_path, capsys):
    from snntb_adaptive.cli import main
    wd = make_workdir(str(tmp_path / 'first'), num_test=20, num_norm=20)
    assert main(['-t', _cfg(wd, label='moved')]) == 0
    moved = str(tmp_path / 'second')
    shutil.move(wd, moved)
    log = os.path.join(moved, 'log', 'gui', 'moved')
    os.remove(os.path.join(log, 'results.json'))
    capsys.readouterr()
    assert main(['-t', _cfg(moved, label='moved'), '--resume']) == 0
    assert 'resuming, 2 of 2 batches already done' in capsys.readouterr().out
    assert main(['-t', _cfg(moved, label='fresh'), '--resume']) == 0
    assert 'no progress file' in capsys.readouterr().out


# -- 14. Keras 3 loaded before SNN-TB --------------------------------------

def test_keras3_loaded_first_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k != 'TF_USE_LEGACY_KERAS'}
    code = ("import tensorflow as tf\nimport snntoolbox\n")
    p = subprocess.run([sys.executable, '-c', code], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert 'KerasVersionError' in last and 'TF_USE_LEGACY_KERAS' in last


def test_resume_after_a_cut_line_keeps_every_batch(tmp_path):
    """A resume drops a last line cut short and rewrites the file, so that
    batches appended after it, and a second resume, find every batch and
    every line of the file parses."""
    from snntb_adaptive.progress import Progress
    log_dir, path = _progress_file(tmp_path)
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:-25])                  # batch 2 was being written
    p = Progress(log_dir, 'fp', True, 4)
    assert sorted(p.done) == [0, 1]
    for b in (2, 3):
        p.append(b, dict(p.done[0], correct1=[b, 9]), seconds=0.5,
                 rss_mb=1.0)
    p.close()
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) == 5 and all(json.loads(line) for line in lines)
    p = Progress(log_dir, 'fp', True, 4)
    p.close()
    assert sorted(p.done) == [0, 1, 2, 3]
    assert p.done[3]['correct1'] == [3, 9]


def _nested_lambda_model(path, marker, functional):
    """A model whose Lambda sits inside a nested Sequential or Functional
    model."""
    from tensorflow import keras
    lam = keras.layers.Lambda(lambda t, m=marker: (open(m, 'w').close(),
                                                   t)[1])
    if functional:
        inner_in = keras.layers.Input((64,))
        inner = keras.Model(inner_in, lam(inner_in), name='inner')
    else:
        inner = keras.Sequential([keras.layers.Input((64,)), lam],
                                 name='inner')
    inp = keras.layers.Input((8, 8, 1))
    out = keras.layers.Dense(10)(inner(keras.layers.Flatten()(inp)))
    model = keras.Model(inp, out)
    model.compile('sgd', 'categorical_crossentropy')
    model.save(path)
    os.remove(marker)


@pytest.mark.parametrize('functional', [False, True])
@pytest.mark.parametrize('parse', [True, False])
def test_lambda_in_a_nested_model_is_refused(wd, functional, parse):
    """The check descends into nested models: with ``parse = False`` the
    parsed model gets only this check before Keras loads it."""
    from snntb_adaptive.cli import main
    marker = os.path.join(wd, 'marker_nested')
    for name in ('model.h5', 'model_parsed.h5'):
        _nested_lambda_model(os.path.join(wd, name), marker, functional)
    path = _cfg(wd, [('evaluate_ann = False',
                      'evaluate_ann = False\nparse = {}'.format(parse))])
    with pytest.raises(ConfigError, match='code would run when it is '
                       'loaded.*Lambda'):
        setup(path)
    assert main(['-t', path]) == 2
    assert not os.path.exists(marker)


# -- issue 18, 1: no code from the config file ------------------------------

def _code_value(marker):
    return "__import__('os').system('touch {}') and {{}}".format(marker)


@pytest.mark.parametrize('spike_code', ['adaptive_threshold',
                                        'temporal_mean_rate'])
@pytest.mark.parametrize('section, key', [
    ('output', 'plot_vars'), ('output', 'log_vars'),
    ('simulation', 'sample_idxs_to_test'),
    ('restrictions', 'spiking_layers')])
def test_config_values_never_run_as_code(wd, spike_code, section, key):
    """Every config value SNN-TB (or the plugin) reads as a Python value is
    read as a literal: code in it is refused in one line and never runs,
    whatever the spike code."""
    from snntb_adaptive.cli import main
    marker = os.path.join(wd, 'marker_eval')
    path = _cfg(wd, spike_code=spike_code)
    with open(path, 'a') as f:
        f.write('\n[{}]\n{} = {}\n'.format(section, key, _code_value(marker))
                if section not in ('output', 'simulation') else '')
    if section in ('output', 'simulation'):
        text = open(path).read().replace(
            '[{}]\n'.format(section),
            '[{}]\n{} = {}\n'.format(section, key, _code_value(marker)), 1)
        with open(path, 'w') as f:
            f.write(text)
    assert main(['-t', path]) == 2
    assert not os.path.exists(marker)


def test_snntoolbox_command_refuses_code_in_the_config(wd):
    """The same through SNN-TB's own ``snntoolbox -t`` (a subprocess)."""
    marker = os.path.join(wd, 'marker_eval_cmd')
    path = _cfg(wd, output='plot_vars = ' + _code_value(marker))
    exe = os.path.join(os.path.dirname(sys.executable), 'snntoolbox')
    p = subprocess.run([exe, '-t', path], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    assert not os.path.exists(marker)
    lines = [x for x in p.stderr.splitlines() if 'error' in x.lower()]
    assert any('snntb-adaptive: error:' in x for x in lines), p.stderr[-2000:]
    assert 'Traceback' not in p.stderr


def test_literal_values_are_read_as_before():
    from snntb_adaptive.compat import literal_value
    assert literal_value("{'spiketrains', 'v_mem'}") == {'spiketrains',
                                                         'v_mem'}
    assert literal_value(' [1, 2] ') == [1, 2]
    assert literal_value('{}') == {}
    # SNN-TB's own defaults join sets of simulators
    assert literal_value("{'nest'} | {'INI', 'brian2'}") == {'nest', 'INI',
                                                            'brian2'}
    assert literal_value('[1] + [2]') == [1, 2]
    for bad in ("__import__('os')", 'range(3)', '[' * 10000, '2 ** 99999',
                "{1} | __import__('os')", "'a' + 'b'"):
        with pytest.raises(ConfigError, match='not a literal.*nothing was '
                           'run'):
            literal_value(bad)


# -- issue 18, 10 and 17: pipes, and what the path messages say ------------

def test_a_pipe_for_a_file_is_refused_not_waited_on(wd):
    """A model or data path that is a FIFO blocked forever (opening a pipe
    waits for a writer): it is refused in one line before anything opens
    it."""
    model = os.path.join(wd, 'model.h5')
    os.remove(model)
    os.mkfifo(model)
    _fails(_cfg(wd), 'model file', 'not a regular file')
    os.remove(model)
    shutil.copy(os.path.join(ROOT, 'models', 'digits_cnn.h5'), model)
    data = os.path.join(wd, 'data', 'x_norm.npz')
    os.remove(data)
    os.mkfifo(data)
    _fails(_cfg(wd), 'data file', 'not a regular file')


def test_path_messages_say_what_to_write(wd, tmp_path, monkeypatch):
    # filename_ann with the extension that SNN-TB adds itself
    _fails(_cfg(wd, ann='model.h5'), 'drop the extension',
           'filename_ann = model')
    # a relative path_wd is relative to where the command runs
    monkeypatch.chdir(tmp_path)
    path = _cfg(wd, [('path_wd = ' + wd, 'path_wd = no_such_folder')])
    _fails(path, 'path_wd = no_such_folder', 'relative path is taken from '
           'the folder the command runs in, ' + str(tmp_path))


# -- issue 18, 8: counts and keys that wrote wrong data ---------------------

@pytest.mark.parametrize('argv, message', [
    (['compare', 'CFG', '--steps', '0,-5'], '--steps 0,-5: give time steps '
     'from 1 on'),
    (['prepare-data', 'digits', '--out', 'OUT', '--num-test', '-3'],
     "--num-test: '-3': give a whole number >= 1"),
    (['prepare-data', 'digits', '--out', 'OUT', '--num-test', '0'],
     "--num-test: '0': give a whole number >= 1"),
    (['prepare-data', 'digits', '--out', 'OUT', '--num-norm', '-5'],
     "--num-norm: '-5'"),
    (['prepare-data', 'digits', '--out', 'OUT', '--norm-every', '0'],
     "--norm-every: '0'"),
    (['prepare-data', 'npz', '--out', 'OUT', '--file', 'NPZ', '--y-key',
      'x_test'], 'the labels have shape (40, 8, 8, 1)'),
    (['prepare-data', 'npz', '--out', 'OUT', '--file', 'NPZ',
      '--num-classes', '3'], '--num-classes 3: the labels go up to 9'),
])
def test_bad_counts_and_keys_fail_in_one_line(wd, tmp_path, capsys, argv,
                                              message):
    from snntb_adaptive import data
    from snntb_adaptive.cli import main
    x_tr, y_tr, x_te, y_te = data.load_digits()
    npz = str(tmp_path / 'src.npz')
    np.savez(npz, x_test=x_te[:40], y_test=y_te[:40], x_train=x_tr[:40])
    out = str(tmp_path / 'out')
    argv = [{'CFG': _cfg(wd), 'OUT': out, 'NPZ': npz}.get(a, a)
            for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:          # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(out)


def test_fewer_images_than_asked_are_said(wd, caplog):
    """num_to_test above the test set: the run simulates what there is,
    says so, and results.json's num_samples holds the number run."""
    from snntb_adaptive.cli import main
    path = _cfg(wd, [('num_to_test = 20', 'num_to_test = 500')])
    assert main(['-t', path]) == 0
    assert 'num_to_test = 500, but 20 images are simulated' in caplog.text
    with open(os.path.join(wd, 'log', 'gui', 'test', 'results.json')) as f:
        res = json.load(f)
    assert res['num_samples'] == 20 and res['settings']['num_to_test'] == 500


# -- issue 18, 14 and 12: [DEFAULT], a byte-order mark, '%' ----------------

def test_default_section_and_byte_order_mark_are_read(wd, tmp_path):
    """A valid [DEFAULT] section (%(root)s references) was refused as
    unknown keys; a UTF-8 byte-order mark gave a misleading message. Both
    run, with -t and through a comparison's copies of the config."""
    from snntb_adaptive.cli import main
    path = _cfg(wd, [('path_wd = ' + wd, 'path_wd = %(root)s')])
    text = open(path).read()
    with open(path, 'w', encoding='utf-8-sig') as f:
        f.write('[DEFAULT]\nroot = {}\n\n'.format(wd) + text)
    assert open(path, 'rb').read(3) == b'\xef\xbb\xbf'
    assert main(['-t', path]) == 0
    assert main(['compare', path, '--settings', 'paper', '--out',
                 str(tmp_path / 'cmp'), '--raster-layer', 'none']) == 0


@pytest.mark.parametrize('line', ['runlabel = 99.9%', 'runlabel = a%(b)s'])
def test_percent_in_a_value_is_one_line(wd, line, capsys):
    from snntb_adaptive.cli import main
    path = _cfg(wd, [('runlabel = test', line)])
    assert main(['-t', path]) == 2
    err = capsys.readouterr().err
    assert 'write %% for a percent sign' in err and '[paths] runlabel' in err


def test_the_lock_file_goes_when_the_run_ends(wd):
    """Issue 18, 19: the .snntb_adaptive.lock file stayed after a run. The
    process that ends removes it (a run killed with SIGKILL leaves it, and
    the next run takes it over)."""
    log_dir = os.path.join(wd, 'log', 'gui', 'test')
    os.makedirs(log_dir)
    lock = os.path.join(log_dir, '.snntb_adaptive.lock')
    code = ("import sys; from snntb_adaptive.progress import "
            "lock_run_folder; lock_run_folder(sys.argv[1]); "
            "import os; print(os.path.exists(sys.argv[2]))")
    p = subprocess.run([sys.executable, '-c', code, log_dir, lock],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == 'True' and not os.path.exists(lock)
    with open(lock, 'w') as f:           # left by a run killed with -9
        f.write('process 1')
    p = subprocess.run([sys.executable, '-c', code, log_dir, lock],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == 'True' and not os.path.exists(lock)


# -- issue 18, 7: BatchNormalization behind a nonlinearity ----------------

def _bn_model(path, order, functional=False):
    from tensorflow import keras
    L = keras.layers
    inp = keras.Input((8, 8, 1))
    x = inp
    for kind in order:
        x = {'conv_relu': lambda: L.Conv2D(4, 3, activation='relu'),
             'conv': lambda: L.Conv2D(4, 3),
             'relu': lambda: L.Activation('relu'),
             'bn': lambda: L.BatchNormalization(),
             'pool': lambda: L.AveragePooling2D(),
             'maxpool': lambda: L.MaxPooling2D(),
             'drop': lambda: L.Dropout(0.1)}[kind]()(x)
    x = L.Flatten()(x)
    out = L.Dense(10)(x)
    model = keras.Model(inp, out) if functional else keras.Sequential(
        [keras.Input((8, 8, 1))] + [lay for lay in keras.Model(
            inp, out).layers[1:]])
    model.compile('sgd', 'categorical_crossentropy')
    model.save(path)


@pytest.mark.parametrize('functional', [False, True])
@pytest.mark.parametrize('order,why', [
    (['conv_relu', 'bn'], "after the relu activation of"),
    (['conv', 'relu', 'bn'], "a nonlinearity"),
    (['conv', 'relu', 'drop', 'bn'], "a nonlinearity"),
    (['conv', 'maxpool', 'bn'], "a nonlinearity"),
    (['bn', 'conv'], "with no Conv or Dense layer before it"),
    (['conv', 'bn', 'relu'], None),
    (['conv', 'drop', 'pool', 'bn', 'relu'], None),
])
def test_batchnorm_behind_a_nonlinearity_is_refused(tmp_path, order, why,
                                                    functional):
    from snntb_adaptive.checks import check_model_file
    path = str(tmp_path / 'm.h5')
    _bn_model(path, order, functional)
    if why is None:
        check_model_file(path)
        return
    with pytest.raises(ConfigError, match='BatchNormalization layer') as e:
        check_model_file(path)
    assert why in str(e.value) and 'retrain' in str(e.value)


# -- issue 18, 12: model files with forged or damaged descriptions ---------

def _with_attr(src, dst, key, value):
    import h5py
    shutil.copy(src, dst)
    with h5py.File(dst, 'a') as f:
        f.attrs[key] = value
    return dst


@pytest.mark.parametrize('key,value,why', [
    ('model_config', '[1, 2]', 'not a Keras model description'),
    ('model_config', '{"class_name": "Functional", "config": {"layers": '
     '[1]}}', 'layer 0 of its architecture'),
    ('model_config', '{"class_name": "Functional", "config": {}}',
     'lists no layers'),
    ('model_config', '[' * 100000 + ']' * 100000, 'nested too deeply'),
    ('model_config', '{"class_name": "Functional", "config": {"layers": '
     '[{"class_name": "Dense", "module": "os", "config": {"name": "d"}}]}}',
     "names the module 'os'"),
    ('training_config', 'junk', 'training configuration is not readable'),
    ('training_config', '{"nested": ' * 5000 + '1' + '}' * 5000,
     'training configuration is not readable'),
])
def test_forged_model_descriptions_are_one_line(tmp_path, key, value, why):
    from conftest import DIGITS_MODEL
    from snntb_adaptive.checks import check_model_file
    path = _with_attr(DIGITS_MODEL, str(tmp_path / 'm.h5'), key, value)
    with pytest.raises(ConfigError) as e:
        check_model_file(path)
    assert why in str(e.value), str(e.value)


# -- issue 18, 12: the other tracebacks, one line each ---------------------

@pytest.mark.parametrize('entry', ['python', 'snntoolbox'])
@pytest.mark.parametrize('what', ['empty', 'folder', 'no_paths'])
def test_empty_or_folder_config_is_one_line(tmp_path, entry, what):
    path = tmp_path / 'c.ini'
    if what == 'folder':
        path.mkdir()
    elif what == 'empty':
        path.write_text('')
    else:
        path.write_text('[simulation]\nduration = 5\n')
    cmd = [sys.executable, '-m', 'snntb_adaptive', '-t', str(path)] \
        if entry == 'python' else [
            os.path.join(os.path.dirname(sys.executable), 'snntoolbox'), '-t',
            str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = [line for line in proc.stderr.splitlines()
             if line.startswith('snntb-adaptive: error')]
    assert len(lines) == 1, proc.stderr
    assert {'folder': 'is a folder', 'empty': 'holds no settings',
            'no_paths': "SNN-TB's check of the config"}[what] in lines[0]


@pytest.mark.parametrize('value', ['1e308', 'inf', 'nan', '1e-300'])
def test_v_thresh_far_from_float32_is_refused(wd, value):
    path = _cfg(wd, extra='\n[cell]\nv_thresh = {}\n'.format(value))
    _fails(path, "[cell] v_thresh = '{}'".format(value), 'from 1e-6 to 1e6')


def test_read_only_path_wd_is_found_before_any_work(wd, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, 'access', lambda p, mode, **kw: False if (
        os.path.abspath(p) == os.path.abspath(wd) and mode == os.W_OK)
        else real(p, mode, **kw))
    _fails(_cfg(wd), 'model_parsed.h5 cannot be written',
           'is read-only', 'writable folder')
    assert not os.path.exists(os.path.join(wd, 'log'))


def _forged_npz(path, shape):
    import zipfile
    with zipfile.ZipFile(path, 'w') as z:
        with z.open('arr_0.npy', 'w') as member:
            np.lib.format.write_array_header_1_0(member, {
                'descr': '<f4', 'fortran_order': False, 'shape': shape})


def test_npz_header_claiming_a_billion_images_is_one_line(wd):
    _forged_npz(os.path.join(wd, 'data', 'x_test.npz'),
                (10 ** 9, 8, 8, 1))
    _fails(_cfg(wd), 'x_test.npz: its header says', 'available memory')


def test_nested_json_in_files_of_earlier_runs_is_one_line(wd, tmp_path):
    from snntb_adaptive.compat import read_json_file
    from snntb_adaptive.progress import read_progress
    deep = '[' * 100000 + ']' * 100000
    path = tmp_path / 'deep.json'
    path.write_text(deep)
    with pytest.raises(CorruptFileError, match='is corrupt'):
        read_json_file(str(path), 'results file')
    prog = tmp_path / 'progress.jsonl'
    prog.write_text(deep + '\n')
    with pytest.raises(ConfigError, match='damaged at line 1'):
        read_progress(str(prog))


@pytest.mark.parametrize('content', ['x,y\n1,abc\n', '1,2,3\n', '1,120\n',
                                     ''])
def test_bad_reference_csv_is_found_before_the_comparison(wd, tmp_path,
                                                          content, capsys):
    from snntb_adaptive.cli import main
    ref = tmp_path / 'ref.csv'
    ref.write_text(content)
    out = tmp_path / 'out'
    assert main(['compare', _cfg(wd), '--settings', 'paper', '--out',
                 str(out), '--reference', str(ref)]) == 2
    assert '--reference {}'.format(ref) in capsys.readouterr().err
    assert not out.exists() and not os.path.exists(
        os.path.join(wd, 'log', 'gui', 'test', 'normalization'))


@pytest.fixture(scope='module')
def small_comparison(tmp_path_factory):
    from snntb_adaptive.cli import main
    wd = make_workdir(str(tmp_path_factory.mktemp('plotwd')), num_test=20,
                      num_norm=20)
    out = str(tmp_path_factory.mktemp('cmp') / 'out')
    assert main(['compare', _cfg(wd, duration=8), '--settings', 'paper',
                 '--steps', '4', '--out', out, '--raster-layer',
                 'none']) == 0
    return out


@pytest.mark.parametrize('damage,why', [
    (lambda r: r.__setitem__('accuracy_top1_per_step', 'x'),
     'accuracy_top1_per_step is not'),
    (lambda r: r.__setitem__('accuracy_top1_per_step', [2.0]),
     'accuracy_top1_per_step is not'),
    (lambda r: r.pop('ann_accuracy_top1'), 'ann_accuracy_top1 is not'),
    (lambda r: r.__setitem__('firing_rate_per_layer', {'a': 'b'}),
     'firing_rate_per_layer'),
    (lambda r: r.__setitem__('threshold_trace', {'a': {'mean': [1]}}),
     'threshold_trace'),
    (lambda r: r.__setitem__('num_samples', None), 'num_samples'),
    ('summary', 'is not a comparison'),
    ('summary_label', 'is not a folder name'),
    ('nested', 'is corrupt'),
])
def test_plot_on_damaged_inputs_is_one_line(small_comparison, tmp_path,
                                            damage, why, capsys):
    from snntb_adaptive.cli import main
    out = str(tmp_path / 'copy')
    shutil.copytree(small_comparison, out)
    res_path = os.path.join(out, 'runs', 'paper', 'results.json')
    if damage == 'summary':
        with open(os.path.join(out, 'summary.csv'), 'w') as f:
            f.write('what,acc@x\n1,2\n')
    elif damage == 'summary_label':
        with open(os.path.join(out, 'summary.csv'), 'w') as f:
            f.write('setting,acc@4\n../../x,2\n')
    elif damage == 'nested':
        with open(res_path, 'w') as f:
            f.write('[' * 100000 + ']' * 100000)
    else:
        with open(res_path) as f:
            res = json.load(f)
        damage(res)
        with open(res_path, 'w') as f:
            json.dump(res, f)
    assert main(['plot', out]) == 2
    err = capsys.readouterr().err
    assert why in err and 'Traceback' not in err, err
