#!/usr/bin/env bash
# Set up everything and build the book into _build/html (the README's first command).
#   AIGC_LESSONS_FAST=1 (default here): notebooks run their fast setting, minutes in all;
#   AIGC_LESSONS_FAST=0: the full setting (far longer on a CPU; pretrained weights keep it bounded).
# Executed notebooks are cached in _build/.jupyter_cache: a rebuild re-runs only changed notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
export AIGC_LESSONS_FAST="${AIGC_LESSONS_FAST:-1}"
if [ -f scripts/vendor_assets.py ]; then .venv/bin/python scripts/vendor_assets.py; fi
echo "== building the book (fast mode: ${AIGC_LESSONS_FAST})"
.venv/bin/jupyter-book build -W --keep-going .
echo "== done: open _build/html/index.html in a browser, straight from disk (no server needed):"
echo "   file://$(pwd)/_build/html/index.html"
