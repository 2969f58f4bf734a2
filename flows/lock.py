"""One writer per store: an exclusive `flock` on `STORE/.lock`, released by the kernel even on SIGKILL."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from flows.errors import UserError


class StoreLockedError(UserError, RuntimeError):
    """Another process holds the store's lock; the message names it and says what to do."""


class StoreLock:
    """Context manager: hold the store's write lock, waiting at most `timeout` seconds for it.

    The lock file records the holder (pid, host, command, start time) so a second writer can say who
    it waits for. `flock` locks are advisory and local: a store on NFS needs one writer host.
    """

    def __init__(self, root: Path, purpose: str, timeout: float = 0.0, poll_seconds: float = 0.2) -> None:
        self.path = Path(root) / ".lock"
        self.purpose = purpose
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self._handle = None

    def __enter__(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _describe(_read_holder(self.path))
                    handle.close()
                    waited = f" after waiting {self.timeout:g} s" if self.timeout > 0 else ""
                    raise StoreLockedError(
                        f"the store {self.path.parent} is busy{waited}: {holder}. Only one run may write "
                        "to a store at a time; wait for it to finish (or pass --wait SECONDS)."
                    ) from None
                time.sleep(self.poll_seconds)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process holds its lock"
    return (
        f"pid {holder['pid']} on {holder.get('host', '?')} holds it "
        f"({holder.get('purpose', 'a run')}, since {holder.get('since', '?')})"
    )
