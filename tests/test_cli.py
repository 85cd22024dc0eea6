"""The command line: every option of every command has a help line, and
``--help`` works without TensorFlow being imported."""

import argparse
import subprocess
import sys

from snntb_adaptive.cli import build_parser


def _commands():
    parser = build_parser()
    subs = [a for a in parser._actions
            if isinstance(a, argparse._SubParsersAction)][0]
    return parser, subs.choices


def test_every_option_of_every_command_has_help():
    parser, commands = _commands()
    assert set(commands) == {'run', 'demo', 'compare', 'plot',
                             'prepare-data', 'convert-keras3', 'bench',
                             'calibrate', 'convert-onnx'}
    missing = []
    for name, p in [('(main)', parser)] + sorted(commands.items()):
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction,
                                   argparse._SubParsersAction)):
                continue
            if not (action.help or '').strip():
                missing.append('{} {}'.format(name, action.option_strings
                                              or action.dest))
    assert not missing, missing


def test_help_is_complete_and_cheap():
    code = ("import sys; from snntb_adaptive.cli import main\n"
            "try:\n    main(['bench', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint('tensorflow' in sys.modules)")
    p = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = ' '.join(p.stdout.split())
    assert 'side by side with SNN-TB\'s own simulator, in one process.' in \
        out
    assert '--memory' in out and 'T = 1100' in out
    assert out.strip().endswith('False')


def test_every_command_has_a_description_and_the_called_name():
    """Issue 18, 19: ``run``, ``demo`` and ``calibrate`` lacked a
    description; ``snntb-adaptive --help`` said ``python -m
    snntb_adaptive``."""
    _, commands = _commands()
    bare = [name for name, p in commands.items()
            if not (p.description or '').strip()]
    assert not bare, bare
    import os
    exe = os.path.join(os.path.dirname(sys.executable), 'snntb-adaptive')
    p = subprocess.run([exe, '--help'], capture_output=True, text=True,
                       timeout=120)
    assert p.stdout.startswith('usage: snntb-adaptive '), p.stdout[:80]
    p = subprocess.run([sys.executable, '-m', 'snntb_adaptive', '--help'],
                       capture_output=True, text=True, timeout=120)
    assert p.stdout.startswith('usage: python -m snntb_adaptive ')
