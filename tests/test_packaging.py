"""Both a normal and an editable build ship ``snntb_adaptive.pth`` at the top
of the wheel, and the ``.pth`` import stays cheap (no NumPy, no TensorFlow
at interpreter start)."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

BUILD = """
import sys
from setuptools import build_meta
kind, out = sys.argv[1], sys.argv[2]
name = (build_meta.build_wheel if kind == 'wheel'
        else build_meta.build_editable)(out)
print(name)
"""


@pytest.fixture(scope='module')
def source_copy(tmp_path_factory):
    dst = tmp_path_factory.mktemp('src') / 'snntb-adaptive'
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(
        '.git', 'runs', 'build', '*.egg-info', '__pycache__', 'docs',
        '.pytest_cache'))
    return dst


@pytest.mark.parametrize('kind', ['wheel', 'editable'])
def test_wheel_ships_pth(source_copy, tmp_path, kind):
    p = subprocess.run([sys.executable, '-c', BUILD, kind, str(tmp_path)],
                       cwd=source_copy, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    wheel = tmp_path / p.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert 'snntb_adaptive.pth' in names, names
        pth = z.read('snntb_adaptive.pth').decode()
    assert pth.strip() == ('import snntb_adaptive.registration as '
                           '_snntb_adaptive_registration; '
                           '_snntb_adaptive_registration.install()')
    if kind == 'wheel':
        assert 'snntb_adaptive/layers.py' in names
        assert 'snntb_adaptive/csrc/if_step.cc' in names  # fused kernel


def test_pth_import_is_light():
    code = ('import sys; import snntb_adaptive.registration as r; '
            'r.install(); print(sorted(m for m in ("numpy", "tensorflow", '
            '"snntoolbox") if m in sys.modules))')
    p = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, timeout=60)
    assert p.stdout.strip() == '[]', p.stdout + p.stderr


def test_installed_pth_registers_finder():
    """In the environment running the tests the package is installed, so the
    finder is on sys.meta_path before any import of ours."""
    p = subprocess.run([sys.executable, '-c', 'import sys; print(type('
                        'sys.meta_path[0]).__name__)'], capture_output=True,
                       text=True, timeout=60, cwd=os.path.dirname(ROOT))
    assert p.stdout.strip() == 'SnntbAdaptiveFinder', p.stdout + p.stderr
