#!/usr/bin/env bash
# Set up everything and run the whole test suite (the README's second command; .ci/run calls it).
#   stage 1: unit tests, doctests and every notebook in the toc (nbval, fast mode) on both cores;
#   stage 2: the strict book build, reusing the notebooks stage 1 executed, then the browser test.
# Extra arguments go to both pytest runs (for example -x, or -k data).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
[ -f scripts/ensure_browser.sh ] && bash scripts/ensure_browser.sh
[ -f scripts/vendor_assets.py ] && .venv/bin/python scripts/vendor_assets.py
export AIGC_LESSONS_FAST=1 AIGC_LESSONS_REQUIRE_DATA=1 AIGC_LESSONS_REQUIRE_BROWSER="${AIGC_LESSONS_REQUIRE_BROWSER:-0}"
rm -rf _build/executed

run_pytest() {
    .venv/bin/python -m pytest "$@"
    local status=$?
    if [ "$status" -eq 5 ]; then  # pytest: no tests collected (for example a -k that matches nothing)
        echo "== no tests matched in this stage; nothing to run"
        return 0
    fi
    return "$status"
}

started=$(date +%s)
echo "== stage 1: unit tests, doctests and notebooks (2 workers)"
# One torch thread per worker: two workers on two cores, without oversubscription.
OMP_NUM_THREADS=1 run_pytest -n 2 --dist loadfile -m "not slow and not build and not browser" \
    --doctest-modules aigc_lessons tests book "$@"
stage1=$?
echo "== stage 2: strict book build and rendered-page checks"
run_pytest -m "build or browser" tests "$@"
stage2=$?
echo "== test suite finished in $(( $(date +%s) - started )) s (stage 1 exit $stage1, stage 2 exit $stage2)"
[ "$stage1" -eq 0 ] && [ "$stage2" -eq 0 ]
