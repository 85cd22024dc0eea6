"""Plots of ``results.json`` files (matplotlib, PNG, no display needed).

* :func:`accuracy_per_step` - top-1 accuracy per step of several settings in
  one figure, optionally with a reference curve (for example the authors'
  ``../shared/reference/authors_log_accuracy_cifar10.csv``);
* :func:`firing_rates` - Eq. 8 firing rate per spiking layer and setting;
* :func:`threshold_traces` - mean (and min-max band) of theta per step, one
  panel per spiking layer;
* :func:`figure4` - the paper's Fig. 4 for one layer and one sample: spike
  raster and histogram of normalised firing rates ``r / r_max``, stock
  beside adaptive.
"""

import os

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    # SNN-TB's update_setup sets huge fonts ([output] plotproperties).
    matplotlib.rcdefaults()
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def colours(names):
    """One colour per setting, by its place among all settings of the
    comparison: a setting keeps its colour in every figure, also in those
    that leave some settings out."""
    return {name: 'C{}'.format(i % 10) for i, name in enumerate(names)}


def _save(plt, fig, path, title=None, ax=None, bottom=0.0):
    """Title (on ``ax``, else the figure), layout (``bottom``: the fraction
    kept free for a legend below), PNG, close."""
    top = 1.0
    if title:
        if ax is not None:
            ax.set_title(title, fontsize=10)
        else:
            fig.suptitle(title, fontsize=10)
            top = 0.95
    fig.tight_layout(rect=(0, bottom, 1, top))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_reference_csv(path):
    """``(t, accuracy in [0, 1])`` from a CSV of ``t,percent`` rows
    (``#`` comments allowed); a :class:`ConfigError` for anything else."""
    from snntb_adaptive.errors import ConfigError
    if not os.path.isfile(path):
        raise ConfigError("--reference {}: file not found".format(path))
    import warnings
    try:
        with warnings.catch_warnings():   # an empty file: said below
            warnings.simplefilter('ignore', UserWarning)
            data = np.loadtxt(path, delimiter=',', comments='#', ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(
            "--reference {}: not rows of two numbers 't,percent' ({})".format(
                path, ' '.join(str(e).split())[:120])) from None
    if data.shape[0] == 0 or data.shape[1] != 2 or not np.all(
            np.isfinite(data)) or not np.all((data[:, 1] >= 0) &
                                             (data[:, 1] <= 100)):
        raise ConfigError(
            "--reference {}: give rows 't,percent' (two finite numbers, the "
            "percent from 0 to 100), e.g. 25,81.5".format(path))
    return data[:, 0], data[:, 1] / 100.0


def accuracy_per_step(results, path, reference=None, reference_label=None,
                      title=None, zoom=None):
    """``results``: mapping name -> results dict. Left: all steps; right:
    the first ``zoom`` steps (default: a fifth of T, at least 20)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8),
                             gridspec_kw={'width_ratios': [3, 2]})
    T = max(len(r['accuracy_top1_per_step']) for r in results.values())
    zoom = zoom or min(T, max(20, T // 5))
    ann = next(iter(results.values()))['ann_accuracy_top1'] * 100
    ref = read_reference_csv(reference) if reference else None
    from matplotlib.ticker import MaxNLocator
    colour = colours(results)
    for ax, last in zip(axes, (T, zoom)):
        for name, res in results.items():
            acc = np.asarray(res['accuracy_top1_per_step'])[:last] * 100
            ax.plot(np.arange(1, len(acc) + 1), acc, label=name, lw=1.4,
                    color=colour[name])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.axhline(ann, color='k', ls=':', lw=1,
                   label='ANN ({:.2f} %)'.format(ann))
        if ref is not None:
            keep = ref[0] <= last
            ax.plot(ref[0][keep], ref[1][keep] * 100, color='grey', ls='--',
                    lw=1.4, label=reference_label or 'reference')
        ax.set_xlabel('time step')
        ax.set_ylim(0, 100)
        ax.set_xlim(0, last)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('top-1 accuracy (%)')
    axes[1].set_title('first {} steps'.format(zoom), fontsize=9)
    axes[0].legend(fontsize=8, loc='lower right')
    return _save(plt, fig, path, title)


def accuracy_log_steps(results, path, title=None):
    """Accuracy against steps on a logarithmic step axis (the low-latency
    end readable beside the long tail), one line per setting, the ANN as a
    dotted line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ann = next(iter(results.values()))['ann_accuracy_top1'] * 100
    T = 1
    colour = colours(results)
    for name, res in results.items():
        acc = np.asarray(res['accuracy_top1_per_step']) * 100
        T = max(T, len(acc))
        ax.plot(np.arange(1, len(acc) + 1), acc, label=name, lw=1.4,
                color=colour[name])
    ax.axhline(ann, color='k', ls=':', lw=1, label='ANN ({:.2f} %)'.format(
        ann))
    from matplotlib.ticker import FixedLocator, NullLocator
    ax.set_xscale('log', base=2)
    ax.set_xlim(1, T)
    ax.xaxis.set_major_locator(FixedLocator(
        [2 ** k for k in range(int(np.log2(T)) + 1)]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter('{x:.0f}')
    ax.set_ylim(0, 100)
    ax.set_xlabel('time step (log scale)')
    ax.set_ylabel('top-1 accuracy (%)')
    ax.grid(alpha=0.3, which='both')
    # late steps are near the ANN, early ones low: the lower right is free
    ax.legend(fontsize=8, loc='lower right')
    return _save(plt, fig, path, title)


def _layer_union(per_setting):
    """Layer names of several settings in network order (SNN-TB's names
    start with the layer's index), each once: settings may differ in which
    layers have neurons."""
    names = {}
    for layers in per_setting:
        for lay in layers:
            names.setdefault(lay, len(names))
    return sorted(names, key=lambda n: (_leading_int(n, names[n]), names[n]))


def _leading_int(name, fallback):
    digits = len(name) - len(name.lstrip('0123456789'))
    return int(name[:digits]) if digits else fallback


def firing_rates(results, path, title=None):
    plt = _plt()
    named = {n: r for n, r in results.items()
             if r.get('firing_rate_per_layer')}
    if not named:
        return None
    colour = colours(results)
    left_out = [n for n in results if n not in named]
    layers = _layer_union(r['firing_rate_per_layer'] for r in named.values())
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(layers) + 3), 4.8))
    width = 0.8 / len(named)
    x = np.arange(len(layers))
    for i, (name, res) in enumerate(named.items()):
        # a layer a setting has no neurons in (linear pooling) has no bar
        rates = [res['firing_rate_per_layer'].get(lay, np.nan)
                 for lay in layers]
        ax.bar(x + i * width - 0.4 + width / 2, rates, width, label=name,
               color=colour[name])
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=45, ha='right', fontsize=7)
    ax.set_xlabel('spiking layer')
    ax.set_ylabel('firing rate (spikes / neuron / step)')
    ax.legend(fontsize=8)
    if left_out:
        ax.text(0.0, 1.01, 'not shown: {} (SNN-TB\'s simulator records no '
                'per-layer rates)'.format(', '.join(left_out)),
                transform=ax.transAxes, fontsize=7, va='bottom')
    return _save(plt, fig, path, title, ax if not left_out else None)


def threshold_traces(results, path, title=None):
    plt = _plt()
    named = {n: r for n, r in results.items() if r.get('threshold_trace')}
    if not named:
        return None
    layers = _layer_union(r['threshold_trace'] for r in named.values())
    cols = min(4, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows),
                             squeeze=False, sharex=True)
    colour = colours(results)
    handles = {}
    for ax, lay in zip(axes.flat, layers):
        for name, res in named.items():
            if lay not in res['threshold_trace']:
                continue           # no neurons there in this setting
            tr = res['threshold_trace'][lay]
            t = np.arange(1, len(tr['mean']) + 1)
            handles[name], = ax.plot(t, tr['mean'], lw=1.2, label=name,
                                     color=colour[name])
            ax.fill_between(t, tr['min'], tr['max'], alpha=0.15,
                            color=colour[name])
        ax.set_title(lay, fontsize=8)
        ax.tick_params(labelsize=7)
    for i, ax in enumerate(list(axes.flat)[len(layers):], len(layers)):
        ax.axis('off')
        # the panel above an empty one shows its own step ticks
        axes.flat[i - cols].xaxis.set_tick_params(labelbottom=True)
    # one legend for all panels, below them, where it covers no band
    height = 2.6 * rows + 0.9
    fig.set_figheight(height)
    fig.legend(list(handles.values()), list(handles), loc='lower center',
               ncol=min(len(handles), 4), fontsize=8, frameon=False)
    fig.supxlabel('time step', fontsize=9, y=0.32 / height, va='bottom')
    fig.supylabel('threshold theta (mean, min-max band)', fontsize=9)
    return _save(plt, fig, path, title, bottom=0.55 / height)


def figure4(trains, path, layer_name, sample, max_neurons=400, title=None,
            colour=None):
    """``trains``: mapping setting name -> spikes ``(T, ...)`` of one layer
    for one sample. Left: raster (the first ``max_neurons`` neurons that
    fire in any setting); right: histogram of ``r / r_max``."""
    plt = _plt()
    names = list(trains)
    flat = {n: (np.asarray(trains[n]).reshape(len(trains[n]), -1) != 0)
            for n in names}
    active = np.nonzero(np.any([f.any(0) for f in flat.values()], axis=0))[0]
    shown = active[:max_neurons]
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 3 * len(names)),
                             squeeze=False)
    for row, n in enumerate(names):
        f = flat[n]
        t_idx, j = np.nonzero(f[:, shown])
        ax = axes[row, 0]
        ax.scatter(t_idx + 1, j, s=1, marker='|', color='k')
        ax.set_ylabel('neuron (of {} active)'.format(len(active)), fontsize=8)
        ax.set_title('{}: {} spikes of {} neurons, T = {}'.format(
            n, int(f.sum()), f.shape[1], f.shape[0]), fontsize=9)
        rate = f.sum(0) / f.shape[0]
        r = rate[rate > 0] / rate.max() if rate.max() > 0 else rate[:0]
        ax2 = axes[row, 1]
        ax2.hist(r, bins=20, range=(0, 1),
                 color=(colour or {}).get(n, 'C{}'.format(row)))
        ax2.set_xlabel('normalised firing rate r / r_max (firing neurons)',
                       fontsize=8)
        ax2.set_ylabel('neurons', fontsize=8)
        ax2.set_title('mean r / r_max = {:.3f}'.format(
            float(r.mean()) if r.size else 0.0), fontsize=9)
    axes[-1, 0].set_xlabel('time step', fontsize=8)
    return _save(plt, fig, path, title or 'Fig. 4: layer {}, sample {}'
                 .format(layer_name, sample))
