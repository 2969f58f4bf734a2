"""BENCHMARKS.md as parts: the suite's page, then sections that their own commands measure (shipped model, zoo build, external corpus build, scale, soak, speed),
then hand-written development notes (``notes``: labelled as such, no command rewrites them).

Each part is kept as markdown under ``data/bench_sections/`` beside BENCHMARKS.md, so rerunning one command
(``python -m bench --quick`` takes minutes, ``--scale`` about half an hour) replaces its part and keeps the
others' figures, each with its own command, date and machine.
"""
from __future__ import annotations

from pathlib import Path

SECTIONS_DIR = Path("data/bench_sections")
SUITE = "suite"
# Order on the page; a part not measured yet is left out.
ORDER = (SUITE, "outside", "shipped", "zoo", "external", "scale", "soak", "speed", "notes")


def section_path(out: Path, name: str) -> Path:
    if name not in ORDER:
        raise ValueError(f"unknown BENCHMARKS.md section {name!r}: one of {', '.join(ORDER)}")
    return out.parent / SECTIONS_DIR / f"{name}.md"


def write_section(out: Path, name: str, markdown: str) -> Path:
    """Store one part and rewrite ``out`` from every stored part."""
    path = section_path(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown.rstrip() + "\n")
    return assemble(out)


def assemble(out: Path) -> Path:
    parts = [section_path(out, name) for name in ORDER]
    out.write_text("\n".join(p.read_text() for p in parts if p.is_file()))
    return out
