"""Command line: ``python -m snntb_adaptive ...`` (or ``snntb-adaptive ...``).

    python -m snntb_adaptive -t CONFIG.ini      run SNN-TB's pipeline (as
                                                ``snntoolbox -t``), with the
                                                plugin registered even
                                                without the .pth file
    python -m snntb_adaptive demo               offline demo on sklearn digits
    python -m snntb_adaptive compare CONFIG ... several settings, one table
    python -m snntb_adaptive plot OUT           redraw a comparison's plots
    python -m snntb_adaptive prepare-data ...   write an SNN-TB data folder
    python -m snntb_adaptive convert-keras3 M O rebuild a Keras-3 model as .h5
    python -m snntb_adaptive bench ...          speed / memory benchmark
"""

import argparse
import os
import sys

from snntb_adaptive import registration


def user_errors():
    """Errors that mean: the user's input must change (no traceback)."""
    from snntb_adaptive.compat import CorruptFileError
    from snntb_adaptive.config import ConfigError
    from snntb_adaptive.data import DataError
    return (ConfigError, CorruptFileError, DataError)


def run_config(path, resume=False):
    """Run SNN-TB's parse -> normalise -> simulate pipeline on ``path`` (as
    ``snntoolbox -t`` does); ``resume`` continues a killed run."""
    registration.install()
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        from snntb_adaptive.config import ConfigError
        raise ConfigError("config file {} not found".format(path))
    from snntoolbox.bin.utils import run_pipeline, update_setup
    config = update_setup(path)
    if resume:
        from snntb_adaptive.config import SECTION, ConfigError, is_adaptive
        if not is_adaptive(config):
            raise ConfigError("--resume needs [conversion] spike_code = "
                              "adaptive_threshold")
        config.set(SECTION, 'resume', 'True')
    return run_pipeline(config)


def _cmd_run(args):
    run_config(args.config, args.resume)
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
            raise data.DataError("--name (mnist, cifar10, cifar100) is needed "
                                 "with source 'keras'")
        x_tr, y_tr, x_te, y_te = data.load_keras_dataset(args.name)
        num_classes = 100 if args.name == 'cifar100' else 10
    else:
        if not args.file:
            raise data.DataError("--file is needed with source 'npz'")
        x_te, y_te = data.load_npz(args.file, [args.x_key, args.y_key])
        norm_file = args.norm_file or args.file
        (x_tr,) = data.load_npz(norm_file, [args.norm_key])
        y_tr = None
        num_classes = args.num_classes
    x_te, y_te = x_te[:args.num_test], y_te[:args.num_test]
    x_norm = x_tr[::args.norm_every][:args.num_norm]
    shapes = data.write_snntb_dataset(args.out, x_te, y_te, x_norm,
                                      num_classes, overwrite=args.overwrite)
    for name, shape in shapes.items():
        print("{}: {}".format(os.path.join(args.out, name), shape))
    return 0


def _csv_list(text, kind=str):
    return [kind(v.strip()) for v in text.split(',') if v.strip()]


def _cmd_compare(args):
    from snntb_adaptive.compare import run_compare
    run_compare(args.config, _csv_list(args.settings),
                steps=_csv_list(args.steps, int), out=args.out,
                etas=_csv_list(args.eta, float) if args.eta else None,
                reference=args.reference,
                reference_label=args.reference_label,
                raster_layer=args.raster_layer,
                raster_sample=args.raster_sample,
                raster_setting=args.raster_setting, title=args.title,
                overrides=args.set)
    return 0


def _cmd_plot(args):
    from snntb_adaptive.compare import replot
    replot(args.out, args.reference, args.reference_label, args.title)
    print("plots redrawn in {}".format(args.out))
    return 0


def _cmd_convert(args):
    from snntb_adaptive.keras3 import convert
    diff = convert(args.model, args.out)
    print("wrote {} (tf-keras); largest output difference to {} on random "
          "inputs: {:.2e}".format(args.out, args.model, diff))
    return 0


def build_parser():
    p = argparse.ArgumentParser(
        prog='python -m snntb_adaptive',
        description="Adaptive threshold (Chen et al.) for SNN-Toolbox 0.6.0.")
    p.add_argument('-t', '--terminal', metavar='CONFIG',
                   help="run SNN-TB's pipeline on CONFIG (as snntoolbox -t)")
    p.add_argument('--resume', action='store_true',
                   help='with -t: continue a run that was killed, skipping '
                   'the batches it finished')
    sub = p.add_subparsers(dest='command')

    r = sub.add_parser('run', help="run SNN-TB's pipeline on a config file")
    r.add_argument('config')
    r.add_argument('--resume', action='store_true',
                   help='continue a run that was killed')
    r.set_defaults(func=_cmd_run)

    d = sub.add_parser('demo', help='offline demo on scikit-learn digits: '
                       'stock SNN-TB and every preset, one table')
    d.add_argument('--out', default='runs/digits_demo',
                   help='folder for data, logs and results (default: '
                   'runs/digits_demo)')
    d.add_argument('--duration', type=int, default=100)
    d.add_argument('--num-to-test', type=int, default=360)
    d.add_argument('--batch-size', type=int, default=40)
    d.add_argument('--model', default=None,
                   help='tf-keras .h5 (default: models/digits_cnn.h5 of the '
                   'repository)')
    d.set_defaults(func=_cmd_demo)

    q = sub.add_parser('prepare-data', help="write an SNN-TB data folder "
                       "(x_test.npz, y_test.npz, x_norm.npz), images in [0, 1]")
    q.add_argument('source', choices=['digits', 'npz', 'keras'])
    q.add_argument('--out', required=True, help='output folder')
    q.add_argument('--file', help="source .npz (source 'npz')")
    q.add_argument('--x-key', default='x_test')
    q.add_argument('--y-key', default='y_test')
    q.add_argument('--norm-file', help="'.npz' holding the normalisation "
                   "images (default: --file)")
    q.add_argument('--norm-key', default='x_train')
    q.add_argument('--num-classes', type=int, default=None)
    q.add_argument('--name', help="Keras data set (source 'keras'): mnist, "
                   "cifar10, cifar100; downloads unless cached")
    q.add_argument('--num-test', type=int, default=None,
                   help='first N test images (default: all)')
    q.add_argument('--num-norm', type=int, default=None,
                   help='at most N normalisation images (default: all)')
    q.add_argument('--norm-every', type=int, default=1,
                   help='take every k-th normalisation image (default: 1)')
    q.add_argument('--overwrite', action='store_true')
    q.set_defaults(func=_cmd_prepare)

    c = sub.add_parser('compare', help='one model under several settings, '
                       'parsed and normalised once: table and plots')
    c.add_argument('config')
    c.add_argument('--settings', default='stock,authors_executed,paper,'
                   'authors_code', help="comma-separated: 'stock' or a "
                   "preset, optionally with :KEY=VALUE overrides (default: "
                   "%(default)s)")
    c.add_argument('--eta', help='run every non-stock setting at each of '
                   'these eta_scale values, e.g. 0.6,0.7,0.8,0.9')
    c.add_argument('--steps', default='25,50,100,200',
                   help='steps for the accuracy columns (default: '
                   '%(default)s; the last step is always added)')
    c.add_argument('--out', help='output folder (default: next to the '
                   "config's log folder, 'compare')")
    c.add_argument('--reference', help='CSV of t,accuracy%% to draw in the '
                   'accuracy plot')
    c.add_argument('--reference-label', default='authors (published log)')
    c.add_argument('--raster-layer', default='2', help='spiking layer for '
                   "Fig. 4: 1-based index or name; '0' to skip (default 2)")
    c.add_argument('--raster-sample', type=int, default=0)
    c.add_argument('--raster-setting', default='paper')
    c.add_argument('--title')
    c.add_argument('--set', action='append', default=[],
                   metavar='SECTION.KEY=VALUE', help='override a config value '
                   'for this comparison, e.g. --set simulation.duration=200 '
                   '(repeatable)')
    c.set_defaults(func=_cmd_compare)

    g = sub.add_parser('plot', help="redraw a comparison's plots from its "
                       'results.json files')
    g.add_argument('out', help='the --out folder of a comparison')
    g.add_argument('--reference')
    g.add_argument('--reference-label', default='authors (published log)')
    g.add_argument('--title')
    g.set_defaults(func=_cmd_plot)

    k = sub.add_parser('convert-keras3', help='rebuild a Keras-3 model '
                       '(.keras or .h5) as a tf-keras .h5 for SNN-TB')
    k.add_argument('model')
    k.add_argument('out')
    k.set_defaults(func=_cmd_convert)

    sub.add_parser('bench', add_help=False,
                   help="speed and memory benchmark against SNN-TB (see "
                   "'bench --help')")
    return p


def main(argv=None):
    registration.install()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['bench']:   # its own parser: options pass through as is
        from snntb_adaptive.bench import main as bench_main
        return bench_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    errors = user_errors()
    try:
        if args.terminal:
            run_config(args.terminal, args.resume)
            return 0
        if not getattr(args, 'func', None):
            parser.print_help()
            return 2
        return args.func(args)
    except errors as e:
        print("snntb-adaptive: error: {}".format(e), file=sys.stderr)
        return 2
