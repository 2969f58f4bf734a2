"""Prefect's settings, which it reads once at import: call `configure()` before anything imports prefect.

Defaults (each can be overridden by setting the variable yourself):
- without PREFECT_API_URL, flows run in Prefect's ephemeral mode (a temporary local API, no server
  to install), keeping their history under PREFECT_HOME = ~/.genprint/prefect (the command line then
  runs its steps without Prefect at all, flows.batch; Dask runs and flows called from Python do not);
- with PREFECT_API_URL set, runs report to that Prefect server or Prefect Cloud instead;
- scheduling needs a real server: `scheduling_server()` starts a local one when none is configured;
- a temporary API (or a scheduling server) this process started ends with it, even after a SIGKILL:
  `guard_temporary_server()`, `end_with_this_process()`;
- no anonymous usage statistics are sent.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
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


@contextlib.contextmanager
def scheduling_server(startup_timeout: float = 180.0) -> Iterator[str]:
    """The Prefect API that schedules runs: PREFECT_API_URL's, else a local `prefect server start` for the block.

    Prefect's ephemeral mode cannot schedule (it runs no scheduler service), so `genprint serve`
    without a configured server starts one on a free local port (its UI is there too) and stops it
    on exit. Call before anything imports prefect.
    """
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = open(Path(os.environ["PREFECT_HOME"]) / "server.log", "ab")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    end_with_this_process(server)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(url, server, startup_timeout)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the local Prefect server exited with status {server.returncode}; see {os.environ['PREFECT_HOME']}/server.log")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the local Prefect server did not answer within {timeout:.0f} s")


def guard_temporary_server() -> None:
    """Make Prefect's temporary API, when this process started one, end with this process however it ends.

    Prefect stops that uvicorn process at interpreter exit, which a SIGKILL (or a Dask nanny ending
    its worker) skips: the server would run on forever. Call once it is up (a flow's or task's body).
    """
    module = sys.modules.get("prefect.server.api.server")
    if module is None:  # Prefect never imported its server here: it started none
        return
    process = module.SubprocessASGIServer().server_process
    if process is not None and process.pid not in _guarded:
        end_with_this_process(process)


# Guarded child's pid -> its watchdog and the write end of the watchdog's pipe, held open until this process ends.
_guarded: dict[int, tuple[subprocess.Popen, int]] = {}

# The watchdog (`python -I -S -c`: no site, starts in milliseconds): it waits for EOF on the pipe,
# which the kernel delivers when every holder of the write end, this process, has ended; then ends
# the child (SIGTERM, then SIGKILL after 5 s). It also exits when the child ends on its own. The
# child is held by a pidfd, so a reused pid is never signalled.
_WATCHDOG = """
import select, signal, sys
parent, child = int(sys.argv[1]), int(sys.argv[2])
ready, _, _ = select.select([parent, child], [], [])
if child not in ready:
    signal.pidfd_send_signal(child, signal.SIGTERM)
    if not select.select([child], [], [], 5.0)[0]:
        signal.pidfd_send_signal(child, signal.SIGKILL)
"""


def end_with_this_process(child: subprocess.Popen) -> None:
    """Start a watchdog that ends `child` when this process ends, even by SIGKILL (Linux 5.3+: pidfd; elsewhere a no-op)."""
    if not hasattr(os, "pidfd_open"):
        return
    try:
        child_fd = os.pidfd_open(child.pid)  # not reaped yet (Popen waits for it), so the pid is still this child
    except ProcessLookupError:
        return
    read_end, write_end = os.pipe()  # both non-inheritable: only the watchdog gets the read end
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(read_end), str(child_fd)],
            pass_fds=(read_end, child_fd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(read_end)
        os.close(child_fd)
    _guarded[child.pid] = (watchdog, write_end)
