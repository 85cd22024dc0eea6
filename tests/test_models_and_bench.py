"""The model scripts build SNN-TB-convertible models; the benchmark command
runs (a smoke run on digits: its figures are not asserted, only produced)."""

import importlib.util
import os

from conftest import ROOT
from snntb_adaptive.network import CONVERTIBLE


def _module(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(ROOT, 'models', name + '.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_vgg19_script_builds_the_papers_architecture():
    model = _module('train_vgg19').build_model(10, fc=64)
    kinds = [lay.__class__.__name__ for lay in model.layers]
    assert kinds.count('Conv2D') == 16
    assert kinds.count('AveragePooling2D') == 5
    assert kinds.count('Dense') == 3 and kinds.count('Dropout') == 2
    assert set(kinds) <= CONVERTIBLE
    assert model.output_shape == (None, 10)
    assert model.layers[-1].activation.__name__ == 'linear'


def test_mnist_and_digits_scripts_build_convertible_models():
    for name, shape in (('train_mnist', (None, 28, 28, 1)),
                        ('train_digits', (None, 8, 8, 1))):
        model = _module(name).build_model()
        assert model.input_shape == shape
        assert {lay.__class__.__name__ for lay in model.layers} <= \
            CONVERTIBLE


def test_bench_smoke(capsys):
    from snntb_adaptive.cli import main
    assert main(['bench', '--models', 'digits', '--duration', '20',
                 '--batches', '1', '--norm-images', '100',
                 '--batch-size', '20']) == 0
    out = capsys.readouterr().out
    for text in ('## digits: batch 20, T = 20', '| floor (dense ANN',
                 '| SNN-TB temporal_mean_rate simulate |',
                 '| plugin paper |', '| plugin paper, kernel = tf',
                 '| plugin paper, kernel = fused (dense synapses) |',
                 '| plugin paper, kernel = sparse (event-driven synapses) |',
                 '| plugin paper (same network, update = none) |',
                 'adaptive update cost, clamp, scope = sample: ',
                 'adaptive update cost, clamp, scope = batch: ',
                 'adaptive update cost, window, scope = sample: ',
                 'step kernel of the compiled loop: fused',
                 'normalisation of 100 images'):
        assert text in out
    # ratios are printed for every row, the floor's being 1
    assert '| 1.00 |' in out.split('| floor (dense ANN')[1].splitlines()[0]
