"""``snntoolbox -t`` end to end in a subprocess on the digits model, and the
``python -m snntb_adaptive -t`` fallback without the ``.pth`` file."""

import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from conftest import ROOT, make_workdir, write_config

T = 60
RESULT_KEYS = {
    'snntb_adaptive_version', 'created', 'wall_seconds', 'settings', 'layers',
    'num_samples', 'top_k', 'accuracy_top1_per_step',
    'accuracy_topk_per_step', 'final_accuracy_top1', 'final_accuracy_topk',
    'ann_accuracy_top1', 'ann_accuracy_topk', 'convergence_step',
    'convergence_tolerance', 'firing_rate', 'firing_rate_per_layer',
    'spikes_per_layer', 'spikes_per_step_per_layer', 'threshold_trace',
    'synaptic_operations_per_image', 'synaptic_operations_per_layer',
    'synaptic_operations_per_step', 'ann_macs_per_image',
    'ann_macs_per_layer'}
SETTING_KEYS = {'preset', 'update', 'scope', 'eta_scale', 'readout',
                'eta_per_layer', 'v_max', 'duration', 'dt', 'batch_size',
                'num_to_test', 'num_samples', 'top_k', 'model_file',
                'normalize', 'percentile', 'reset_between_nth_sample',
                'loop', 'kernel', 'synapses', 'precision', 'executor',
                'phase1'}


@pytest.fixture(scope='module')
def e2e_dir(tmp_path_factory):
    return make_workdir(str(tmp_path_factory.mktemp('e2e')), num_test=40)


def _run(cmd, cwd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def _check_results(path, preset, update, scope):
    with open(path) as f:
        res = json.load(f)
    assert set(res) == RESULT_KEYS
    s = res['settings']
    assert set(s) == SETTING_KEYS
    assert (s['preset'], s['update'], s['scope']) == (preset, update, scope)
    assert s['duration'] == T and s['num_samples'] == 40
    assert s['eta_per_layer'] == [0.7] * 6
    assert (s['loop'], s['kernel']) == ('graph', 'fused')
    assert s['model_file'].endswith('model.h5')
    acc = np.array(res['accuracy_top1_per_step'])
    assert acc.shape == (T,)
    assert res['final_accuracy_top1'] == acc[-1] >= 0.8
    assert np.all(np.array(res['accuracy_topk_per_step']) >= acc)
    assert 1 <= res['convergence_step'] <= T
    t_c = res['convergence_step']
    assert abs(acc[t_c - 1] - acc[-1]) / acc[-1] < 0.02
    assert 0.8 <= res['ann_accuracy_top1'] <= 1
    names = [lay['name'] for lay in res['layers']]
    assert len(names) == 6
    rates = res['firing_rate_per_layer']
    assert all(0 < rates[n] <= 1 for n in names)
    neurons = sum(lay['neurons'] for lay in res['layers'])
    total = sum(res['spikes_per_layer'].values())
    assert res['firing_rate'] == pytest.approx(total / (neurons * T * 40))
    for n in names:
        assert sum(res['spikes_per_step_per_layer'][n]) == \
            res['spikes_per_layer'][n]
        tr = res['threshold_trace'][n]
        mean, lo, hi = map(np.array, (tr['mean'], tr['min'], tr['max']))
        assert mean.shape == (T,)
        assert np.all(lo <= mean + 1e-6) and np.all(mean <= hi + 1e-6)
        if update == 'clamp':
            assert lo.min() >= np.float32(0.7) - 1e-7 and hi.max() <= 1
            assert np.all(np.diff(mean) >= -1e-7)
        if update == 'none':
            assert np.all(lo == np.float32(0.7)) and np.all(hi == lo)
    return res


def test_snntoolbox_command_end_to_end(e2e_dir):
    path = write_config(e2e_dir, name='paper.ini', label='paper',
                        duration=T, num_to_test=40, batch_size=20,
                        normalize=True)
    exe = os.path.join(os.path.dirname(sys.executable), 'snntoolbox')
    p = _run([exe, '-t', path], cwd=ROOT)
    assert 'effective [adaptive_threshold] settings' in p.stdout
    assert 'Phase 1 (weight_norm): initial thresholds' in p.stdout
    log = os.path.join(e2e_dir, 'log', 'gui', 'paper')
    res = _check_results(os.path.join(log, 'results.json'), 'paper', 'clamp',
                         'sample')
    with open(os.path.join(log, 'phase1_thresholds.json')) as f:
        phase1 = json.load(f)
    assert [r['name'] for r in phase1['layers']] == \
        [lay['name'] for lay in res['layers']]
    lam = [r['lambda'] for r in phase1['layers']]
    assert lam[1] is None and lam[3] is None      # pooling: no parameters
    assert all(v > 0 for i, v in enumerate(lam) if i not in (1, 3))
    assert all(r['v_init'] == pytest.approx(0.7) for r in phase1['layers'])


def test_module_fallback_without_pth(e2e_dir):
    """``python -S`` skips site-packages' .pth files; the fallback entry point
    registers the plugin itself."""
    path = write_config(e2e_dir, name='executed.ini', label='executed',
                        duration=T, num_to_test=40, batch_size=40,
                        extra='\n[adaptive_threshold]\npreset = '
                        'authors_executed\n')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([ROOT, sysconfig.get_paths()[
        'purelib']])
    check = subprocess.run(
        [sys.executable, '-S', '-c', 'import sys; print(any("Snntb" in '
         'type(f).__name__ for f in sys.meta_path))'],
        capture_output=True, text=True, env=env)
    assert check.stdout.strip() == 'False'
    _run([sys.executable, '-S', '-m', 'snntb_adaptive', '-t', path],
         cwd=ROOT, env=env)
    _check_results(os.path.join(e2e_dir, 'log', 'gui', 'executed',
                                'results.json'), 'authors_executed', 'none',
                   'batch')
