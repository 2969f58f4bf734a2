"""``python -m bench``: the benchmark suite, from the root of a checkout; it writes BENCHMARKS.md (``genprint bench`` starts this)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

# The separately run parts of BENCHMARKS.md, one option each.
PARTS = {
    "outside": "Only the judge outside the zoo: every method on the external corpus (real generators trained by others, camera photographs), "
               "leave-one-family-out where a method trains, clean and in both platform views (builds the corpus first: about 20 min).",
    "shipped": "Only the shipped checkpoint beside the spectral fingerprint on a 30-member zoo of a seed it never saw (the issues' quality targets).",
    "zoo": "Only time the paper-size zoo build (100 members x 1000 images, 64 px) and its size on disk.",
    "scale": "Only the million-image figures: index, clustering, assignment, table writing and a 10k incremental run on a store of 1e6 synthetic fingerprints.",
    "soak": "Only the soak: 20 consecutive incremental runs with new and hostile files mixed in.",
    "speed": "Only speed as a user feels it, whole processes timed start to exit: `genprint run` over 20,000 fresh 512 px JPEGs and "
             "20,000 64 px PNGs against decode-only of the same files, a no-op second run, --help and investigate (about 10 min; "
             "the images are made under --work once).",
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The benchmark suite: genprint's learned fingerprint beside the spectral, Marra 2019 and FEN-style baselines, speed and scale. "
        "Without a mode option it runs the paper-scale suite (hours; run it again after an interruption and it resumes); --quick runs the same "
        "suite small. --shipped, --zoo, --scale, --soak and --speed each measure one more part of BENCHMARKS.md and keep the other parts as they are.",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="Minutes instead of hours: a small zoo, short training, small N.")
    for name, text in PARTS.items():
        modes.add_argument(f"--{name}", action="store_true", help=text)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"),
                        help="The markdown report to write; figures go in data/bench_figures/ and each part's markdown in data/bench_sections/ beside it.")
    parser.add_argument("--work", type=Path, default=Path("data/bench"),
                        help="Scratch folder: zoo, checkpoints, stores. A repeated run reuses the zoo and, while the code is unchanged, the trainings "
                        "and quality tables an interrupted run finished.")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch, BLAS and FAISS (0: all cores, at most 8).")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from flows import prefect_env

    prefect_env.configure(quiet=True)  # before anything imports Prefect
    from bench import run_and_write, run_part
    from clustering.index import set_threads
    from fingerprinting.runtime import pin_threads

    set_threads(pin_threads(args.threads or None))
    part = next((name for name in PARTS if getattr(args, name)), None)
    if part:
        written = run_part(part, out=args.out, work=args.work, threads=args.threads, log=_log)
    else:
        written = run_and_write(quick=args.quick, out=args.out, work=args.work, threads=args.threads, log=_log)
    _log(f"wrote {written}")


def _log(line: str) -> None:
    print(line, flush=True)  # at once, also when the output is a pipe (genprint bench, a log file)


if __name__ == "__main__":
    main()
