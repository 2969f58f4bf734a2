"""`python -m bench --zoo` on a tiny zoo: a fresh build in a child process, timed, and the section that describes it."""
from __future__ import annotations

from bench import zoo_part
from fingerprinting.zoo import load_zoo

TINY = dict(members=4, images_per_member=6, size=32, seed=0, steps=5)


def test_times_a_fresh_build_and_describes_it(tmp_path) -> None:
    stale = tmp_path / "zoo-4x6-32px-seed0"
    stale.mkdir()
    (stale / "left-over").write_text("a previous build")  # a timing never reuses what is there
    markdown = zoo_part.measure(tmp_path, 1, lambda line: None, zoo=TINY)
    zoo = load_zoo(stale)
    assert not (stale / "left-over").exists() and len(zoo.generators) == 4
    row = next(line for line in markdown.splitlines() if line.startswith("| ") and "min |" in line).split(" | ")
    assert row[4] == "24" and int(row[5]) == int((~zoo.images["is_fake"]).sum())  # generated, real images
    assert float(row[1].split()[0]) >= 0 and float(row[3].split()[0]) > 0  # CPU time and peak memory were measured
    assert markdown.startswith("## Zoo build at paper size") and "zoo_samples.png" in markdown
