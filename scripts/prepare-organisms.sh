#!/usr/bin/env bash
# Train (or find in the cache) every model organism the book's chapters use, before the book executes them:
# the base organism and each alignment method, for seeds 0, 1, 2. Run by scripts/build-book.sh; safe to run
# again (cached organisms are reused; the cache is ~/.cache/cla_lib or $CLA_CACHE).
set -euo pipefail
cla organism prepare --methods all --seeds "${CLA_SEEDS:-0,1,2}"
