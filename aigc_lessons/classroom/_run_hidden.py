"""``python -m aigc_lessons.classroom._run_hidden``: the process that runs a submission's hidden cases.

A request (JSON) comes on stdin: the hidden-case files, and per exercise the
learner's code (see :func:`aigc_lessons.classroom.hidden._run`); the results
(JSON) go to a duplicate of the original stdout, taken before any learner code
runs. The learner's code may print or write to file descriptors 1 and 2: both
point to ``/dev/null`` by then.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from .hidden import _run


def main() -> None:
    """Read the request, run the cases, write the answer; exit without running anything the learner left."""
    request = json.loads(sys.stdin.read())
    results_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        answer = {"nonce": request.get("nonce"), "results": _run(request)}
    except BaseException as error:  # noqa: BLE001 - report the failure to the grader, never a traceback alone
        answer = {"nonce": request.get("nonce"), "error": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc(limit=5)}
    with os.fdopen(results_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(answer) + "\n")
    os._exit(0)  # no atexit handler or thread the learner's code left behind runs after this


if __name__ == "__main__":
    main()
