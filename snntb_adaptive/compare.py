"""``python -m snntb_adaptive compare``: one model, one data set, several
settings; parse and normalise once; one table and the plots.

    python -m snntb_adaptive compare CONFIG.ini \
        --settings stock,authors_executed,paper,authors_code \
        [--eta 0.6,0.7,0.8,0.9] [--steps 25,50,100,200] [--out DIR] \
        [--reference ../shared/reference/authors_log_accuracy_cifar10.csv] \
        [--raster-layer auto] [--raster-sample 0] [--raster-setting paper] \
        [--set simulation.duration=200 --set simulation.num_to_test=500]

A setting is ``stock`` (SNN-TB's own ``temporal_mean_rate`` simulator) or a
preset name, optionally with ``[adaptive_threshold]`` keys:
``paper:eta_scale=0.8:scope=batch``. ``--eta`` runs every non-stock setting
at each of the given ``eta_scale`` values. ``CONFIG`` gives the model, data,
duration, batch size, number of samples, ... (its ``[adaptive_threshold]``
section is the base the settings override).

Writes into ``--out`` (default ``<log folder of CONFIG>/../compare``):
``summary.csv``, ``summary.md``, ``accuracy.png``, ``firing_rates.png``,
``thresholds.png``, ``fig4_<layer>.png`` and each setting's
``runs/<setting>/results.json``.
"""

import csv
import io
import os
from collections import OrderedDict

import numpy as np

from snntb_adaptive.compat import write_atomic
from snntb_adaptive.errors import ConfigError, CorruptFileError
from snntb_adaptive.log import log, table
from snntb_adaptive.config import PRESETS
from snntb_adaptive.session import (STOCK, Session, format_markdown,
                                    parse_setting, summary_row)

#: the plugin's twin of stock SNN-TB (identical spikes, tested), used for
#: the stock side of Fig. 4, and how the figure names it
STOCK_TWIN = 'authors_executed:eta_scale=1:update=none'
STOCK_TWIN_LABEL = 'plugin, eta = 1, update = none (spikes of stock SNN-TB)'
#: a comparison's plot settings (its title), for ``plot`` to redraw with
PLOTS_FILE = 'plots.json'


def expand_settings(settings, etas=None):
    out = []
    for s in settings:
        name, keys = parse_setting(s)
        if etas and name != STOCK and 'eta_scale' not in keys:
            out += ['{}:eta_scale={}'.format(s, e) for e in etas]
        else:
            out.append(s)
    return out


def label_of(setting):
    name, keys = parse_setting(setting)
    return ' '.join([name] + ['{}={}'.format(k, v) for k, v in keys.items()])


def folder_of(setting):
    return setting.replace(':', '_').replace('/', '_')


def _csv(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def raster_layer_index(parsed, config, layer):
    """The spiking layer of Fig. 4: ``layer`` is SNN-TB's layer name, or its
    index in the parsed model (without the input layer: the number that
    starts SNN-TB's names), or ``'auto'``: the second spiking layer with
    weights (the first that integrates spikes rather than the constant input
    current), else the first spiking layer. Returns the position among the
    spiking layers and the name."""
    from snntb_adaptive.network import spiking_layers
    spiking = spiking_layers(parsed, config)
    names = [lay.name for lay in spiking]
    if str(layer) == 'auto':
        weighted = [k for k, lay in enumerate(spiking) if lay.weights]
        k = weighted[1] if len(weighted) > 1 else 0
        return k, names[k]
    all_names = [lay.name for lay in parsed.layers[1:]]
    if str(layer).isdigit() and int(layer) < len(all_names):
        layer = all_names[int(layer)]
    if layer not in names:
        raise ConfigError(
            "--raster-layer {!r}: not a spiking layer of this model; give "
            "the name or index of one of: {}".format(layer, ', '.join(names)))
    return names.index(layer), layer


def parse_overrides(items):
    """``['simulation.duration=200']`` -> ``{('simulation', 'duration'):
    '200'}``."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition('=')
        section, dot, option = key.strip().partition('.')
        if not (sep and dot and section and option):
            raise ConfigError("--set {!r}: expected SECTION.KEY=VALUE, e.g. "
                              "simulation.duration=200".format(item))
        out[section, option] = value.strip()
    return out


def draw_plots(out, results, reference=None, reference_label=None,
               title=None):
    """accuracy.png, accuracy_log.png (log-scale steps), firing_rates.png
    and thresholds.png of a comparison. The title is kept in
    ``plots.json``, so that ``plot`` redraws with it when given none."""
    import json
    from snntb_adaptive import plots
    kept = os.path.join(out, PLOTS_FILE)
    if title is None and os.path.isfile(kept):
        try:
            with open(kept) as f:
                title = json.load(f).get('title')
        except (ValueError, AttributeError, RecursionError):
            title = None
        title = title if isinstance(title, str) else None
    write_atomic(kept, json.dumps({'title': title}) + '\n')
    plots.accuracy_per_step(results, os.path.join(out, 'accuracy.png'),
                            reference, reference_label, title)
    plots.accuracy_log_steps(results, os.path.join(out, 'accuracy_log.png'),
                             title)
    plots.firing_rates(results, os.path.join(out, 'firing_rates.png'), title)
    plots.threshold_traces(results, os.path.join(out, 'thresholds.png'),
                           title)


def load_comparison(out):
    """The results of a comparison's settings, in its table's order, and the
    steps of its accuracy columns. A comparison stopped before it wrote its
    table gives the settings it finished (by folder name) and no steps."""
    from snntb_adaptive.metrics import load_results
    summary = os.path.join(out, 'summary.csv')
    runs = os.path.join(out, 'runs')
    if not os.path.isfile(summary) and os.path.isdir(runs):
        # a comparison stopped before its table: the settings it finished
        names = sorted(n for n in os.listdir(runs) if os.path.isfile(
            os.path.join(runs, n, 'results.json')))
        if names:
            found = OrderedDict()
            for n in names:
                path = os.path.join(runs, n, 'results.json')
                found[n] = load_results(path)
                check_results(found[n], path)
            return found, None
    if not os.path.isfile(summary):
        raise ConfigError("{} not found: give the --out folder of a "
                          "comparison".format(summary))
    try:
        with open(summary, newline='') as f:
            reader = csv.DictReader(f)
            labels = [row['setting'] for row in reader]
            steps = [int(c[4:]) for c in reader.fieldnames
                     if c.startswith('acc@')]
    except (KeyError, TypeError, ValueError, csv.Error,
            UnicodeDecodeError) as e:
        raise CorruptFileError(
            "{} is not a comparison's table ({}: {}); run the comparison "
            "again".format(summary, type(e).__name__, e)) from None
    for label in labels:
        if not label or os.sep in label or label in (os.curdir, os.pardir):
            raise CorruptFileError("{}: setting {!r} is not a folder name of "
                                   "runs/".format(summary, label))
    results = OrderedDict()
    for label in labels:
        path = os.path.join(out, 'runs', label.replace(' ', '_'),
                            'results.json')
        if not os.path.isfile(path):
            raise CorruptFileError("{} names setting {!r}, but {} is not "
                                   "there".format(summary, label, path))
        results[label] = load_results(path)
        check_results(results[label], path)
    return results, steps


def check_results(res, path):
    """A :class:`CorruptFileError` for a ``results.json`` whose parts the
    table and plots read are not of the types a run writes."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) \
            and np.isfinite(v)

    def numbers(v):
        return isinstance(v, list) and len(v) > 0 and all(
            number(x) for x in v)
    why = None
    if not isinstance(res, dict):
        why = 'not an object'
    elif not numbers(res.get('accuracy_top1_per_step')) or not all(
            0 <= a <= 1 for a in res['accuracy_top1_per_step']):
        why = 'accuracy_top1_per_step is not a list of accuracies'
    elif not number(res.get('ann_accuracy_top1')):
        why = 'ann_accuracy_top1 is not a number'
    elif not (isinstance(res.get('num_samples'), int) and
              res['num_samples'] >= 1):
        why = 'num_samples is not a whole number >= 1'
    elif not isinstance(res.get('firing_rate_per_layer') or {}, dict) or \
            not all(number(v) for v in (
                res.get('firing_rate_per_layer') or {}).values()):
        why = 'firing_rate_per_layer is not numbers per layer'
    elif not isinstance(res.get('threshold_trace') or {}, dict) or not all(
            isinstance(t, dict) and all(numbers(t.get(k)) for k in (
                'mean', 'min', 'max')) for t in (
                res.get('threshold_trace') or {}).values()):
        why = 'threshold_trace is not mean, min and max per layer'
    if why is not None:
        raise CorruptFileError(
            "{} cannot be drawn: {}; it is damaged, or not a results file of "
            "this version: run its setting again".format(path, why))


def _drawing(out, work):
    """``work()``, with anything a damaged results file or table makes the
    table or plots stumble over said in one line."""
    try:
        return work()
    except (KeyError, TypeError, ValueError, IndexError,
            AttributeError) as e:
        raise CorruptFileError(
            "the comparison in {} cannot be drawn ({}: {}); its results "
            "files or summary.csv are damaged or of another version: run "
            "the comparison again".format(out, type(e).__name__,
                                          ' '.join(str(e).split())[:200])
        ) from None


def replot(out, reference=None, reference_label=None, title=None):
    """Redraw a comparison's plots (not Fig. 4, which needs a simulation)
    from ``out/summary.csv`` and ``out/runs/<setting>/results.json``."""
    from snntb_adaptive.plots import read_reference_csv
    if reference:
        read_reference_csv(reference)       # before any drawing
    results, steps = load_comparison(out)
    if steps is None:
        raise ConfigError("{}: no summary.csv (the comparison was stopped); "
                          "merge its finished settings with plot ... --into"
                          "".format(out))
    _drawing(out, lambda: draw_plots(out, results, reference,
                                     reference_label, title))
    return results


def steps_to_ann(res, points=1.0):
    """The first step from which the accuracy stays within ``points``
    percentage points of the ANN until the last step; None if never."""
    acc = res['accuracy_top1_per_step']
    target = res['ann_accuracy_top1'] - points / 100.0
    step = None
    for t in range(len(acc), 0, -1):
        if acc[t - 1] < target - 1e-12:
            break
        step = t
    return step


def merge(outs, into, title=None):
    """One table and one set of plots of several comparisons of the same
    model and images (e.g. methods run at different times): ``into``
    gets summary.md, summary.csv (with ``steps to ANN - 1``, the first step
    from which the accuracy stays within 1 point of the ANN, and ``spikes
    per image`` over all T steps) and the plots.
    Refuses comparisons on different images or with different ANN
    accuracies."""
    merged, steps, first = OrderedDict(), None, None
    for out in outs:
        results, cols = load_comparison(out)
        steps = steps or cols
        for label, res in results.items():
            key = (res['num_samples'], res['ann_accuracy_top1'])
            if first is None:
                first = key
            elif key != first:
                raise ConfigError(
                    "{}: setting {!r} was run on {} images with ANN "
                    "accuracy {:.4f}, the first on {} with {:.4f}; merge "
                    "comparisons of the same model and images only".format(
                        out, label, key[0], key[1], first[0], first[1]))
            merged[label if label not in merged else
                   '{} ({})'.format(label, os.path.basename(out))] = res
    if steps is None:
        raise ConfigError("none of {} has a summary.csv to take the steps "
                          "of the table from".format(', '.join(outs)))
    return _drawing(', '.join(outs), lambda: _merged_table_and_plots(
        merged, steps, into, title))


def _merged_table_and_plots(merged, steps, into, title):
    os.makedirs(into, exist_ok=True)
    rows = []
    for label, res in merged.items():
        row = summary_row(label, res, steps)
        row['steps to ANN - 1'] = steps_to_ann(res)
        row['spikes per image'] = int(round(sum(
            res['spikes_per_layer'].values()) / res['num_samples']))
        rows.append(row)
    write_atomic(os.path.join(into, 'summary.csv'), _csv(rows))
    write_atomic(os.path.join(into, 'summary.md'),
                 format_markdown(rows) + '\n')
    draw_plots(into, merged, title=title)
    table(format_markdown(rows))
    return rows


def run_compare(config_path, settings, steps=(25, 50, 100, 200), out=None,
                etas=None, reference=None, reference_label=None,
                raster_layer='auto', raster_sample=0, raster_setting='paper',
                title=None, overrides=()):
    from snntb_adaptive import plots
    if reference:   # checked now, not after the simulation
        plots.read_reference_csv(reference)
    settings = expand_settings(settings, etas)
    for s in settings:
        name, _ = parse_setting(s)
        if name != STOCK:
            if name not in PRESETS:
                raise ConfigError(
                    "setting {!r}: {!r} is neither 'stock' nor a preset "
                    "({})".format(s, name, ', '.join(PRESETS)))
    session = Session(config_path, overrides=parse_overrides(overrides))
    if raster_setting != STOCK:
        name, _ = parse_setting(raster_setting)
        if name not in PRESETS:
            raise ConfigError("--raster-setting {!r}: give a preset ({})"
                              "".format(raster_setting, ', '.join(PRESETS)))
    out = os.path.abspath(out or os.path.join(session.log_root, 'compare'))
    session.log_root = os.path.join(out, 'runs')
    os.makedirs(session.log_root, exist_ok=True)
    session.prepare()
    raster = None
    if raster_layer and str(raster_layer) != 'none':
        raster = raster_layer_index(session.parsed, session.config,
                                    raster_layer)
    duration = session.config.getint('simulation', 'duration')
    steps = [t for t in steps if t <= duration]
    if duration not in steps:
        steps.append(duration)

    by_folder = session.run_many([(s, folder_of(s)) for s in settings])
    results = OrderedDict((label_of(s), by_folder[folder_of(s)])
                          for s in settings)

    rows = [summary_row(name, res, steps) for name, res in results.items()]
    header = ("{}: {} samples, T = {}, batch {}; ANN top-1 {:.2f} %.\n\n"
              .format(os.path.basename(config_path),
                      next(iter(results.values()))['num_samples'], duration,
                      session.config.get('simulation', 'batch_size'),
                      100 * rows[0]['ANN']))
    write_atomic(os.path.join(out, 'summary.md'),
                 header + format_markdown(rows) + '\n')
    write_atomic(os.path.join(out, 'summary.csv'), _csv(rows))
    title = title or os.path.basename(config_path)
    draw_plots(out, results, reference, reference_label, title)
    if raster is not None:
        k, lname = raster
        trains = OrderedDict()
        for label, setting in [(STOCK_TWIN_LABEL, STOCK_TWIN),
                               (label_of(raster_setting), raster_setting)]:
            trains[label] = session.spike_train(setting, k, raster_sample)
        colour = plots.colours(results)
        colour[STOCK_TWIN_LABEL] = colour.get(STOCK, 'C0')
        plots.figure4(trains, os.path.join(
            out, 'fig4_{}.png'.format(folder_of(lname))), lname,
            raster_sample, colour=colour)
    table('\n' + header + format_markdown(rows))
    log.info("written to {}".format(out))
    return results, rows
