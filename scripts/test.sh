#!/usr/bin/env bash
# One command from a fresh clone: set up .venv with the test extras, fetch the wallpaper photographs of the
# external corpus, make sure a headless Chromium is there for the report's screenshot test, then run pytest
# (extra arguments pass through).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup-venv.sh" "test,dask,fiftyone,external"
"$root/scripts/fetch-wallpapers.sh" || echo "genprint: the external corpus tests will run without the wallpaper photographs" >&2

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "genprint: installing Debian's chromium for the report screenshot test ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "genprint: could not install chromium; the screenshot test will fail" >&2
  else
    echo "genprint: chromium is missing; install it (apt-get install chromium) for the screenshot test" >&2
  fi
fi

cd "$root"
set +e
"$root/.venv/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "genprint: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
