"""Load test of ``aigc-lessons serve`` on 127.0.0.1: latency percentiles and throughput.

Starts the server itself (a subprocess on a free loopback port, stopped at the end), once with
dynamic batching and once without, and sends ``GET /v1/digits`` requests from closed-loop
clients at several concurrencies, each scenario bounded in requests and in seconds; then an
overload test (many more clients than the server admits: answered 429, the server stays up and
answers normally afterwards) and one server process against two. The measuring code is
``aigc_lessons.serve.loadtest``.

Usage::

    python benchmarks/load_test.py                # full: about 4 minutes on 2 cores
    python benchmarks/load_test.py --quick        # about a minute
    python benchmarks/load_test.py --json out.json

Prints Markdown (the rows of ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aigc_lessons.serve.loadtest import markdown, measure, replicas  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer scenarios, shorter (about a minute)")
    parser.add_argument("--device", default="cpu", help="the server's device (cpu or cuda)")
    parser.add_argument("--model", default="cgan_mnist", help="the digit model to load (default cgan_mnist)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_start = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    rows, overload_record = measure(args.quick, args.device, args.model, log=log)
    replica_record = replicas(args.quick, args.device, args.model, log=log)
    print(markdown(rows, overload_record))
    print(f"\nScaling out: {replica_record['clients']} clients asking for {replica_record['count']} images: "
          f"one server process {replica_record['1_images_per_s']:,} images/s, two processes "
          f"{replica_record['2_images_per_s']:,} images/s.")
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    print(f"\n({time.perf_counter() - started:.0f} s; load average {' '.join(load)}; {os.cpu_count()} cores)")
    if args.json:
        best = {f"{'batched' if b else 'unbatched'}_{count}": round(max(
            (r.images_per_s for r in rows if r.batching == b and r.count == count), default=0))
            for b in (True, False) for count in sorted({r.count for r in rows})}
        args.json.write_text(json.dumps({"rows": [row.summary() for row in rows], "overload": overload_record,
                                         "best_images_per_s": best, "quick": args.quick,
                                         "replicas": replica_record,
                                         "seconds": round(time.perf_counter() - started),
                                         "cores": os.cpu_count(), "load_average": load,
                                         "load_average_start": load_start, "device": args.device,
                                         "model": args.model}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
