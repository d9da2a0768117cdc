"""``python -m aigc_lessons.serve [options]``: the same as ``aigc-lessons serve [options]``."""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
