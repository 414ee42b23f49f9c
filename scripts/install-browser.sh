#!/usr/bin/env bash
# Install Debian's chromium for the browser check of the book (scripts/check-browser.sh) and its tests, if missing.
# Needs root and apt-get (as on CI); elsewhere it says what to run and exits 2.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium (apt-get)"
    started=$SECONDS
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    echo "==> chromium installed in $((SECONDS - started)) s"
else
    echo "error: chromium is not installed; run 'sudo apt-get install chromium'" >&2
    exit 2
fi
