"""The `genprint` command: a thin typer layer over the store and the flows."""
from __future__ import annotations

from pathlib import Path

import typer

from flows.progress import progress_bar

app = typer.Typer(
    help="genprint: find where generated images come from (fingerprint, cluster, attribute, parse).",
    no_args_is_help=True,
    add_completion=False,
)
zoo_app = typer.Typer(help="The generator zoo: labelled ground truth built on this machine.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")

DEMO_DIR = Path("data/demo")


@zoo_app.command("build")
def zoo_build(
    out: Path = typer.Argument(..., help="Folder of the corpus; an interrupted build resumes, a finished one is reused."),
    members: int = typer.Option(24, "--members", "-n", help="Number of generators (all splits together)."),
    images_per_member: int = typer.Option(100, "--images-per-member", "-m", help="Images each generator emits."),
    size: int = typer.Option(64, "--size", help="Side of every image in pixels (lossless PNG)."),
    seed: int = typer.Option(0, "--seed", help="Master seed: the same options and seed give byte-identical output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build a labelled zoo corpus: generators.parquet, images.parquet and the PNGs under OUT."""
    from fingerprinting.zoo import build_zoo

    with progress_bar("zoo", enabled=not quiet) as on_progress:
        summary = build_zoo(out, members=members, images_per_member=images_per_member, size=size, seed=seed, on_progress=on_progress)
    typer.echo(summary.describe())


@app.command()
def demo(
    out: Path = typer.Option(DEMO_DIR, "--out", help="Where the demo zoo and store go."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """The main job on the embedded default: build (or reuse) a small demo zoo and summarise it."""
    zoo_build(out / "zoo", members=12, images_per_member=40, size=64, seed=2026, quiet=quiet)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
