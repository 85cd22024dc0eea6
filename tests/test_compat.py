"""The compatibility shims for SNN-TB 0.6.0 on NumPy 2 / TF 2.21, each alone,
and plain ``spike_code = temporal_mean_rate`` end to end with the plugin
installed."""

import json
import os

import numpy as np
import pytest

from conftest import write_config
from snntb_adaptive import compat


def test_scale_factor_is_a_json_serialisable_float():
    from snntoolbox.conversion import utils
    assert getattr(utils.get_scale_fac, '_snntb_adaptive', False)
    value = utils.get_scale_fac(np.array([1, 2, 3, 4], np.float32), 50)
    assert type(value) is float and value == 2.5
    json.dumps({'layer': value})
    # The original returns np.float32, which json refuses.
    with pytest.raises(TypeError):
        json.dumps({'layer': utils.get_scale_fac.original(
            np.array([1, 2], np.float32), 50)})


def test_simulation_utils_numpy_aliases():
    from snntoolbox.simulation import utils
    assert utils.np.product([2, 3]) == 6
    assert utils.np.bool is np.bool_
    assert not hasattr(np, 'product')  # NumPy itself is left alone


def test_scale_factor_json_written_atomically(tmp_path):
    """A crash while SNN-TB dumps the JSON leaves the previous file."""
    from snntoolbox.conversion import utils
    path = tmp_path / '99.9.json'
    path.write_text('{"a": 1.0}')
    with pytest.raises(TypeError):
        with utils.open(str(path), 'w') as f:
            json.dump({'a': object()}, f)
    assert json.loads(path.read_text()) == {'a': 1.0}
    with utils.open(str(path), 'w') as f:
        json.dump({'b': 2.0}, f)
    assert json.loads(path.read_text()) == {'b': 2.0}
    assert sorted(os.listdir(tmp_path)) == ['99.9.json']


def test_corrupt_scale_factor_file_gives_clear_message(tmp_path):
    from snntoolbox.datasets.utils import try_get_normset_from_scalefacs
    log = tmp_path / 'log'
    (log / 'normalization').mkdir(parents=True)
    bad = log / 'normalization' / '99.9.json'
    bad.write_text('{"00Conv2D_8x8x16": 2.2')  # truncated
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read_dict({'paths': {'log_dir_of_current_run': str(log)},
                   'normalization': {'percentile': '99.9'}})
    with pytest.raises(compat.CorruptFileError) as e:
        try_get_normset_from_scalefacs(cfg)
    msg = str(e.value)
    assert str(bad) in msg and 'Delete or rename it' in msg


def test_atomic_writer_and_write_atomic(tmp_path):
    p = tmp_path / 'x.json'
    compat.write_json_atomic(p, {'k': [1, 2]})
    assert json.loads(p.read_text()) == {'k': [1, 2]}
    with pytest.raises(ValueError):
        compat.write_json_atomic(p, {'k': float('nan')}, allow_nan=False)
    assert json.loads(p.read_text()) == {'k': [1, 2]}
    assert sorted(os.listdir(tmp_path)) == ['x.json']


def test_stock_temporal_mean_rate_runs_end_to_end(digits_dir):
    """SNN-TB's own spike code through its own run_pipeline, with the
    plugin installed: normalisation JSON, NumPy-2 code paths and all."""
    from snntoolbox.bin.utils import run_pipeline, update_setup
    path = write_config(digits_dir, name='stock_e2e.ini', label='stock_e2e',
                        spike_code='temporal_mean_rate', duration=20,
                        num_to_test=20)
    config = update_setup(path)
    results = run_pipeline(config)
    assert len(results) == 1 and 0.5 <= results[0] <= 1
    norm = os.path.join(digits_dir, 'log', 'gui', 'stock_e2e',
                        'normalization', '99.9.json')
    with open(norm) as f:
        facs = json.load(f)
    # The input layer's factor is SNN-TB's literal 1; the others computed.
    assert len(facs) == 5
    assert all(isinstance(v, float) and v > 0 for k, v in facs.items()
               if k != 'input_1')


def test_stock_run_with_log_vars(digits_dir):
    """SNN-TB's own run with [output] log_vars: it saves spike trains of
    layers of different shapes with np.savez_compressed, which NumPy 2
    refuses without the shim ("inhomogeneous shape")."""
    import numpy as np
    from snntoolbox.bin.utils import run_pipeline, update_setup
    path = write_config(digits_dir, name='stock_logvars.ini',
                        label='stock_logvars',
                        spike_code='temporal_mean_rate', duration=30,
                        num_to_test=20,
                        output="log_vars = {'spiketrains_n_b_l_t', "
                        "'activations_n_b_l'}")
    results = run_pipeline(update_setup(path))
    assert len(results) == 1
    saved = os.path.join(digits_dir, 'log', 'gui', 'stock_logvars',
                         'log_vars', '0.npz')
    with np.load(saved, allow_pickle=True) as f:
        trains = f['spiketrains_n_b_l_t']
    assert trains.dtype == object and len(trains) == 6
    assert trains[0][0].shape[0] == 10            # the batch
    # SNN-TB's own analysis reads them back: rates correlate with the ANN
    from snntoolbox.simulation.plotting import get_pearson_coefficients
    from snntoolbox.simulation.utils import spiketrains_to_rates
    with np.load(saved, allow_pickle=True) as f:
        rates = spiketrains_to_rates(f['spiketrains_n_b_l_t'], 30,
                                     'temporal_mean_rate')
        corr = np.mean(get_pearson_coefficients(
            rates, f['activations_n_b_l'], 1.0), axis=1)
    # measured at T = 30: hidden layers 0.986-0.999, output layer 0.78
    assert corr.shape == (6,) and np.all(corr[:-1] > 0.95), corr
    assert corr[-1] > 0.5, corr
