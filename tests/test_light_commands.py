"""Commands that need no network do not load one: --help, and a run over images already stored, import no torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from fingerprinting.models import describe_fingerprinter, load_fingerprinter
from fingerprinting.fingerprinter import attributor_params, parsing_policy, verdict_calibrator

# Runs the command line in this interpreter, then prints which heavy libraries it imported.
_IMPORTS_OF = """
import json, sys
sys.argv = ["genprint", *json.loads(sys.argv[1])]
from flows.cli import main
try:
    main()
except SystemExit as exit:
    status = exit.code or 0
print(json.dumps({"status": status, "loaded": sorted({m.split(".")[0] for m in sys.modules} & {"torch", "prefect", "pandas", "sklearn"})}))
"""


def _imports_of(arguments: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", _IMPORTS_OF, json.dumps(arguments)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_imports_no_library_it_does_not_show() -> None:
    assert _imports_of(["--help"]) == {"status": 0, "loaded": []}


def test_a_run_with_nothing_new_loads_no_network(tiny_zoo: SimpleNamespace, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = _imports_of(["run", str(tiny_zoo.root), "--store", str(store), "--quiet"])  # the shipped model: it fingerprints
    assert first["status"] == 0 and "torch" in first["loaded"]
    again = _imports_of(["run", str(tiny_zoo.root), "--store", str(store), "--quiet"])
    assert again["status"] == 0
    assert "torch" not in again["loaded"] and "prefect" not in again["loaded"]
    runs = sorted((store / "runs").rglob("*.json"))
    assert len(runs) == 2 and json.loads(runs[-1].read_text())["summary"]["images_new"] == 0


@pytest.mark.parametrize("model", ["default", "spectral"])
def test_a_models_description_is_what_loading_it_gives(model: str) -> None:
    described, loaded = describe_fingerprinter(model), load_fingerprinter(model)
    assert (described.name, described.version, described.dim) == (loaded.name, loaded.version, loaded.dim)
    assert attributor_params(described) == attributor_params(loaded)
    assert parsing_policy(described) == parsing_policy(loaded)
    calibrators = verdict_calibrator(described), verdict_calibrator(loaded)
    assert (calibrators[0] is None) == (calibrators[1] is None)
    if calibrators[0] is not None:
        assert calibrators[0].model_version_ == calibrators[1].model_version_
