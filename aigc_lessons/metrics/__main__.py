"""``python -m aigc_lessons.metrics [--count N] [--out FILE]``: the evaluation chapter's table."""

from .table import main

raise SystemExit(main())
