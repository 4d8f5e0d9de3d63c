"""Prefect's API for a command-line run, started early.

With no Prefect server configured, Prefect starts a temporary one the moment a
flow first needs it: the CLI process imports the whole server application
(~7 s of one core here) only to launch it in a subprocess, which then imports
it again (~8 s), and only then does the flow begin. ``prefect_api`` launches
that same subprocess (Prefect's own command and environment, see
``prefect.server.api.server.SubprocessASGIServer``) before anything else, so it
starts while the CLI loads its libraries and the OCR workers their models: an
ingest begins ~7 s sooner. A configured server (``PREFECT_API_URL``, e.g. the
admins' server; the test harness) is used as it is.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archive.ingest.progress import LiveBar

STARTUP_SECONDS = 120.0
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal this process gets when its parent dies


class TemporaryServer:
    """A Prefect API server in a subprocess on a free local port."""

    def __init__(self) -> None:
        import prefect
        from prefect.settings import get_current_settings

        self.port = _free_port()
        # The server's own log (its shutdown's "Error flushing events" tracebacks among it) is no
        # archivist's business: kept here, and shown only if the server fails to start.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop
        environment = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",  # as Prefect's own temporary server: no background services
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_dies_with(os.getpid()) if sys.platform == "linux" else None,
            start_new_session=True,  # Ctrl-C on the terminal is the CLI's to handle: the server serves to the end
        )  # fmt: skip

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Block until the server answers its health check."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {self.process.returncode}"
                                   f"{self._log_tail()}")  # fmt: skip
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the temporary Prefect server did not answer within {timeout:.0f} s{self._log_tail()}")

    def _log_tail(self, limit: int = 2000) -> str:
        """The end of the server's log, for a message saying why it did not start."""
        try:
            self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, self._log.tell() - limit))
            tail = self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; its log ends:\n{tail}" if tail else ""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@contextlib.contextmanager
def prefect_api() -> Iterator[TemporaryServer | None]:
    """The Prefect API for the block: the configured one, else a temporary server started
    now (the caller calls ``wait_ready`` before its flow; it stops when the process exits)."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield None
        return
    server = TemporaryServer()
    # Stopped at exit, after Prefect has sent its last logs and events (its own exit
    # handlers are registered later, so they run first).
    atexit.register(server.stop)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server


def _dies_with(parent: int) -> Callable[[], None]:
    """For the server's process, before it starts: Linux sends it SIGTERM when the
    CLI dies, however it dies (SIGKILL, the OOM killer), where the CLI's exit
    handler cannot stop it, so no orphaned server runs on with nobody to stop it."""

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: no dlopen between fork and exec

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the CLI died before that took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def console_above(bar: LiveBar) -> Iterator[None]:
    """Prefect's console log while a progress bar is live: its INFO lines (one per
    document, and the engine's own) would scroll the bar away, and the bar says the
    same; warnings and errors (quarantines, failures) still show, above the bar."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from archive.ingest.progress import LogAboveBar

    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    handlers = {id(h): h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)}
    filters = [(handler, LogAboveBar(bar, handler)) for handler in handlers.values()]
    for handler, log_filter in filters:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler, log_filter in filters:
            handler.removeFilter(log_filter)
