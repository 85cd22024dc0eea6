"""Runs spread over Ray (executor = ray): a local Ray instance with 2 CPUs
and a separate head process joined by address give the results of a local
run; a killed worker costs only a retry; resume crosses executors; compare
runs every setting's batches on the cluster."""

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, make_workdir, write_config

pytest.importorskip('ray')

RUN_FIELDS = ('created', 'wall_seconds')


def _config(wd, label, executor='local', address='', more='', **kw):
    values = dict(duration=40, num_to_test=100, batch_size=10)
    values.update(kw)
    extra = ('\n[adaptive_threshold]\nexecutor = {}\nray_address = {}\n'
             'workers = 2\n'.format(executor, address)) + more
    return write_config(wd, name=label + '.ini', label=label, extra=extra,
                        **values)


def _results(wd, label):
    with open(os.path.join(wd, 'log', 'gui', label, 'results.json')) as f:
        res = json.load(f)
    for key in RUN_FIELDS:
        res.pop(key)
    return res


def _same(a, b):
    """Equal apart from the executor field."""
    a, b = copy.deepcopy(a), copy.deepcopy(b)
    assert a['settings'].pop('executor') != b['settings'].pop('executor')
    assert a == b


@pytest.fixture(scope='module')
def wd(tmp_path_factory):
    return make_workdir(str(tmp_path_factory.mktemp('ray')), num_test=100,
                        num_norm=100)


@pytest.fixture(scope='module')
def local(wd):
    from snntb_adaptive.cli import main
    assert main(['-t', _config(wd, 'local')]) == 0
    return _results(wd, 'local')


def test_local_ray_instance_gives_the_local_results(wd, local, capsys):
    from snntb_adaptive.cli import main
    assert main(['-t', _config(wd, 'ray_local', 'ray')]) == 0
    out = capsys.readouterr().out
    assert 'ray: 10 batches on 2 workers x 1 threads' in out
    assert 'ray: 10/10 batches' in out and 'images/s' in out
    _same(_results(wd, 'ray_local'), local)
    # progress.jsonl in batch order, as a local run writes it
    with open(os.path.join(wd, 'log', 'gui', 'ray_local',
                           'progress.jsonl')) as f:
        batches = [json.loads(line)['batch'] for line in f.readlines()[1:]]
    assert batches == list(range(10))


def test_event_driven_synapses_on_ray_give_the_local_results(wd, local):
    """kernel = sparse in Ray's workers: the results of the local run with
    the dense synapses (the digits CNN: the same spikes)."""
    from snntb_adaptive.cli import main
    assert main(['-t', _config(wd, 'ray_sparse', 'ray',
                               more='kernel = sparse\n')]) == 0
    res = _results(wd, 'ray_sparse')
    assert res['settings']['kernel'] == 'sparse'
    assert set(res['settings']['synapses'][1:]) == {'sparse'}
    for key in ('kernel', 'synapses'):
        res['settings'][key] = local['settings'][key]
    _same(res, local)


def _truncate_progress(wd, label, keep):
    path = os.path.join(wd, 'log', 'gui', label, 'progress.jsonl')
    with open(path) as f:
        lines = f.readlines()
    with open(path, 'w') as f:
        f.writelines(lines[:1 + keep])
    os.remove(os.path.join(wd, 'log', 'gui', label, 'results.json'))


@pytest.mark.parametrize('first,then', [('local', 'ray'), ('ray', 'local')])
def test_resume_crosses_executors(wd, local, capsys, first, then):
    from snntb_adaptive.cli import main
    label = 'cross_' + first
    assert main(['-t', _config(wd, label, first)]) == 0
    _truncate_progress(wd, label, 4)
    capsys.readouterr()
    assert main(['-t', _config(wd, label, first), '--resume',
                 '--executor', then]) == 0
    assert 'resuming, 4 of 10 batches already done' in capsys.readouterr().out
    res = _results(wd, label)
    assert res['settings']['executor'] == then
    res['settings']['executor'] = 'x'
    _same(res, local)


def test_killed_worker_costs_only_a_retry(wd, local):
    # long enough (10 batches at T = 1000) that a worker is still busy when
    # the first batch is recorded
    cfg = _config(wd, 'killed_worker', 'ray', duration=1000, num_to_test=100)
    progress = os.path.join(wd, 'log', 'gui', 'killed_worker',
                            'progress.jsonl')
    proc = subprocess.Popen([sys.executable, '-m', 'snntb_adaptive', '-t',
                             cfg], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and killed is None:
        if os.path.exists(progress):
            with open(progress) as f:
                if f.read().count('\n') >= 2:     # header + 1 batch
                    pids = subprocess.run(
                        ['pgrep', '-f', 'SimulationWorker'],
                        capture_output=True, text=True).stdout.split()
                    if pids:
                        killed = int(pids[0])
                        os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=600)
    assert killed is not None, 'no worker to kill: ' + out[-2000:]
    assert proc.returncode == 0, out[-3000:]
    with open(progress) as f:
        lines = f.read().count('\n')
    assert lines == 11            # header + every batch once
    assert 'restarted 1' in out
    # the same run locally
    from snntb_adaptive.cli import main
    assert main(['-t', _config(wd, 'killed_local', duration=1000)]) == 0
    _same(_results(wd, 'killed_worker'), _results(wd, 'killed_local'))


def test_driver_killed_then_resumed(wd, capsys):
    """kill -9 of the driver of a Ray run: --resume continues from its
    progress file and gives the uninterrupted results."""
    from snntb_adaptive.cli import main
    cfg = _config(wd, 'killed_driver', 'ray', duration=1000)
    progress = os.path.join(wd, 'log', 'gui', 'killed_driver',
                            'progress.jsonl')
    proc = subprocess.Popen([sys.executable, '-m', 'snntb_adaptive', '-t',
                             cfg], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(progress):
            with open(progress) as f:
                if f.read().count('\n') >= 2:    # header + 1 batch
                    break
        time.sleep(0.02)
    assert proc.poll() is None, 'the run ended before it could be killed'
    proc.kill()
    proc.wait()
    with open(progress) as f:
        done = f.read().count('\n') - 1
    assert 1 <= done < 10
    capsys.readouterr()
    assert main(['-t', cfg, '--resume']) == 0
    assert 'resuming, {} of 10 batches already done'.format(done) in \
        capsys.readouterr().out
    assert main(['-t', _config(wd, 'driver_local', duration=1000)]) == 0
    _same(_results(wd, 'killed_driver'), _results(wd, 'driver_local'))


def test_separate_head_joined_by_address(wd, local):
    ray_bin = os.path.join(os.path.dirname(sys.executable), 'ray')
    port = 6391
    start = subprocess.run(
        [ray_bin, 'start', '--head', '--port', str(port), '--num-cpus', '2',
         '--node-ip-address', '127.0.0.1', '--include-dashboard', 'false',
         '--disable-usage-stats'], capture_output=True, text=True,
        timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        from snntb_adaptive.cli import main
        assert main(['-t', _config(wd, 'ray_head', 'ray',
                                   '127.0.0.1:{}'.format(port))]) == 0
        _same(_results(wd, 'ray_head'), local)
    finally:
        subprocess.run([ray_bin, 'stop', '--force'], capture_output=True,
                       timeout=180)


def test_compare_on_ray_equals_compare_here(wd, tmp_path):
    from snntb_adaptive.cli import main
    cfg = _config(wd, 'cmp', duration=30, num_to_test=40)
    out = {}
    for executor in ('local', 'ray'):
        out[executor] = str(tmp_path / executor)
        assert main(['compare', cfg, '--settings',
                     'stock,paper,authors_executed,spike_norm,' + CALIBRATED,
                     '--out',
                     out[executor], '--raster-layer', 'none',
                     '--executor', executor]) == 0
    with open(os.path.join(out['local'], 'summary.csv')) as f:
        here = f.read()
    with open(os.path.join(out['ray'], 'summary.csv')) as f:
        assert f.read() == here
    for setting in ('stock', 'paper', 'authors_executed', 'spike_norm',
                    CALIBRATED.replace(':', '_')):
        a, b = (_load(out[k], setting) for k in ('local', 'ray'))
        for res in (a, b):   # where and when it was calibrated
            res['settings'].pop('calibration_file', None)
        if setting == 'stock':
            a['settings'].pop('executor', None)
            b['settings'].pop('executor', None)
            assert a == b
        else:
            _same(a, b)


CALIBRATED = 'calibrated:calibration_steps=8:calibration_samples=50'


def _load(out, setting):
    with open(os.path.join(out, 'runs', setting, 'results.json')) as f:
        res = json.load(f)
    for key in RUN_FIELDS:
        res.pop(key)
    return res


def test_ray_missing_is_a_clear_error(monkeypatch):
    import builtins
    from snntb_adaptive import executors
    from snntb_adaptive.errors import ConfigError
    real_import = builtins.__import__

    def no_ray(name, *args, **kw):
        if name == 'ray':
            raise ImportError('no ray here')
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, '__import__', no_ray)
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        executors.import_ray()


def test_execution_keys_are_validated():
    from snntb_adaptive.config import settings_from_mapping
    from snntb_adaptive.errors import ConfigError
    with pytest.raises(ConfigError, match="executor = 'spark'"):
        settings_from_mapping({'executor': 'spark'})
    with pytest.raises(ConfigError, match="workers = '-1'"):
        settings_from_mapping({'workers': '-1'})
    with pytest.raises(ConfigError, match="threads_per_worker = '0'"):
        settings_from_mapping({'threads_per_worker': '0'})
    with pytest.raises(ConfigError, match="ray_timeout = '0'"):
        settings_from_mapping({'ray_timeout': '0'})


def _closed_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize('how', ['config', 'flag', 'compare'])
def test_unreachable_cluster_is_one_line_before_any_work(wd, how, capsys):
    # issue 18, 9: ray_address = 127.0.0.1:1 hung ~14 minutes after parsing
    # and normalising; now checked first, naming where the address came from
    from snntb_adaptive.cli import main
    address = '127.0.0.1:{}'.format(_closed_port())
    label = 'unreachable_' + how
    if how == 'config':
        cfg = _config(wd, label, 'ray', address)
        args = ['-t', cfg]
        source = '[adaptive_threshold] ray_address = ' + address
    else:
        cfg = _config(wd, label)
        args = (['-t', cfg] if how == 'flag' else
                ['compare', cfg, '--settings', 'paper', '--out',
                 os.path.join(wd, label)]) + [
            '--executor', 'ray', '--ray-address', address]
        source = '--ray-address = ' + address
    t0 = time.time()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert source in err and 'no Ray cluster answers' in err, err
    assert time.time() - t0 < 60
    log_dir = os.path.join(wd, 'log', 'gui', label)
    assert not os.path.exists(os.path.join(log_dir, 'progress.jsonl'))
    assert not os.path.exists(os.path.join(log_dir, 'normalization'))


def test_cluster_check_waits_at_most_ray_timeout():
    import socket
    from snntb_adaptive.config import Execution
    from snntb_adaptive.errors import ConfigError
    from snntb_adaptive.executors import check_cluster
    # a listening socket whose backlog is full does not complete a
    # connection: stands in for a host that does not answer
    srv = socket.socket()
    srv.bind(('127.0.0.1', 0))
    srv.listen(0)
    fillers = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(srv.getsockname())
            fillers.append(c)
        address = '127.0.0.1:{}'.format(srv.getsockname()[1])
        t0 = time.time()
        try:
            check_cluster(Execution('ray', address, ray_timeout=1.0))
        except ConfigError as e:
            assert 'within 1 s' in str(e)
        assert time.time() - t0 < 10
        with pytest.raises(ConfigError, match='not auto or host:port'):
            check_cluster(Execution('ray', 'nonsense'))
    finally:
        for c in fillers:
            c.close()
        srv.close()
