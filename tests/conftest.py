"""Shared test set-up: pinned threads and a private, offline Prefect home for the whole session."""
from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import time: set them before anything imports it.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="genprint-prefect-"))
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"

from fingerprinting.runtime import pin_threads  # noqa: E402

pin_threads(2)
