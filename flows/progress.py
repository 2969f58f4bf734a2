"""Rich progress bars for the terminal, handed to the libraries as plain callbacks."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

# (done, total, description): the only progress interface the libraries know.
ProgressCallback = Callable[[int, int, str], None]


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yield a callback that drives one bar; a no-op callback when `enabled` is false (tests, --quiet)."""
    if not enabled:
        yield lambda done, total, what: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=f"{description}: {what}" if what else description)

        yield update
