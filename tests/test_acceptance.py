"""Batch acceptance and review: an altered manifest and a file ingested twice
make `accept` fail naming exactly those problems; after fixes and resolutions
it passes; a corrected page is found by search, its old text kept, verify clean."""

import json

from click.testing import CliRunner

import search_cli
from flows.cli import cli


def test_accept_fails_on_exactly_the_planted_problems_then_passes_after_review(tmp_path, resources, prefect_harness):
    scans = tmp_path / "scans"
    scans.mkdir()
    for pdf in resources.glob("*.pdf"):
        (scans / pdf.name).write_bytes(pdf.read_bytes())
    (scans / "award-again.pdf").write_bytes((resources / "award-notice.pdf").read_bytes())  # ingested twice
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "file,project_code,project_name,transaction_type,doc_type,pages\n"
        "award-notice.pdf,NNZC2023-G1-004567-KWZB,南宁市排水管网改造工程,政府采购,award,3\n"  # page count changed
        "notice-upside-down.pdf,GXZC2023-G1-001234-KWZB,做好档案数字化工作,政府采购,notice,1\n"
        "award-again.pdf,NNZC2023-G1-004567-KWZB,南宁市排水管网改造工程,政府采购,award,2\n"
        "missing.pdf,GXZC2023-G1-009999-KWZB,不存在的项目,政府采购,award,1\n",  # a row with no file
        encoding="utf-8",
    )
    archive = tmp_path / "archive"
    runner = CliRunner()
    ingest = runner.invoke(cli, ["ingest", str(scans), "--manifest", str(manifest), "--archive", str(archive)])
    assert ingest.exit_code == 0, ingest.output

    result = runner.invoke(cli, ["accept", "--archive", str(archive)])
    assert result.exit_code == 8, result.output
    assert "FAIL  completeness" in result.output and "FAIL  duplicates" in result.output
    assert "missed pages (漏扫): manifest declares 3 pages for award-notice.pdf, the scan has 2" in result.output
    assert "missing.pdf, which is not in the batch" in result.output
    # Of two identical files the first in file order is archived, whatever the threads' timing.
    assert "award-notice.pdf is the same file as" in result.output, result.output
    assert "award-again.pdf is the same file as" not in result.output
    # The fixture scans are 150 dpi: under DA/T 31's 200 dpi, each page is flagged too.
    assert "FAIL  image quality" in result.output and "150 dpi is under the 200 dpi minimum" in result.output
    for check in ("readability", "metadata", "integrity", "filing", "preservation format"):
        assert f"PASS  {check}" in result.output, result.output
    certificate = json.loads(next(archive.glob("reports/*-acceptance.json")).read_text())
    flags = [f for c in certificate["checks"] if c["name"] != "image quality" for f in c["flags"]]
    dpi_flags = [f for c in certificate["checks"] if c["name"] == "image quality" for f in c["flags"]]
    assert len(flags) == 3 and len(dpi_flags) == 3
    assert next(archive.glob("reports/*-acceptance.html")).read_text().count("<div class='flag'>") == 6

    # An archivist corrects a page's text and resolves two flags; the third is overridden.
    award = next(archive.glob("transactions/NNZC2023-G1-004567-KWZB/*/data/document.json")).parent.parent.name
    corrected = tmp_path / "page1.txt"
    corrected.write_text("中标（成交）通知书\n经档案员核对的更正文本", encoding="utf-8")
    fix = runner.invoke(cli, ["review", "fix-text", award, "1", "--file", str(corrected), "--note", "checked",
                              "--archive", str(archive)])  # fmt: skip
    assert fix.exit_code == 0, fix.output
    png = tmp_path / "flagged.png"
    shown = runner.invoke(cli, ["review", "show", dpi_flags[0]["id"], "--png", str(png), "--archive", str(archive)])
    assert shown.exit_code == 0 and "--- metadata ---" in shown.output, shown.output
    assert '"project_code": "' in shown.output and '"doc_type": "' in shown.output and png.stat().st_size > 0
    for item in flags[:2] + dpi_flags:
        assert runner.invoke(cli, ["review", "resolve", item["id"], "--note", "ok on paper",
                                   "--archive", str(archive)]).exit_code == 0  # fmt: skip
    still = runner.invoke(cli, ["accept", "--archive", str(archive)])
    assert still.exit_code == 8 and "1 open flag(s)" in still.output
    overridden = runner.invoke(cli, ["accept", "--override", "row for missing.pdf was a platform error",
                                     "--archive", str(archive)])  # fmt: skip
    assert overridden.exit_code == 0 and "ACCEPTED BY OVERRIDE" in overridden.output
    events = [json.loads(line) for line in (archive / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "acceptance" and events[-1]["override"].startswith("row for missing.pdf")

    hits = json.loads(runner.invoke(search_cli.main, ["档案员核对", "--json", "--archive", str(archive)]).output)
    assert [(h["document"], h["page"]) for h in hits] == [(award, 1)]
    original = next(archive.glob(f"transactions/*/{award}/data/ocr/0001.json")).read_text()
    assert "南宁市公共资源交易中心" in original  # the original OCR is kept
    assert runner.invoke(cli, ["verify", "--archive", str(archive)]).exit_code == 0


def test_preservation_format_flags_an_access_copy_that_is_not_pdfa():
    from archive.acceptance.checks import _preservation_format
    from archive.records.document import DocumentRecord

    documents = [DocumentRecord.from_json(d) for d in [
        {"document": "a1", "source": "a.pdf", "access_pdf": {"pdfa": "2b", "problems": []}},
        {"document": "b2", "source": "b.pdf", "access_pdf": {"pdfa": None, "problems": ["[violation] 6.5.2-2 /AA"]}},
        {"document": "c3", "source": "c.pdf"},  # made before PDF/A access copies
    ]]  # fmt: skip
    check = _preservation_format(documents)
    flagged = [(f.document, f.message) for f in check.flags]
    assert flagged == [("b2", "access.pdf is not PDF/A: [violation] 6.5.2-2 /AA")]
    assert check.evidence == ["1/3 access copies validated as PDF/A-2b when written",
                              "1 access copies were made before PDF/A (not checked)"]  # fmt: skip


def test_review_commands_refuse_what_the_archive_cannot_take(ingested_archive, tmp_path):
    """Corrections are checked as a manifest's values are; unknown documents, pages and
    flags are named, not saved; a busy archive is refused; nothing is written on a refusal."""
    import shutil

    from archive.storage.store import Archive

    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    document = next(Archive(root).documents()).name
    runner = CliRunner()

    def review(*args):
        return runner.invoke(cli, ["review", *args, "--archive", str(root)])

    for fields, expected in [(["amount=abc"], "amount='abc'"), (["amount=inf"], "amount='inf'"),
                             (["award_date=2023-13-01"], "award_date"), (["foo=bar"], "'foo' is not a field"),
                             (["access=secret"], "one of: open, restricted"),
                             (["project_code=../../x"], "is not a project code")]:  # fmt: skip
        result = review("fix-metadata", document, *fields, "--note", "n")
        assert result.exit_code == 2 and expected.replace("='", " '") in result.output, (fields, result.output)
    assert review("fix-metadata", document, "winner", "--note", "n").exit_code == 2  # no "=": not a silent blank
    assert review("fix-metadata", "deadbeef00000000", "winner=x", "--note", "n").exit_code == 3
    text = tmp_path / "fix.txt"
    text.write_text("更正", encoding="utf-8")
    for page in ("0", "99"):
        result = review("fix-text", document, page, "--file", str(text), "--note", "n")
        assert result.exit_code == 3 and f"there is no page {page}" in result.output
    assert not (root / "review").exists()  # nothing was saved
    assert review("resolve", "nosuch", "--note", "x").exit_code == 3
    assert review("show", "nosuch").exit_code == 3
    nowhere = runner.invoke(cli, ["review", "resolve", "nosuch", "--note", "x", "--archive", str(tmp_path / "none")])
    assert nowhere.exit_code == 5 and "Traceback" not in nowhere.output

    with Archive(root).writer_lock():  # an ingest is writing
        busy = review("fix-metadata", document, "winner=某公司", "--note", "n")
    assert busy.exit_code == 7, busy.output
    assert review("fix-metadata", document, "doc_type=", "--note", "n").exit_code == 2  # a type is never cleared
    saved = review("fix-metadata", document, "amount=123.45万", "award_date=2023年5月12日", "access=公开",
                   "transaction_type=工程建设", "project_code=桂财采【2023】001号", "--note", "n")  # fmt: skip
    assert saved.exit_code == 0, saved.output
    version = json.loads(next((root / "review" / "corrections" / document).glob("metadata.v1.json")).read_text())
    assert version["fields"] == {"amount": 1234500.0, "award_date": "2023-05-12", "access": "open",
                                 "transaction_type": "工程建设招标投标",
                                 "project_code": "桂财采【2023】001号"}  # fmt: skip


def test_near_identical_pages_are_flagged_once_each_not_pairwise(tmp_path, monkeypatch):
    """Twelve scans of one sheet: the eleven later ones are flagged, once each (not 66 pairs)."""
    from archive.acceptance import checks as acceptance
    from archive.records.batch import BatchSummary
    from archive.records.document import DocumentRecord

    monkeypatch.setattr(acceptance, "_difference_hash", lambda image: 0b1010 if "sheet" in image.name else 2**64 - 1)
    documents = [DocumentRecord(f"d{n:02d}", f"{n}.pdf", package=tmp_path) for n in range(13)]
    pages = {d.document: [{"page": 1, "blank": False, "master_image": "sheet.jpg" if n < 12 else "other.jpg",
                           "text": "中标通知书" + "。" * (n % 2)}]
             for n, d in enumerate(documents)}  # fmt: skip
    check = acceptance._duplicates(BatchSummary("b", "a"), documents, pages)
    assert [f.document for f in check.flags] == [f"d{n:02d}" for n in range(1, 12)]
    assert all("same sheet as 0.pdf p.1" in f.message and "12 pages look alike" in f.message for f in check.flags)


def test_unrelated_sparse_pages_that_hash_alike_are_not_one_sheet(tmp_path, monkeypatch):
    """A sparse page hashes like any other sparse page: a one-line notice, a font sample, a
    multilingual sample and a photo are not flagged; the same sheet twice still is."""
    from PIL import Image

    from archive.acceptance import checks as acceptance
    from archive.records.batch import BatchSummary
    from archive.records.document import DocumentRecord

    monkeypatch.setattr(acceptance, "_difference_hash", lambda image: 0)  # all four hash alike
    (tmp_path / "data").mkdir()
    Image.new("L", (200, 280), 255).save(tmp_path / "data" / "white.png")
    Image.new("L", (200, 280), 90).save(tmp_path / "data" / "photo.png")
    texts = ["关于做好档案工作的通知", "ABCDEFG abcdefg 0123456789", "Hello 你好 こんにちは", "", ""]
    images = ["white.png"] * 4 + ["photo.png"]
    documents = [DocumentRecord(f"d{n}", f"{n}.pdf", package=tmp_path) for n in range(5)]
    pages = {d.document: [{"page": 1, "blank": False, "master_image": images[n], "text": texts[n]}]
             for n, d in enumerate(documents)}  # fmt: skip
    assert acceptance._duplicates(BatchSummary("b", "a"), documents, pages).flags == []
    pages["d1"][0]["text"] = "关于做好档案工作的通知"  # the first sheet scanned again
    assert [f.document for f in acceptance._duplicates(BatchSummary("b", "a"), documents, pages).flags] == ["d1"]
