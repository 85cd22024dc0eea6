"""The compare command and the data preparation command, on small inputs."""

import csv
import json
import os

import numpy as np
import pytest

from conftest import ROOT, write_config
from snntb_adaptive.cli import main


def test_compare_table_and_plots(digits_dir, tmp_path, capsys):
    cfg = write_config(digits_dir, name='cmp.ini', label='cmp', duration=40,
                       num_to_test=20, batch_size=10)
    ref = tmp_path / 'ref.csv'
    ref.write_text('# t,mean_top1_acc_percent\n' + ''.join(
        '{},{:.3f}\n'.format(t, min(95, 3 * t)) for t in range(1, 41)))
    out = tmp_path / 'cmp'
    assert main(['compare', cfg, '--settings', 'stock,paper,authors_code',
                 '--eta', '0.6,0.8', '--steps', '10,20', '--out', str(out),
                 '--reference', str(ref), '--raster-layer', '2']) == 0
    with open(out / 'summary.csv') as f:
        rows = list(csv.DictReader(f))
    names = [r['setting'] for r in rows]
    assert names == ['stock', 'paper eta_scale=0.6', 'paper eta_scale=0.8',
                     'authors_code eta_scale=0.6',
                     'authors_code eta_scale=0.8']
    assert list(rows[0]) == ['setting', 'acc@10', 'acc@20', 'acc@40', 'final',
                             'ANN', 'convergence step', 'firing rate',
                             'synops (M)', 'ANN MACs (M)']
    # stock SNN-TB's simulator reports no synaptic operations
    assert rows[0]['synops (M)'] == '' and float(rows[1]['synops (M)']) > 0
    assert rows[1]['ANN MACs (M)'] == '0.067776'    # digits CNN, by hand
    md = (out / 'summary.md').read_text()
    assert md.count('\n|') == 7 and 'paper eta_scale=0.8' in md
    for png in ('accuracy.png', 'accuracy_log.png', 'firing_rates.png',
                'thresholds.png', 'fig4_2Conv2D_4x4x32.png'):
        data = (out / png).read_bytes()
        assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 5000, png
    # one folder per setting, none for the stock twin of Fig. 4
    assert sorted(os.listdir(out / 'runs')) == sorted(
        r['setting'].replace(' ', '_') for r in rows)
    with open(out / 'runs' / 'paper_eta_scale=0.6' / 'results.json') as f:
        res = json.load(f)
    assert res['settings']['eta_per_layer'] == [0.6] * 6
    assert res['settings']['update'] == 'clamp'
    with open(out / 'runs' / 'authors_code_eta_scale=0.8' /
              'results.json') as f:
        assert json.load(f)['settings']['scope'] == 'batch'
    # a row's numbers are its results.json's (CSV: fractions, unrounded)
    assert float(rows[1]['final']) == res['final_accuracy_top1']
    # the plots can be redrawn from the saved results alone
    os.remove(out / 'accuracy.png')
    assert main(['plot', str(out), '--title', 'again']) == 0
    assert (out / 'accuracy.png').read_bytes()[:4] == b'\x89PNG'
    printed = capsys.readouterr().out
    assert 'batch 2/2' in printed and 'steps/s' in printed and 'left' in \
        printed


def test_steps_to_ann():
    from snntb_adaptive.compare import steps_to_ann
    res = {'ann_accuracy_top1': 0.9,
           'accuracy_top1_per_step': [0.1, 0.895, 0.88, 0.89, 0.92, 0.9]}
    assert steps_to_ann(res) == 4            # 0.88 at step 3 is 2 below
    assert steps_to_ann(res, points=2.5) == 2
    assert steps_to_ann(dict(res, accuracy_top1_per_step=[0.5, 0.7])) is None


def test_plot_merges_comparisons(digits_dir, tmp_path, capsys):
    cfg = write_config(digits_dir, name='mrg.ini', label='mrg', duration=16,
                       num_to_test=20, batch_size=10)
    outs = [str(tmp_path / name) for name in ('a', 'b')]
    for out, settings in zip(outs, ('paper', 'authors_executed,paper')):
        assert main(['compare', cfg, '--settings', settings, '--steps',
                     '4,8', '--out', out, '--raster-layer', 'none']) == 0
    into = tmp_path / 'merged'
    assert main(['plot'] + outs + ['--into', str(into)]) == 0
    with open(into / 'summary.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['setting'] for r in rows] == ['paper', 'authors_executed',
                                            'paper (b)']
    assert rows[0]['acc@8'] == rows[2]['acc@8']     # deterministic
    assert 'steps to ANN - 1' in rows[0]
    assert int(rows[0]['spikes per image']) > 0
    assert (into / 'accuracy_log.png').read_bytes()[:4] == b'\x89PNG'
    capsys.readouterr()
    assert main(['plot'] + outs) == 2
    assert '--into' in capsys.readouterr().err


def test_raster_layer_by_name_index_or_auto(digits_dir):
    """--raster-layer takes SNN-TB's layer name or the index that starts
    it; 'auto' is the second layer with weights; anything else is refused
    with the list of spiking layers."""
    from conftest import parse_and_normalise, setup
    from snntb_adaptive.compare import raster_layer_index
    from snntb_adaptive.errors import ConfigError
    cfg = setup(write_config(digits_dir, name='raster.ini', label='raster'))
    parsed, _ = parse_and_normalise(cfg)
    names = [lay.name for lay in parsed.layers[1:]]
    assert names[2] == '2Conv2D_4x4x32' and names[1].startswith('1Average')
    assert raster_layer_index(parsed, cfg, '2') == (2, '2Conv2D_4x4x32')
    assert raster_layer_index(parsed, cfg, '2Conv2D_4x4x32') == \
        (2, '2Conv2D_4x4x32')
    assert raster_layer_index(parsed, cfg, 'auto') == (2, '2Conv2D_4x4x32')
    flatten = [n for n in names if 'Flatten' in n][0]
    for bad in (flatten, '99', 'conv'):
        with pytest.raises(ConfigError, match='not a spiking layer.*'
                           '0Conv2D'):
            raster_layer_index(parsed, cfg, bad)


def test_compare_rejects_unknown_setting(digits_dir, tmp_path, capsys):
    cfg = write_config(digits_dir, name='cmp_bad.ini', label='cmp_bad')
    assert main(['compare', cfg, '--settings', 'stock,papr',
                 '--out', str(tmp_path / 'x')]) == 2
    assert "'papr' is neither 'stock' nor a preset" in \
        capsys.readouterr().err


def test_prepare_data_from_npz(tmp_path):
    src = tmp_path / 'src.npz'
    rng = np.random.default_rng(0)
    np.savez(src, x_test=rng.integers(0, 256, (30, 6, 6), np.uint8),
             y_test=rng.integers(0, 10, 30),
             x_train=rng.integers(0, 256, (100, 6, 6), np.uint8))
    out = tmp_path / 'data'
    assert main(['prepare-data', 'npz', '--file', str(src), '--out', str(out),
                 '--num-test', '20', '--norm-every', '10']) == 0
    x = np.load(out / 'x_test.npz')['arr_0']
    y = np.load(out / 'y_test.npz')['arr_0']
    xn = np.load(out / 'x_norm.npz')['arr_0']
    assert x.shape == (20, 6, 6, 1) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    assert y.shape == (20, 10) and np.all(y.sum(1) == 1)
    assert xn.shape == (10, 6, 6, 1)
    # nothing is overwritten unasked
    assert main(['prepare-data', 'npz', '--file', str(src), '--out',
                 str(out)]) == 2
    assert main(['prepare-data', 'npz', '--file', str(src), '--out',
                 str(out), '--overwrite']) == 0
    assert np.load(out / 'x_test.npz')['arr_0'].shape[0] == 30


def test_prepare_data_errors(tmp_path, capsys):
    src = tmp_path / 'src.npz'
    np.savez(src, images=np.zeros((3, 4, 4), np.uint8))
    assert main(['prepare-data', 'npz', '--file', str(src), '--out',
                 str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err
    assert 'has no array(s) x_test, y_test; it holds: images' in err


@pytest.mark.skipif(not os.path.isfile(os.path.join(
    os.path.dirname(ROOT), 'shared', 'data', 'mnist.npz')),
    reason='needs ../shared')
def test_prepare_data_from_shared_mnist(tmp_path):
    out = tmp_path / 'mnist'
    assert main(['prepare-data', 'npz', '--file', os.path.join(
        os.path.dirname(ROOT), 'shared', 'data', 'mnist.npz'), '--out',
        str(out), '--num-test', '100', '--norm-key', 'x_train',
        '--norm-every', '600']) == 0
    assert np.load(out / 'x_norm.npz')['arr_0'].shape == (100, 28, 28, 1)


def test_figures_keep_a_setting_colour_and_the_title(tmp_path, monkeypatch):
    # issue 18, 18: paper was orange in accuracy.png but blue in
    # firing_rates.png and thresholds.png (stock has no per-layer rates);
    # `plot` redrew without titles; the zoom panel had ticks at 2.5, 7.5
    from matplotlib.colors import to_rgba
    from snntb_adaptive import compare, plots
    figures = {}
    real_save = plots._save

    def keep(plt, fig, path, *args, **kw):
        saved = real_save(plt, fig, path, *args, **kw)   # sets the title
        figures[os.path.basename(path)] = (
            [[(line.get_label(), line.get_color()) for line in ax.lines]
             for ax in fig.axes],
            [[p.get_facecolor() for p in ax.patches] for ax in fig.axes],
            fig._suptitle.get_text() if fig._suptitle else
            fig.axes[0].get_title(),
            [t for t in fig.axes[-1].get_xticks()])
        return saved
    monkeypatch.setattr(plots, '_save', keep)
    res = {'num_samples': 10, 'ann_accuracy_top1': 0.9,
           'accuracy_top1_per_step': [0.1 * t for t in range(1, 10)]}
    results = {'stock': dict(res),
               'paper': dict(res, firing_rate_per_layer={'0a': 0.1},
                             threshold_trace={'0a': {'mean': [1.0] * 9,
                                                     'min': [1.0] * 9,
                                                     'max': [1.0] * 9}})}
    out = str(tmp_path)
    compare.draw_plots(out, results, title='my title')
    acc_lines = dict(figures['accuracy.png'][0][0])
    assert acc_lines['paper'] == 'C1' and acc_lines['stock'] == 'C0'
    assert figures['firing_rates.png'][1][0][0] == to_rgba('C1')
    assert dict(figures['thresholds.png'][0][0])['paper'] == 'C1'
    assert all(float(t).is_integer() for t in figures['accuracy.png'][3])
    figures.clear()
    compare.draw_plots(out, results)          # as `plot` redraws
    assert all(f[2] == 'my title' for f in figures.values()), figures
