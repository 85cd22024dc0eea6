"""Phase 1: the plugin's streaming normalisation gives SNN-TB's scale
factors and parameters; the exact streaming percentile alone."""

import json
import os

import numpy as np
import pytest

from conftest import parse_and_normalise, setup, write_config
from snntb_adaptive.normalisation import (StreamingPercentile, key_to_float,
                                          order_keys)


@pytest.mark.parametrize('case', ['normal', 'ties', 'negative', 'tiny',
                                  'one', 'zeros', 'wide'])
@pytest.mark.parametrize('q', [99.9, 50.0, 0.0, 100.0, 99.99])
def test_streaming_percentile_is_exact(case, q):
    rng = np.random.default_rng(abs(hash((case, q))) % 2 ** 32)
    data = {
        'normal': rng.exponential(1.0, 20000).astype(np.float32),
        'ties': rng.integers(0, 5, 5000).astype(np.float32) / 4,
        'negative': rng.normal(0, 3, 10000).astype(np.float32),
        'tiny': np.array([0, 3.5, 0, 1e-30], np.float32),
        'one': np.array([0, 0, 2.25], np.float32),
        'zeros': np.zeros(100, np.float32),
        'wide': (rng.normal(0, 1, 8000) * 10.0 ** rng.integers(
            -20, 20, 8000)).astype(np.float32),
    }[case]
    st = StreamingPercentile(q)
    chunks = np.array_split(data, 7)
    for c in chunks:
        st.first_pass(c)
    if st.plan():
        for c in chunks:
            st.second_pass(c)
    nz = data[data != 0]
    expected = float(np.percentile(nz, q)) if nz.size else 1.0
    assert st.value() == pytest.approx(expected, rel=1e-6, abs=0)


def test_order_keys_roundtrip():
    v = np.array([-np.inf, -3.5, -1e-38, -0.0, 0.0, 1e-45, 2.0, np.inf],
                 np.float32)
    keys = order_keys(v)
    assert np.all(np.diff(keys.astype(np.int64)) >= 0)
    assert [key_to_float(k) for k in keys] == [float(x) for x in v]


def test_scale_factors_and_weights_match_snntb(digits_dir):
    """Same parsed model, SNN-TB's normalize_parameters vs the plugin's."""
    cfg_stock = setup(write_config(digits_dir, name='n_stock.ini',
                                   label='norm_stock',
                                   spike_code='temporal_mean_rate'))
    cfg_at = setup(write_config(digits_dir, name='n_at.ini',
                                label='norm_at'))
    parsed_stock, _ = parse_and_normalise(cfg_stock)
    parsed_at, _ = parse_and_normalise(cfg_at)

    def facs(cfg):
        path = os.path.join(cfg.get('paths', 'log_dir_of_current_run'),
                            'normalization', '99.9.json')
        with open(path) as f:
            return json.load(f)

    stock, at = facs(cfg_stock), facs(cfg_at)
    assert list(stock) == list(at)
    for name in stock:
        assert at[name] == pytest.approx(stock[name], rel=1e-6, abs=0), name
    for a, b in zip(parsed_stock.get_weights(), parsed_at.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=0)
    # SNN-TB keeps whole activation sets on disk; the plugin does not.
    stock_dir = os.path.join(cfg_stock.get('paths', 'log_dir_of_current_run'),
                             'normalization', 'activations')
    at_dir = os.path.join(cfg_at.get('paths', 'log_dir_of_current_run'),
                          'normalization', 'activations')
    assert any(f.endswith('.npz') and 'Conv' in f
               for f in os.listdir(stock_dir))
    assert not os.path.exists(at_dir)
