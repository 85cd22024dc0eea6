"""The offline demo: scikit-learn's digits, the small CNN of
``models/digits_cnn.h5``, stock SNN-TB and every preset, one table.

    python -m snntb_adaptive demo [--out runs/digits_demo] [--duration 100]

Writes the data folder, a config, and each setting's ``results.json`` under
``--out``; prints a Markdown table and saves it as ``summary.md``.
"""

import os

from snntb_adaptive.compat import write_atomic
from snntb_adaptive.log import log, table
from snntb_adaptive.errors import ConfigError

REPO_MODEL = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'models', 'digits_cnn.h5')

SETTINGS = [
    ('stock', 'stock SNN-TB (temporal_mean_rate)'),
    ('authors_executed:eta_scale=1', 'plugin, eta = 1, update = none '
     '(= stock)'),
    ('paper', 'paper (clamp, per sample)'),
    ('authors_code', 'authors_code (clamp, per batch)'),
    ('authors_executed', 'authors_executed (constant 0.7 V_max)'),
    ('paper_window', 'paper_window (window, per sample)'),
]

CONFIG = """# Written by 'python -m snntb_adaptive demo'.
[paths]
path_wd = {out}
dataset_path = {out}/data
filename_ann = digits_cnn
runlabel = demo
# parse and normalise once: scale factors and Phase-1 table go here
log_dir_of_current_run = {out}/log/normalisation

[tools]
evaluate_ann = True
normalize = True

[normalization]
percentile = 99.9

[conversion]
spike_code = adaptive_threshold

[simulation]
simulator = INI
duration = {duration}
batch_size = {batch_size}
num_to_test = {num_to_test}
top_k = 5

[output]
verbose = 0

[adaptive_threshold]
preset = paper
eta_scale = 0.7
"""


def run_demo(out_dir='runs/digits_demo', duration=100, num_to_test=360,
             batch_size=40, model=None):
    import shutil
    from snntb_adaptive import data
    from snntb_adaptive.session import Session, format_markdown, summary_row

    model = model or REPO_MODEL
    if not os.path.isfile(model):
        raise ConfigError(
            "demo model {} not found; run the demo from a checkout of the "
            "repository, or pass --model PATH (train one with "
            "'python models/train_digits.py --out PATH')".format(model))
    out = os.path.abspath(out_dir)
    os.makedirs(out, exist_ok=True)
    shutil.copy(model, os.path.join(out, 'digits_cnn.h5'))
    if not os.path.isfile(os.path.join(out, 'data', 'x_test.npz')):
        x_tr, y_tr, x_te, y_te = data.load_digits()
        data.write_snntb_dataset(os.path.join(out, 'data'), x_te, y_te, x_tr,
                                 10)
    config_path = os.path.join(out, 'demo.ini')
    write_atomic(config_path, CONFIG.format(
        out=out, duration=duration, batch_size=batch_size,
        num_to_test=num_to_test))

    session = Session(config_path, log_root=os.path.join(out, 'log'))
    session.prepare()
    steps = [t for t in (10, 25, 50, 100, 200) if t < duration] + [duration]
    rows = []
    for setting, label in SETTINGS:
        log.info("demo: {}".format(label))
        res = session.run(setting)
        row = summary_row(label, res, steps)
        rows.append(row)
    md = format_markdown(rows)
    header = ("Digits CNN, {} test images, T = {}, batch {}, V_max = 1, "
              "eta = 0.7 unless stated.\n\n".format(
                  num_to_test, duration, batch_size))
    write_atomic(os.path.join(out, 'summary.md'), header + md + '\n')
    table('\n' + header + md)
    same = rows[0]['final'] == rows[1]['final'] and all(
        rows[0][k] == rows[1][k] for k in rows[0] if k.startswith('acc@'))
    log.info("stock SNN-TB and the plugin with eta = 1, update = none agree "
             "at every listed step: {}".format('yes' if same else 'NO'))
    log.info("results: {}/log/<setting>/results.json".format(out))
    return rows
