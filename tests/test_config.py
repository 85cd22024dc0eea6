"""Every invalid ``[adaptive_threshold]`` value, and every SNN-TB option the
adaptive threshold cannot be combined with, fails in ``update_setup`` (before
any model is loaded) with a message naming the key, the value and what is
allowed."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, setup, write_config
from snntb_adaptive.errors import ConfigError
from snntb_adaptive.config import (Settings, parse_eta,
                                   settings_from_mapping)

AT_CASES = [
    ({'preset': 'papper'}, ["preset = 'papper'", 'paper, authors_code, '
                            'authors_executed, paper_window']),
    ({'eta_scale': 'abc'}, ["eta_scale = 'abc'", 'not a number',
                            '(0, 1]']),
    ({'eta_scale': '0'}, ["eta_scale = '0'", 'outside (0, 1]']),
    ({'eta_scale': '1.5'}, ["eta_scale = '1.5'", 'outside (0, 1]']),
    ({'eta_scale': '-0.2'}, ["eta_scale = '-0.2'", 'outside (0, 1]']),
    ({'eta_scale': 'nan'}, ["eta_scale = 'nan'", 'outside (0, 1]']),
    ({'eta_scale': '0.7,,0.8'}, ["eta_scale = '0.7,,0.8'",
                                 'not a number']),
    ({'update': 'grow'}, ["update = 'grow'", 'clamp, window, none']),
    ({'scope': 'layer'}, ["scope = 'layer'", 'sample, batch']),
    ({'readout': 'votes'}, ["readout = 'votes'", 'spikes, membrane']),
    ({'etascale': '0.7'}, ["unknown key(s) 'etascale'",
                           'preset, eta_scale, update, scope, readout']),
]


@pytest.mark.parametrize('section,expected', AT_CASES)
def test_adaptive_section_errors(digits_dir, section, expected):
    extra = '\n[adaptive_threshold]\n' + ''.join(
        '{} = {}\n'.format(k, v) for k, v in section.items())
    path = write_config(digits_dir, name='bad.ini', extra=extra)
    with pytest.raises(ConfigError) as e:
        setup(path)
    for text in expected:
        assert text in str(e.value)
    assert '[adaptive_threshold]' in str(e.value)


SNNTB_CASES = [
    ('[cell]\ntau_refrac = 2\n', "[cell] tau_refrac = '2'", 'tau_refrac = 0'),
    ('[cell]\nreset = Reset to zero\n', "[cell] reset = 'Reset to zero'",
     'Reset by subtraction'),
    ('[cell]\nleak = True\n', '[cell] leak = True', 'leak = False'),
    ('[cell]\npayloads = True\n', '[cell] payloads = True',
     'payloads = False'),
    ('[cell]\nv_thresh = 0\n', "[cell] v_thresh = '0'", 'from 1e-6 to 1e6'),
    ('[input]\npoisson_input = True\n', '[input] poisson_input = True',
     'poisson_input = False'),
    ('[normalization]\nonline_normalization = True\n',
     '[normalization] online_normalization = True',
     'online_normalization = False'),
]


@pytest.mark.parametrize('extra,name,fix', SNNTB_CASES)
def test_incompatible_snntb_options(digits_dir, extra, name, fix):
    path = write_config(digits_dir, name='bad.ini', extra='\n' + extra)
    with pytest.raises(ConfigError) as e:
        setup(path)
    assert name in str(e.value)
    assert fix in str(e.value)


@pytest.mark.parametrize('sim,output,text', [
    ('dt = 0.5', '', "[simulation] dt = '0.5'"),
    ('', "plot_vars = {'spikerates'}", "[output] plot_vars = {'spikerates'}"),
])
def test_incompatible_simulation_and_output(digits_dir, sim, output, text):
    path = write_config(digits_dir, name='bad.ini', simulation=sim,
                        output=output)
    with pytest.raises(ConfigError, match=r'\[(simulation|output)\]') as e:
        setup(path)
    assert text in str(e.value)


def test_presets_and_overrides():
    s = settings_from_mapping({})
    assert s == Settings('paper', 'clamp', 'sample', (0.7,), 'spikes')
    s = settings_from_mapping({'preset': 'authors_code'})
    assert (s.update, s.scope) == ('clamp', 'batch')
    s = settings_from_mapping({'preset': 'authors_executed'})
    assert s.update == 'none'
    s = settings_from_mapping({'preset': 'paper_window', 'scope': 'batch',
                               'update': 'clamp', 'eta_scale': '0.8, 0.9'})
    assert (s.update, s.scope, s.eta_scale) == ('clamp', 'batch', (0.8, 0.9))
    assert parse_eta('1') == (1.0,)


def test_eta_list_length_must_match_spiking_layers():
    s = settings_from_mapping({'eta_scale': '0.7, 0.8'})
    assert s.eta_per_layer(2) == [0.7, 0.8]
    with pytest.raises(ConfigError) as e:
        s.eta_per_layer(6)
    assert 'gives 2 values, but the model has 6 spiking layers' in str(e.value)


def test_plain_snntoolbox_reports_config_error_without_traceback(digits_dir):
    """The `snntoolbox` command prints the message and exits 2, before
    loading the model."""
    path = write_config(digits_dir, name='bad_cli.ini',
                        extra='\n[adaptive_threshold]\nupdate = grow\n')
    exe = os.path.join(os.path.dirname(sys.executable), 'snntoolbox')
    p = subprocess.run([exe, '-t', path], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "snntb-adaptive: error: [adaptive_threshold] update = 'grow'" \
        in p.stderr
    assert 'Traceback' not in p.stderr
    assert 'Parsing input model' not in p.stdout


def _softmax_model(path):
    from tensorflow import keras
    inp = keras.layers.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding='same', activation='relu')(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(10, activation='softmax')(x)
    model = keras.Model(inp, out)
    model.compile('sgd', 'categorical_crossentropy', ['accuracy'])
    model.save(path)


def test_softmax_output_fails_before_normalisation(tmp_path):
    from conftest import make_workdir, parse_and_normalise
    src = str(tmp_path / 'softmax.h5')
    _softmax_model(src)
    wd = make_workdir(str(tmp_path / 'wd'), model_path=src, num_test=10,
                      num_norm=10)
    cfg = setup(write_config(wd, softmax_to_relu=False))
    with pytest.raises(ConfigError) as e:
        parse_and_normalise(cfg)
    assert "activation 'softmax'" in str(e.value)
    assert 'softmax_to_relu = True' in str(e.value)
    log = cfg.get('paths', 'log_dir_of_current_run')
    assert not os.path.exists(os.path.join(log, 'normalization',
                                           'activations', 'weights.npz'))
    # With softmax_to_relu the same model converts.
    cfg = setup(write_config(wd, name='relu.ini', label='relu'))
    parse_and_normalise(cfg)


def test_unsupported_layer_type_named():
    from snntb_adaptive.network import check_layer

    class SparseConv2D:
        name = '03SparseConv2D_4x4x8'
        activation = 'relu'

    with pytest.raises(ConfigError) as e:
        check_layer(SparseConv2D())
    msg = str(e.value)
    assert 'SparseConv2D' in msg and 'Supported layers: AveragePooling2D' \
        in msg and 'Replace the layer' in msg


def test_a_registered_rule_is_a_valid_update(digits_dir):
    """A rule added to dynamics.RULES is accepted by the configuration and
    runs the whole network on TensorFlow ops under kernel = auto (the fused
    op does not implement it)."""
    import tensorflow as tf
    from conftest import build_snn, parse_and_normalise
    from snntb_adaptive import dynamics
    with pytest.raises(ConfigError, match="update = 'halfway'"):
        settings_from_mapping({'update': 'halfway'})

    @dynamics.rule('halfway')
    def halfway(theta, z, v_init, v_max):
        return theta + (tf.minimum(tf.maximum(theta, z), v_max) - theta) / 2
    try:
        assert settings_from_mapping({'update': 'halfway'}).update == \
            'halfway'
        cfg = setup(write_config(
            digits_dir, name='halfway.ini', label='halfway',
            extra='\n[adaptive_threshold]\nupdate = halfway\n'))
        parsed, testset = parse_and_normalise(cfg)
        snn = build_snn(cfg, parsed, testset)
        assert snn.kernel == 'tf'
        _, _, thetas = snn.simulate_batch(testset['x_test'][:10])
        # theta moves, and differs from the clamp rule's
        assert len(np.unique(thetas[:, :, 1])) > 2
    finally:
        del dynamics.RULES['halfway']


def test_a_registered_phase1_method_and_kernel_need_no_other_change(
        digits_dir, monkeypatch):
    """A Phase-1 method is one entry of phase1.METHODS (and its preset), a
    kernel one entry of kernel.KERNELS: the configuration accepts them, the
    hook runs the method, the simulator steps with the kernel."""
    import sys
    import types
    from conftest import build_snn, parse_and_normalise
    from snntb_adaptive import config, kernel, phase1
    from snntb_adaptive.normalisation import weight_norm
    calls = []
    module = types.ModuleType('my_phase1')

    def run(model, cfg, **kwargs):      # a method of its own module
        calls.append('phase1')
        return weight_norm(model, cfg, **kwargs)
    module.run = run
    monkeypatch.setitem(sys.modules, 'my_phase1', module)
    monkeypatch.setitem(phase1.METHODS, 'mine', phase1.Method(
        'mine', 'my_phase1:run', presets=('mine',), sets_thresholds=True,
        defaults={'readout': 'membrane'}))
    monkeypatch.setitem(config.PRESETS, 'mine', ('none', 'batch'))

    def counting_step(*args, **kw):
        calls.append('step')
        return kernel.tf_step(*args, **kw)
    monkeypatch.setitem(kernel.KERNELS, 'counting', kernel.Kernel(
        'counting', counting_step, lambda rule, spikes: None, 'counting'))
    cfg = setup(write_config(digits_dir, name='mine.ini', label='mine',
                             duration=5, extra="\n[adaptive_threshold]\n"
                             "preset = mine\nkernel = counting\n"))
    s = config.settings_from_config(cfg)
    assert (s.phase1, s.eta_scale, s.readout) == ('mine', (1.0,), 'membrane')
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    assert snn.kernel == 'counting'
    snn.simulate_batch(testset['x_test'][:10])
    assert calls[0] == 'phase1' and 'step' in calls
