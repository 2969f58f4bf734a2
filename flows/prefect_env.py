"""Prefect's settings, which it reads once at import: call `configure()` before anything imports prefect.

Defaults (each can be overridden by setting the variable yourself):
- without PREFECT_API_URL, flows run in Prefect's ephemeral mode (a temporary local API, no server
  to install), keeping their history under PREFECT_HOME = ~/.genprint/prefect;
- with PREFECT_API_URL set, runs report to that Prefect server or Prefect Cloud instead;
- no anonymous usage statistics are sent.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

DEFAULT_HOME = Path("~/.genprint/prefect")


def configure(quiet: bool = False) -> None:
    """Set genprint's Prefect defaults in the environment; `quiet` keeps Prefect's console to warnings."""
    if "prefect" in sys.modules and "PREFECT_HOME" not in os.environ:
        warnings.warn("prefect was imported before genprint configured it; its defaults may not apply", stacklevel=2)
    home = Path(os.environ.get("PREFECT_HOME", DEFAULT_HOME)).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The temporary API starts in ~10 s on a quiet machine; give a busy small one room.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if quiet:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
