"""Command line: ``python -m snntb_adaptive ...``, or the ``snntb-adaptive``
console script (the same commands).

    python -m snntb_adaptive -t CONFIG.ini [--resume]   SNN-TB's pipeline on
                                                        CONFIG, as
                                                        ``snntoolbox -t``
    python -m snntb_adaptive run CONFIG.ini [--resume]  the same
    python -m snntb_adaptive demo                       offline demo (digits)
    python -m snntb_adaptive compare CONFIG ...         several settings, one
                                                        table and the plots
    python -m snntb_adaptive plot OUT                   redraw a comparison
    python -m snntb_adaptive prepare-data ...           write a data folder
    python -m snntb_adaptive convert-keras3 MODEL OUT   Keras-3 -> tf-keras
    python -m snntb_adaptive convert-onnx MODEL --out H5 ONNX -> tf-keras
    python -m snntb_adaptive bench ...                  speed and memory

Every command registers the plugin itself, so it works without the ``.pth``
file. A :class:`~snntb_adaptive.errors.UserError` is printed as one line
``snntb-adaptive: error: ...`` with exit status 2.
"""

import argparse
import os
import sys

from snntb_adaptive import log, registration
from snntb_adaptive.errors import ConfigError, DataError, UserError


def run_config(path, resume=False, executor=None, ray_address=None):
    """Run SNN-TB's parse -> normalise -> simulate pipeline on ``path`` (as
    ``snntoolbox -t`` does); ``resume`` continues a killed run; ``executor``
    and ``ray_address`` override the config's keys."""
    registration.install()
    path = os.path.abspath(path)     # a missing file: validate says so
    from snntb_adaptive.config import (SECTION, is_adaptive,
                                       settings_from_config)
    from snntb_adaptive import checks, hooks
    from snntb_adaptive.pipeline import validate
    overrides = {key: value for key, value in (
        ('resume', 'True' if resume else None), ('executor', executor),
        ('ray_address', ray_address)) if value is not None}
    hooks.COMMAND_LINE = {(SECTION, k): v for k, v in overrides.items()}
    checks.ADDRESS_SOURCE = '--ray-address' if ray_address is not None \
        else None
    try:     # quiets TensorFlow before SNN-TB loads it
        config = validate(path)
    finally:
        hooks.COMMAND_LINE, checks.ADDRESS_SOURCE = {}, None
    from snntoolbox.bin.utils import run_pipeline
    if overrides:
        if not is_adaptive(config):
            raise ConfigError("--{} needs [conversion] spike_code = "
                              "adaptive_threshold".format(
                                  next(iter(overrides)).replace('_', '-')))
        for key, value in overrides.items():
            config.set(SECTION, key, value)
        settings_from_config(config)        # validates the new values
    from snntb_adaptive.progress import release_model_locks
    try:
        return run_pipeline(config)
    finally:
        release_model_locks()      # other labels may use the model now


def calibrate_config(path, overrides=None):
    """Only the calibration of ``path`` (``preset = calibrated``): SNN-TB's
    checks, the parse and the Phase-1 step, which writes (or, unchanged,
    reuses) ``calibration.json`` in the run's log folder; no simulation.
    ``overrides``: ``{(section, key): value}`` over the file's values (the
    file is not changed). Returns the calibration file's path."""
    registration.install()
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError("config file {} not found".format(path))
    from snntb_adaptive import pipeline
    from snntb_adaptive.config import is_adaptive, settings_from_config
    from snntb_adaptive.session import Session
    copy = Session._with_overrides(path, overrides) if overrides else path
    try:
        config = pipeline.validate(copy)
    finally:
        if copy != path:
            os.remove(copy)
    if not is_adaptive(config):
        raise ConfigError(
            "calibrate: {} sets [conversion] spike_code = {}; set it to "
            "adaptive_threshold (or pass --set conversion.spike_code="
            "adaptive_threshold)".format(
                path, config.get('conversion', 'spike_code')))
    preset = settings_from_config(config).preset
    if settings_from_config(config).phase1 != 'calibrated':
        raise ConfigError(
            "calibrate: {} sets [adaptive_threshold] preset = {}; set preset "
            "= calibrated (or pass --set adaptive_threshold.preset="
            "calibrated)".format(path, preset))
    if not config.getboolean('tools', 'normalize'):
        raise ConfigError("calibrate: [tools] normalize = False in {}; the "
                          "calibration is the normalise step, set it to True"
                          "".format(path))
    parsed = pipeline.prepare(config).parsed
    return parsed.calibration_record['file']


def _cmd_calibrate(args):
    from snntb_adaptive.compare import parse_overrides
    calibrate_config(args.config, parse_overrides(args.set))
    return 0


def _cmd_run(args):
    run_config(args.config, args.resume, args.executor, args.ray_address)
    return 0


def _cmd_demo(args):
    from snntb_adaptive.demo import run_demo
    run_demo(out_dir=args.out, duration=args.duration,
             num_to_test=args.num_to_test, batch_size=args.batch_size,
             model=args.model)
    return 0


def _cmd_prepare(args):
    from snntb_adaptive import data
    if args.source == 'digits':
        x_tr, y_tr, x_te, y_te = data.load_digits()
        num_classes = 10
    elif args.source == 'keras':
        if not args.name:
            raise DataError("--name (mnist, cifar10, cifar100) is needed "
                            "with source 'keras'")
        x_tr, y_tr, x_te, y_te = data.load_keras_dataset(args.name)
        num_classes = 100 if args.name == 'cifar100' else 10
    else:
        if not args.file:
            raise DataError("--file is needed with source 'npz'")
        x_te, y_te = data.load_npz(args.file, [args.x_key, args.y_key])
        norm_file = args.norm_file or args.file
        (x_tr,) = data.load_npz(norm_file, [args.norm_key])
        num_classes = args.num_classes
    if not 0 <= args.first_test < len(x_te):
        raise DataError("--first-test {}: the source has {} test images; "
                        "give 0 <= K < {}".format(args.first_test, len(x_te),
                                                  len(x_te)))
    stop = None if args.num_test is None else args.first_test + args.num_test
    x_te, y_te = x_te[args.first_test:stop], y_te[args.first_test:stop]
    x_norm = x_tr[::args.norm_every][:args.num_norm]
    shapes = data.write_snntb_dataset(args.out, x_te, y_te, x_norm,
                                      num_classes, overwrite=args.overwrite)
    for name, shape in shapes.items():
        print("{}: {}".format(os.path.join(args.out, name), shape))
    return 0


def _csv_list(text, kind=str):
    return [kind(v.strip()) for v in text.split(',') if v.strip()]


class OneLineErrors(argparse.ArgumentParser):
    """A parser whose usage errors are one line (the option, the value and
    what to give; exit status 2) instead of the whole usage text."""

    def error(self, message):
        sys.stderr.write('{}: error: {} (see {} --help)\n'.format(
            self.prog, message, self.prog))
        sys.exit(2)


def _at_least(lower):
    """An argparse type: a whole number >= ``lower`` (argparse prints the
    option and value in one line otherwise)."""
    def whole(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lower:
            raise argparse.ArgumentTypeError(
                "{!r}: give a whole number >= {}".format(text, lower))
        return value
    return whole


def _cmd_compare(args):
    from snntb_adaptive.compare import run_compare
    try:
        steps = _csv_list(args.steps, int)
        etas = _csv_list(args.eta, float) if args.eta else None
    except ValueError:
        raise ConfigError("--steps takes whole numbers and --eta numbers, "
                          "comma-separated (e.g. --steps 25,50 --eta "
                          "0.6,0.7)") from None
    if not steps or min(steps) < 1:
        raise ConfigError("--steps {}: give time steps from 1 on, "
                          "comma-separated (e.g. --steps 8,16,32)".format(
                              args.steps))
    from snntb_adaptive import checks
    checks.ADDRESS_SOURCE = '--ray-address' if args.ray_address is not None \
        else None
    try:
        run_compare(args.config, _csv_list(args.settings), steps=steps,
                    out=args.out, etas=etas, reference=args.reference,
                    reference_label=args.reference_label,
                    raster_layer=args.raster_layer,
                    raster_sample=args.raster_sample,
                    raster_setting=args.raster_setting, title=args.title,
                    overrides=args.set + _executor_overrides(args))
    finally:
        checks.ADDRESS_SOURCE = None
    return 0


def _executor_overrides(args):
    return ['adaptive_threshold.{}={}'.format(key, value) for key, value in (
        ('executor', args.executor), ('ray_address', args.ray_address))
        if value is not None]


def _cmd_plot(args):
    from snntb_adaptive.compare import merge, replot
    if args.into:
        merge(args.out, args.into, args.title)
        print("table and plots of {} written to {}".format(
            ', '.join(args.out), args.into))
        return 0
    if len(args.out) > 1:
        raise ConfigError("plot: several comparisons go into one folder; "
                          "give it with --into DIR")
    replot(args.out[0], args.reference, args.reference_label, args.title)
    print("plots redrawn in {}".format(args.out[0]))
    return 0


def _cmd_convert(args):
    from snntb_adaptive.keras3 import convert
    diff = convert(args.model, args.out)
    print("wrote {} (tf-keras); largest output difference to {} on random "
          "inputs: {:.2e}".format(args.out, args.model, diff))
    return 0


def _cmd_convert_onnx(args):
    from snntb_adaptive.onnx_import import TOLERANCE, convert_file
    out, diff = convert_file(args.model, args.out, args.overwrite)
    print("wrote {} (tf-keras); largest absolute difference to ONNX Runtime "
          "on 8 random inputs: {:.2e} (allowed {:.0e} times the output "
          "scale)".format(out, diff, TOLERANCE))
    return 0


def _cmd_bench(args):
    from snntb_adaptive.bench import run_bench
    return run_bench(args)


def _add_executor_options(p):
    p.add_argument('--executor', choices=['local', 'ray'],
                   help="where the batches run: this process, or a Ray "
                   "cluster (default: the config's [adaptive_threshold] "
                   "executor, local)")
    p.add_argument('--ray-address', metavar='ADDRESS',
                   help="with --executor ray: 'auto' or host:port of a "
                   "running cluster; empty (the default) starts a Ray "
                   "instance on this machine")


def _add_plot_options(p):
    p.add_argument('--reference', help='CSV of t,accuracy%% to draw in the '
                   'accuracy plot (e.g. the authors\' published curve)')
    p.add_argument('--reference-label', default='authors (published log)',
                   help='legend entry of --reference (default: %(default)s)')
    p.add_argument('--title', help='title of the plots (compare: default '
                   'the config file name)')


def _add_run_options(p):
    p.add_argument('--resume', action='store_true',
                   help='continue a run that was killed: batches recorded in '
                   'its progress.jsonl are not simulated again')
    _add_executor_options(p)


def _prog():
    """How the user called the command line: ``snntb-adaptive`` (the
    console script) or ``python -m snntb_adaptive``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ''
    return 'snntb-adaptive' if name == 'snntb-adaptive' else \
        'python -m snntb_adaptive'


def build_parser():
    p = OneLineErrors(
        prog=_prog(),
        description="Adaptive threshold (Chen et al.) for SNN-Toolbox "
        "0.6.0. Also installed as the 'snntb-adaptive' command.")
    p.add_argument('-t', '--terminal', metavar='CONFIG',
                   help="run SNN-TB's pipeline on CONFIG (as snntoolbox -t)")
    _add_run_options(p)
    sub = p.add_subparsers(dest='command', metavar='COMMAND')

    r = sub.add_parser('run', help="run SNN-TB's pipeline on a config file "
                       "(the same as -t CONFIG)", description="Run SNN-TB's "
                       "parse -> normalise -> simulate pipeline on CONFIG "
                       "with the plugin, as 'snntoolbox -t CONFIG' does; "
                       "the results go to the run's log folder "
                       "(results.json, phase1_thresholds.json, "
                       "progress.jsonl).")
    r.add_argument('config', help='the SNN-TB .ini file')
    _add_run_options(r)
    r.set_defaults(func=_cmd_run)

    a = sub.add_parser('calibrate', help='only the calibration of a config '
                       'with preset = calibrated: writes calibration.json in '
                       'its log folder (reused by the run)',
                       description='Calibrate the model of CONFIG (preset = '
                       'calibrated) for its calibration_steps on x_norm, '
                       'without simulating: SNN-TB\'s checks, the parse and '
                       'the Phase-1 step write calibration.json in the run\'s '
                       'log folder, which a later run with the same model, '
                       'images and settings applies instead of calibrating '
                       'again.')
    a.add_argument('config', help='the SNN-TB .ini file')
    a.add_argument('--set', action='append', default=[],
                   metavar='SECTION.KEY=VALUE', help='override a config value '
                   'for this calibration, e.g. --set adaptive_threshold.'
                   'preset=calibrated (repeatable; the file is not changed)')
    a.set_defaults(func=_cmd_calibrate)

    d = sub.add_parser('demo', help='offline demo on scikit-learn digits: '
                       'stock SNN-TB and every preset, one table',
                       description='The offline demo: the small CNN of '
                       'models/digits_cnn.h5 on scikit-learn\'s 8x8 digits '
                       '(no download), parsed and normalised once, run by '
                       'SNN-TB\'s own simulator and by the plugin under every '
                       'preset of the paper; prints one table and writes '
                       'the plots into --out.')
    d.add_argument('--out', default='runs/digits_demo',
                   help='folder for data, logs and results (default: '
                   '%(default)s)')
    d.add_argument('--duration', type=int, default=100,
                   help='time steps T per image (default: %(default)s)')
    d.add_argument('--num-to-test', type=int, default=360,
                   help='test images, at most 360 (default: %(default)s)')
    d.add_argument('--batch-size', type=int, default=40,
                   help='images simulated together (default: %(default)s)')
    d.add_argument('--model', default=None,
                   help='tf-keras .h5 (default: models/digits_cnn.h5 of the '
                   'repository)')
    d.set_defaults(func=_cmd_demo)

    c = sub.add_parser('compare', help='one model under several settings, '
                       'parsed and normalised once: table and plots',
                       description='Parse and normalise the model of CONFIG '
                       'once, run SNN-TB\'s own simulator (stock) and each '
                       'setting on the same images, and write summary.md / '
                       'summary.csv, the plots and each setting\'s '
                       'results.json into --out.')
    c.add_argument('config', help='the SNN-TB .ini file: model, data, '
                   'duration, batch size, samples; its [adaptive_threshold] '
                   'section is the base the settings override')
    c.add_argument('--settings', default='stock,authors_executed,paper,'
                   'authors_code', help="comma-separated: 'stock' (SNN-TB's "
                   "own simulator) or a preset, optionally with :KEY=VALUE "
                   "overrides, e.g. paper:eta_scale=0.8 (default: "
                   "%(default)s)")
    c.add_argument('--eta', help='run every non-stock setting at each of '
                   'these eta_scale values, e.g. 0.6,0.7,0.8,0.9')
    c.add_argument('--steps', default='25,50,100,200',
                   help='steps for the accuracy columns (default: '
                   '%(default)s; the last step is always added)')
    c.add_argument('--out', help="output folder (default: 'compare' next to "
                   "the config's log folder)")
    _add_plot_options(c)
    c.add_argument('--raster-layer', default='auto',
                   help="spiking layer for Fig. 4: SNN-TB's layer name (e.g. "
                   "01Conv2D_32x32x64) or its index (the number that starts "
                   "the name); 'auto': the second layer with weights, the "
                   "first that integrates spikes; 'none' to skip (default: "
                   "%(default)s)")
    c.add_argument('--raster-sample', type=int, default=0,
                   help='test image of Fig. 4, 0-based (default: '
                   '%(default)s)')
    c.add_argument('--raster-setting', default='paper',
                   help='setting drawn beside the stock twin in Fig. 4 '
                   '(default: %(default)s)')
    c.add_argument('--set', action='append', default=[],
                   metavar='SECTION.KEY=VALUE', help='override a config value '
                   'for this comparison, e.g. --set simulation.duration=200 '
                   '(repeatable)')
    _add_executor_options(c)
    c.set_defaults(func=_cmd_compare)

    g = sub.add_parser('plot', help="redraw a comparison's plots from its "
                       'results.json files', description='Redraw the plots of '
                       'a comparison from its summary.csv and runs/*/'
                       'results.json; with --into, merge several comparisons '
                       'of the same model and images into one table and '
                       'plots.')
    g.add_argument('out', nargs='+', help='the --out folder of a comparison '
                   '(several with --into)')
    g.add_argument('--into', metavar='DIR',
                   help='merge the comparisons (same model and images) into '
                   'one table (with the step from which each setting stays '
                   'within 1 point of the ANN) and one set of plots in DIR')
    _add_plot_options(g)
    g.set_defaults(func=_cmd_plot)

    q = sub.add_parser('prepare-data', help="write an SNN-TB data folder "
                       "(x_test.npz, y_test.npz, x_norm.npz), images in [0, 1]",
                       description="Write the data folder SNN-TB reads "
                       "(x_test.npz, one-hot y_test.npz, x_norm.npz, images "
                       "scaled to [0, 1]) from scikit-learn's digits, an .npz "
                       "file, or (when asked) the Keras download; existing "
                       "files are not replaced without --overwrite.")
    q.add_argument('source', choices=['digits', 'npz', 'keras'],
                   help="digits: scikit-learn's bundled digits (offline); "
                   "npz: arrays of an .npz file (--file); keras: the Keras "
                   "download (--name)")
    q.add_argument('--out', required=True, help='output folder')
    q.add_argument('--file', help="source .npz (source 'npz')")
    q.add_argument('--x-key', default='x_test',
                   help='test images in --file (default: %(default)s)')
    q.add_argument('--y-key', default='y_test',
                   help='test labels in --file, integers (default: '
                   '%(default)s)')
    q.add_argument('--norm-file', help="'.npz' holding the normalisation "
                   "images (default: --file)")
    q.add_argument('--norm-key', default='x_train',
                   help='normalisation images in --norm-file (default: '
                   '%(default)s)')
    q.add_argument('--num-classes', type=_at_least(1), default=None,
                   help='classes of the one-hot labels (default: largest '
                   'label + 1)')
    q.add_argument('--name', help="Keras data set (source 'keras'): mnist, "
                   "cifar10, cifar100; downloads unless cached")
    q.add_argument('--first-test', type=_at_least(0), default=0,
                   help='skip the first K test images, e.g. to keep images '
                   'used while tuning out of a table (default: 0)')
    q.add_argument('--num-test', type=_at_least(1), default=None,
                   help='N test images from --first-test on (default: all)')
    q.add_argument('--num-norm', type=_at_least(1), default=None,
                   help='at most N normalisation images (default: all)')
    q.add_argument('--norm-every', type=_at_least(1), default=1,
                   help='take every k-th normalisation image (default: 1)')
    q.add_argument('--overwrite', action='store_true',
                   help='replace data files already in --out')
    q.set_defaults(func=_cmd_prepare)

    k = sub.add_parser('convert-keras3', help='rebuild a Keras-3 model '
                       '(.keras or .h5) as a tf-keras .h5 for SNN-TB',
                       description='Rebuild a Keras-3 model (.keras or .h5) '
                       'layer by layer as a tf-keras .h5, which SNN-TB 0.6.0 '
                       'can read; the output must not exist.')
    k.add_argument('model', help='the Keras-3 model (.keras or .h5)')
    k.add_argument('out', help='the tf-keras .h5 to write (must not exist)')
    k.set_defaults(func=_cmd_convert)

    o = sub.add_parser('convert-onnx', help='convert an ONNX model (e.g. '
                       'exported from PyTorch) to a tf-keras .h5 for SNN-TB',
                       description='Convert an ONNX model to a tf-keras .h5 '
                       '(channels last, plain layers) that SNN-TB can parse. '
                       'The result is checked against ONNX Runtime on sample '
                       'inputs before it is written; the largest absolute '
                       'difference is printed. Needs the extra: pip install '
                       '-e ".[torch]".')
    o.add_argument('model', help='the ONNX model (.onnx)')
    o.add_argument('--out', required=True,
                   help='the tf-keras .h5 to write (must not exist unless '
                   '--overwrite)')
    o.add_argument('--overwrite', action='store_true',
                   help='replace --out if it exists')
    o.set_defaults(func=_cmd_convert_onnx)

    from snntb_adaptive.bench import add_arguments
    b = sub.add_parser('bench', help='speed and memory beside SNN-TB\'s own '
                       'simulator, in one process', description='Benchmark: '
                       'simulation and normalisation time and memory, side '
                       'by side with SNN-TB\'s own simulator, in one process. '
                       'See docs/performance.md for what each row means.')
    add_arguments(b)
    b.set_defaults(func=_cmd_bench)
    return p


def main(argv=None):
    registration.install()
    log.setup()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from snntb_adaptive.pipeline import (sigterm_as_interrupt,
                                         stopped_early_message)
    try:
        with sigterm_as_interrupt():
            if args.terminal:
                run_config(args.terminal, args.resume, args.executor,
                           args.ray_address)
                return 0
            if not getattr(args, 'func', None):
                parser.print_help()
                return 2
            return args.func(args)
    except UserError as e:
        print("{}error: {}".format(log.PREFIX, e), file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt as e:
        print("{}{}".format(log.PREFIX, stopped_early_message(e)),
              file=sys.stderr)
        return 130
    finally:
        from snntb_adaptive.progress import release_model_locks
        release_model_locks()
