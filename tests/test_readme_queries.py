"""Every query in data/README.md runs, in DuckDB and in Polars, with the same answer, on a small zoo, external corpus and store."""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest

from fingerprinting.zoo.external import build_external
from fingerprinting.zoo.external.catalogue import generator

README = Path(__file__).resolve().parent.parent / "data" / "README.md"


def _queries() -> list[tuple[str, str]]:
    """(sql, python) pairs: each ```sql block of the README and the ```python (Polars) block right after it."""
    blocks = re.findall(r"```(sql|python)\n(.*?)```", README.read_text(), re.S)
    pairs = []
    for (kind, sql), (next_kind, python) in zip(blocks[::2], blocks[1::2]):
        assert (kind, next_kind) == ("sql", "python"), f"a query without its Polars twin:\n{sql}"
        pairs.append((sql, python))
    assert len(blocks) % 2 == 0 and len(pairs) >= 10
    return pairs


@pytest.fixture(scope="module")
def places(tiny_zoo: SimpleNamespace, run_options: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A zoo, an external corpus and a store with something in every table: verdicts of the shipped model,
    a registered generator, a second name, an unusable file."""
    from flows import Store

    root = tmp_path_factory.mktemp("readme-store")
    options = run_options | {"model": "default"}
    store = Store(root / "store")
    store.run([str(tiny_zoo.root)], **options)
    fakes = tiny_zoo.images[tiny_zoo.images["is_fake"]].sort_values("path")
    store.known.add("zoo-reference", fakes["path"].head(4).tolist())
    extra = root / "incoming"
    extra.mkdir()
    shutil.copy(fakes["path"].iloc[0], extra / "renamed.png")
    (extra / "broken.png").write_text("not an image")
    store.run([str(extra)], **options)
    external = build_external(root / "external", images_per_generator=3, sizes=(32,), real_images=4,
                              generators=(generator("realcugan-se-up2x-conservative"), generator("span-spanx2_ch48")))
    return {"OUT": str(tiny_zoo.root), "EXT": str(external.out), "DIR": str(store.root), "IMAGE_ID": store.images()["image_id"].iloc[0]}


def _fill(code: str, places: dict[str, str]) -> str:
    for token, value in places.items():
        code = re.sub(rf"(['\"]){token}\b", rf"\g<1>{value}", code)
    return code


def _polars(code: str, namespace: dict) -> pl.DataFrame:
    """Run a block as a notebook cell would; its answer is the last expression's value, or the last assignment's."""
    tree = ast.parse(code)
    *body, last = tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), "<readme>", "exec"), namespace)
    if isinstance(last, ast.Expr):
        return eval(compile(ast.Expression(last.value), "<readme>", "eval"), namespace)
    exec(compile(ast.Module(body=[last], type_ignores=[]), "<readme>", "exec"), namespace)
    return namespace[last.targets[0].id]


def test_every_readme_query_runs_in_duckdb_and_polars(places: dict[str, str]) -> None:
    namespace: dict = {}
    for sql, python in _queries():
        expected = duckdb.sql(_fill(sql, places)).pl()
        got = _polars(_fill(python, places), namespace)
        assert isinstance(got, pl.DataFrame), python
        assert got.columns == expected.columns, sql
        assert got.height == expected.height > 0, sql  # the small store has rows for every query
        if "LIMIT" not in sql:  # the same rows, whatever the order (ties make LIMIT's choice arbitrary)
            key = got.columns[0]
            assert sorted(map(str, got[key].to_list())) == sorted(map(str, expected[key].to_list())), sql
