#!/usr/bin/env bash
# Make headless Chromium and ChromeDriver available for tests/test_browser.py.
#
# Detects /usr/bin/chromium + /usr/bin/chromedriver (or $AIGC_LESSONS_CHROMIUM and
# $AIGC_LESSONS_CHROMEDRIVER); when either is missing, installs the Debian packages
# `chromium` and `chromium-driver` with apt-get (as root, or with sudo when it needs
# no password). This script never fails the calling command: when nothing can be
# installed it says why and exits 0, and the browser test then skips with that reason
# (or fails, when AIGC_LESSONS_REQUIRE_BROWSER=1).
#
# Usage: bash scripts/ensure_browser.sh

set -u

say() { echo "ensure_browser: $*"; }

found() {
    local browser="${AIGC_LESSONS_CHROMIUM:-}" driver="${AIGC_LESSONS_CHROMEDRIVER:-}"
    if [ -z "$browser" ]; then
        for name in chromium chromium-browser google-chrome google-chrome-stable; do
            browser="$(command -v "$name" 2>/dev/null)" && break
        done
    fi
    [ -z "$driver" ] && driver="$(command -v chromedriver 2>/dev/null)"
    if [ -n "$browser" ] && [ -x "$browser" ] && [ -n "$driver" ] && [ -x "$driver" ]; then
        say "browser $browser ($("$driver" --version 2>/dev/null | head -n 1))"
        return 0
    fi
    return 1
}

found && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    say "chromium/chromedriver not found and apt-get is not available (not a Debian system)."
    say "install Chromium and a matching ChromeDriver, or set AIGC_LESSONS_CHROMIUM and"
    say "AIGC_LESSONS_CHROMEDRIVER; until then tests/test_browser.py skips."
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    say "chromium/chromedriver not found; installing needs root: run"
    say "  sudo apt-get install -y chromium chromium-driver"
    say "until then tests/test_browser.py skips."
    exit 0
fi

say "installing the Debian packages chromium and chromium-driver ..."
log="$(mktemp)"
if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >"$log" 2>&1 ||
   { $SUDO apt-get update -q >>"$log" 2>&1 &&
     $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >>"$log" 2>&1; }; then
    rm -f "$log"
    found && exit 0
    say "apt-get succeeded but chromium/chromedriver are still not on PATH."
else
    say "apt-get could not install chromium chromium-driver (no package index or no network?):"
    tail -n 5 "$log" | sed 's/^/    /'
    rm -f "$log"
fi
say "tests/test_browser.py will skip."
exit 0
