#!/usr/bin/env bash
# The browser tests drive the system Chromium (Playwright's own browser download cannot be
# fetched on a closed network): Debian's `chromium` package, installed here when missing
# and this runs as root with apt-get; otherwise it says what to install. HSCODE_CHROMIUM
# names another executable.
set -euo pipefail
if [[ -n "${HSCODE_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 \
   || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "install: Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "install: no chromium found; the browser tests need it (sudo apt-get install chromium," \
       "or set HSCODE_CHROMIUM)" >&2
fi
