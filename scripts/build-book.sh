#!/usr/bin/env bash
# Build the whole book, executing every chapter on the embedded default model.
#
#   bash scripts/build-book.sh [extra jupyter-book build options]
#
# From a fresh clone with nothing but Python 3.11: sets up .venv (scripts/_env.sh), runs the optional hook
# scripts/prepare-organisms.sh, executes the chapters whose outputs are not cached for this state of the library
# (python -m cla_lib.book.book_cache: two at a time; CLA_BOOK_FORCE=1 executes all), then `jupyter-book build .
# --builder html` renders them. A cell that raises or any Sphinx warning (-W) fails the build.
# Output: _build/html/index.html.
set -euo pipefail
started=$SECONDS
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"

if [[ -f scripts/prepare-organisms.sh ]]; then
    echo "==> scripts/prepare-organisms.sh"
    bash scripts/prepare-organisms.sh
fi

# Warnings are errors: a missing glue key or citation is only a Sphinx warning, and would otherwise leave a blank
# where a number of the prose belongs. --keep-going lists every warning before failing.
# BOOK_STRICT=0 turns this off for a quick local look.
strict=(-W --keep-going)
[[ "${BOOK_STRICT:-1}" == 0 ]] && strict=()

# Progress bars belong in a terminal, not in the rendered pages (every tqdm bar reads TQDM_DISABLE).
export TQDM_DISABLE=1
# The chapters whose outputs the cache lacks for this library key execute here, two at a time (cla_lib/book/book_cache.py);
# the build below renders them from the cache. CLA_BOOK_FORCE=1 executes every chapter again.
force=()
[[ "${CLA_BOOK_FORCE:-0}" == 1 ]] && force=(--force)
step=$SECONDS
python -m cla_lib.book.book_cache "${force[@]}"
echo "==> chapters ready in $((SECONDS - step)) s"
# --all: every page is read again (cheap: outputs come from the cache), so no page keeps a stale cross-reference.
echo "==> jupyter-book build . --builder html --all ${strict[*]} $*"
jupyter-book build . --builder html --all "${strict[@]}" "$@"

echo "==> book built in $((SECONDS - started)) s: $ROOT/_build/html/index.html"
