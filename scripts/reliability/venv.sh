#!/usr/bin/env bash
# Makes sure the project-local Python tools of the reliability suite are installed:
# .tools/venv with schemathesis and its dependencies at the versions pinned in
# scripts/reliability/schemathesis/requirements.txt (from PyPI). Idempotent: a few ms when the
# pinned schemathesis is already there. Called by scripts/setup.sh and scripts/reliability/schemathesis.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.tools/venv"
req="$root/scripts/reliability/schemathesis/requirements.txt"
want="$(sed -n 's/^schemathesis==//p' "$req")"
if "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $want\$"; then
  exit 0
fi
echo "[setup] installing schemathesis $want into .tools/venv (PyPI, pinned; about 1 minute)" >&2
if ! python3 -m venv --help >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; else sudo apt-get install -y -qq python3-venv; fi
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/schemathesis" --version
