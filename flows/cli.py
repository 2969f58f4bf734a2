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
def train(
    zoo_dir: Path = typer.Argument(..., help="A zoo corpus built by `genprint zoo build`."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.safetensors, with its .json beside it)."),
    epochs: int = typer.Option(20, "--epochs", help="Most epochs; training stops earlier when held-out members stop improving."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, batches and augmentation."),
    steps_per_epoch: int = typer.Option(0, "--steps-per-epoch", help="Batches per epoch (0: one pass over the training fakes)."),
    patience: int = typer.Option(5, "--patience", help="Epochs without a better held-out score before stopping."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the fingerprint network (vector, fake-vs-real and parsing heads) on a zoo's train members."""
    from fingerprinting.train import TrainConfig
    from fingerprinting.train import train as train_network

    config = TrainConfig(epochs=epochs, seed=seed, steps_per_epoch=steps_per_epoch or None, patience=patience)
    with progress_bar("train", enabled=not quiet) as on_progress:
        result = train_network(zoo_dir, out, config, on_progress=on_progress)
    best = result.history[result.best_epoch - 1]
    typer.echo(
        f"{result.path} ({result.checkpoint.version}): best epoch {result.best_epoch} of {len(result.history)} in {result.seconds:.0f} s; "
        f"held-out members: nn same-member {best['clean_nn_same_member']:.3f} (JPEG 75: {best['jpeg75_nn_same_member']:.3f}), "
        f"fake-vs-real AUC {best['clean_auc']:.3f} (JPEG 75: {best['jpeg75_auc']:.3f})"
    )


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
