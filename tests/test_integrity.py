"""Fixity, the event log, writer exclusion, crash safety and transfer."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import bagit
import pytest

import index
from archive.errors import ArchiveBusy, InvalidValue
from archive.ingest.document import ingest_document
from archive.preservation.transfer import transfer
from archive.preservation.verify import verify_archive
from archive.storage.store import Archive

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def archive_copy(ingested_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    return Archive(root)


def test_every_bag_validates_and_verify_is_clean(archive_copy):
    for package in archive_copy.documents():
        bagit.Bag(str(package)).validate()
    report = verify_archive(archive_copy)
    assert report.ok and report.documents == 2


def test_verify_names_each_kind_of_damage(archive_copy):
    package = next(archive_copy.transaction_dir("NNZC2023-G1-004567-KWZB").glob("*/bagit.txt")).parent  # 2 pages
    image = package / "data" / "pages" / "0001.jpg"
    data = bytearray(image.read_bytes())
    data[5000] ^= 0xFF
    image.write_bytes(bytes(data))
    (package / "data" / "ocr" / "0002.json").unlink()
    (package / "data" / "notes.txt").write_text("stray")
    (package.parent / "stray.pdf").write_bytes(b"%PDF-1.4")
    lines = archive_copy.events_path.read_text().splitlines()
    lines[0] = lines[0].replace('"ingestion"', '"ingestion "')
    archive_copy.events_path.write_text("\n".join(lines) + "\n")

    problems = verify_archive(archive_copy).problems
    found = {(p.kind, Path(p.path).name) for p in problems}
    assert ("changed", "0001.jpg") in found
    assert ("missing", "0002.json") in found
    assert ("untracked", "notes.txt") in found
    assert ("untracked", "stray.pdf") in found
    assert ("log_chain", "events.jsonl line 2") in found
    assert [p.kind for p in problems if p.path.endswith("0002.json")] == ["missing"]  # named once
    changed = next(p for p in problems if p.kind == "changed")
    assert changed.document == package.name and changed.transaction == package.parent.name


def test_a_second_writer_is_refused_with_a_clear_message(archive_copy):
    with archive_copy.writer_lock():
        with pytest.raises(ArchiveBusy, match="--wait"):
            with archive_copy.writer_lock():
                pass
    with archive_copy.writer_lock():  # released: the next writer gets in
        pass


def test_crash_before_filing_leaves_nothing_and_rerun_finishes(tmp_path, resources, monkeypatch):
    archive = Archive.open(tmp_path / "a", create=True)
    source = resources / "notice-upside-down.pdf"

    def crash(*_args):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("archive.storage.package.os.rename", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_document(source, archive, "b1")
    monkeypatch.undo()
    assert list(archive.documents()) == [] and list(archive.staging_dir.iterdir()) == []
    assert ingest_document(source, archive, "b2").status == "archived"
    assert verify_archive(archive).ok


def test_same_bytes_under_another_name_are_archived_once(tmp_path, resources):
    archive = Archive.open(tmp_path / "a", create=True)
    copy = tmp_path / "elsewhere" / "renamed.pdf"
    copy.parent.mkdir()
    shutil.copy(resources / "notice-upside-down.pdf", copy)
    assert ingest_document(resources / "notice-upside-down.pdf", archive, "b1").status == "archived"
    assert ingest_document(copy, archive, "b2").status == "duplicate"
    events = [json.loads(line) for line in archive.events_path.read_text().splitlines()]
    assert events[-1]["outcome"] == "duplicate" and events[-1]["source"] == str(copy)


def test_transfer_writes_validated_bags_and_a_manifest(archive_copy, tmp_path):
    manifest = transfer(archive_copy, tmp_path / "out", "NNZC2023-G1-004567-KWZB")
    assert [b["source"] for b in manifest["bags"]] == ["award-notice.pdf"]
    bagit.Bag(str(tmp_path / "out" / manifest["bags"][0]["bag"])).validate()
    assert json.loads((tmp_path / "out" / "transfer-manifest.json").read_text())["bags"]
    assert transfer(archive_copy, tmp_path / "out", "NNZC2023-G1-004567-KWZB")["bags"]  # again: the copy is kept
    both = transfer(archive_copy, tmp_path / "out", "GXZC2023-G1-001234-KWZB")  # another transaction, same place
    assert sorted(b["source"] for b in both["bags"]) == ["award-notice.pdf", "notice-upside-down.pdf"]


def test_transfer_refuses_the_archive_itself_and_never_overwrites_another_bag(archive_copy, tmp_path):
    """Into the archive's own transactions/ folder, each bag's copy would replace the bag."""
    for inside in (archive_copy.root / "transactions", archive_copy.root, archive_copy.root / "handover"):
        with pytest.raises(InvalidValue, match="inside the archive"):
            transfer(archive_copy, inside, "NNZC2023-G1-004567-KWZB")
    assert verify_archive(archive_copy).ok
    bag = next(archive_copy.transaction_dir("NNZC2023-G1-004567-KWZB").glob("*/bagit.txt")).parent
    squatter = tmp_path / "out" / bag.parent.name / bag.name
    squatter.mkdir(parents=True)
    (squatter / "notes.txt").write_text("someone else's")
    with pytest.raises(InvalidValue, match="not a copy of this bag"):
        transfer(archive_copy, tmp_path / "out", "NNZC2023-G1-004567-KWZB")
    assert (squatter / "notes.txt").read_text() == "someone else's"


def test_transfer_names_a_damaged_bag_and_replaces_a_damaged_earlier_copy(archive_copy, tmp_path):
    from archive.errors import DamagedBag

    out = tmp_path / "out"
    manifest = transfer(archive_copy, out, "NNZC2023-G1-004567-KWZB")
    copy = out / manifest["bags"][0]["bag"]
    page = next(copy.glob("data/ocr/0001.json"))
    page.write_text(page.read_text() + " ")  # the earlier copy altered at the destination
    assert transfer(archive_copy, out, "NNZC2023-G1-004567-KWZB")["bags"]  # copied afresh
    bagit.Bag(str(copy)).validate()
    assert len(list(copy.parent.glob(f".{copy.name}.damaged-*"))) == 1  # set aside, not deleted
    original = next(archive_copy.transaction_dir("NNZC2023-G1-004567-KWZB").glob("*/data/ocr/0001.json"))
    original.write_text(original.read_text() + " ")
    with pytest.raises(DamagedBag, match="verify"):
        transfer(archive_copy, tmp_path / "elsewhere", "NNZC2023-G1-004567-KWZB")


def _variant(src: Path, dest: Path, tag: int) -> None:
    """The same scan with different bytes (a trailing PDF comment): a new document."""
    dest.write_bytes(src.read_bytes() + f"\n% copy {tag}\n".encode())


def test_sigkill_at_random_moments_then_rerun_archives_everything_once(tmp_path, resources, prefect_harness):
    """Kill the real CLI ingest (SIGKILL) at random moments, five times, then run
    it to the end: each document archived exactly once, verify clean, every page indexed."""
    from prefect.settings import PREFECT_API_URL

    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(3):
        _variant(resources / "award-notice.pdf", scans / f"award-{i}.pdf", i)
        _variant(resources / "notice-upside-down.pdf", scans / f"notice-{i}.pdf", i)
    root = tmp_path / "archive"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flows.cli", "ingest", str(scans), "--archive", str(root), "--workers", "1"]
    rng = random.Random(20231231)
    for _ in range(5):
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
        time.sleep(rng.uniform(2.0, 9.0))
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and its OCR workers, like a power cut
        process.wait()
    finished = subprocess.run(command + ["--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]

    archive = Archive(root)
    packages = list(archive.documents())
    assert len(packages) == 6 and len({p.name for p in packages}) == 6
    assert verify_archive(archive).ok
    assert not any(archive.staging_dir.iterdir())
    hits = index.search(archive, "交易中心", limit=100)
    assert len({(h["document"], h["page"]) for h in hits}) == 6  # page 1 of every document


def test_a_torn_log_line_is_reported_not_a_crash_and_appends_go_on(archive_copy):
    """A crash mid-append leaves half a line: verify names it (and nothing else),
    audit and later appends read on; the next event starts on a line of its own."""
    with open(archive_copy.events_path, "a", encoding="utf-8") as log:
        log.write('{"partial')
    archive_copy.log("fixity check", documents=2)
    lines = archive_copy.events_path.read_text(encoding="utf-8").splitlines()
    assert lines[-2] == '{"partial' and json.loads(lines[-1])["type"] == "fixity check"
    problems = verify_archive(archive_copy).problems
    assert [(p.kind, p.detail) for p in problems] == [("log_chain", "line is not valid JSON")], problems


def test_a_log_line_torn_inside_a_chinese_character_does_not_stop_the_log(archive_copy):
    line = json.dumps({"type": "use", "query": "中标通知书"}, ensure_ascii=False).encode("utf-8")
    with open(archive_copy.events_path, "ab") as log:
        log.write(line[: line.index("中".encode()) + 1])  # cut after the first byte of 中
    archive_copy.log("fixity check", documents=2)  # searches log their use: appends must go on
    problems = verify_archive(archive_copy).problems
    assert [(p.kind, p.detail) for p in problems] == [("log_chain", "line is not valid JSON")], problems


def test_verify_notices_the_event_log_cut_short_or_removed(archive_copy):
    lines = archive_copy.events_path.read_text(encoding="utf-8").splitlines(keepends=True)
    first = json.loads(lines[0])
    events = [json.loads(line) for line in lines]
    mine = [n for n, e in enumerate(events) if e.get("document") == first["document"] and e["type"] == "arrangement"]
    arranged = mine[0]
    # only the first document's ingestion and arrangement (its bag-info.txt gained its 档号 then)
    archive_copy.events_path.write_text("".join(lines[: arranged + 1]), encoding="utf-8")
    problems = verify_archive(archive_copy).problems
    assert [p.kind for p in problems] == ["unlogged"] and problems[0].document != first["document"]
    archive_copy.events_path.unlink()
    assert [p.kind for p in verify_archive(archive_copy).problems] == ["log_missing"]


def test_a_damaged_page_file_is_named_by_export_and_reindex_and_reported_by_verify(archive_copy):
    from click.testing import CliRunner

    from flows.cli import cli

    page = next(archive_copy.root.glob("transactions/*/*/data/ocr/0001.json"))
    page.write_text("{ torn")
    runner = CliRunner()
    for command in (["export"], ["reindex"]):
        result = runner.invoke(cli, [*command, "--archive", str(archive_copy.root)])
        assert result.exit_code == 5 and str(page) in result.output and "verify" in result.output, result.output
    document = page.parent.parent / "document.json"
    document.write_text("not json")
    kinds = {p.kind for p in verify_archive(archive_copy).problems}
    assert kinds == {"changed"}, kinds  # named by the bag check; the transaction check does not crash on it


def test_a_package_filed_by_a_run_killed_before_it_logged_is_logged_when_the_batch_runs_again(tmp_path, monkeypatch):
    """Killed between the package's rename and its ingestion event: verify says unlogged; the
    same file met again as a duplicate gets its event, and verify is clean."""
    from PIL import Image

    from archive.ingest.document import ingest_document, record_stopped_filings

    archive = Archive.open(tmp_path / "archive", create=True)
    scan = tmp_path / "blank.pdf"
    Image.new("L", (850, 1100), 255).save(scan, resolution=100.0)  # a blank page: no OCR
    archive.log("batch", batch="b0")  # an archive with a log
    real_log = Archive.log

    def killed_at_the_ingestion_event(self, event_type, outcome="success", **detail):
        if event_type == "ingestion" and outcome == "success":
            raise KeyboardInterrupt  # as SIGKILL would stop it there, without the event
        return real_log(self, event_type, outcome, **detail)

    with monkeypatch.context() as patched:
        patched.setattr(Archive, "log", killed_at_the_ingestion_event)
        with pytest.raises(KeyboardInterrupt):
            ingest_document(scan, archive, "b1")
    assert [p.kind for p in verify_archive(archive).problems] == ["unlogged"]
    again = ingest_document(scan, archive, "b2")
    assert again.status == "duplicate"
    assert record_stopped_filings(archive, [again], "b2") == [again.document]
    assert verify_archive(archive).ok
    assert record_stopped_filings(archive, [again], "b3") == []  # once


def test_bag_info_reads_folded_tag_values(tmp_path):
    """Another tool folds a long tag value onto lines that start with white space (RFC 8493)."""
    from archive.storage.package import read_bag_info

    (tmp_path / "bag-info.txt").write_text(
        "Source-Organization: 某市公共资源交易中心\nExternal-Description: a long description\n"
        "  folded onto a second line\n\tand a third\nPayload-Oxum: 1024.3\n",
        encoding="utf-8",
    )
    assert read_bag_info(tmp_path) == {
        "Source-Organization": "某市公共资源交易中心",
        "External-Description": "a long description folded onto a second line and a third",
        "Payload-Oxum": "1024.3",
    }
    assert read_bag_info(tmp_path / "missing") == {}
