#!/usr/bin/env bash
# Install (idempotently) Debian's Chromium for the browser tests (tests/browser) and print the path
# of its binary on stdout, only that line. Nothing is started: playwright launches its own headless
# browser, with a fresh profile, for the tests. Playwright itself downloads no browser.
# `apt-get update` runs only when the install fails without it; sudo is used only when not root.
set -euo pipefail

find_chromium() {
  if [ -n "${PALLET_TEST_CHROMIUM:-}" ] && [ -x "$PALLET_TEST_CHROMIUM" ]; then
    echo "$PALLET_TEST_CHROMIUM"
    return
  fi
  { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; } || true
}

CHROMIUM="$(find_chromium)"
if [ -z "$CHROMIUM" ] && command -v apt-get >/dev/null; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "chromium missing; not root and no sudo" >&2; exit 1; }
    SUDO="sudo -n"
  fi
  install_chromium() {
    $SUDO env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends chromium >&2
  }
  echo "installing chromium..." >&2
  if ! install_chromium; then
    echo "retrying after apt-get update..." >&2
    { $SUDO apt-get update -qq >&2 && install_chromium; } || true
  fi
  CHROMIUM="$(find_chromium)"
fi
[ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ] || { echo "chromium not found and could not be installed" >&2; exit 1; }
echo "$CHROMIUM"
