#!/usr/bin/env bash
# One command from a fresh clone: set up .venv, then run `genprint demo` (extra arguments pass through).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup-venv.sh"
exec "$root/.venv/bin/genprint" demo "$@"
