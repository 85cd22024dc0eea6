"""Bad inputs fail in update_setup, before any model is built, with a message
that names the problem and the fix."""

import os
import shutil

import numpy as np
import pytest

from conftest import DIGITS_MODEL, make_workdir, setup, write_config
from snntb_adaptive.errors import ConfigError
from snntb_adaptive.errors import DataError


@pytest.fixture
def wd(tmp_path):
    return make_workdir(str(tmp_path / 'wd'), num_test=20, num_norm=20)


def _fails(wd, match, exc=(ConfigError, DataError), **kw):
    with pytest.raises(exc) as e:
        setup(write_config(wd, **kw))
    for m in ([match] if isinstance(match, str) else match):
        assert m in str(e.value), str(e.value)
    return str(e.value)


def _save_npz(wd, name, arr, key='arr_0'):
    np.savez_compressed(os.path.join(wd, 'data', name), **{key: arr})


def test_missing_model(wd):
    os.remove(os.path.join(wd, 'model.h5'))
    _fails(wd, ['model file', 'model.h5 not found', 'filename_ann'])


def test_unreadable_model(wd):
    with open(os.path.join(wd, 'model.h5'), 'w') as f:
        f.write('not a model')
    _fails(wd, ['cannot be read as HDF5', 'tf-keras .h5'])


def test_keras3_models_and_the_converter(wd, tmp_path):
    import keras as keras3
    from snntb_adaptive.keras3 import convert
    m = keras3.Sequential([
        keras3.layers.Input((8, 8, 1)),
        keras3.layers.Conv2D(4, 3, padding='same'),
        keras3.layers.BatchNormalization(),
        keras3.layers.Activation('relu'),
        keras3.layers.AveragePooling2D(2),
        keras3.layers.Flatten(),
        keras3.layers.Dropout(0.1),
        keras3.layers.Dense(10)])
    bn = m.layers[1]          # non-trivial BatchNorm statistics
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 1.5, 4).astype(np.float32)
                    for _ in bn.get_weights()])
    keras_file = str(tmp_path / 'k3.keras')
    h5_file = str(tmp_path / 'k3.h5')
    m.save(keras_file)
    m.save(h5_file)
    # A Keras-3 .h5 in place of the model
    shutil.copy(h5_file, os.path.join(wd, 'model.h5'))
    _fails(wd, ['saved by Keras 3', 'convert-keras3'])
    # A .keras next to a missing .h5
    os.remove(os.path.join(wd, 'model.h5'))
    shutil.copy(keras_file, os.path.join(wd, 'model.keras'))
    _fails(wd, ['model.keras exists', 'Keras-3 model', 'convert-keras3'])
    # The converter rebuilds it; SNN-TB then accepts it.
    out = os.path.join(wd, 'model.h5')
    diff = convert(keras_file, out)
    assert diff < 1e-5
    setup(write_config(wd))


def test_unconvertible_layer(wd, tmp_path):
    from tensorflow import keras
    inp = keras.layers.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation='relu')(inp)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(10)(x))
    model.compile('sgd', 'categorical_crossentropy')
    model.save(os.path.join(wd, 'model.h5'))
    _fails(wd, ['type LayerNormalization cannot be converted',
                'silently drop'])


def test_nan_weights(wd):
    from tensorflow import keras
    model = keras.models.load_model(DIGITS_MODEL)
    w = model.layers[1].get_weights()
    w[0][0, 0, 0, 0] = np.nan
    model.layers[1].set_weights(w)
    model.save(os.path.join(wd, 'model.h5'))
    _fails(wd, ['NaN or Inf weights', 'conv2d'])


@pytest.mark.parametrize('name,arr,key,msg', [
    ('x_test.npz', None, None, ['x_test.npz missing', 'prepare-data']),
    ('x_norm.npz', None, None, ['x_norm.npz missing',
                                'normalize = False']),
    ('x_test.npz', np.zeros((20, 8, 8, 1), np.float32), 'images',
     ["holds images but SNN-TB reads the array 'arr_0'"]),
    ('x_test.npz', np.zeros((20, 8, 8), np.float32), 'arr_0',
     ['samples have shape (8, 8), the model expects (8, 8, 1)']),
    ('x_test.npz', np.full((20, 8, 8, 1), 200, np.float32), 'arr_0',
     ['values lie in [200, 200]', 'divide by 255']),
    ('x_norm.npz', np.full((20, 8, 8, 1), np.nan, np.float32), 'arr_0',
     ['x_norm.npz contains NaN or Inf']),
    ('y_test.npz', np.zeros((20, 10), np.float32), 'arr_0',
     ['labels must be one-hot']),
    ('y_test.npz', np.eye(12, dtype=np.float32)[np.arange(20) % 12], 'arr_0',
     ['12 classes, but the model has 10 outputs']),
    ('y_test.npz', np.eye(10, dtype=np.float32)[np.arange(15) % 10], 'arr_0',
     ['shape (15, 10); expected one one-hot row per test sample']),
])
def test_bad_dataset_files(wd, name, arr, key, msg):
    path = os.path.join(wd, 'data', name)
    os.remove(path)
    if arr is not None:
        _save_npz(wd, name, arr, key)
    _fails(wd, msg)


def test_fewer_samples_than_a_batch(wd):
    _fails(wd, ['fewer than one batch', 'batch_size = 30'], batch_size=30,
           num_to_test=30)


@pytest.mark.parametrize('sim,msg', [
    ('duration = 0', "[simulation] duration = '0': out of range"),
    ('duration = 10.5', "[simulation] duration = '10.5': not an integer"),
    ('batch_size = -3', "[simulation] batch_size = '-3': out of range"),
])
def test_duration_and_batch_size_out_of_range(wd, sim, msg):
    path = write_config(wd, simulation=sim)
    text = open(path).read()
    # the base template sets both keys; drop its own line for the key tried
    key = sim.split(' = ')[0]
    lines = [ln for ln in text.splitlines()
             if not (ln.startswith(key + ' = ') and ln != sim)]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with pytest.raises(ConfigError) as e:
        setup(path)
    assert msg in str(e.value)


def test_log_folder_cannot_be_written(wd):
    blocker = os.path.join(wd, 'not_a_folder')
    with open(blocker, 'w') as f:
        f.write('x')
    path = write_config(wd)
    text = open(path).read().replace(
        '[paths]\n', '[paths]\nlog_dir_of_current_run = {}/log\n'.format(
            blocker))
    with open(path, 'w') as f:
        f.write(text)
    with pytest.raises(ConfigError) as e:
        setup(path)
    assert 'log folder {}/log cannot be written'.format(blocker) in \
        str(e.value)
    assert 'writable folder' in str(e.value)
