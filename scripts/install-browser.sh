#!/usr/bin/env bash
# Installs a Chromium for the browser tests of the HTML reports (test/report/browser.test.ts), when none
# is found: Debian/Ubuntu's `chromium` with apt-get (with sudo when not root). playwright-core drives it;
# no browser is downloaded from anywhere else. Usage: bash scripts/install-browser.sh
set -euo pipefail
for name in chromium chromium-browser google-chrome-stable google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "install-browser: found $(command -v "$name")"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no chromium and no apt-get; install Chromium yourself or set CHROMIUM_PATH (the browser tests report themselves skipped)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-browser: installing chromium with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
echo "install-browser: installed $(command -v chromium)"
