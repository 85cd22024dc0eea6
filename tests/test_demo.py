"""The offline demo command: stock SNN-TB and every preset, one table."""

import json
import os

from snntb_adaptive.cli import main


def test_demo_runs_every_setting(tmp_path, capsys):
    out = tmp_path / 'demo'
    assert main(['demo', '--out', str(out), '--duration', '30',
                 '--num-to-test', '80', '--batch-size', '40']) == 0
    printed = capsys.readouterr().out
    assert 'agree at every listed step: yes' in printed
    table = (out / 'summary.md').read_text()
    for label in ('stock SNN-TB', 'paper (clamp, per sample)',
                  'authors_code', 'authors_executed (constant',
                  'paper_window'):
        assert label in table
    runs = sorted(os.listdir(out / 'log'))
    assert (out / 'log' / 'normalisation' / 'phase1_thresholds.json').exists()
    runs.remove('normalisation')
    assert runs == sorted(['stock', 'authors_executed_eta_scale=1', 'paper',
                           'authors_code', 'authors_executed',
                           'paper_window'])
    for run in runs:
        with open(out / 'log' / run / 'results.json') as f:
            res = json.load(f)
        assert res['num_samples'] == 80
        assert len(res['accuracy_top1_per_step']) == 30
    with open(out / 'log' / 'stock' / 'results.json') as f:
        stock = json.load(f)
    with open(out / 'log' / 'authors_executed_eta_scale=1' /
              'results.json') as f:
        same = json.load(f)
    assert stock['accuracy_top1_per_step'] == same['accuracy_top1_per_step']
    assert stock['firing_rate'] is None and same['firing_rate'] > 0
