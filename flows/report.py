"""The HTML report: an index page (`current/report.html`) and member pages beside it (`current/report/`).

Everything is one offline folder: pictures are inlined as data URIs, links are relative, nothing is
fetched. The index shows verdict counts (this run and the store), a map of the batch's
fingerprints, a sortable table of every cluster, and cards of the largest clusters split into
generated, camera-like and undecided ones; each cluster and the unassigned images have pages
listing every member with its scores. Pictures are the slow part: they are cached in
`PICTURES_CACHE` and reused while the clusters (cards, map) or the image bytes (thumbnails) stay
the same.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from fingerprinting.calibration import UNSURE, VERDICTS
from fingerprinting.parsing import LOSS_TYPES_COLUMN, loss_columns
from fingerprinting.runtime import pinned_threads
from flows.investigate import IMAGE_IDS_META
from flows.parsed_view import described_design
from flows.schemas import NO_CLUSTER
from flows.store import StoreFolder

if TYPE_CHECKING:
    from flows.atomic import Transaction
    from flows.runs import RunSummary

CLUSTERS_SHOWN = 60  # clusters drawn as cards with pictures; every cluster is in the table and has pages
SPECTRUM_MEMBERS = 16
ERRORS_SHOWN = 50
MEMBERS_PER_PAGE = 200
MEMBERS_LISTED = 5000  # per cluster (and for the unassigned); the rest: a query on images.parquet
MEMBER_ROWS = 100_000  # listed on all member pages of a report together, largest clusters first after the unassigned
MEMBER_PICTURES = 3000  # thumbnails on member pages per report: the first page of each, unassigned first
MAP_POINTS = 4000  # images drawn on the map: those with the smallest image ids (a uniform, stable sample)
PAGES = "report"  # the member pages' folder, beside the index page
PICTURES_CACHE = "index/report_pictures.json"
PICTURES_FORMAT = "2"  # changed with what a card holds: a cache of another format is drawn again
INVESTIGATIONS = "investigations"  # where `genprint investigate` writes its pages by default

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("flows", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def verdict_of(images: pd.DataFrame) -> pd.Series:
    """Each image's verdict, `generated`, `real` or `unsure`; `unsure` where the store has none (a model
    without a calibrated detector, such as the spectral one)."""
    return images["verdict"].astype(object).where(images["verdict"].notna(), UNSURE)


# ---- pictures (cached between runs) ---------------------------------------------------------------


@dataclass
class Pictures:
    """What a report draws: cluster cards, the map's points, member thumbnails by image id (JSON-ready)."""

    cards: list[dict]
    map: dict  # x, y (0..1), cluster (ids), shown (of how many images)
    thumbnails: dict[str, str] = field(default_factory=dict)
    signature: str = ""

    def to_dict(self) -> dict:
        return {"signature": self.signature, "cards": self.cards, "map": self.map, "thumbnails": self.thumbnails}


def report_pictures(
    store: StoreFolder,
    images: pd.DataFrame,
    clusters: pd.DataFrame,
    new_ids: Sequence[str] = (),
    new_vectors: np.ndarray | None = None,
) -> Pictures:
    """Cards, map and thumbnails for this state; the cached ones where nothing they show changed.

    `new_ids`, `new_vectors`: fingerprints of images not committed to the store yet (a run in
    progress); every other image's are read from the store.
    """
    from flows import pictures as drawing  # matplotlib and scipy (and scikit-learn for the map): only when pictures are drawn

    cached = _read_cache(store)
    sample = images.sort_values("image_id").head(MAP_POINTS)
    signature = _signature(clusters, sample)
    if cached is not None and cached.get("signature") == signature:
        cards, batch_map = cached["cards"], cached["map"]
    else:
        cards = cluster_cards(images, clusters)
        batch_map = _batch_map(store, sample, len(images), list(new_ids), new_vectors)
    old = cached.get("thumbnails", {}) if cached else {}
    wanted = _pictured_members(_members_by_cluster(images), clusters)
    new = [(i, p) for i, p in wanted.items() if i not in old]
    drawn = dict(zip([i for i, _ in new], _on_every_core(drawing.thumbnail_uri, [p for _, p in new])))
    thumbnails = {i: old[i] if i in old else drawn[i] for i in wanted}
    return Pictures(cards, batch_map, thumbnails, signature)


def cluster_cards(images: pd.DataFrame, clusters: pd.DataFrame) -> list[dict]:
    """What the index shows of each of the largest clusters, pictures included."""
    path_of = dict(zip(images["image_id"], images["path"]))
    rows = list(clusters.head(CLUSTERS_SHOWN).itertuples(index=False))
    return _on_every_core(lambda row: _cluster_card(row, images, path_of), rows)


def _on_every_core(function: Callable, items: list) -> list:
    """``[function(item) for item in items]`` on a thread per core: decoding, resizing and PNG encoding release the GIL."""
    if len(items) <= 1 or pinned_threads() <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(pinned_threads(), thread_name_prefix="genprint-pictures") as pool:
        return list(pool.map(function, items))


def _batch_map(
    store: StoreFolder, sample: pd.DataFrame, total: int, new_ids: list[str], new_vectors: np.ndarray | None
) -> dict:
    """The sample's fingerprints projected on their first two principal components, scaled to 0..1."""
    from flows import pictures as drawing  # matplotlib and scipy (and scikit-learn for the map): only when pictures are drawn

    ids = sample["image_id"].tolist()
    if len(ids) < 3:
        return {"x": [], "y": [], "cluster": [], "total": total}
    row_of = {image_id: i for i, image_id in enumerate(new_ids)}
    stored = [i for i in ids if i not in row_of]
    _, old = store.vectors(stored) if stored else ([], None)
    found = dict(zip(stored, old)) if stored else {}
    vectors = np.stack([new_vectors[row_of[i]] if i in row_of else found[i] for i in ids])
    xy = drawing.project_2d(vectors)
    return {"x": xy[:, 0].round(4).tolist(), "y": xy[:, 1].round(4).tolist(),
            "cluster": sample["cluster_id"].astype(int).tolist(), "total": total}


def _pictured_members(members: dict[int, pd.DataFrame], clusters: pd.DataFrame) -> dict[str, str]:
    """image id -> path of the members whose page rows carry a thumbnail (see MEMBER_PICTURES)."""
    wanted: dict[str, str] = {}
    for cluster_id in [NO_CLUSTER, *clusters["cluster_id"].tolist()]:
        first_page = members.get(int(cluster_id), pd.DataFrame(columns=["image_id", "path"])).head(MEMBERS_PER_PAGE)
        for image_id, path in zip(first_page["image_id"], first_page["path"]):
            if len(wanted) == MEMBER_PICTURES:
                return wanted
            wanted[image_id] = path
    return wanted


def _members_by_cluster(images: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Each cluster's members (one pass over the table), most typical first; the unassigned most likely generated first."""
    ordered = images.sort_values(["cluster_probability", "path"], ascending=[False, True])
    members = {int(cluster_id): group for cluster_id, group in ordered.groupby("cluster_id", sort=False)}
    if NO_CLUSTER in members:
        members[NO_CLUSTER] = members[NO_CLUSTER].sort_values(["fake_score", "path"], ascending=[False, True], na_position="last")
    return members


def _signature(clusters: pd.DataFrame, sample: pd.DataFrame) -> str:
    digest = hashlib.sha256(PICTURES_FORMAT.encode())
    digest.update(clusters.to_json(orient="records", default_handler=str).encode())
    digest.update(sample[["image_id", "cluster_id"]].to_json(orient="values").encode())
    return digest.hexdigest()


def _read_cache(store: StoreFolder) -> dict | None:
    try:
        return json.loads((store / PICTURES_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---- pages ----------------------------------------------------------------------------------------


@dataclass
class Report:
    """The rendered report: the index page, and the member pages by file name (inside PAGES)."""

    index: str
    snapshot: str  # the index as kept with the run (no member pages there: links to them left out)
    pages: dict[str, str]
    pictures: Pictures

    def stage(self, transaction: Transaction, run_folder: str) -> None:
        """Write the report into a store transaction; member pages of clusters that are gone are deleted."""
        pages_dir = f"{StoreFolder.CURRENT}/{PAGES}"
        transaction.write_text(StoreFolder.REPORT, self.index)
        transaction.write_text(f"{run_folder}/report.html", self.snapshot)
        for name, html in self.pages.items():
            transaction.write_text(f"{pages_dir}/{name}", html)
        for old in sorted((transaction.root / pages_dir).glob("*.html")):
            if old.name not in self.pages:
                transaction.delete(f"{pages_dir}/{old.name}")
        transaction.write_json(PICTURES_CACHE, self.pictures.to_dict())


def render_report(
    store: StoreFolder,
    images: pd.DataFrame,
    clusters: pd.DataFrame,
    errors: pd.DataFrame,
    summary: RunSummary,
    pictures: Pictures | None = None,
) -> Report:
    """The report for the state just computed by a run (tables as they will be committed)."""
    from flows import pictures as drawing  # matplotlib and scipy (and scikit-learn for the map): only when pictures are drawn

    pictures = report_pictures(store, images, clusters) if pictures is None else pictures
    verdicts = verdict_of(images)
    investigations = _investigations(store)
    groups = _cluster_rows(images, clusters, verdicts)
    generated_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    common = dict(store=str(store.root), summary=summary, generated_at=generated_at)

    pages: dict[str, str] = {}
    members = _members_by_cluster(images)
    rows_left = MEMBER_ROWS
    for cluster_id, title in [(NO_CLUSTER, "Unassigned images"), *((int(c), f"Cluster {c}") for c in clusters["cluster_id"])]:
        group = members.get(cluster_id, images.head(0))
        limit = min(MEMBERS_LISTED, rows_left)
        rows_left -= min(limit, len(group))
        pages.update(_member_pages(group, verdicts, cluster_id, title, limit, pictures.thumbnails, investigations, common))

    run_new = images["first_seen_run"] == summary.run_id
    context = dict(
        common,
        verdicts={"run": _counts(verdicts[run_new]), "store": _counts(verdicts)},
        judged=bool(images["verdict"].notna().any()),
        totals={
            "images": len(images),
            "clusters": len(clusters),
            "unassigned": int((images["cluster_id"] == NO_CLUSTER).sum()),
            "errors": len(errors),
            "unknown_generator": int(images["unknown_generator"].sum()),
            "attributed": int(images["attributed_generator"].notna().sum()),
        },
        table=groups,
        sections=_sections(pictures.cards, groups),
        any_design=any(card["design"]["described"] for card in pictures.cards),
        investigations=[{"name": name, "href": f"../{INVESTIGATIONS}/{name}"} for name in sorted({p for ps in investigations.values() for p in ps}, reverse=True)],
        errors=[_plain(r) for r in errors.sort_values("run_id", ascending=False).head(ERRORS_SHOWN).to_dict("records")],
        errors_hidden=max(0, len(errors) - ERRORS_SHOWN),
    )
    for row in groups:
        row["colour"] = drawing.cluster_colour(row["cluster_id"])
    context.update(map_points=len(pictures.map["x"]), map_total=pictures.map["total"], noise_colour=drawing.NOISE_COLOUR)
    template = _environment.get_template("report.html.j2")
    index = template.render(context, pages=PAGES, map=Markup(drawing.map_svg(pictures.map, lambda c: f"{PAGES}/{page_name(c)}")))
    snapshot = template.render(context, pages=None, map=Markup(drawing.map_svg(pictures.map, None)))
    return Report(index, snapshot, pages, pictures)


def _counts(verdicts: pd.Series) -> dict[str, int]:
    counts = verdicts.value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def _cluster_rows(images: pd.DataFrame, clusters: pd.DataFrame, verdicts: pd.Series) -> list[dict]:
    """One row per cluster for the table: its majority verdict and the counts behind it."""
    counts = pd.crosstab(images["cluster_id"], verdicts).reindex(columns=list(VERDICTS), fill_value=0)
    rows = []
    for row in clusters.itertuples(index=False):
        count = counts.loc[row.cluster_id] if row.cluster_id in counts.index else pd.Series(0, index=list(VERDICTS))
        rows.append({
            "cluster_id": int(row.cluster_id),
            "size": int(row.size),
            "verdict": _majority(count),
            "generated": int(count["generated"]),
            "real": int(count["real"]),
            "unsure": int(count["unsure"]),
            "fake_score_mean": _number(row.fake_score_mean),
            "attributed_generator": row.attributed_generator if isinstance(row.attributed_generator, str) else None,
            "first_seen_run": row.first_seen_run,
            "last_seen_run": row.last_seen_run,
        })
    return rows


def _majority(count: pd.Series) -> str:
    """The verdict most members have; a tie between generated and real is undecided."""
    best = int(count.max())
    winners = [v for v in VERDICTS if int(count[v]) == best]
    return winners[0] if len(winners) == 1 else "unsure"


SECTIONS = (("generated", "Generated clusters", "Most members are called generated."),
            ("real", "Camera-like clusters", "Most members are called real: groups of camera photographs (or of a generator the detector misses)."),
            ("unsure", "Undecided clusters", "Most members are unsure, or generated and real are tied."))


def _sections(cards: list[dict], rows: list[dict]) -> list[dict]:
    verdict_of_cluster = {r["cluster_id"]: r for r in rows}
    sections = []
    for key, title, note in SECTIONS:
        shown = [dict(card, counts=verdict_of_cluster[card["cluster_id"]]) for card in cards
                 if card["cluster_id"] in verdict_of_cluster and verdict_of_cluster[card["cluster_id"]]["verdict"] == key]
        total = sum(r["verdict"] == key for r in rows)
        sections.append({"key": key, "title": title, "note": note, "cards": shown, "total": total})
    return sections


def page_name(cluster_id: int, page: int = 0) -> str:
    """File name of a member page (inside PAGES): `cluster-7.html`, `cluster-7-page2.html`, `unassigned.html`."""
    stem = "unassigned" if cluster_id == NO_CLUSTER else f"cluster-{cluster_id}"
    return f"{stem}.html" if page == 0 else f"{stem}-page{page + 1}.html"


def _member_pages(
    members: pd.DataFrame,
    verdicts: pd.Series,
    cluster_id: int,
    title: str,
    limit: int,
    thumbnails: dict[str, str],
    investigations: dict[str, list[str]],
    common: dict,
) -> dict[str, str]:
    listed = members.head(limit)
    count = max(1, -(-len(listed) // MEMBERS_PER_PAGE))
    template = _environment.get_template("members.html.j2")
    pages = {}
    for page in range(count):
        chunk = listed.iloc[page * MEMBERS_PER_PAGE : (page + 1) * MEMBERS_PER_PAGE]
        rows = [
            {
                "image_id": r.image_id, "path": r.path, "verdict": verdicts.loc[i],
                "fake_score": _number(r.fake_score), "cluster_probability": _number(r.cluster_probability),
                "attributed_generator": r.attributed_generator if isinstance(r.attributed_generator, str) else None,
                "attribution_score": _number(r.attribution_score), "thumbnail": thumbnails.get(r.image_id),
                "investigations": [f"../../{INVESTIGATIONS}/{name}" for name in investigations.get(r.image_id, [])],
            }
            for i, r in zip(chunk.index, chunk.itertuples(index=False))
        ]
        pages[page_name(cluster_id, page)] = template.render(
            common, title=title, cluster_id=cluster_id, size=len(members), rows=rows, page=page, page_count=count,
            first=page * MEMBERS_PER_PAGE, counts=_counts(verdicts.loc[members.index]),
            page_names=[page_name(cluster_id, p) for p in range(count)],
            hidden=len(members) - len(listed),
        )
    return pages


_INVESTIGATED = re.compile(r'<meta name="' + IMAGE_IDS_META + r'" content="([0-9a-f ]*)">')


def _investigations(store: StoreFolder) -> dict[str, list[str]]:
    """image id -> names of the pages `genprint investigate` wrote about it in the store (newest first)."""
    found: dict[str, list[str]] = {}
    for page in sorted((store / INVESTIGATIONS).glob("*.html"), reverse=True):
        try:
            match = _INVESTIGATED.search(page.read_text(encoding="utf-8", errors="replace")[:1_000_000])
        except OSError:
            continue
        for image_id in match.group(1).split() if match else []:
            found.setdefault(image_id, []).append(page.name)
    return found


def _cluster_card(row, images: pd.DataFrame, path_of: dict[str, str]) -> dict:
    from flows import pictures as drawing  # matplotlib and scipy (and scikit-learn for the map): only when pictures are drawn

    exemplars = [path_of[i] for i in row.exemplar_image_ids if i in path_of]
    members = images.loc[images["cluster_id"] == row.cluster_id].sort_values("cluster_probability", ascending=False)
    spectrum = drawing.mean_spectrum(members["path"].head(SPECTRUM_MEMBERS).tolist())
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
        "montage": drawing.data_uri(drawing.montage(exemplars)) if exemplars else None,
        "spectrum": drawing.data_uri(spectrum) if spectrum is not None else None,
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

