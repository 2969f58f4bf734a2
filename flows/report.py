"""The HTML report: one self-contained page (images inlined) per run and for the store's current state."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import jinja2
import pandas as pd

from fingerprinting.calibration import VERDICTS
from fingerprinting.parsing import LOSS_TYPES_COLUMN, loss_columns
from flows.parsed_view import described_design
from flows.pictures import data_uri, mean_spectrum, montage

if TYPE_CHECKING:
    from flows.runs import RunSummary
    from flows.store import Store

CLUSTERS_SHOWN = 60  # clusters drawn with pictures; the rest are listed in a table
SPECTRUM_MEMBERS = 16
ERRORS_SHOWN = 50

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("flows", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def cluster_cards(images: pd.DataFrame, clusters: pd.DataFrame) -> list[dict]:
    """What the report shows of each of the largest clusters, pictures included (the slow part of a report)."""
    path_of = dict(zip(images["image_id"], images["path"]))
    return [_cluster_card(row, images, path_of) for row in clusters.head(CLUSTERS_SHOWN).itertuples(index=False)]


def render_report(
    store: Store,
    images: pd.DataFrame,
    clusters: pd.DataFrame,
    errors: pd.DataFrame,
    summary: RunSummary,
    cards: list[dict] | None = None,
) -> str:
    """The report page for the state just computed by a run (tables as they will be committed)."""
    cards = cluster_cards(images, clusters) if cards is None else cards
    rest = clusters.iloc[CLUSTERS_SHOWN:][["cluster_id", "size", "fake_score_mean", "attributed_generator"]]
    return _environment.get_template("report.html.j2").render(
        store=str(store.root),
        summary=summary,
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        totals={
            "images": len(images),
            "clusters": len(clusters),
            "unassigned": int((images["cluster_id"] < 0).sum()),
            "errors": len(errors),
            "unknown_generator": int(images["unknown_generator"].sum()),
            "attributed": int(images["attributed_generator"].notna().sum()),
            **verdict_counts(images),
        },
        # Counted here, not in the cards: a cached card must not carry the verdicts of an old calibration.
        verdicts={int(key): verdict_counts(members) for key, members in images.groupby("cluster_id")},
        clusters=cards,
        other_clusters=[_plain(r) for r in rest.to_dict("records")],
        errors=[_plain(r) for r in errors.sort_values("run_id", ascending=False).head(ERRORS_SHOWN).to_dict("records")],
        errors_hidden=max(0, len(errors) - ERRORS_SHOWN),
    )


def verdict_counts(images: pd.DataFrame) -> dict[str, int]:
    """How many of ``images`` have each verdict (none at all: no calibrated detector)."""
    counts = images["verdict"].value_counts()
    return {verdict: int(counts.get(verdict, 0)) for verdict in VERDICTS}


def _cluster_card(row, images: pd.DataFrame, path_of: dict[str, str]) -> dict:
    exemplars = [path_of[i] for i in row.exemplar_image_ids if i in path_of]
    members = images.loc[images["cluster_id"] == row.cluster_id].sort_values("cluster_probability", ascending=False)
    spectrum = mean_spectrum(members["path"].head(SPECTRUM_MEMBERS).tolist())
    values = row._asdict()
    return {
        "cluster_id": int(row.cluster_id),
        "size": int(row.size),
        "first_seen_run": row.first_seen_run,
        "last_seen_run": row.last_seen_run,
        "fake_score_mean": _number(row.fake_score_mean),
        "attributed_generator": row.attributed_generator if isinstance(row.attributed_generator, str) else None,
        "attribution_share": _number(row.attribution_share),
        "attribution_score": _number(row.attribution_score),
        "design_source": row.design_source if isinstance(row.design_source, str) else None,
        "design_similarity": _number(row.design_similarity),
        "montage": data_uri(montage(exemplars)) if exemplars else None,
        "spectrum": data_uri(spectrum) if spectrum is not None else None,
        "design": _design(values),
    }


def _design(values: dict) -> dict:
    """The parsed design for display: worded hyperparameters (``flows.parsed_view``), loss probabilities and the named loss set."""
    losses = [(c.removeprefix("parsed_loss_"), _number(values[c])) for c in loss_columns() if _number(values[c]) is not None]
    named = values[LOSS_TYPES_COLUMN]
    return {"described": described_design(values), "losses": sorted(losses, key=lambda x: -x[1]),
            "loss_types": [str(t) for t in named] if named is not None else []}


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _plain(record: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
