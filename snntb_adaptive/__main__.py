"""``python -m snntb_adaptive``: see :mod:`snntb_adaptive.cli`."""

from snntb_adaptive.cli import main

if __name__ == '__main__':
    raise SystemExit(main())
