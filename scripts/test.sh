#!/usr/bin/env bash
# Run the test suite in the project's pinned environment (set up on first use by scripts/_env.sh).
#
#   bash scripts/test.sh [pytest options]        e.g.  bash scripts/test.sh -k scoring -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
exec python -m pytest tests -q "$@"
