"""``[adaptive_threshold] avg_pooling = linear``: average pooling as a
synapse without neurons, against a network computed by hand; the layer
table, Phase 1 and the keys. (Identical spikes on every path and kernel:
``test_kernel.py::test_compiled_loop_same_with_either_kernel``; Ray:
``test_ray.py``, whose calibrated setting pools linearly.)"""

import os

import numpy as np
import pytest

from conftest import build_snn, parse_and_normalise, setup, write_config
from snntb_adaptive.errors import ConfigError

PIXELS = [1.0, 0.5, 0.25, 0.0]      # one 2x2 image, one channel
DENSE = [[1.0, 0.75]]               # pooled value -> two output neurons


def _hand_net(wd):
    """Conv2D 1x1 (weight 1, bias 0) -> AveragePooling2D 2x2 -> Flatten ->
    Dense(2) with weights 1 and 0.75, no bias; a linear output."""
    from tensorflow import keras
    from snntb_adaptive import data
    inp = keras.layers.Input((2, 2, 1))
    h = keras.layers.Conv2D(1, 1, activation='relu')(inp)
    h = keras.layers.AveragePooling2D(2)(h)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    model.layers[1].set_weights([np.ones((1, 1, 1, 1), np.float32),
                                 np.zeros(1, np.float32)])
    model.layers[4].set_weights([np.asarray(DENSE, np.float32),
                                 np.zeros(2, np.float32)])
    model.compile('sgd', 'categorical_crossentropy')
    os.makedirs(wd, exist_ok=True)
    model.save(os.path.join(wd, 'model.h5'))
    x = np.asarray(PIXELS, np.float32).reshape(1, 2, 2, 1)
    x = np.repeat(x, 2, axis=0)
    y = np.array([0, 1])
    data.write_snntb_dataset(os.path.join(wd, 'data'), x, y, x, 2)


def _expected(steps):
    """The same network stepped by hand: four IF neurons driven by the
    pixels (threshold 1, reset by subtraction), their spikes averaged, the
    average times each Dense weight integrated by two IF neurons. Every
    value is a multiple of 1/16: exact in float32."""
    conv_mem = np.zeros(4)
    out_mem = np.zeros(2)
    conv_counts, out_spikes = [], []
    for _ in range(steps):
        conv_mem += PIXELS
        fired = conv_mem >= 1
        conv_mem -= fired
        pooled = fired.mean()
        out_mem += pooled * np.asarray(DENSE[0])
        out_fired = out_mem >= 1
        out_mem -= out_fired
        conv_counts.append(fired.sum())
        out_spikes.append(out_fired.astype(np.float32))
    return np.asarray(conv_counts), np.asarray(out_spikes)


@pytest.mark.parametrize('loop', ['graph', 'step'])
@pytest.mark.parametrize('kernel', ['fused', 'tf'])
def test_linear_pooling_matches_the_hand_computed_net(tmp_path, loop,
                                                      kernel):
    wd = str(tmp_path)
    _hand_net(wd)
    extra = ("\n[adaptive_threshold]\npreset = authors_executed\n"
             "eta_scale = 1\navg_pooling = linear\nkernel = {}\n"
             "".format(kernel))
    cfg = setup(write_config(wd, extra=extra, normalize=False, duration=12,
                             batch_size=2, num_to_test=2,
                             softmax_to_relu=False))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    # two layers with neurons: the convolution and the output
    assert [r['type'] for r in snn._layer_rows] == ['Conv2D', 'Dense']
    snn.loop = loop
    readout, counts, _ = snn.simulate_batch(testset['x_test'])
    conv_counts, out_spikes = _expected(12)
    assert out_spikes.sum() > 6 and conv_counts.sum() > 10
    np.testing.assert_array_equal(counts[:, 0, 0], conv_counts)
    np.testing.assert_array_equal(readout[:, 0, :], out_spikes)
    np.testing.assert_array_equal(counts[:, 0, 1], out_spikes.sum(1))
    # spiking pooling (SNN-TB's) is another network: its pooling neuron
    # delays and quantises the average
    cfg = setup(write_config(wd, extra=extra.replace('linear', 'spiking'),
                             label='spiking', normalize=False, duration=12,
                             batch_size=2, num_to_test=2,
                             softmax_to_relu=False))
    parsed, testset = parse_and_normalise(cfg)
    spiking = build_snn(cfg, parsed, testset)
    readout2, counts2, _ = spiking.simulate_batch(testset['x_test'])
    assert counts2.shape[-1] == 3
    assert not np.array_equal(readout2[:, 0, :], out_spikes)


def test_pooling_layers_leave_the_layer_table_and_eta_list(digits_dir):
    """With linear pooling the digits CNN has four layers with neurons; an
    eta list counts those."""
    extra = ("\n[adaptive_threshold]\npreset = paper\navg_pooling = linear\n"
             "eta_scale = 0.7, 0.8, 0.9, 1\n")
    cfg = setup(write_config(digits_dir, name='lin.ini', label='lin',
                             extra=extra))
    parsed, testset = parse_and_normalise(cfg)
    snn = build_snn(cfg, parsed, testset)
    assert [r['type'] for r in snn._layer_rows] == ['Conv2D', 'Conv2D',
                                                   'Dense', 'Dense']
    assert [lay.neuron_params.v_init for lay in snn._spiking] == \
        [0.7, 0.8, 0.9, 1.0]
    # six values (the count with spiking pooling) are refused
    cfg = setup(write_config(digits_dir, name='lin6.ini', label='lin6',
                             extra=extra.replace('0.7, 0.8, 0.9, 1',
                                                 '0.7, 0.7, 0.7, 0.7, 0.7, '
                                                 '0.7')))
    with pytest.raises(ConfigError, match='6 values, but the model has 4 '
                       'spiking layers'):
        parse_and_normalise(cfg)


@pytest.mark.parametrize('value', ['none', 'Linear', '1'])
def test_bad_avg_pooling_fails_in_one_line(digits_dir, value):
    extra = "\n[adaptive_threshold]\navg_pooling = {}\n".format(value)
    with pytest.raises(ConfigError, match="avg_pooling = '{}': not allowed. "
                       "Choose one of: spiking, linear".format(value)):
        setup(write_config(digits_dir, name='badpool.ini', label='badpool',
                           extra=extra))


def test_defaults_follow_the_preset():
    from snntb_adaptive.config import settings_from_mapping
    paper = settings_from_mapping({'preset': 'paper'})
    assert (paper.avg_pooling, paper.readout) == ('spiking', 'spikes')
    cal = settings_from_mapping({'preset': 'calibrated'})
    assert (cal.avg_pooling, cal.readout) == ('linear', 'membrane')
    cal = settings_from_mapping({'preset': 'calibrated', 'readout': 'spikes',
                                 'avg_pooling': 'spiking'})
    assert (cal.avg_pooling, cal.readout) == ('spiking', 'spikes')
    # only a non-default pooling is recorded (earlier results unchanged)
    assert 'avg_pooling' not in paper.as_dict()
    assert settings_from_mapping({'preset': 'calibrated'}).as_dict()[
        'avg_pooling'] == 'linear'
