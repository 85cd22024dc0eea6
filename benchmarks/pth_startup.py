"""Start-up cost of the installed ``snntb_adaptive.pth``.

    python benchmarks/pth_startup.py [--runs 60]

Builds two throw-away virtual environments (no packages) that both see this
checkout through a plain path ``.pth``; only the second also has
``snntb_adaptive.pth``. Times ``python -c pass`` in each, alternating, and
prints the medians and their difference: the cost the plugin adds to every
interpreter start.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_env(folder, with_plugin):
    venv.EnvBuilder(with_pip=False).create(folder)
    py = os.path.join(folder, 'bin', 'python')
    purelib = subprocess.check_output(
        [py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        text=True).strip()
    with open(os.path.join(purelib, 'checkout.pth'), 'w') as f:
        f.write(ROOT + '\n')
    if with_plugin:
        with open(os.path.join(ROOT, 'snntb_adaptive.pth')) as src, \
                open(os.path.join(purelib, 'snntb_adaptive.pth'), 'w') as dst:
            dst.write(src.read())
    return py


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=60)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = make_env(os.path.join(tmp, 'base'), False)
        plug = make_env(os.path.join(tmp, 'plugin'), True)
        check = subprocess.check_output(
            [plug, '-c', 'import sys; print(type(sys.meta_path[0]).__name__)'],
            text=True).strip()
        assert check == 'SnntbAdaptiveFinder', check
        times = {base: [], plug: []}
        for _ in range(args.runs):
            for py in (base, plug):
                t = time.perf_counter()
                subprocess.run([py, '-c', 'pass'], check=True)
                times[py].append(time.perf_counter() - t)
        mb = statistics.median(times[base]) * 1e3
        mp = statistics.median(times[plug]) * 1e3
        print("python -c pass, median of {} runs each (alternating):".format(
            args.runs))
        print("  without snntb_adaptive.pth: {:.2f} ms".format(mb))
        print("  with    snntb_adaptive.pth: {:.2f} ms".format(mp))
        print("  cost of the .pth:           {:.2f} ms ({:.1%})".format(
            mp - mb, (mp - mb) / mb))


if __name__ == '__main__':
    main()
