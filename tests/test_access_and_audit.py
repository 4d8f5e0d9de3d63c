"""Access control and the audit trail: a user without the role gets no trace of a
restricted document (search, show, export); a user with it does; both appear in audit."""

import json
import shutil

import pytest
from click.testing import CliRunner

import index
import search_cli
from archive.records.corrections import correct_metadata, correct_page_text, latest_page_text, latest_page_texts
from archive.storage.access import access_level, os_user
from archive.storage.store import Archive
from flows.cli import cli


def test_bid_files_and_evaluation_reports_are_restricted_by_default():
    assert access_level("bid", None) == "restricted"
    assert access_level("evaluation_report", {}) == "restricted"
    assert access_level("award_notice", None) == "open"
    assert access_level("award_notice", {"access": "restricted"}) == "restricted"
    assert access_level("bid", {"access": "restricted"}, {"access": "open"}) == "open"


@pytest.fixture
def restricted_archive(ingested_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    archive = Archive(root)
    notice = next(archive.transaction_dir("GXZC2023-G1-001234-KWZB").glob("*/bagit.txt")).parent.name
    correct_metadata(archive, notice, {"access": "restricted"}, "a losing bidder's file")
    index.refresh(archive, [notice])
    return archive, notice


def _use_config(tmp_path, monkeypatch, users):
    config = tmp_path / "roles.toml"
    config.write_text(f"[roles]\nrestricted = {json.dumps(users)}\n")
    monkeypatch.setenv("TRADE_ARCHIVE_CONFIG", str(config))


def test_without_the_role_a_restricted_document_leaves_no_trace(restricted_archive, tmp_path, monkeypatch):
    archive, notice = restricted_archive
    _use_config(tmp_path, monkeypatch, ["someone-else"])
    runner = CliRunner()
    hits = json.loads(runner.invoke(search_cli.main, ["交易中心", "--json", "--archive", str(archive.root)]).output)
    assert [h["source"] for h in hits] == ["award-notice.pdf"]
    nothing = runner.invoke(search_cli.main, ["单轨运行", "--archive", str(archive.root)])
    assert "no matching pages" in nothing.output
    shown = runner.invoke(cli, ["show", notice, "--archive", str(archive.root)])
    missing = runner.invoke(cli, ["show", "0123456789abcdef", "--archive", str(archive.root)])
    assert shown.exit_code == missing.exit_code != 0
    assert shown.output.replace(notice, "X") == missing.output.replace("0123456789abcdef", "X")  # no tell
    exported = runner.invoke(cli, ["export", "--archive", str(archive.root)]).output
    assert notice not in exported and "单轨运行" not in exported


def test_with_the_role_it_is_found_and_every_use_is_audited(restricted_archive, tmp_path, monkeypatch):
    archive, notice = restricted_archive
    runner = CliRunner()
    _use_config(tmp_path, monkeypatch, ["someone-else"])
    runner.invoke(search_cli.main, ["单轨运行", "--archive", str(archive.root)])
    _use_config(tmp_path, monkeypatch, [os_user()])
    hits = json.loads(runner.invoke(search_cli.main, ["单轨运行", "--json", "--archive", str(archive.root)]).output)
    assert [h["source"] for h in hits] == ["notice-upside-down.pdf"]
    assert runner.invoke(cli, ["show", notice, "--page", "1", "--archive", str(archive.root)]).exit_code == 0

    result = runner.invoke(cli, ["audit", "--json", "--archive", str(archive.root)])
    events = [json.loads(line) for line in result.output.splitlines()]
    searches = [e for e in events if e["action"] == "search"]
    assert [(e["query"], e["results"], e["user"]) for e in searches] == [
        ("单轨运行", 0, os_user()), ("单轨运行", 1, os_user())
    ]  # fmt: skip
    assert any(e["action"] == "show" and e["document"] == notice for e in events)
    text = runner.invoke(cli, ["audit", "--action", "search", "--archive", str(archive.root)]).output
    assert "2 event(s)" in text
    assert runner.invoke(cli, ["verify", "--archive", str(archive.root)]).exit_code == 0  # the log chain holds


def test_latest_corrected_text_of_each_page_of_a_document(tmp_path):
    archive = Archive.open(tmp_path, create=True)
    document = "a1a1a1a1a1a1a1a1"
    package = tmp_path / "unfiled" / document  # corrections are only taken for a document that is there
    (package / "data").mkdir(parents=True)
    (package / "bagit.txt").write_text("BagIt-Version: 0.97\n")
    (package / "data" / "document.json").write_text('{"document": "a1a1a1a1a1a1a1a1", "pages": 12}')
    for page, text in ((3, "第一次更正"), (12, "第十二页"), (3, "第二次更正"), (3, "第三次更正")):
        correct_page_text(archive, document, page, text, "checked")
    assert latest_page_texts(archive, document) == {3: "第三次更正", 12: "第十二页"}
    assert latest_page_texts(archive, document) == {p: latest_page_text(archive, document, p) for p in (3, 12)}
    assert latest_page_texts(archive, "b2b2b2b2b2b2b2b2") == {}


def test_review_show_keeps_a_restricted_page_from_a_user_without_the_role(restricted_archive, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from archive.acceptance import review as flag_review

    archive, notice = restricted_archive
    flag = SimpleNamespace(id="f00d", check="readability", message="short text", document=notice, page=1, source="n")
    monkeypatch.setattr(flag_review, "find_flag", lambda *args: flag)
    runner = CliRunner()
    _use_config(tmp_path, monkeypatch, ["someone-else"])
    hidden = runner.invoke(cli, ["review", "show", "f00d", "--png", str(tmp_path / "p.png"), "--archive",
                                 str(archive.root)])  # fmt: skip
    assert hidden.exit_code == 3 and "单轨运行" not in hidden.output and not (tmp_path / "p.png").exists()
    _use_config(tmp_path, monkeypatch, [os_user()])
    shown = runner.invoke(cli, ["review", "show", "f00d", "--png", str(tmp_path / "p.png"), "--archive",
                                str(archive.root)])  # fmt: skip
    assert shown.exit_code == 0 and (tmp_path / "p.png").exists(), shown.output
    audit = runner.invoke(cli, ["audit", "--json", "--archive", str(archive.root)]).output
    assert any(json.loads(line).get("flag") == "f00d" for line in audit.splitlines())
