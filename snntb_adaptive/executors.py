"""Running a simulation's batches on a Ray cluster (``executor = ray``).

The driver (the process that runs SNN-TB's pipeline) parses the model and
runs Phase 1 once, as for a local run. Then:

1. the normalised parsed model (its JSON and weights) and the test data go
   into Ray's object store once (:func:`simulate_on_ray`), so workers need
   no shared file system;
2. ``workers`` Ray actors (:class:`SimulationWorker`, each with
   ``threads_per_worker`` TensorFlow threads) rebuild the model from it and
   build each setting's spiking network once, on its first batch, and keep
   it warm;
3. the driver hands out ``(setting, batch)`` units as workers free up; a
   worker simulates the batch exactly as a local run does
   (:func:`snntb_adaptive.pipeline.batch_record`) and returns its record;
4. the driver adds the records to each setting's recorder and appends them
   to its ``progress.jsonl`` in batch order, so ``results.json`` and the
   progress file are those of a local run (and ``--resume`` works across
   executors).

A worker killed mid-batch is restarted by Ray and its batch retried
(``max_restarts`` and ``max_task_retries`` unlimited): every batch starts
from SNN-TB's reset state, so the retry gives the same record. A driver
killed mid-run loses at most the batches not yet appended; ``--resume``
continues.

``ray_address`` empty starts a Ray instance on this machine for the run
(and stops it after); ``auto`` or ``host:port`` joins a running cluster,
whose nodes must have this package, SNN-TB and TensorFlow installed.

Ray is an optional dependency (``pip install .[ray]``); without it,
``executor = ray`` is a :class:`~snntb_adaptive.errors.ConfigError`.
"""

import configparser
import os
import time
from typing import NamedTuple

from snntb_adaptive.errors import ConfigError, RunStopped
from snntb_adaptive.log import log, table
from snntb_adaptive.pipeline import sigterm_as_interrupt, stopped_message


class Job(NamedTuple):
    """One setting to simulate on the cluster, as the driver holds it."""

    key: str                 #: unique name of the setting
    config: object           #: its SNN-TB config (ConfigParser)
    parsed_model: object     #: the normalised parsed model of the setting
    x_test: object           #: test data (the same object for all jobs)
    y_test: object
    recorder: object         #: :class:`~snntb_adaptive.metrics.RunRecorder`
    progress: object = None  #: :class:`~snntb_adaptive.progress.Progress`


def import_ray():
    """The ``ray`` module, or a :class:`ConfigError` that says how to get
    it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "[adaptive_threshold] executor = ray, but Ray is not installed; "
            "install the plugin with its Ray extra (pip install "
            "'snntb-adaptive[ray]', or pip install -e '.[ray]' in a "
            "checkout), or set executor = local") from None
    return ray


def config_sections(config):
    """A config as a plain dict of sections, raw (what a worker, or a
    comparison's copy, rebuilds it from): each section's own keys, and the
    ``[DEFAULT]`` section as such, so that ``%(key)s`` references resolve
    in the copy as in the original."""
    sections = {s: dict(config._sections[s]) for s in config.sections()}
    if config.defaults():
        sections['DEFAULT'] = dict(config.defaults())
    return sections


def config_from_sections(sections):
    config = configparser.ConfigParser()
    config.optionxform = str
    config.read_dict(sections)
    return config


class SimulationWorker:
    """A Ray actor: the normalised model and test data of a run, and the
    spiking network of each setting it was asked for, built once."""

    def __init__(self, threads):
        os.environ['TF_USE_LEGACY_KERAS'] = '1'
        from snntb_adaptive import registration
        registration.install()
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        self.models = {}     # object id -> parsed model
        self.data = None
        self.nets = {}

    def _load(self, refs):
        """The setting's parsed model and the test data, from the object
        store, each once (again after a restart). The references come in a
        list, so that Ray hands them over rather than resolving them; the
        actor holds no object-store arguments that a restart would need."""
        import ray
        model_ref, data_ref = refs
        if self.data is None:
            self.data = ray.get(data_ref)
        key = model_ref.hex()
        if key not in self.models:
            import tensorflow as tf
            shared = ray.get(model_ref)
            model = tf.keras.models.model_from_json(shared['model_json'])
            model.set_weights(shared['weights'])
            if shared.get('reference_weights') is not None:
                # the ANN before a Phase 1 that changed the function
                reference = tf.keras.models.model_from_json(
                    shared['model_json'])
                reference.set_weights(shared['reference_weights'])
                object.__setattr__(model, 'reference_ann', reference)
            if shared.get('initial_membrane'):
                # the calibration's initial membrane potentials
                object.__setattr__(model, 'initial_membrane',
                                   shared['initial_membrane'])
            self.models[key] = model
        return self.models[key], self.data['x_test'], self.data['y_test']

    def pid(self):
        return os.getpid()

    def _network(self, key, sections, parsed, x_test, y_test):
        if key not in self.nets:
            from snntb_adaptive import pipeline
            from snntb_adaptive.metrics import RunRecorder
            from snntb_adaptive.network import layer_rows
            config = config_from_sections(sections)
            snn = pipeline.build(config, parsed, {
                'x_test': x_test, 'y_test': y_test})
            recorder = RunRecorder(layer_rows(parsed, config),
                                   snn._num_timesteps, snn.top_k,
                                   snn.num_classes)
            self.nets[key] = (snn, pipeline.batch_simulator(snn), recorder)
        return self.nets[key]

    def run(self, refs, key, sections, b):
        """Simulate batch ``b`` of setting ``key``: ``(record, seconds,
        rss_mb, pid)``. ``refs``: the setting's model and the data."""
        from snntb_adaptive import pipeline
        from snntb_adaptive.progress import rss_mb
        parsed, x_test, y_test = self._load(refs)
        snn, simulate_batch, recorder = self._network(key, sections, parsed,
                                                      x_test, y_test)
        t0 = time.time()
        rec = pipeline.batch_record(simulate_batch, snn.reset, parsed,
                                    x_test, y_test, snn.batch_size,
                                    recorder, b)
        return rec, round(time.time() - t0, 4), rss_mb(), os.getpid()


def check_cluster(execution, source='[adaptive_threshold] ray_address'):
    """Before any work: a cluster answers at ``execution.ray_address``
    (``auto``: the one Ray recorded on this machine) within
    ``ray_timeout`` seconds, else a :class:`ConfigError` that names
    ``source`` (the config key, or the ``--ray-address`` flag). Nothing to
    check for an empty address (the run starts its own Ray)."""
    import socket
    address = execution.ray_address.strip()
    if not address:
        return
    fix = ("start it with 'ray start --head --node-ip-address 127.0.0.1' "
           "(see the README, Running on a cluster), or leave ray_address "
           "empty to run a Ray instance on this machine")
    target = address
    if address == 'auto':
        try:
            from ray._private.services import canonicalize_bootstrap_address
            target = canonicalize_bootstrap_address('auto')
        except Exception as e:   # Ray says why in its own words
            raise ConfigError(
                "{} = auto: no running Ray cluster found on this machine "
                "({}); {}".format(source, str(e).splitlines()[0] if str(e)
                                  else type(e).__name__, fix)) from None
    if target.startswith('ray://'):
        target = target[len('ray://'):]
    host, _, port = target.rpartition(':')
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            "{} = {}: not auto or host:port (for example 127.0.0.1:6379)"
            "".format(source, address))
    try:
        socket.create_connection((host.strip('[]'), int(port)),
                                 timeout=execution.ray_timeout).close()
    except OSError as e:
        raise ConfigError(
            "{} = {}: no Ray cluster answers at {} within {:g} s ({}); {} "
            "([adaptive_threshold] ray_timeout sets the wait)".format(
                source, address, target, execution.ray_timeout,
                e.strerror or type(e).__name__, fix)) from None


def connect(execution):
    """Join the cluster of ``execution.ray_address``, or start a Ray
    instance on this machine; returns True when this call started it (the
    caller shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs = dict(include_dashboard=False, log_to_driver=False,
                  configure_logging=False,
                  runtime_env={'env_vars': {'TF_USE_LEGACY_KERAS': '1'}})
    if execution.ray_address:
        try:
            ray.init(address=execution.ray_address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(
                "[adaptive_threshold] ray_address = {}: cannot join that Ray "
                "cluster ({}); start it with 'ray start --head' or leave "
                "ray_address empty to run a Ray instance on this "
                "machine".format(execution.ray_address,
                                 str(e).splitlines()[0] if str(e)
                                 else type(e).__name__)) from None
    else:
        ray.init(**kwargs)
    return True


class _Tracker:
    """Per job: records back in batch order."""

    def __init__(self, job):
        from snntb_adaptive.pipeline import num_batches
        cfg = job.config
        self.job = job
        self.batch_size = cfg.getint('simulation', 'batch_size')
        self.total = num_batches(cfg.getint('simulation', 'num_to_test'),
                                 len(job.x_test), self.batch_size)
        self.done = dict(job.progress.done) if job.progress is not None \
            else {}
        self.pending = {}
        self.next = 0
        self.saved = 0
        self.flush()

    def todo(self):
        return [b for b in range(self.total) if b not in self.done]

    def add(self, b, rec, seconds, rss):
        self.pending[b] = (rec, seconds, rss)
        self.flush()

    def flush(self):
        while self.next < self.total:
            b = self.next
            if b in self.done:
                self.job.recorder.add_record(self.done[b])
            elif b in self.pending:
                rec, seconds, rss = self.pending.pop(b)
                self.job.recorder.add_record(rec)
                if self.job.progress is not None:
                    self.job.progress.append(b, rec, seconds=seconds,
                                             rss_mb=rss)
                self.saved += 1
            else:
                return
            self.next += 1

    @property
    def finished(self):
        return self.next >= self.total


def simulate_on_ray(execution, jobs):
    """Simulate every job's batches on the cluster; the jobs' recorders
    (and progress files) end as after a local run. Returns the wall time.
    All jobs share one test set; each distinct parsed model (settings with
    another Phase 1 have their own) goes into the object store once."""
    import numpy as np
    ray = import_ray()
    first = jobs[0]
    for job in jobs[1:]:
        if job.x_test is not first.x_test:
            raise ValueError('jobs must share the test data')
    trackers = [_Tracker(job) for job in jobs]
    units = [(t, b) for t in trackers for b in t.todo()]
    total_units = len(units)
    started = time.time()
    started_here = connect(execution)
    actors = []
    try:
        threads = execution.threads_per_worker
        cpus = int(ray.cluster_resources().get('CPU', 1))
        n_workers = execution.workers or max(1, cpus // threads)
        n_workers = min(n_workers, max(1, len(units)))
        data_ref = ray.put({'x_test': np.asarray(first.x_test),
                            'y_test': np.asarray(first.y_test)})
        model_refs = {}
        for job in jobs:
            if id(job.parsed_model) not in model_refs:
                reference = getattr(job.parsed_model, 'reference_ann', None)
                model_refs[id(job.parsed_model)] = ray.put({
                    'model_json': job.parsed_model.to_json(),
                    'weights': job.parsed_model.get_weights(),
                    'reference_weights': None if reference is None
                    else reference.get_weights(),
                    'initial_membrane': getattr(
                        job.parsed_model, 'initial_membrane', None)})
        refs = {job.key: [model_refs[id(job.parsed_model)], data_ref]
                for job in jobs}
        worker_cls = ray.remote(num_cpus=threads, max_restarts=-1,
                                max_task_retries=-1)(SimulationWorker)
        actors = [worker_cls.remote(threads) for _ in range(n_workers)]
        sections = {t.job.key: config_sections(t.job.config)
                    for t in trackers}
        log.info("ray: {} batches on {} workers x {} threads ({} CPUs in "
                 "the cluster)".format(total_units, n_workers, threads,
                                       cpus))
        idle, inflight = list(actors), {}
        # each worker's process, to count restarts (a restarted worker
        # answers from another process)
        pids = {a._actor_id: pid for a, pid in zip(
            actors, ray.get([a.pid.remote() for a in actors]))}
        restarts, done_units = 0, 0
        with sigterm_as_interrupt():
            while units or inflight:
                while idle and units:
                    actor = idle.pop(0)
                    tracker, b = units.pop(0)
                    ref = actor.run.remote(refs[tracker.job.key],
                                           tracker.job.key,
                                           sections[tracker.job.key], b)
                    inflight[ref] = (actor, tracker, b)
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    actor, tracker, b = inflight.pop(ref)
                    rec, seconds, rss, pid = ray.get(ref)
                    idle.append(actor)
                    if pids[actor._actor_id] != pid:
                        restarts += 1
                    pids[actor._actor_id] = pid
                    tracker.add(b, rec, seconds, rss)
                    done_units += 1
                    elapsed = time.time() - started
                    images = done_units * tracker.batch_size
                    table("ray: {}/{} batches ({} batch {})  {:.1f} images/s  "
                          "{:.1f} s elapsed, {:.1f} s left  workers {} "
                          "(restarted {})".format(
                              done_units, total_units, tracker.job.key, b + 1,
                              images / elapsed, elapsed, elapsed /
                              done_units * (len(units) + len(inflight)),
                              n_workers, restarts))
        if not all(t.finished for t in trackers):
            raise RuntimeError('ray: batches missing after the run')
    except KeyboardInterrupt as e:
        what = 'stopped by SIGTERM' if str(e) == 'SIGTERM' else 'interrupted'
        raise RunStopped('; '.join(
            '{}{}'.format('' if len(trackers) == 1 else t.job.key + ': ',
                          stopped_message(what, t.job.progress,
                                          len(t.done) + t.saved, t.total))
            for t in trackers)) from None
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
    return time.time() - started
