#!/usr/bin/env bash
# Build the whole book, executing every chapter on the embedded default model.
#
#   bash scripts/build-book.sh [extra jupyter-book build options]
#
# From a fresh clone with nothing but Python 3.11: sets up .venv (scripts/_env.sh), runs the optional hook
# scripts/prepare-organisms.sh, then `jupyter-book build . --builder html`. Every notebook is executed afresh
# (_config.yml: execute_notebooks: force); a cell that raises (raise_on_error: true) or any Sphinx warning (-W)
# fails the build.
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

# --all: Sphinx re-reads (so re-executes) only changed pages otherwise; a change in cla_lib/ must re-run every chapter.
# Progress bars belong in a terminal, not in the rendered pages (every tqdm bar reads TQDM_DISABLE).
export TQDM_DISABLE=1
echo "==> jupyter-book build . --builder html --all ${strict[*]} $*"
jupyter-book build . --builder html --all "${strict[@]}" "$@"

echo "==> book built in $((SECONDS - started)) s: $ROOT/_build/html/index.html"
