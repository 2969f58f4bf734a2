"""Rich progress bars for the terminal, handed to the libraries as plain callbacks."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Callable

# (done, total, description): the only progress interface the libraries know.
ProgressCallback = Callable[[int, int, str], None]


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yield a callback that drives one bar; a no-op callback when `enabled` is false (tests, --quiet)."""
    if not enabled:
        yield lambda done, total, what: None
        return
    # Imported here: rich's progress machinery costs a tenth of a second that --help and --quiet runs skip.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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
