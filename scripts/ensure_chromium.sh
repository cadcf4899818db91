#!/usr/bin/env bash
# Headless Chromium for the web viewer's browser tests (tests/e2e/test_web_viewer.py): Debian's
# `chromium` package, installed with apt-get when /usr/bin/chromium is missing. Playwright drives
# this binary (executable_path); it never downloads a browser of its own.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "ensure_chromium: $CHROMIUM is missing and apt-get is not available;" \
        "install Chromium with the system's package manager" >&2
    exit 1
fi
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    SUDO=(sudo)
fi
echo "ensure_chromium: installing Debian's chromium (for the web viewer's browser tests) ..."
# Wait for another apt-get (an unattended upgrade, a parallel setup) rather than fail at once.
APT=(apt-get -o DPkg::Lock::Timeout=600)
"${SUDO[@]}" "${APT[@]}" update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" "${APT[@]}" install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version
