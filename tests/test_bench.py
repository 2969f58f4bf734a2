"""The benchmark suite's code paths on the tiny zoo: the side-by-side tables, the baselines, throughput and the report pieces."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import figures, provenance, quality, report, speed
from bench.baselines.fen import FenConfig, FenFingerprinter, fit_fen
from bench.baselines.marra import MarraFingerprinter, noise_residual
from clustering.attribution import OpenSetAttributor
from fingerprinting.network import HeadSpec
from fingerprinting.spectral import SpectralFingerprinter
from fingerprinting.training_data import load_labelled_images

BOUNDED = ["ari", "nmi", "purity", "bcubed_f1", "noise_fraction", "real_in_clusters", "real_in_generated_clusters", "nn_same_member",
           "closed_set_accuracy", "accuracy_at_threshold", "open_set_auroc", "oscr", "auc", "average_precision", "brier"]


@pytest.fixture(scope="module")
def part(tiny_zoo) -> quality.Partition:
    return quality.partition(load_labelled_images(tiny_zoo.root, HeadSpec.from_space()))


@pytest.fixture(scope="module")
def fen(part: quality.Partition) -> FenFingerprinter:
    train = quality.subset(part.data, part.train_rows)
    net, _ = fit_fen(train, np.arange(len(train.member)), FenConfig(layers=3, channels=8, hidden_dim=16, epochs=1, batch_size=16, crop=32))
    return FenFingerprinter(net, crop_size=32)


def test_subset_keeps_labels_and_renumbers_content_sources(part: quality.Partition) -> None:
    data = part.data
    rows = np.flatnonzero(data.split != "train")
    sub = quality.subset(data, rows)
    assert (sub.member == data.member[rows]).all() and (sub.pixels == data.pixels[rows]).all()
    assert sub.member_ids == data.member_ids and (sub.member_split == data.member_split).all()
    if hasattr(data, "source"):  # a reconstruction still points at the real crop it shows, or at nothing
        kept = sub.source >= 0
        assert (sub.pixels[sub.source[kept]].shape == sub.pixels[kept].shape) and (sub.member[sub.source[kept]] < 0).all()
        assert (rows[sub.source[kept]] == data.source[rows][kept]).all()


def test_partition_keeps_training_images_out_of_the_queries(part: quality.Partition) -> None:
    queries = np.concatenate([*part.query_fakes.values(), part.query_reals])
    assert not np.intersect1d(part.train_rows, queries).size
    assert set(part.reference_rows) <= set(part.train_rows)
    data = part.data
    assert (data.member_split[data.member[part.query_fakes["unseen_arch"]]] == "unseen_arch").all()
    assert (data.member_split[data.member[part.query_fakes["train"]]] == "train").all()
    assert not data.is_fake[part.query_reals].any() and len(part.query_reals)


def test_marra_vectors_correlate_with_the_mean_residual(part: quality.Partition) -> None:
    """Attribution over Marra vectors is the paper's normalised correlation with each generator's mean residual."""
    marra = MarraFingerprinter(32)
    data = part.data
    refs = part.reference_rows
    vectors = marra.fingerprint(data.pixels[refs]).vectors
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5) and np.allclose(vectors.mean(1), 0, atol=1e-6)
    attributor = OpenSetAttributor(**marra.attributor_params).fit(vectors, data.member[refs].astype(str))
    query = marra.fingerprint(data.pixels[part.query_fakes["train"][:1]]).vectors[0]
    first = attributor.names_[0]
    mean_residual = vectors[data.member[refs].astype(str) == first].mean(0)
    correlation = np.corrcoef(query, mean_residual)[0, 1]
    assert attributor.name_scores(query[None])[0, 0] == pytest.approx(correlation, abs=1e-4)
    assert np.isfinite(noise_residual(np.full((32, 32, 3), 9, np.uint8))).all()  # flat image: no division by zero


def test_side_by_side_tables(part: quality.Partition, fen: FenFingerprinter) -> None:
    tables = {}
    for fingerprinter in (SpectralFingerprinter(crop_size=32), MarraFingerprinter(32), fen):
        table, formats, map_vectors = quality.evaluate_method(part, fingerprinter)
        tables[fingerprinter.name] = table
        assert set(table["view"]) == {"clean", "jpeg95", "jpeg75", "jpeg50", "rescale0.75", "rescale0.5"}
        clean = table[table["view"] == "clean"].set_index("split")
        assert list(clean.index) == ["train", "unseen_seed", "unseen_arch", "held_out", "real"]
        assert set(table.loc[table["view"] != "clean", "split"]) == {"held_out"}
        values = table.reindex(columns=BOUNDED).to_numpy(float)
        assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
        assert clean.loc["train", "closed_set_accuracy"] >= 0 and np.isnan(clean.loc["train", "open_set_auroc"])
        assert clean.loc[["unseen_seed", "unseen_arch", "held_out", "real"], "open_set_auroc"].notna().all()
        assert 0 <= formats["cross_format_pairs_together"] <= 1 and 0 <= formats["same_format_pairs_together"] <= 1
        assert len(map_vectors) == sum(len(part.query_fakes[s]) for s in ("unseen_seed", "unseen_arch"))
    # Heads exist only where a method has them: detection and parsing for the FEN-style model.
    assert tables["spectral"].reindex(columns=["auc", "image_loss_f1"]).isna().all().all()
    fen_clean = tables["fen"][tables["fen"]["view"] == "clean"].set_index("split")
    assert fen_clean.loc["held_out", ["auc", "average_precision", "brier", "image_loss_f1", "member_loss_f1"]].notna().all()
    # The tiny zoo's generators are far apart: the training-free spectrum groups unseen members well above chance.
    spectral = tables["spectral"].set_index(["view", "split"])
    assert spectral.loc[("clean", "held_out"), "nn_same_member"] > 0.8

    combined = pd.concat(tables.values(), ignore_index=True)
    summary = report.parsing_summary(combined)
    assert summary.loc[summary["method"] == "spectral", "image: discrete accuracy"].isna().all()
    assert summary.loc[summary["method"] == "fen", ["image: discrete accuracy", "image: macro-F1", "member: loss F1"]].stack().between(0, 1).all()
    detail = report.parsing_detail(combined)
    assert len(detail) and {"fen accuracy", "fen macro-F1", "majority accuracy", "majority macro-F1"} <= set(detail.columns)
    per_member = report.parsing_detail(combined, unit="member").set_index("hyperparameter")
    assert list(per_member.index) == list(detail["hyperparameter"])
    held = fen_clean.loc["held_out"]
    for name, row in per_member.iterrows():
        assert row["fen accuracy"] == held[f"member_{name}_accuracy"] and row["majority accuracy"] == held[f"member_{name}_majority"]


def test_throughput_table(tmp_path) -> None:
    table = speed.throughput(tmp_path, {"spectral": SpectralFingerprinter()}, {"png64": 8, "jpeg512": 2}, repeats=1, workers=1)
    assert list(table["what"]) == ["decode alone", "decode + spectral"] * 2
    assert (table["images_per_s"] > 0).all() and (table["cpu_ms_per_image"] >= 0).all()
    assert (table.loc[table["what"] == "decode alone", "share_of_decode_rate"] == 1).all()


def test_figures_and_headline(tmp_path) -> None:
    quality_table = pd.DataFrame([{"method": m, "view": v, "split": "held_out", "bcubed_f1": f, "nn_same_member": f}
                                  for m in ("genprint learned", "spectral") for v, f in (("clean", 0.9), ("jpeg75", 0.5), ("rescale0.5", 0.1))])
    figures.plot_jpeg_curve(quality_table, tmp_path / "curve.png")
    figures.plot_maps({"a": np.random.default_rng(0).normal(size=(20, 8))}, np.repeat([0, 1], 10), tmp_path / "map.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000 and (tmp_path / "map.png").stat().st_size > 1000
    assert "NOT ahead" in report.headline(quality_table.assign(ari=0.5))
    shipped = pd.DataFrame([{"method": "genprint learned (shipped)", "view": "clean", "split": "held_out", "bcubed_f1": 0.95, "nn_same_member": 0.95, "ari": 0.9}])
    lines = report.headline(pd.concat([quality_table.assign(ari=0.5), shipped])).splitlines()
    assert len(lines) == 6 and all("(shipped)" in line and "**ahead of**" in line for line in lines[3:])


def test_pair_and_neighbour_counts_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    members, labels, is_jpeg = rng.integers(0, 4, 60), rng.integers(-1, 3, 60), rng.random(60) < 0.5
    same = members[:, None] == members[None, :]
    together = (labels[:, None] == labels[None, :]) & (labels[:, None] >= 0)
    cross = is_jpeg[:, None] != is_jpeg[None, :]
    within = ~cross & ~np.eye(60, dtype=bool)
    shares = quality.pairs_together(members, labels, is_jpeg)
    assert shares["cross_format_pairs_together"] == pytest.approx(together[same & cross].mean())
    assert shares["same_format_pairs_together"] == pytest.approx(together[same & within].mean())
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    from fingerprinting.evaluation import nearest_neighbour_same_label_rate

    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    brute_force = np.mean(members[similarity.argmax(1)] == members)
    assert nearest_neighbour_same_label_rate(vectors, members, chunk=7) == pytest.approx(brute_force)


def test_format_verdict_names_methods_that_split_by_format() -> None:
    formats = pd.DataFrame({"method": ["a", "b"], "cross_format_pairs_together": [0.45, 0.75], "same_format_pairs_together": [0.9, 0.75]})
    assert report.format_verdict(formats).endswith(": a.")
    assert report.format_verdict(formats.iloc[1:]).startswith("No method")


def test_memory_verdict_gives_each_stages_growth_per_added_image() -> None:
    memory = pd.DataFrame({"images": [10_000, 100_000], "peak MiB while fingerprinting": [800.0, 840.0], "peak MiB of the update": [900.0, 1800.0]})
    verdict = report.memory_verdict(memory)
    assert verdict.startswith("For 10.0x the images, fingerprinting's peak is 1.05x (+0.5 KiB per added image)")  # 40 MiB over 90,000 images
    assert "The update's peak is 2.00x (+10.2 KiB per added image)" in verdict


def test_benchmarks_page_keeps_every_part_in_order(tmp_path) -> None:
    from bench.sections import assemble, section_path, write_section

    out = tmp_path / "BENCHMARKS.md"
    write_section(out, "scale", "## Scale\n\n1e6 figures")
    write_section(out, "suite", "# genprint benchmarks\n\nsuite tables")
    assert out.read_text() == "# genprint benchmarks\n\nsuite tables\n\n## Scale\n\n1e6 figures\n"
    write_section(out, "suite", "# genprint benchmarks\n\nnew suite tables")  # a rerun replaces its part only
    assert "new suite tables" in out.read_text() and "1e6 figures" in out.read_text()
    assert assemble(out).read_text().count("## Scale") == 1
    with pytest.raises(ValueError, match="unknown BENCHMARKS.md section"):
        section_path(out, "nonsense")


def test_suite_page_has_every_section_each_table_under_its_heading(tmp_path, monkeypatch) -> None:
    from datetime import datetime

    from bench.suite import BenchConfig, BenchResult

    rng = np.random.default_rng(0)
    rows = [{"method": method, "view": view, "split": split, **dict(zip(BOUNDED, rng.random(len(BOUNDED))))}
            for method in ("genprint learned", "spectral") for view in ("clean", "jpeg75")
            for split in (("train", "unseen_seed", "unseen_arch", "held_out", "real") if view == "clean" else ("held_out",))]
    table = pd.DataFrame({"name": ["a", "b"], "value": [0.5, 0.25]})
    formats = pd.DataFrame({"method": ["spectral"], "cross_format_pairs_together": [0.2], "same_format_pairs_together": [0.9], "ari": [0.5]})
    memory = pd.DataFrame({"images": [100, 1000], "first run seconds": [1.0, 9.0], "peak MiB while fingerprinting": [700.0, 710.0],
                           "peak MiB of the update": [720.0, 900.0]})
    result = BenchResult(BenchConfig.quick(), 101, table, pd.DataFrame(rows), formats, table, memory, table, table, table, {"zoo": 1.0},
                         ["train-learned (finished 2025-12-31 23:00 UTC)"])
    monkeypatch.setattr(report, "machine", lambda: "test machine")
    out = tmp_path / "BENCHMARKS.md"
    report.write_markdown(result, out, "python -m bench --quick", tmp_path / "figures", datetime(2026, 1, 1), 60.0)
    page = out.read_text()
    assert "- resumed: an earlier run of the same configuration and code finished train-learned (finished 2025-12-31 23:00 UTC);" in page
    headings = [line for line in page.splitlines() if line.startswith("#")]
    assert headings[:4] == ["# genprint benchmarks", "## Headline: grouping generators never seen in training", "## Methods",
                            "## Clustering (clean images)"]
    assert headings[-1] == "### Clustering at scale (`bench.clustering_scale`, subprocess peak memory)" and len(headings) == 14
    # Every heading and every table is its own paragraph: a blank line before and after.
    blocks = page.split("\n\n")
    assert all(block.count("\n") == 0 for block in blocks if block.startswith("#"))
    clustering = blocks[blocks.index("## Clustering (clean images)") + 1].splitlines()
    assert clustering[0].startswith("| method | split | ari |") and len(clustering) == 2 + 2 * 4  # two methods x four splits of fakes
    assert "| spectral | unseen seed + architecture |" in clustering[-1]
    assert blocks[-1] == "| name | value |\n|---|---|\n| a | 0.500 |\n| b | 0.250 |\n"


def test_code_revision_names_the_commit_and_flags_changed_code(tmp_path) -> None:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    assert provenance.code_revision(tmp_path) == "not a git checkout"
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "BENCHMARKS.md").write_text("old figures\n")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    commit = git("rev-parse", "--short=12", "HEAD")
    assert provenance.code_revision(tmp_path) == f"commit {commit}"
    (tmp_path / "BENCHMARKS.md").write_text("new figures\n")  # the bench's own output: still the same code
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "MODEL_CARD.md").write_text("notes\n")
    git("add", "data")
    git("commit", "-q", "-m", "card")
    commit = git("rev-parse", "--short=12", "HEAD")
    (tmp_path / "data" / "MODEL_CARD.md").write_text("new notes\n")  # documentation: not code either
    assert provenance.code_revision(tmp_path) == f"commit {commit}"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.code_revision(tmp_path) == f"commit {commit} with uncommitted changes"


def test_command_line_names_the_bench_command_however_it_was_started(monkeypatch) -> None:
    from bench import command_line

    monkeypatch.setattr("sys.argv", ["/x/bench/__main__.py", "--threads", "2"])  # python -m bench, or genprint bench
    assert command_line("fallback") == "python -m bench --threads 2"
    monkeypatch.setattr("sys.argv", ["/x/bench/__main__.py"])
    assert command_line("fallback") == "python -m bench"
    monkeypatch.setattr("sys.argv", ["/x/pytest", "-q"])
    assert command_line("run_and_write(quick=True)") == "run_and_write(quick=True)"
