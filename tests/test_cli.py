"""The `genprint` command: help that teaches, user errors without tracebacks, the lock, investigate and known."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def test_help_lists_every_command_with_examples() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "investigate", "known", "serve", "demo", "zoo", "train", "rebuild-index"):
        assert command in result.stdout
    run_help = runner.invoke(app, ["run", "--help"]).stdout
    assert "Examples" in run_help and "genprint run incoming/ --store" in run_help and "--wait" in run_help
    assert "--json" in runner.invoke(app, ["investigate", "--help"]).stdout
    assert "add" in runner.invoke(app, ["known", "--help"]).stdout


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", "{tmp}/nowhere", "--store", "{tmp}/s"], "source not found"),
        (["run", "{tmp}/bad.csv", "--store", "{tmp}/s"], "has no 'path' column"),
        (["run", "{tmp}", "--store", "{tmp}/s", "--model", "no-such-model"], "unknown fingerprinter"),
        (["investigate", "{tmp}/bad.csv", "--store", "{tmp}/s"], "no store at"),
        (["known", "remove", "nobody", "--store", "{tmp}/s"], "no registered generator named 'nobody'"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path: Path, arguments: list[str], message: str) -> None:
    (tmp_path / "bad.csv").write_text("file\na.png\n")
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in arguments] + _threads(arguments))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def _threads(arguments: list[str]) -> list[str]:
    """Keep the test process's thread pinning (commands pin threads themselves)."""
    return ["--threads", "2"] if arguments[0] in ("run", "investigate") else []


def test_second_concurrent_run_is_refused_with_the_holder_pid(tmp_path: Path, tiny_zoo: SimpleNamespace) -> None:
    store = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from flows import Store
            with Store({str(store)!r}).lock("genprint run"):
                print("locked", flush=True)
                sys.stdin.readline()
            """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, ["run", str(tiny_zoo.root), "--store", str(store), "--model", "spectral", "--threads", "2"])
        assert result.exit_code == 2
        assert f"pid {holder.pid}" in result.stderr and "busy" in result.stderr and "Traceback" not in result.output
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert not (store / "current").exists()


def test_investigate_prints_tables_or_json_and_writes_a_page(tiny_store: SimpleNamespace, tiny_zoo: SimpleNamespace, tmp_path: Path) -> None:
    store = str(tiny_store.store.root)
    query = tiny_zoo.images["path"].iloc[0]
    page = tmp_path / "answer.html"
    result = runner.invoke(app, ["investigate", query, "--store", store, "-k", "3", "--json", "--html", str(page), "--threads", "2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    (entry,) = payload["queries"]
    assert entry["query"] == query and len(entry["neighbours"]) == 3 and entry["in_store"] is True
    assert page.is_file() and query in page.read_text()
    table = runner.invoke(app, ["investigate", query, "--store", store, "-k", "3", "--threads", "2"])
    assert table.exit_code == 0 and "similarity" in table.stdout and "html:" in table.stdout


def test_known_add_list_remove(store_copy, tiny_zoo: SimpleNamespace) -> None:
    store = str(store_copy.root)
    references = sorted(tiny_zoo.images.loc[tiny_zoo.images["member_id"] == "m001", "path"])[:4]
    added = runner.invoke(app, ["known", "add", "lab-gan", *references, "--store", store, "--model", "spectral", "--quiet", "--threads", "2"])
    assert added.exit_code == 0, added.output
    assert "registered lab-gan" in added.stdout and "lab-gan\t4 images" in added.stdout
    assert "lab-gan\t4 images" in runner.invoke(app, ["known", "list", "--store", store]).stdout
    invalid = runner.invoke(app, ["known", "add", "bad name!", references[0], "--store", store, "--model", "spectral", "--threads", "2"])
    assert invalid.exit_code == 2 and "invalid generator name" in invalid.stderr
    assert runner.invoke(app, ["known", "remove", "lab-gan", "--store", store]).exit_code == 0
    assert "no registered generators" in runner.invoke(app, ["known", "list", "--store", store]).stdout


def test_serve_rejects_a_bad_cron(tmp_path: Path, tiny_zoo: SimpleNamespace) -> None:
    result = runner.invoke(
        app, ["serve", str(tiny_zoo.root), "--store", str(tmp_path / "s"), "--cron", "every tuesday", "--model", "spectral", "--threads", "2"]
    )
    assert result.exit_code == 2 and "invalid --cron" in result.stderr


def test_a_store_refuses_fingerprints_of_another_model_version(store_copy, tiny_zoo: SimpleNamespace) -> None:
    meta = json.loads((store_copy / "store.json").read_text())
    (store_copy / "store.json").write_text(json.dumps({**meta, "model_version": "0-older"}))
    query = tiny_zoo.images["path"].iloc[0]
    for arguments in (["investigate", query], ["run", str(tiny_zoo.root), "--model", "spectral"]):
        result = runner.invoke(app, [*arguments, "--store", str(store_copy.root), "--threads", "2"])
        assert result.exit_code == 2 and "version 0-older" in result.stderr and "new --store" in result.stderr


def test_run_without_model_uses_the_stores_own(store_copy, tiny_zoo: SimpleNamespace) -> None:
    result = runner.invoke(app, ["run", str(tiny_zoo.root), "--store", str(store_copy.root), "--threads", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "0 new images" in result.stdout and f"report: {store_copy / 'current/report.html'}" in result.stdout


def test_a_demo_store_of_another_model_says_how_to_start_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: str) -> None:
    from conftest import TINY_ZOO

    from flows import demo

    monkeypatch.setattr(demo, "DEMO_ZOO", dict(TINY_ZOO))  # the pipeline's own path, on a zoo of seconds
    demo.run_demo(tmp_path, model="spectral", progress=False)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", "default", "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"remove {tmp_path / 'store'} to start it again" in result.output
