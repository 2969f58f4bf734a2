"""The `genprint` command: a thin typer layer over the store and the flows."""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from flows.defaults import DEFAULT_SHARD_SIZE
from flows.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd

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
    steps: Optional[int] = typer.Option(None, "--steps", help="Base training steps of a member (each trains 0.6-1.4x that; default 120)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    workers: int = typer.Option(0, "--workers", help="Members built side by side, one process and one thread each (0: all cores, at most 8); the output is the same."),
) -> None:
    """Build a labelled zoo corpus: generators.parquet, images.parquet and the PNGs under OUT."""
    from fingerprinting.runtime import default_threads
    from fingerprinting.zoo import build_zoo

    with progress_bar("zoo", enabled=not quiet) as on_progress:
        summary = build_zoo(out, members=members, images_per_member=images_per_member, size=size, seed=seed, on_progress=on_progress,
                            steps=steps, workers=workers or default_threads())
    typer.echo(summary.describe())


@zoo_app.command("external")
def zoo_external(
    out: Path = typer.Argument(..., help="Folder of the external corpus; an interrupted build resumes, a finished one is reused."),
    images_per_generator: int = typer.Option(200, "--images-per-generator", "-m", help="Images each external generator emits, per size."),
    size: list[int] = typer.Option([64, 128], "--size", help="Side of the images in pixels (lossless PNG); repeat for several sizes."),
    seed: int = typer.Option(0, "--seed", help="Master seed: the same options, seed and photographs give the same corpus."),
    real_images: Optional[int] = typer.Option(None, "--real-images", help="Camera-photograph crops per size (default: 5 x --images-per-generator)."),
    threads: int = typer.Option(1, "--threads", help="CPU threads ncnn uses for each network."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build the external corpus: super-resolution networks trained by others (Real-CUGAN, SPAN; ncnn on CPU) and camera photographs, with platform views."""
    from fingerprinting.zoo.external import ExternalPackagesMissing, build_external, camera_photos

    _, problems = camera_photos()
    for problem in problems:
        typer.secho(f"WARNING: {problem}", fg=typer.colors.RED, bold=True, err=True)
    try:
        with progress_bar("external", enabled=not quiet) as on_progress:
            summary = build_external(out, images_per_generator=images_per_generator, sizes=size, seed=seed, on_progress=on_progress,
                                     real_images=real_images, threads=threads)
    except ExternalPackagesMissing as error:
        typer.secho(f"genprint zoo external: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(summary.describe())
    if summary.problems:
        typer.secho(f"WARNING: built without some camera photographs ({len(summary.problems)} problems above)", fg=typer.colors.RED, bold=True, err=True)


@app.command()
def train(
    zoo_dir: Path = typer.Argument(..., help="A zoo corpus built by `genprint zoo build`."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.safetensors, with its .json beside it)."),
    epochs: int = typer.Option(20, "--epochs", help="Most epochs; training stops earlier when held-out members stop improving."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, batches and augmentation."),
    steps_per_epoch: int = typer.Option(0, "--steps-per-epoch", help="Batches per epoch (0: one pass over the training fakes)."),
    patience: int = typer.Option(5, "--patience", help="Epochs without a better held-out score before stopping."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0: all cores, at most 8)."),
    device: str = typer.Option("cpu", "--device", help="Where the network trains: 'cpu', or 'cuda' where a GPU is present (never needed; the checkpoint is the same kind)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the fingerprint network (vector, fake-vs-real and parsing heads) on a zoo's train members."""
    from fingerprinting.runtime import pin_threads
    from fingerprinting.train import TrainConfig
    from fingerprinting.train import train as train_network

    pin_threads(threads or None)
    config = TrainConfig(epochs=epochs, seed=seed, steps_per_epoch=steps_per_epoch or None, patience=patience, device=device)
    with progress_bar("train", enabled=not quiet) as on_progress:
        result = train_network(zoo_dir, out, config, on_progress=on_progress)
    best = result.history[result.best_epoch - 1]
    typer.echo(
        f"{result.path} ({result.checkpoint.version}): best epoch {result.best_epoch} of {len(result.history)} in {result.seconds:.0f} s; "
        f"held-out members: nn same-member {best['clean_nn_same_member']:.3f} (JPEG 75: {best['jpeg75_nn_same_member']:.3f}), "
        f"fake-vs-real AUC {best['clean_auc']:.3f} (JPEG 75: {best['jpeg75_auc']:.3f})"
    )


@app.command("fit-detector")
def fit_detector(
    model: str = typer.Option("default", "--model", help="'default' (the shipped checkpoint) or a checkpoint file."),
    zoo_dir: Optional[Path] = typer.Option(None, "--zoo", help="A zoo corpus (`genprint zoo build`) whose images it learns from too: one whose members "
                                           "the checkpoint never trained on (its head then scores them as it scores new generators), "
                                           "and never one it is benchmarked on."),
    upscalers: int = typer.Option(24, "--upscalers", help="Small super-resolution networks trained on the zoo's photographs, whose output it learns from."),
    upscaler_steps: int = typer.Option(600, "--upscaler-steps", help="Training steps of each upscaler."),
    images_per_upscaler: int = typer.Option(200, "--images-per-upscaler", help="Images of each upscaler at each size (64 and 128 px)."),
    real_images: int = typer.Option(2400, "--real-images", help="Real photograph crops at each size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the upscalers, their images and the real crops."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Detector file to write (default: NAME.detector.skops beside the checkpoint, where genprint reads it)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Keep each upscaler's crop features here: a later fit with the same checkpoint and options "
                                        "(another --zoo, or an interrupted one) reuses them instead of training the upscalers again."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0: all cores, at most 8)."),
) -> None:
    """Fit a checkpoint's stacked detector: fake scores from its fingerprint, head and noise statistics (run `genprint calibrate` after it).

    Learns from the output of small upscalers trained here on the zoo's photographs, from a zoo's images
    when --zoo is given, and from real crops of the same photographs, each also as JPEG 85 and as a 0.5x
    resize then JPEG 85. No external generator and no calibration photograph is used.
    """
    from fingerprinting.checkpoint import load_checkpoint
    from fingerprinting.detector_material import MaterialOptions, build_material
    from fingerprinting.learned import LearnedFingerprinter
    from fingerprinting.models import DEFAULT_CHECKPOINT
    from fingerprinting.runtime import pin_threads
    from fingerprinting.stacked import StackedDetector, sidecar_path

    pin_threads(threads or None)
    if model == "spectral":
        raise typer.BadParameter("the spectral fingerprint has no head to stack on", param_hint="--model")
    if min(upscalers, upscaler_steps, images_per_upscaler, real_images) < 1:
        raise typer.BadParameter("--upscalers, --upscaler-steps, --images-per-upscaler and --real-images must be at least 1")
    weights = DEFAULT_CHECKPOINT if model == "default" else Path(model)
    try:
        # The network alone: a detector beside it (perhaps fitted for other weights) is what this replaces.
        fingerprinter = LearnedFingerprinter(load_checkpoint(weights))
    except (ValueError, FileNotFoundError) as exc:  # CheckpointError is a ValueError
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    options = MaterialOptions(upscalers, upscaler_steps, images_per_upscaler, real_images, seed)
    material = build_material(options, fingerprinter, zoo_dir, work, log=typer.echo)
    detector = StackedDetector().fit(material.features, material.is_fake, fitted_for=fingerprinter.checkpoint.version)
    path = detector.save(out or sidecar_path(weights))
    typer.echo(f"{path}: fitted on {material.describe()}; "
               f"run `genprint calibrate --model {model}` next: its verdicts were fitted on other scores")


@app.command()
def calibrate(
    model: str = typer.Option("default", "--model", help="'default' (the shipped checkpoint) or a checkpoint file."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Calibration file to write (default: NAME.verdict.safetensors beside the checkpoint, where genprint reads it)."
    ),
    photos: list[Path] = typer.Option([], "--photos", help="More camera photographs to calibrate on (files; repeatable), beside the packages' ones."),
    crops_per_photo: int = typer.Option(96, "--crops-per-photo", help="Crops of each photograph at its resolution (half as many of its 0.5x copy)."),
    target_fpr: float = typer.Option(0.01, "--target-fpr", help="Share of camera photographs that may be called generated."),
    photo_coverage: float = typer.Option(
        0.95, "--photo-coverage",
        help="Share of new photographs that should keep at most --target-fpr of their images above the generated threshold "
             "(a tolerance bound across photographs, at 95 % confidence); 0 leaves that bound out.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the crop positions."),
    check_zoo: Optional[Path] = typer.Option(None, "--check-zoo", help="A zoo corpus whose images are judged afterwards (shares called generated / unsure / real)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for torch (0: all cores, at most 8)."),
) -> None:
    """Calibrate a checkpoint's verdicts (generated / real / unsure) on camera photographs, and show them left out one at a time."""
    from fingerprinting.calibration import SCORE_FLOOR, VERDICTS, sidecar_path
    from fingerprinting.camera_photos import bundled_camera_photos, calibrate as fit_calibration, camera_samples, leave_one_photo_out
    from fingerprinting.models import DEFAULT_CHECKPOINT, load_learned
    from fingerprinting.runtime import pin_threads

    pin_threads(threads or None)
    if model == "spectral":
        raise typer.BadParameter("the spectral fingerprint has no detector: there is no fake score to calibrate", param_hint="--model")
    if not 0 < target_fpr < 1:
        raise typer.BadParameter(f"{target_fpr}: a share, between 0 and 1", param_hint="--target-fpr")
    if not 0 <= photo_coverage < 1:
        raise typer.BadParameter(f"{photo_coverage}: a share below 1, or 0 to leave the bound out", param_hint="--photo-coverage")
    rule = dict(target_fpr=target_fpr, photo_coverage=photo_coverage or None)
    weights = DEFAULT_CHECKPOINT if model == "default" else Path(model)
    try:
        fingerprinter = load_learned(weights)
    except (ValueError, FileNotFoundError) as exc:  # CheckpointError is a ValueError
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    # The regions the zoo photographs were split into depend on the training zoo's image side.
    zoo_size = int(fingerprinter.checkpoint.training.get("zoo", {}).get("image_side", 64))
    samples = camera_samples(bundled_camera_photos(zoo_size) + [str(p) for p in photos], fingerprinter, crops_per_photo, seed)
    calibrator = fit_calibration(samples, fingerprinter.scores_version, **rule)
    path = calibrator.save(out or sidecar_path(weights))
    typer.echo(
        f"{path}: {calibrator.n_samples_} camera images of {calibrator.n_groups_} photographs; generated above "
        f"{calibrator.generated_threshold_:.7f}, real at or below {calibrator.real_threshold_:.4f}, unsure between or where ood_score > 1"
    )
    if calibrator.generated_threshold_ >= 1 - SCORE_FLOOR:  # the largest float32 fake score below 1
        typer.echo(
            "warning: the generated threshold lies above every fake score below 1.0 that the detector can give: only scores saturated "
            "at 1.0 will be called generated (these photographs score as high as generated images; more photographs, or a lower "
            "--photo-coverage, lower it)",
            err=True,
        )
    table = leave_one_photo_out(samples, **rule)
    table["photo"] = _short_photo_names(table["photo"])
    typer.echo("leaving each photograph out in turn (calibrated on the others):")
    typer.echo(table.to_string(index=False))
    for kind, rows in table.groupby("kind"):
        worst = (rows["generated"] / rows["images"].clip(lower=1)).max()
        typer.echo(f"  {kind}: {rows['generated'].sum()} of {rows['images'].sum()} called generated "
                   f"({rows['generated'].sum() / max(1, rows['images'].sum()):.2%}; worst photograph {worst:.2%})")
    if check_zoo is not None:
        typer.echo(_zoo_verdicts(check_zoo, fingerprinter, calibrator, VERDICTS))


def _short_photo_names(names: pd.Series) -> pd.Series:
    """Photograph files named below the folder they share (a lone file by its name); the packages' photographs as they are."""
    files = [name for name in names.unique() if os.sep in name]
    common = os.path.commonpath(files) if len(files) > 1 else os.path.dirname(files[0]) if files else ""
    return names.map(lambda name: os.path.relpath(name, common) if name in files else name)


def _zoo_verdicts(zoo_dir: Path, fingerprinter, calibrator, verdicts: tuple[str, ...]) -> str:
    """Shares of a zoo's fakes and reals, per split, given each verdict."""
    import numpy as np
    import pandas as pd

    from fingerprinting.embed import embed_paths
    from fingerprinting.zoo.tables import load_zoo

    zoo = load_zoo(zoo_dir)
    chunks = list(embed_paths(zoo.images["path"].tolist(), fingerprinter))
    records = pd.concat([chunk.records for chunk in chunks], ignore_index=True)
    vectors = np.concatenate([chunk.vectors for chunk in chunks])
    judged = zoo.images.merge(records[["path", "fake_score"]].assign(verdict=calibrator.predict(records["fake_score"].to_numpy(), vectors)), on="path")
    judged["class"] = np.where(judged["is_fake"], "fake", "real")
    shares = pd.crosstab([judged["class"], judged["split"]], judged["verdict"], normalize="index").reindex(columns=list(verdicts), fill_value=0.0)
    shares["images"] = judged.groupby(["class", "split"]).size()
    return f"{zoo_dir}: verdicts per class and split (shares)\n" + shares.round(3).to_string()


# ---- the pipeline: run, investigate, known, serve, demo -------------------------------------------

StoreOption = Annotated[
    Path, typer.Option("--store", "-s", help="The store folder: tables, fingerprints, index, reports (created on first use).")
]
ModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        help="Fingerprint model: 'default' (the shipped network), 'spectral' (training-free) or a checkpoint file. "
        "A store keeps the model it started with: left out, that one ('default' for a new store).",
    ),
]
ThreadsOption = Annotated[int, typer.Option("--threads", help="CPU threads for torch, BLAS and FAISS (0: all cores, at most 8).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; only warnings from Prefect.")]
DaskOption = Annotated[
    Optional[str],
    typer.Option(
        "--dask-address",
        help="Fingerprint on the workers of an existing Dask cluster, by its scheduler's address (tcp://HOST:PORT); "
        "they need the store's filesystem and the same genprint version (README).",
    ),
]
WaitOption = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for another run on the same store to finish (0: fail at once).")
]


def _start(threads: int, quiet: bool) -> None:
    """Prefect's settings (before it is imported) and thread pinning, once per command."""
    from flows import prefect_env

    prefect_env.configure(quiet=quiet)
    _log_to_terminal(quiet)
    from clustering.index import set_threads
    from fingerprinting.runtime import pin_threads

    set_threads(pin_threads(threads or None))


def _log_to_terminal(quiet: bool) -> None:
    """The progress lines of steps run without Prefect (flows.batch) on stderr, as Prefect's console shows a flow's."""
    import logging

    logger = logging.getLogger("genprint")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """User errors become one red line and exit status 2; anything else is a bug and keeps its traceback."""
    from flows.errors import UserError

    try:
        yield
    except UserError as exc:
        typer.secho(f"genprint: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


@app.command()
def run(
    sources: list[str] = typer.Argument(
        ..., help="Folders (searched recursively for images), image files, or csv/parquet manifests with a 'path' column."
    ),
    store: StoreOption = ...,
    model: ModelOption = None,
    shard_size: int = typer.Option(DEFAULT_SHARD_SIZE, "--shard-size", help="Images per fingerprinting task (a unit of retry and resume)."),
    recluster: Optional[bool] = typer.Option(
        None, "--recluster/--assign-only", help="Force a full re-clustering, or only assign new images (default: the store decides)."
    ),
    min_cluster_size: Optional[int] = typer.Option(None, "--min-cluster-size", help="Smallest group reported as a cluster (default: OriginClusterer's, 10). Raise it for large batches: with ~1000 images per origin, 100 keeps one generator's modes together."),
    wait: WaitOption = 0.0,
    dask_address: DaskOption = None,
    allow_root: Optional[list[Path]] = typer.Option(
        None, "--allow-root",
        help="Only read inputs under this folder (repeatable): a source or manifest row outside every one stops the run before any work.",
    ),
    threads: ThreadsOption = 0,
    quiet: QuietOption = False,
) -> None:
    """One incremental batch run: fingerprint new images, update index, clusters, attribution, tables and report.

    Images already in the store (same bytes) are skipped; a run that was interrupted resumes its finished shards. The full store is re-clustered when it grew by more than 10 % since the last re-clustering, otherwise new images are assigned to the existing clusters.

    Runs as a Prefect flow when PREFECT_API_URL points to a Prefect server (so it shows in its UI) or with --dask-address; otherwise directly, without starting a temporary one.

    Examples:
      genprint run incoming/ --store data/store
      genprint run uploads.csv more/ --store data/store --wait 600
      genprint run uploads.csv --store data/store --allow-root /srv/uploads
      genprint run incoming/ --store data/store --model spectral --threads 2
      genprint run /shared/incoming --store /shared/store --dask-address tcp://scheduler:8786
    """
    _start(threads, quiet)
    from flows.api import Store

    with _user_errors():
        summary = Store(store).run(
            sources, model=model, shard_size=shard_size, wait=wait, recluster=recluster, min_cluster_size=min_cluster_size,
            progress=not quiet, dask_address=dask_address, allowed_roots=allow_root or None,
        )
    typer.echo(summary.describe())


@app.command()
def investigate(
    images: list[Path] = typer.Argument(..., help="Query image files (they are not added to the store)."),
    store: StoreOption = ...,
    k: int = typer.Option(10, "-k", "--k", help="Nearest stored fingerprints to list per query."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON on stdout instead of tables."),
    html: Optional[Path] = typer.Option(None, "--html", help="Where to write the HTML page (default: STORE/investigations/)."),
    threads: ThreadsOption = 0,
) -> None:
    """Where does this image come from? Nearest stored fingerprints, cluster, attribution, fake score, design.

    Runs as a Prefect flow when PREFECT_API_URL points to a Prefect server (so it shows in its UI); otherwise directly, without starting a temporary one.

    Examples:
      genprint investigate suspect.png --store data/demo/store
      genprint investigate a.jpg b.png --store data/store -k 20 --json > answer.json
    """
    _start(threads, quiet=True)
    from flows.api import Store
    from flows.atomic import write_text
    from flows.errors import UserError

    with _user_errors():
        target = Store(store)
        if not target.exists():
            raise UserError(f"no store at {store}: create one with `genprint run SOURCE --store {store}`")
        if os.environ.get("PREFECT_API_URL"):
            from flows.flows import investigate_flow

            result = investigate_flow(str(target.root), [str(i) for i in images], k)
        else:
            result = target.investigate(images, k=k)
    page = html or target.root / "investigations" / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}.html"
    write_text(page, result.to_html())
    if json_output:
        typer.echo(result.to_json())
        typer.echo(f"html: {page}", err=True)
        return
    _print_investigation(result)
    typer.echo(f"html: {page}")


def _print_investigation(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for entry in result.to_dict()["queries"]:
        if entry.get("error"):
            console.print(f"[bold]{entry['query']}[/]: [red]not usable: {entry['error']}[/]")
            continue
        cluster = entry["cluster_id"]
        where = f"cluster {cluster} ({entry['cluster_size']} images)" if cluster != -1 else "no cluster"
        fake = "n/a" if entry["fake_score"] is None else f"{entry['fake_score']:.2f}"
        name = entry["attributed_generator"] or "no registered generator"
        stored = ", already stored" if entry["in_store"] else ""
        verdict = entry["verdict"] or "no verdict (no calibrated detector)"
        ood = "" if entry["ood_score"] is None else f", ood {entry['ood_score']:.2f}"
        console.print(f"[bold]{entry['query']}[/]: {verdict} (fake score {fake}{ood}), {where}, {name}{stored}")
        from flows.parsed_view import described_design

        design = described_design(entry)
        if design:
            console.print("  parsed design: " + "; ".join(f"{k}: {v}" for k, v in design))
        table = Table(show_edge=False)
        for column in ("rank", "similarity", "cluster", "generator", "path"):
            table.add_column(column)
        for n in entry["neighbours"]:
            table.add_row(str(n["rank"]), f"{n['similarity']:.3f}", str(n["cluster_id"]), n["attributed_generator"] or "", n["path"])
        console.print(table)


known_app = typer.Typer(help="Registered generators: named reference images that attribution compares against.", no_args_is_help=True)
app.add_typer(known_app, name="known")


@known_app.command("add")
def known_add(
    name: str = typer.Argument(..., help="The generator's name (letters, digits, '_', '.', '-')."),
    sources: list[str] = typer.Argument(..., help="Reference images: folders, files or manifests, as for `run`."),
    store: StoreOption = ...,
    model: ModelOption = None,
    wait: WaitOption = 0.0,
    threads: ThreadsOption = 0,
    quiet: QuietOption = False,
    design: Path | None = typer.Option(
        None, "--design", dir_okay=False,
        help="A JSON file with the generator's known design: hyperparameter names of the zoo's space "
        '(e.g. "upsampling": "transposed", "up_blocks": 4) and "loss_types" (a list); keys left out stay unknown. '
        "Clusters attributed to this generator, or whose images lie close to its references, then carry this design as their parsed design.",
    ),
) -> None:
    """Register reference images of a named generator; runs from the next one on attribute to it.

    Runs as a Prefect flow when PREFECT_API_URL points to a Prefect server (so it shows in its UI); otherwise directly, without starting a temporary one.

    Examples:
      genprint known add stylegan-lab refs/stylegan/ --store data/store
      genprint known add inhouse-vae refs.csv --store data/store --design inhouse-vae.json
    """
    _start(threads, quiet)
    with _user_errors():
        known_design = _read_design(design) if design is not None else None
        from flows.api import add_known

        unusable = add_known(str(store.absolute()), name, sources, model, wait, known_design)
    typer.echo(f"registered {name}" + (f" ({unusable} inputs not usable)" if unusable else ""))
    known_list(store)


@known_app.command("list")
def known_list(store: StoreOption = ...) -> None:
    """List the registered generators and their number of reference images."""
    from flows.api import Store

    table = Store(store).known.list()
    if table.empty:
        typer.echo("no registered generators")
    for row in table.itertuples(index=False):
        typer.echo(f"{row.name}\t{row.images} images\tadded {row.added_at:%Y-%m-%d %H:%M}" + ("\tknown design" if row.design else ""))


def _read_design(path: Path) -> dict[str, object]:
    """The JSON object of a --design file, checked against the generator space before any work starts."""
    import json

    from flows.designs import design_row
    from flows.errors import UserError

    try:
        design = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the design {path}: {exc}") from exc
    if not isinstance(design, dict):
        raise UserError(f"the design {path} must be a JSON object of hyperparameter names to values")
    design_row(design)  # refuses unknown keys and values with a clear message
    return design


@known_app.command("remove")
def known_remove(
    name: str = typer.Argument(..., help="The generator to unregister."),
    store: StoreOption = ...,
    wait: WaitOption = 0.0,
) -> None:
    """Unregister a generator (its references are forgotten; the next run re-attributes every image)."""
    from flows.api import Store
    from flows.errors import UserError

    with _user_errors():
        if not Store(store).known.remove(name, wait=wait):
            raise UserError(f"no registered generator named {name!r} in {store}")
    typer.echo(f"removed {name}")


@app.command()
def serve(
    sources: list[str] = typer.Argument(..., help="What each scheduled run reads, as for `run`."),
    store: StoreOption = ...,
    cron: str = typer.Option(..., "--cron", help="When to run, as a cron expression (UTC), e.g. '*/15 * * * *'."),
    model: ModelOption = None,
    shard_size: int = typer.Option(DEFAULT_SHARD_SIZE, "--shard-size", help="Images per fingerprinting task."),
    dask_address: DaskOption = None,
    threads: ThreadsOption = 0,
) -> None:
    """Scheduled incremental runs with Prefect (`flow.serve`), until interrupted (Ctrl-C).

    Scheduling needs a Prefect server: with PREFECT_API_URL set, that one (the schedule and its runs appear in its UI); otherwise a local one is started for as long as this command runs. A scheduled run that finds the store busy waits up to 10 minutes.

    Examples:
      genprint serve /srv/uploads --store /srv/genprint --cron '0 * * * *'
    """
    _start(threads, quiet=False)
    from flows.prefect_env import scheduling_server
    from flows.runs import RunOptions, begin_run
    from flows.store import StoreFolder

    with _user_errors():
        # The checks each scheduled run makes, once now: a mistake shows before the server starts.
        with begin_run(StoreFolder(store), sources, RunOptions(model=model)) as checked:
            pass
        options = RunOptions(model=checked.model, shard_size=shard_size, wait=600.0, dask_address=dask_address)
        _check_cron(cron)
        with scheduling_server() as api:
            typer.echo(f"Prefect API (and UI) for the schedule: {api.removesuffix('/api')}")
            from flows.flows import serve as serve_runs

            serve_runs(str(store.absolute()), sources, cron, options)


def _check_cron(cron: str) -> None:
    """A first check of the cron expression's shape, before a server starts (Prefect checks the rest)."""
    from flows.errors import UserError

    fields = cron.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,\-?LW#]+", f) for f in fields):
        raise UserError(f"invalid --cron {cron!r}: expected five fields, e.g. '*/15 * * * *' (every 15 minutes)")


@app.command("rebuild-index")
def rebuild_index(store: StoreOption = ..., wait: WaitOption = 0.0, threads: ThreadsOption = 0) -> None:
    """Rebuild the FAISS index from the stored fingerprint vectors (after a damaged index file)."""
    _start(threads, quiet=True)
    from flows.api import Store

    with _user_errors():
        count = Store(store).rebuild_index(wait=wait)
    typer.echo(f"index rebuilt from {count} stored fingerprints")


export_app = typer.Typer(help="Open the store in other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("fiftyone")
def export_fiftyone(
    store: StoreOption = ...,
    name: Optional[str] = typer.Option(None, "--name", help="The FiftyOne dataset to write (replaced if it exists; default: genprint-<store folder>)."),
    method: str = typer.Option("pca", "--method", help="How FiftyOne Brain maps the fingerprints to 2-D: pca, or umap (needs umap-learn)."),
) -> None:
    """The store as a persistent FiftyOne dataset: one sample per image, fingerprints as embeddings, a Brain similarity index and map.

    Needs the optional extra: pip install 'genprint[fiftyone]'. FiftyOne keeps its datasets in its own database (FIFTYONE_DATABASE_DIR, default ~/.fiftyone/var/lib/mongo).

    Examples:
      genprint export fiftyone --store data/demo/store
      fiftyone app launch genprint-store
    """
    from flows.errors import UserError
    from flows.export_fiftyone import export_fiftyone as export
    from flows.store import StoreFolder

    with _user_errors():
        target = StoreFolder(store)
        if not target.exists():
            raise UserError(f"no store at {store}: create one with `genprint run SOURCE --store {store}`")
        if method not in ("pca", "umap"):
            raise UserError(f"unknown --method {method!r}: pca or umap")
        dataset = export(target, name, method)
    typer.echo(f"FiftyOne dataset {dataset.name}: {len(dataset)} samples, brain runs {', '.join(dataset.list_brain_runs())}")
    typer.echo(f"open it: fiftyone app launch {dataset.name}")


@app.command()
def demo(
    out: Path = typer.Option(DEMO_DIR, "--out", help="Where the demo zoo and store go."),
    model: ModelOption = None,
    threads: ThreadsOption = 0,
    quiet: QuietOption = False,
) -> None:
    """The whole pipeline on the embedded default, in a few minutes.

    Builds (or reuses) a small zoo of generators mixed with real photographs under OUT/zoo, registers two zoo generators as known, runs the pipeline into OUT/store and prints where the tables and the report are.
    """
    _start(threads, quiet)
    with _user_errors():
        from flows.demo import run_demo

        result = run_demo(out, model=model or "default", progress=not quiet)
    typer.echo(result.describe())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def bench(ctx: typer.Context) -> None:
    """The benchmark suite that writes BENCHMARKS.md: `python -m bench` in the checkout genprint runs from, with the same options (--help lists them).

    The suite lives in a git checkout beside tests/ and is not installed with genprint.
    """
    import subprocess
    import sys

    checkout = Path(__file__).resolve().parents[1]
    if not (checkout / "bench" / "__main__.py").is_file():
        typer.secho("genprint bench: the benchmark suite is not installed with genprint; run `python -m bench --help` "
                    "from the root of a git checkout of genprint", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    # The checkout first on the path: the suite imports bench wherever this command was started from.
    path = os.pathsep.join([str(checkout), *filter(None, [os.environ.get("PYTHONPATH")])])
    raise typer.Exit(subprocess.run([sys.executable, "-m", "bench", *ctx.args], env=os.environ | {"PYTHONPATH": path}).returncode)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
