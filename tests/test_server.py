"""flows.server: the temporary Prefect API a command-line ingest starts first."""

from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from flows.server import prefect_api


def test_a_configured_api_is_used_as_it_is(prefect_harness):
    with prefect_api() as server:
        assert server is None  # the harness's API (an admin's server, in production)


def test_without_a_configured_api_a_temporary_server_starts_and_answers(prefect_harness):
    import httpx

    with temporary_settings(restore_defaults={PREFECT_API_URL}), prefect_api() as server:
        assert server is not None
        try:
            assert get_current_settings().api.url == server.api_url
            server.wait_ready()
            assert httpx.get(f"{server.api_url}/health").json() is True
        finally:
            server.stop()


def test_the_temporary_server_stops_when_the_cli_is_killed(tmp_path):
    """A CLI killed outright (SIGKILL, the OOM killer) runs no exit handler: its
    temporary server must not run on, orphaned."""
    import os
    import signal
    import subprocess
    import sys
    import time

    started = tmp_path / "server.pid"
    cli = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from flows.server import TemporaryServer; server = TemporaryServer(); "
        f"open({str(started)!r}, 'w').write(str(server.process.pid)); time.sleep(600)")])  # fmt: skip
    deadline = time.monotonic() + 60
    while not started.exists() or not started.read_text():
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.1)
    server = int(started.read_text())
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(server, 0)  # still there (a zombie counts: its parent, init, reaps it soon)
            with open(f"/proc/{server}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.1)
    os.kill(server, signal.SIGKILL)
    raise AssertionError("the temporary server outlived the CLI")


def test_the_local_server_is_shared_by_the_next_command_and_stops_when_idle(tmp_path, resources):
    """A second command reuses the server the first one left (no second start-up), and
    the server stops by itself once no command has used it for the idle time."""
    import json
    import os
    import subprocess
    import sys
    import time

    environment = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "TRADE_ARCHIVE_SERVER_IDLE": "10"}
    environment.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-c", "from flows.server import prefect_api\n"
               "with prefect_api() as server:\n    server.wait_ready()\n    print(server.api_url)"]  # fmt: skip
    state = tmp_path / "prefect" / "trade-archive-server.json"
    first = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr
    pid = json.loads(state.read_text())["pid"]
    try:
        second = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=240)
        assert second.returncode == 0 and second.stdout == first.stdout, second.stderr  # the same server
        assert json.loads(state.read_text())["pid"] == pid
        deadline = time.monotonic() + 120  # idle 10 s, checked every 2.5 s; a loaded machine is slow to stop it
        while time.monotonic() < deadline:
            if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0:
                return
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
            time.sleep(1)
        raise AssertionError("the local server did not stop when idle")
    finally:
        subprocess.run(["kill", str(pid)], capture_output=True)
