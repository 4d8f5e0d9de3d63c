"""Archival arrangement (issue 19): every filed document gets its 档号, retention and
description at filing, in document.json and bag-info.txt, with verify still clean; the
catalogue opens in openpyxl; accept names the transactions lacking a required document;
disposal lists what is due and logs the appraisal; old archives are arranged by reindex."""

import json
import shutil

import bagit
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from archive.config import ConfigError, load_config
from archive.preservation.verify import verify_archive
from archive.records.arrangement import registry
from archive.records.export import iter_pages
from archive.storage.events import read_events
from archive.storage.store import Archive, read_json
from flows.cli import cli

RETENTIONS = ("永久", "定期30年", "定期10年")


@pytest.fixture
def archive(ingested_archive, tmp_path):
    """A writable copy of the ingested fixture archive (award notice and notice, two transactions)."""
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    return Archive.open(root)


def run(archive, *args):
    result = CliRunner().invoke(cli, [*args, "--archive", str(archive.root)])
    return result


def test_every_filed_document_has_its_code_retention_and_title_in_export_bag_and_record(archive):
    pages = list(iter_pages(archive))
    codes = {}
    for page in pages:
        assert page["archival_code"] and page["retention"] in RETENTIONS and page["title"], page
        codes.setdefault(page["document"], set()).add(page["archival_code"])
    assert all(len(shared) == 1 for shared in codes.values())  # the pages of a document share it
    assert len({next(iter(c)) for c in codes.values()}) == len(codes)  # unique across documents
    award = next(p for p in pages if p["doc_type"] == "award_notice")
    assert award["archival_code"] == "0001-2023-Y-0001" and award["retention"] == "永久"
    assert award["title"] == "南宁市排水管网改造工程中标（成交）通知书" and award["doc_date"] == "2023-05-12"
    assert award["responsible"] == "广西正和招标代理有限公司"
    package = archive.find_document(award["document"])
    info = bagit.Bag(str(package)).info
    assert info["Archival-Code"] == "0001-2023-Y-0001" and info["Retention-Period"] == "永久"
    assert read_json(package / "data" / "document.json")["arrangement"]["item"] == 1
    assert verify_archive(archive).ok  # the bag's manifests and the log follow the arrangement


def test_the_catalogue_opens_in_openpyxl_one_row_a_document_and_filters(archive, tmp_path):
    out = tmp_path / "cat.xlsx"
    result = run(archive, "catalogue", "--format", "xlsx", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(load_workbook(out).active.iter_rows(values_only=True))
    header = rows[0]
    for name in ("档号", "题名", "责任者", "日期", "页数", "保管期限", "文号", "项目编号"):
        assert name in header
    assert len(rows) == 1 + 2
    assert {row[header.index("保管期限")] for row in rows[1:]} <= set(RETENTIONS)
    csv = run(archive, "catalogue", "--format", "csv", "--transaction", "NNZC2023-G1-004567-KWZB")
    assert csv.output.splitlines()[1].startswith("0001-2023-Y-0001,") and len(csv.output.splitlines()) == 2
    xml = run(archive, "catalogue", "--format", "xml", "--year", "2022")
    assert "<归档文件目录" in xml.output and "<文件" not in xml.output
    assert run(archive, "catalogue", "--format", "xlsx").exit_code == 2  # XLSX needs --out


def test_accept_names_each_transaction_lacking_a_required_document_and_no_complete_one(archive, tmp_path, monkeypatch):
    config = tmp_path / "trade-archive.toml"
    config.write_text('[required_documents]\n"政府采购" = ["award_notice"]\n', encoding="utf-8")
    monkeypatch.setenv("TRADE_ARCHIVE_CONFIG", str(config))
    result = run(archive, "accept")
    assert result.exit_code == 8, result.output
    assert "FAIL  transaction completeness" in result.output
    assert "transaction GXZC2023-G1-001234-KWZB (政府采购) lacks required documents: 中标通知书 (award_notice)" in (
        result.output
    )
    assert "transaction NNZC2023" not in result.output  # complete: it has its award notice
    assert "PASS  arrangement" in result.output


def test_disposal_lists_what_is_due_and_a_decision_is_logged_while_verify_still_passes(archive):
    paper = run(archive, "paper", next(archive.documents()).name, "--box", "2023-015", "--shelf", "A-03-2")
    assert paper.exit_code == 0, paper.output
    due = json.loads(run(archive, "disposal", "--due", "2100", "--json").output)
    assert [item["retention"] for item in due] == ["定期30年"]  # the award notice is kept permanently
    assert due[0]["retention_ends"] == 2053 and due[0]["decision"] is None
    assert json.loads(run(archive, "disposal", "--due", "2052", "--json").output) == []
    record = run(archive, "disposal", "record", due[0]["document"], "--decision", "destroy", "--approver", "王芳",
                 "--note", "鉴定小组 2053")  # fmt: skip
    assert record.exit_code == 0, record.output
    logged = [e for e in read_events(archive.events_path) if e["type"] == "appraisal"]
    assert logged[-1]["decision"] == "destroy" and logged[-1]["approver"] == "王芳"
    assert json.loads(run(archive, "disposal", "--due", "2100", "--json").output)[0]["decision"] == "destroy"
    permanent = next(p.name for p in archive.documents() if p.name != due[0]["document"])
    refused = run(archive, "disposal", "record", permanent, "--decision", "destroy", "--approver", "王芳",
                  "--note", "x")  # fmt: skip
    assert refused.exit_code == 2 and "永久" in refused.output
    assert run(archive, "verify").exit_code == 0
    assert archive.find_document(due[0]["document"]) is not None  # nothing electronic was deleted


def test_a_correction_that_changes_the_group_renumbers_nothing_but_is_logged_and_flagged(archive):
    notice = next(p.name for p in archive.documents() if "GXZC" in p.parent.name)
    fix = run(archive, "review", "fix-metadata", notice, "doc_type=contract", "title=更正后的题名",
              "--note", "per paper")  # fmt: skip
    assert fix.exit_code == 0, fix.output
    page = next(p for p in iter_pages(archive) if p["document"] == notice)
    assert page["archival_code"] == "0001-2023-D30-0001" and page["title"] == "更正后的题名"
    warned = [e for e in read_events(archive.events_path) if e["type"] == "arrangement" and e["outcome"] == "warning"]
    assert warned[-1]["now_retention"] == "永久" and warned[-1]["archival_code"] == "0001-2023-D30-0001"
    accepted = run(archive, "accept")
    assert "FAIL  arrangement" in accepted.output and "corrections put it in 2023 永久" in accepted.output


def test_numbers_come_back_from_the_log_and_an_older_archive_is_arranged_by_reindex(
    archive, resources, tmp_path, monkeypatch
):
    numbered = registry(archive)
    (archive.root / "arrangement.json").unlink()
    assert registry(archive) == numbered  # rebuilt from the arrangement events

    import archive.ingest.document as pipeline
    from archive.ingest.document import ingest_document

    monkeypatch.setattr(pipeline, "arrange", lambda archive, package: None)  # as before this change
    old = Archive.open(tmp_path / "old", create=True)
    assert ingest_document(resources / "notice-upside-down.pdf", old, "old-batch").status == "archived"
    assert next(iter_pages(old))["archival_code"] is None
    monkeypatch.setenv("TRADE_ARCHIVE_FONDS", "Z109")
    assert run(old, "reindex").exit_code == 0
    page = next(iter_pages(old))
    assert page["archival_code"] == "Z109-2023-D30-0001" and page["title"] == "关于做好档案数字化工作的通知"
    assert verify_archive(old).ok


def test_wrong_arrangement_settings_are_refused_with_a_clear_message(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[retention]\nbid = "forever"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="retention.bid = 'forever'.*永久, 定期30年, 定期10年"):
        load_config(str(config))
    config.write_text('archival_code = "{fonds}-{year}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="must contain {item}"):
        load_config(str(config))
    config.write_text('[required_documents]\n"政府采购" = "contract"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a list of doc_types"):
        load_config(str(config))
    config.write_text('[retention]\ncontract = "D10"\n', encoding="utf-8")
    assert load_config(str(config)).retention["contract"] == "定期10年"
