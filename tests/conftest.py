import os
import shutil
import tempfile
from pathlib import Path

# Never touch the developer's ~/.prefect, and no telemetry from a sandbox.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="trade-archive-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# A command-line run in a test starts its own Prefect server and stops it at its end (no
# server left running after the tests); tests/test_server.py covers the shared one.
os.environ.setdefault("TRADE_ARCHIVE_SERVER_IDLE", "0")

import pytest  # noqa: E402

RESOURCES = Path(__file__).parent / "resources"


@pytest.fixture(scope="session")
def resources() -> Path:
    return RESOURCES


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole run (each start costs ~15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # a loaded CI machine took 35 s
        yield


@pytest.fixture(scope="session")
def ingested_archive(tmp_path_factory):
    """The fixture scans ingested once with real OCR, without Prefect: the batch use case
    the flow runs, its documents run here in turn (``submit_here``)."""
    import index
    from archive.ingest.batch import run_batch, submit_here
    from archive.storage.store import Archive

    root = tmp_path_factory.mktemp("archive")
    archive = Archive.open(root, create=True)
    with archive.writer_lock():
        summary = run_batch(archive, RESOURCES, submit_here, index.update, str(RESOURCES / "manifest.csv"), workers=1)
    assert summary.archived == len(list(RESOURCES.glob("*.pdf"))), summary.outcomes
    return archive


@pytest.fixture
def scan_copy(tmp_path, resources):
    """A writable folder holding copies of the fixture scans."""
    src = tmp_path / "scans"
    src.mkdir()
    for pdf in resources.glob("*.pdf"):
        shutil.copy(pdf, src / pdf.name)
    return src


@pytest.fixture
def page_jobs_of(tmp_path):
    """``page_jobs_of(pdf, **ingest_document arguments)``: the page jobs an ingest of ``pdf`` hands
    to its OCR workers, and its outcome (stopped there: nothing is read or filed)."""
    from archive.errors import InputRejected
    from archive.ingest.document import ingest_document
    from archive.storage.store import Archive

    def run(pdf: Path, **arguments):  # noqa: ANN003, ANN202
        jobs: list = []

        def capture(page_jobs):  # noqa: ANN001, ANN202 - stops the ingest once the jobs are seen
            jobs.extend(page_jobs)
            raise InputRejected("stopped", "stopped by the test")

        archive = Archive.open(tmp_path / "archive", create=True)
        return ingest_document(pdf, archive, "b", run_pages=capture, **arguments), jobs

    return run


@pytest.fixture(autouse=True)
def _settings_stay_in_their_test():
    """A command run in a test exports its configuration file's settings to the environment
    (as for its OCR workers): they must not reach the next test."""
    before = {key: value for key, value in os.environ.items() if key.startswith("TRADE_ARCHIVE_")}
    yield
    for key in [key for key in os.environ if key.startswith("TRADE_ARCHIVE_") and key not in before]:
        del os.environ[key]
    os.environ.update(before)
    from archive import config

    config._EXPORTED.clear()
