"""Build helper: ship ``snntb_adaptive.pth`` at the top of site-packages, in
normal (``pip install .``) and editable (``pip install -e .``) installs.

``setup.cfg`` names :class:`BuildPyWithPth` as ``build_py``.

* normal build: the ``.pth`` is copied into ``build_lib``, the root of the
  wheel;
* editable build (PEP 660): setuptools runs ``build_py`` with
  ``editable_mode = True`` and packs the files under the ``install`` command's
  ``install_lib`` (the unpacked editable wheel) into the wheel, so the
  ``.pth`` is copied there.

``tests/test_packaging.py`` installs both ways and checks the file arrives.
"""

import os

from setuptools.command.build_py import build_py

PTH = 'snntb_adaptive.pth'
HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithPth(build_py):
    def _pth_target(self):
        if getattr(self, 'editable_mode', False):
            return os.path.join(
                self.get_finalized_command('install').install_lib, PTH)
        return os.path.join(self.build_lib, PTH)

    def run(self):
        super().run()
        target = self._pth_target()
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.copy_file(os.path.join(HERE, PTH), target, preserve_mode=False)

    def get_outputs(self, *args, **kwargs):
        outputs = super().get_outputs(*args, **kwargs)
        if getattr(self, 'editable_mode', False):
            return outputs
        return outputs + [os.path.join(self.build_lib, PTH)]
