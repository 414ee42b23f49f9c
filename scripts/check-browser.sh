#!/usr/bin/env bash
# Open every page of the built book (_build/html) in headless Chromium and check it (scripts/check_site.py):
# console errors from the book's own assets, images, internal links and anchors, the claims table on the first page;
# full-page screenshots go to _build/screenshots/.
#
#   bash scripts/check-browser.sh [check_site.py options]
#
# Chromium is Debian's package, installed by scripts/install-browser.sh when missing (as root, as on CI).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
bash scripts/install-browser.sh
exec python scripts/check_site.py _build/html --chromium "$(command -v chromium)" "$@"
