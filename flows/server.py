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

An archivist who runs several small ingests in a row would pay that start each time
(~15 s before the first page). So by default the server is a ``LocalServer``: it
outlives the command that started it, the next command on the machine (the same
PREFECT_HOME) reuses it, and it stops itself once no command has used it for
``TRADE_ARCHIVE_SERVER_IDLE`` seconds (default 600; 0: a temporary server per command,
stopped when the command ends).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archive.ingest.progress import LiveBar

STARTUP_SECONDS = 120.0
IDLE_SECONDS = 600.0  # a LocalServer unused this long stops itself (TRADE_ARCHIVE_SERVER_IDLE)
PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal this process gets when its parent dies


class TemporaryServer:
    """A Prefect API server in a subprocess on a free local port."""

    def __init__(self) -> None:
        import prefect

        self.port = _free_port()
        # The server's own log (its shutdown's "Error flushing events" tracebacks among it) is no
        # archivist's business: kept here, and shown only if the server fails to start.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's, for its life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
             "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=_server_environment(),
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
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the local Prefect server exited with code {self.process.returncode}"
                                   f"{self._log_tail()}")  # fmt: skip
            if _healthy(self.api_url):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the local Prefect server did not answer within {timeout:.0f} s{self._log_tail()}")

    def _log_tail(self, limit: int = 2000) -> str:
        """The end of the server's log, for a message saying why it did not start."""
        try:
            self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, self._log.tell() - limit))
            tail = self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError, AttributeError):
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


class LocalServer(TemporaryServer):
    """A Prefect API server on loopback shared by the commands run on this machine: found
    through a small state file in PREFECT_HOME, started by the first command that finds
    none alive, and stopped by itself after ``idle`` seconds without a command using it
    (each command touches its heartbeat file while it runs)."""

    def __init__(self, idle: float) -> None:  # noqa: D107 - use ``LocalServer.shared``
        self.idle, self.process = idle, None
        self.port = 0

    @classmethod
    def shared(cls, idle: float) -> LocalServer:
        """The running one, else one started now (one command at a time decides: a lock)."""
        server = cls(idle)
        home = _prefect_home()
        home.mkdir(parents=True, exist_ok=True)
        with open(home / "trade-archive-server.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = home / "trade-archive-server.json"
            server.heartbeat = home / "trade-archive-server.alive"
            server.heartbeat.touch()  # before the check: a server about to stop sees this use
            running = _read_state(state)
            if running and _alive(running["pid"]) and _healthy(f"http://127.0.0.1:{running['port']}/api"):
                server.port = running["port"]
                return server
            server.port = _free_port()
            with open(home / "trade-archive-server.log", "ab") as log:  # the server's copy stays open; ours not
                server.process = subprocess.Popen(
                    [sys.executable, "-m", "flows.server", str(server.port), str(idle), str(server.heartbeat)],
                    env=_server_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    start_new_session=True,  # not the terminal's Ctrl-C, nor the command's end: it stops when idle
                )  # fmt: skip
            state.write_text(json.dumps({"pid": server.process.pid, "port": server.port}))
        return server

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Keep the server from stopping while the block runs (a long ingest)."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(max(1.0, self.idle / 4)):
                with contextlib.suppress(OSError):
                    self.heartbeat.touch()

        threading.Thread(target=beat, name="prefect-server-heartbeat", daemon=True).start()
        try:
            yield
        finally:
            done.set()
            with contextlib.suppress(OSError):
                self.heartbeat.touch()  # the idle time counts from the command's end

    def stop(self) -> None:
        """Left running for the next command: it stops itself when idle."""


@contextlib.contextmanager
def prefect_api() -> Iterator[TemporaryServer | None]:
    """The Prefect API for the block: the configured one, else the machine's local server
    (reused, or started now; the caller calls ``wait_ready`` before its flow), else, with
    TRADE_ARCHIVE_SERVER_IDLE=0, a temporary server stopped when the process exits."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield None
        return
    idle = float(os.environ.get("TRADE_ARCHIVE_SERVER_IDLE", IDLE_SECONDS))
    if idle > 0:
        server: TemporaryServer = LocalServer.shared(idle)
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), server.in_use():  # type: ignore[attr-defined]
            yield server
        return
    server = TemporaryServer()
    # Stopped at exit, after Prefect has sent its last logs and events (its own exit
    # handlers are registered later, so they run first).
    atexit.register(server.stop)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server


def _server_environment() -> dict[str, str]:
    """Prefect's own settings for a server of its own (as its temporary server has them)."""
    from prefect.settings import get_current_settings

    return {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",  # as Prefect's own temporary server: no background services
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }


def _prefect_home() -> Path:
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home).expanduser()


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state.get("pid"), int) and isinstance(state.get("port"), int) else None
    except (OSError, ValueError, AttributeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def serve_until_idle(port: int, idle: float, heartbeat: Path) -> None:
    """The LocalServer's process: Prefect's API on loopback until ``heartbeat`` has not
    been touched for ``idle`` seconds."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config("prefect.server.api.server:create_app", factory=True, host="127.0.0.1",
                                           port=port, log_level="error", lifespan="on"))  # fmt: skip

    def watch() -> None:
        while not server.should_exit:
            time.sleep(min(5.0, idle / 4))
            try:
                unused = time.time() - heartbeat.stat().st_mtime
            except OSError:
                unused = idle + 1
            server.should_exit = unused > idle

    threading.Thread(target=watch, name="idle-watch", daemon=True).start()
    server.run()


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


if __name__ == "__main__":  # LocalServer's process: python -m flows.server PORT IDLE HEARTBEAT
    serve_until_idle(int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3]))
