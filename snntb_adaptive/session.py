"""Run one model under several settings, parsing and normalising once.

SNN-TB's ``run_pipeline`` parses, normalises, converts and simulates for one
config. To compare settings fairly (and quickly) a session runs the stages of
:mod:`snntb_adaptive.pipeline` up to Phase 1 once, then builds one spiking
network per setting from the same parsed, normalised model:

* ``stock``: SNN-TB's own ``temporal_mean_rate`` INI simulator, unmodified;
  accuracy per step is recorded from its output (it does not report spikes
  per layer or thresholds);
* anything else: the plugin's simulator with the given
  ``[adaptive_threshold]`` keys (a preset name, plus any overrides).

Every setting writes ``results.json`` into its own log folder
``<log root>/<setting name>/``.
"""

import configparser
import os

from snntb_adaptive import pipeline
from snntb_adaptive.errors import ConfigError
from snntb_adaptive.log import log

STOCK = 'stock'


def copy_config(config, overrides=None):
    """An independent copy of a SNN-TB config; ``overrides`` maps
    ``(section, key)`` to a value."""
    from snntb_adaptive.executors import config_from_sections, \
        config_sections
    new = config_from_sections(config_sections(config))
    for (section, key), value in (overrides or {}).items():
        if not new.has_section(section):
            new.add_section(section)
        new.set(section, key, str(value))
    return new


def parse_setting(text):
    """``'paper'`` -> preset paper; ``'paper:eta_scale=0.8:scope=batch'`` ->
    preset with overrides; ``'stock'`` -> SNN-TB's own simulator."""
    parts = text.split(':')
    name = parts[0]
    keys = {}
    for p in parts[1:]:
        if '=' not in p:
            raise ConfigError("setting {!r}: {!r} is not KEY=VALUE".format(
                text, p))
        k, v = p.split('=', 1)
        keys[k.strip()] = v.strip()
    return name, keys


class Session:
    """One model, one data set, parsed and normalised once."""

    def __init__(self, config_path, log_root=None, overrides=None):
        """``overrides``: ``{(section, key): value}`` applied to the config
        file's values, before SNN-TB's checks (the file is not changed)."""
        config_path = os.path.abspath(config_path)
        if overrides:
            copy = self._with_overrides(config_path, overrides)
            try:
                self.config = pipeline.validate(copy)
            finally:
                os.remove(copy)
        else:
            self.config = pipeline.validate(config_path)
        self.log_root = log_root or os.path.dirname(
            self.config.get('paths', 'log_dir_of_current_run'))
        self.parsed = None
        self._other_phase1 = {}     # Phase-1 key -> its parsed model
        self.testset = None
        self._snns = {}

    @staticmethod
    def _with_overrides(config_path, overrides):
        """A temporary copy of the config file with ``overrides``. SNN-TB
        resolves relative paths against the working folder, so they keep
        their meaning; an empty ``path_wd`` (the config's folder) is made
        explicit."""
        import tempfile
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.optionxform = str
        cfg.read(config_path, encoding='utf-8-sig')  # a byte-order mark too
        if not cfg.get('paths', 'path_wd', fallback=''):
            if not cfg.has_section('paths'):
                cfg.add_section('paths')
            cfg.set('paths', 'path_wd', os.path.dirname(config_path))
        for (section, key), value in overrides.items():
            if not cfg.has_section(section):
                cfg.add_section(section)
            cfg.set(section, key, str(value))
        fd, path = tempfile.mkstemp(prefix='snntb-adaptive-', suffix='.ini')
        with os.fdopen(fd, 'w') as f:
            cfg.write(f)
        return path

    def prepare(self):
        """The parse and Phase-1 stages, once."""
        prepared = pipeline.prepare(self.config)
        self.parsed, self.testset = prepared.parsed, prepared.testset
        return self

    @staticmethod
    def phase1_of(config):
        """What a setting's Phase 1 is: the method and what it depends on
        (SNN-TB's own simulator: its weight normalisation)."""
        from snntb_adaptive.config import is_adaptive, settings_from_config
        return settings_from_config(config).phase1_key() \
            if is_adaptive(config) else ('weight_norm',)

    def parsed_for(self, config):
        """The parsed model a setting runs on: the session's, or, when the
        setting's Phase 1 differs (``spike_norm`` or ``calibrated`` beside
        weight normalisation, or another calibration), a model parsed and
        set up by that Phase 1, once per distinct Phase 1."""
        key = self.phase1_of(config)
        if key == self.phase1_of(self.config):
            return self.parsed
        if key not in self._other_phase1:
            log.info("Phase 1 by {} for the settings that ask for it"
                     "".format(key[0]))
            self._other_phase1[key] = pipeline.prepare(config).parsed
        return self._other_phase1[key]

    def setting_config(self, label, preset, keys):
        """The config of one setting: the session's config with its own log
        folder ``<log root>/<label>``, and for a preset its
        ``[adaptive_threshold]`` keys. ``update`` and ``scope`` come from
        the preset unless ``keys`` gives them; ``eta_scale`` and ``readout``
        from the session's config unless ``keys`` gives them."""
        overrides = {('paths', 'log_dir_of_current_run'):
                     os.path.join(self.log_root, label)}
        if preset == STOCK:
            overrides[('conversion', 'spike_code')] = 'temporal_mean_rate'
        else:
            overrides[('conversion', 'spike_code')] = 'adaptive_threshold'
            overrides[('adaptive_threshold', 'preset')] = preset
            overrides[('adaptive_threshold', 'update')] = ''
            overrides[('adaptive_threshold', 'scope')] = ''
            for k, v in keys.items():
                overrides[('adaptive_threshold', k)] = v
        return copy_config(self.config, overrides)

    def build(self, setting, label=None):
        """The plugin's spiking network for one (non-stock) setting, built
        once per setting and label."""
        from snntb_adaptive.config import (check_snntb_options,
                                           settings_from_config)
        if self.parsed is None:
            self.prepare()
        label = label or setting.replace(':', '_')
        if (setting, label) in self._snns:
            return self._snns[setting, label]
        name, keys = parse_setting(setting)
        cfg = self.setting_config(label, name, keys)
        settings_from_config(cfg)  # validates
        check_snntb_options(cfg)
        snn = pipeline.build(cfg, self.parsed_for(cfg), self.testset)
        self._snns[setting, label] = snn
        return snn

    def run(self, setting, label=None):
        """Run one setting (see :func:`parse_setting`); returns its
        results dict, also written to ``<log root>/<label>/results.json``."""
        if self.parsed is None:
            self.prepare()
        name, keys = parse_setting(setting)
        if name == STOCK:
            return self._run_stock(self.setting_config(
                label or setting.replace(':', '_'), STOCK, keys))
        snn = self.build(setting, label)
        snn.run(**self.testset)
        return snn.results

    def run_many(self, settings):
        """Run several settings, given as ``[(setting, label), ...]``;
        returns ``{label: results}`` in that order. With ``[adaptive_threshold]
        executor = ray`` the batches of every setting are units of work on
        the cluster together (so five settings keep all workers busy); else
        one setting after the other in this process. The results are the
        same either way."""
        from snntb_adaptive.config import execution_from_config
        if self.parsed is None:
            self.prepare()
        execution = execution_from_config(self.config)
        if execution.executor != 'ray':
            results = {}
            for setting, label in settings:
                log.info("run: {}".format(label))
                results[label] = self.run(setting, label)
            return results
        from snntb_adaptive import executors
        jobs, finish = [], []
        for setting, label in settings:
            name, keys = parse_setting(setting)
            if name == STOCK:
                _, job, finish_stock = self._stock_job(
                    self.setting_config(label, STOCK, keys), label)
                finish.append(finish_stock)
            else:
                snn = self.build(setting, label)
                job = snn.start_run(self.testset['x_test'],
                                    self.testset['y_test'], key=label)
                finish.append(lambda seconds, job=job, snn=snn:
                              snn.finish_run(job, seconds))
            jobs.append(job)
        try:
            seconds = executors.simulate_on_ray(execution, jobs)
        finally:
            for job in jobs:
                if job.progress is not None:
                    job.progress.close()
        return {label: done(seconds)
                for (_, label), done in zip(settings, finish)}

    def spike_train(self, setting, layer_index, sample):
        """Spikes ``(T, ...)`` of one spiking layer for one test sample
        (simulated in its batch, from a fresh state)."""
        snn = self.build(setting)
        bs = snn.batch_size
        b = sample // bs
        x = self.testset['x_test'][b * bs:(b + 1) * bs]
        if len(x) < bs:
            raise ConfigError("sample {} is not in a full batch of the test "
                              "set".format(sample))
        snn.reset(0)
        spikes = snn.simulate_spikes(x, layers=[layer_index],
                                     sample=sample % bs)[0]
        snn.reset(0)
        return spikes

    def _stock_job(self, cfg, key=STOCK):
        """SNN-TB's own simulator for ``cfg``: ``(snn, job, finish)``, where
        ``job`` is an :class:`~snntb_adaptive.executors.Job` (accuracy per
        step only: SNN-TB reports no per-layer spikes or thresholds) and
        ``finish(seconds)`` records its results."""
        from snntb_adaptive.executors import Job
        from snntb_adaptive.metrics import RunRecorder
        from snntb_adaptive.network import layer_rows
        parsed = self.parsed_for(cfg)
        snn = pipeline.build(cfg, parsed, self.testset)
        job = Job(key, cfg, parsed, self.testset['x_test'],
                  self.testset['y_test'], RunRecorder(
                      layer_rows(parsed, cfg), snn._num_timesteps, snn.top_k,
                      snn.num_classes))
        settings = {'preset': STOCK,
                    'simulator': 'SNN-TB temporal_mean_rate',
                    **pipeline.run_settings(snn)}

        def finish(seconds):
            return pipeline.record(cfg.get('paths', 'log_dir_of_current_run'),
                                   job.recorder, settings, seconds)
        return snn, job, finish

    def _run_stock(self, cfg):
        """SNN-TB's own simulator through the simulate and record stages."""
        snn, job, finish = self._stock_job(cfg)
        return finish(pipeline.simulate(
            pipeline.batch_simulator(snn), snn.reset, job.parsed_model,
            job.x_test, job.y_test, snn.batch_size,
            cfg.getint('simulation', 'num_to_test'), job.recorder))


def summary_row(name, res, steps):
    """One row of a comparison table."""
    acc = res['accuracy_top1_per_step']
    row = {'setting': name}
    for t in steps:
        row['acc@{}'.format(t)] = acc[t - 1] if t <= len(acc) else None
    row['final'] = res['final_accuracy_top1']
    row['ANN'] = res['ann_accuracy_top1']
    row['convergence step'] = res['convergence_step']
    row['firing rate'] = res['firing_rate']
    # cost per image (millions): synaptic operations of the spikes over all
    # T steps, and the ANN's multiply-accumulates (older results: none)
    synops = res.get('synaptic_operations_per_image')
    macs = res.get('ann_macs_per_image')
    row['synops (M)'] = None if synops is None else synops / 1e6
    row['ANN MACs (M)'] = None if macs is None else macs / 1e6
    return row


def format_markdown(rows):
    """A Markdown table of :func:`summary_row` rows."""
    cols = list(rows[0])
    percent = {c for c in cols if c.startswith('acc@') or c in ('final',
                                                               'ANN')}

    def fmt(col, v):
        if v is None:
            return '-'
        if col in percent:
            return '{:.2f} %'.format(100 * v)
        if col.endswith('(M)'):
            return '{:.2f}'.format(v)
        if isinstance(v, float):
            return '{:.4f}'.format(v)
        return str(v)

    lines = ['| ' + ' | '.join(cols) + ' |',
             '|' + '|'.join('---' for _ in cols) + '|']
    for r in rows:
        lines.append('| ' + ' | '.join(fmt(c, r[c]) for c in cols) + ' |')
    return '\n'.join(lines)
