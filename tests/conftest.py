import os
import shutil
import tempfile
from pathlib import Path

# Never touch the developer's ~/.prefect, and no telemetry from a sandbox.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="trade-archive-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

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
    """The fixture scans ingested once with real OCR, without Prefect (plain functions)."""
    import index
    from archive.ingest.document import ingest_document
    from archive.records.manifest import read_manifest
    from archive.storage.store import Archive

    root = tmp_path_factory.mktemp("archive")
    archive = Archive.open(root, create=True)
    rows = read_manifest(RESOURCES / "manifest.csv")
    for pdf in sorted(RESOURCES.glob("*.pdf")):
        outcome = ingest_document(pdf, archive, "test-batch", rows.get(pdf.name))
        assert outcome.status == "archived", outcome
    index.update(archive)
    return archive


@pytest.fixture
def scan_copy(tmp_path, resources):
    """A writable folder holding copies of the fixture scans."""
    src = tmp_path / "scans"
    src.mkdir()
    for pdf in resources.glob("*.pdf"):
        shutil.copy(pdf, src / pdf.name)
    return src
