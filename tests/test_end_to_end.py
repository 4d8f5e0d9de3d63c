"""The whole pipeline, for real: the Prefect flow through the CLI, real OCR on
the fixture scans, bad files in the batch, then export, search, verify,
re-run and reindex against the archive it built."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader, PdfWriter

import search_cli
from flows.cli import cli


@pytest.fixture(scope="module")
def batch(tmp_path_factory, resources, prefect_harness):
    src = tmp_path_factory.mktemp("scans")
    for pdf in resources.glob("*.pdf"):
        (src / "nested").mkdir(exist_ok=True)
        (src / "nested" / pdf.name).write_bytes(pdf.read_bytes())
    (src / "second-copy-of-award.pdf").write_bytes((resources / "award-notice.pdf").read_bytes())
    (src / "empty.pdf").write_bytes(b"")
    (src / "photo.pdf").write_bytes(b"\xff\xd8\xff\xe0JFIF" + b"\0" * 64)
    (src / "truncated.pdf").write_bytes((resources / "award-notice.pdf").read_bytes()[:300])
    writer = PdfWriter(clone_from=PdfReader(resources / "notice-upside-down.pdf"))
    writer.encrypt(user_password="pw", algorithm="RC4-128")
    with open(src / "locked.pdf", "wb") as handle:
        writer.write(handle)
    archive = tmp_path_factory.mktemp("archive")
    args = ["ingest", str(src), "--manifest", str(resources / "manifest.csv"), "--archive", str(archive), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    return {"src": src, "archive": archive, "summary": summary, "args": args}


def test_batch_archives_good_files_and_quarantines_bad_ones(batch):
    summary = batch["summary"]
    assert summary["archived"] == 2 and summary["pages"] == 3
    assert summary["duplicates"] == 1  # the same bytes under another name: archived once
    reasons = {item["source"].rsplit("/", 1)[1]: item["reason"] for item in summary["quarantined"]}
    assert reasons["empty.pdf"] == "empty_file"
    assert reasons["photo.pdf"] == "not_pdf"
    assert reasons["locked.pdf"] == "encrypted"
    assert reasons["truncated.pdf"] in {"unreadable_pdf", "no_pages"}
    for folder in (batch["archive"] / "quarantine").iterdir():
        assert (folder / "reason.json").exists() and any(folder.glob("original*"))


def test_export_gives_every_page_in_order(batch):
    result = CliRunner().invoke(cli, ["export", "--format", "jsonl", "--archive", str(batch["archive"])])
    assert result.exit_code == 0
    pages = [json.loads(line) for line in result.output.splitlines()]
    # The award is in the batch twice (same bytes); whichever name won the race is archived.
    award_name = next(p["source"] for p in pages if p["doc_type"] == "award_notice")
    assert award_name in ("award-notice.pdf", "second-copy-of-award.pdf")
    expected = sorted([(award_name, 1), (award_name, 2), ("notice-upside-down.pdf", 1)])
    assert [(p["source"], p["page"]) for p in pages] == expected  # documents by name, pages in order
    award, blank = (p for p in pages if p["source"] == award_name)
    notice = next(p for p in pages if p["source"] == "notice-upside-down.pdf")
    assert "南宁市公共资源交易中心" in award["text"] and award["doc_type"] == "award_notice"
    assert award["metadata"]["project_code"] == "NNZC2023-G1-004567-KWZB"
    assert award["metadata"]["amount"] == 1234567.89 and award["metadata"]["award_date"] == "2023-05-12"
    assert blank["blank"] is True and blank["text"] == ""
    assert notice["orientation"] == 180 and "单轨运行" in notice["text"]
    assert set(award) >= {"document", "source_sha256", "confidence", "orientation", "blank", "metadata"}


def test_search_cli_finds_phrase_and_code(batch):
    runner = CliRunner()
    result = runner.invoke(search_cli.main, ["交易中心", "--json", "--archive", str(batch["archive"])])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert {(h["doc_type"], h["page"]) for h in hits} == {("award_notice", 1), ("notice", 1)}
    assert set(hits[0]) == {"document", "source", "page", "project_code", "doc_type", "score", "snippet"}
    result = runner.invoke(search_cli.main, ["NNZC2023-G1-004567-KWZB", "--json", "--archive", str(batch["archive"])])
    first = json.loads(result.output)[0]
    assert (first["doc_type"], first["page"], first["project_code"]) == ("award_notice", 1, "NNZC2023-G1-004567-KWZB")
    result = runner.invoke(search_cli.main, ['"unclosed', "--archive", str(batch["archive"])])
    assert result.exit_code == 6 and "unbalanced quotes" in result.output


def test_rerun_archives_nothing_twice(batch):
    result = CliRunner().invoke(cli, batch["args"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["archived"] == 0 and summary["duplicates"] == 3
    # the bad files are still in quarantine: said again, not hidden among the duplicates
    assert len(summary["quarantined"]) == 4
    assert all(q["message"].startswith("already in quarantine: ") and q["reason"] for q in summary["quarantined"])
    reruns = {Path(d["source"]).name: d["rerun"] for d in summary["duplicate_files"]}
    assert reruns == {"award-notice.pdf": True, "notice-upside-down.pdf": True, "second-copy-of-award.pdf": False}


def test_verify_passes_then_names_a_changed_byte(batch):
    runner = CliRunner()
    archive = batch["archive"]
    assert runner.invoke(cli, ["verify", "--archive", str(archive)]).exit_code == 0
    victim = next(archive.glob("transactions/*/*/data/ocr/0001.json"))
    original = victim.read_bytes()
    victim.write_bytes(original[:10] + bytes([original[10] ^ 1]) + original[11:])
    try:
        result = runner.invoke(cli, ["verify", "--archive", str(archive)])
        assert result.exit_code == 4
        assert "CHANGED" in result.output and "data/ocr/0001.json" in result.output
    finally:
        victim.write_bytes(original)


def test_reindex_rebuilds_the_same_pages(batch):
    result = CliRunner().invoke(cli, ["reindex", "--archive", str(batch["archive"])])
    assert result.exit_code == 0 and "3 pages" in result.output


def test_a_document_joining_a_transaction_reindexes_the_ones_already_there(batch, tmp_path):
    """A later batch's contract states the award amount (manifest): the award notice, indexed
    by the first batch, is found by the transaction's new amount."""
    import shutil

    from PIL import Image

    import index
    from archive.storage.store import Archive

    root = tmp_path / "archive"
    shutil.copytree(batch["archive"], root)
    src = tmp_path / "later"
    src.mkdir()
    Image.new("L", (850, 1100), 255).save(src / "contract.pdf", resolution=100.0)  # a blank page: no OCR
    (src / "manifest.csv").write_text("file,project_code,doc_type,amount\n"
                                      "contract.pdf,NNZC2023-G1-004567-KWZB,contract,999万\n")  # fmt: skip
    result = CliRunner().invoke(cli, ["ingest", str(src), "--manifest", str(src / "manifest.csv"), "--archive",
                                      str(root), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    hits = index.search(Archive(root), "中标", index.Filters(amount_min=9_990_000, amount_max=9_990_000))
    assert {Path(hit["source"]).name for hit in hits} == {"award-notice.pdf"}


def test_ingest_says_what_is_wrong_before_it_starts(tmp_path, resources, prefect_harness):
    """No PDF, an unreadable manifest, a malformed --column, a busy archive: said at
    once (exit 2, or 7 for busy), before the flow and its OCR workers start."""
    from archive.storage.store import Archive

    runner = CliRunner()
    archive = tmp_path / "archive"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden.pdf").write_bytes((resources / "award-notice.pdf").read_bytes())
    (empty / "readme.txt").write_text("notes")
    result = runner.invoke(cli, ["ingest", str(empty), "--archive", str(archive)])
    assert result.exit_code == 2 and "no PDF under" in result.output, result.output

    utf16 = tmp_path / "manifest.csv"
    utf16.write_text("file,amount\naward-notice.pdf,1234\n", encoding="utf-16")
    wrong = (["--manifest", str(utf16)], ["--column", "amount"], ["--column", "nosuch=合同价"], ["--workers", "0"])
    for extra in wrong:
        result = runner.invoke(cli, ["ingest", str(resources), "--archive", str(archive), *extra])
        assert result.exit_code == 2 and "Traceback" not in result.output, (extra, result.output)
    assert "save it as CSV UTF-8" in runner.invoke(cli, ["ingest", str(resources), "--manifest", str(utf16),
                                                         "--archive", str(archive)]).output  # fmt: skip

    busy = Archive.open(archive, create=True)
    with busy.writer_lock():
        result = runner.invoke(cli, ["ingest", str(resources), "--archive", str(archive)])
    assert result.exit_code == 7 and "ingest --wait" in result.output, result.output
