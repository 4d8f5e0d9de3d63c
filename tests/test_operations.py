"""Admin operations: configuration, the hot folder, batch reports, schedules."""

import json
import os
import re
import threading
import time

import pytest
from click.testing import CliRunner

from archive.config import load_config
from archive.ingest.inbox import settled_files
from archive.storage.store import Archive
from flows.cli import cli


def test_config_file_env_and_command_line_each_say_where_they_came_from(tmp_path, monkeypatch):
    path = tmp_path / "trade-archive.toml"
    path.write_text('inbox = "/srv/inbox"\nworkers = 6\ningest_cron = "0 * * * *"\n[roles]\nstaff = ["alice"]\n')
    monkeypatch.setenv("TRADE_ARCHIVE_WORKERS", "8")
    config = load_config(str(path), overrides={"engine": "tesseract"})
    assert config.inbox == "/srv/inbox" and config.sources["inbox"] == f"file {path}"
    assert config.workers == 8 and config.sources["workers"] == "env TRADE_ARCHIVE_WORKERS"
    assert config.engine == "tesseract" and config.sources["engine"] == "command line"
    assert config.verify_cron == "0 3 * * 0" and config.sources["verify_cron"] == "default"
    assert config.roles == {"staff": ["alice"]}
    result = CliRunner().invoke(cli, ["config", "--config", str(path)])
    assert result.exit_code == 0 and "workers = 8  # env TRADE_ARCHIVE_WORKERS" in result.output


def test_bad_config_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("workerz = 3\n")
    result = CliRunner().invoke(cli, ["config", "--config", str(path)])
    assert result.exit_code != 0 and "unknown settings workerz" in result.output


def test_a_file_still_being_written_is_not_taken(tmp_path):
    (tmp_path / "done.pdf").write_bytes(b"%PDF-1.4 complete")
    growing = tmp_path / "growing.pdf"
    growing.write_bytes(b"%PDF-1.4 ")
    old = time.time() - 60
    os.utime(tmp_path / "done.pdf", (old, old))

    def keep_writing():
        for _ in range(8):
            time.sleep(0.1)
            with open(growing, "ab") as handle:
                handle.write(b"more ")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    settled = settled_files(tmp_path, stable_seconds=0.5)
    writer.join()
    assert [p.name for p in settled] == ["done.pdf"]


def test_inbox_run_moves_files_to_done_and_failed_with_reasons(tmp_path, resources, prefect_harness):
    from flows.operations import inbox_batch

    inbox = tmp_path / "inbox"
    delivery = inbox / "2023-12-delivery"
    delivery.mkdir(parents=True)
    (delivery / "award-notice.pdf").write_bytes((resources / "award-notice.pdf").read_bytes())
    (delivery / "manifest.csv").write_bytes((resources / "manifest.csv").read_bytes())
    (delivery / "broken.pdf").write_bytes(b"not a pdf")
    (delivery / "scan-0001.tif").write_bytes(b"II*\x00")  # not ingested: never done/
    archive = tmp_path / "archive"
    result = inbox_batch(inbox=str(inbox), archive_root=str(archive), stable_seconds=0)
    assert result["claimed"] == 4
    done = {p.name for p in (inbox / "done").rglob("*") if p.is_file()}
    failed = {p.name for p in (inbox / "failed").rglob("*") if p.is_file()}
    assert done == {"award-notice.pdf", "manifest.csv"}
    assert failed == {"broken.pdf", "broken.pdf.reason.txt", "scan-0001.tif", "scan-0001.tif.reason.txt"}
    assert not any((inbox / "processing").rglob("*.pdf"))
    # The batch report, saved in the archive and printed by `trade-archive report`.
    report = CliRunner().invoke(cli, ["report", "--archive", str(archive)])
    assert report.exit_code == 0 and "## Quarantined" in report.output and "broken.pdf" in report.output
    assert json.loads(CliRunner().invoke(cli, ["report", "--json", "--archive", str(archive)]).output)["archived"] == 1
    assert list(Archive(archive).root.glob("reports/*.md"))


def test_inbox_takes_up_a_stopped_batch_fails_an_unreadable_manifest_and_skips_an_archive_inside(
    tmp_path, resources, prefect_harness
):
    from flows.operations import inbox_batch

    inbox = tmp_path / "inbox"
    archive = inbox / "archive"  # kept inside the inbox: never taken for scans
    # A batch a stopped run left claimed; its PDF's name is not text (a newline).
    stranded = inbox / "processing" / "inbox-20231201T000000Z"
    stranded.mkdir(parents=True)
    odd = stranded / "award\nnotice.pdf"
    odd.write_bytes((resources / "award-notice.pdf").read_bytes())
    # A delivery whose spreadsheet is damaged.
    delivery = inbox / "delivery"
    delivery.mkdir()
    (delivery / "notice.pdf").write_bytes((resources / "notice-upside-down.pdf").read_bytes())
    (delivery / "manifest.xlsx").write_bytes(b"PK not really a spreadsheet")
    # Another box dropped beside it, with a manifest of its own: a batch of its own.
    other = inbox / "box-2"
    other.mkdir()
    (other / "notice.pdf").write_bytes((resources / "notice-upside-down.pdf").read_bytes())
    rows = "文件名,项目编号,项目名称\nnotice.pdf,GX-2023-77,档案数字化项目\n"
    (other / "清单.csv").write_text(rows, encoding="utf-8")
    result = inbox_batch(inbox=str(inbox), archive_root=str(archive), stable_seconds=0)
    assert [r["inbox_batch"] for r in result["batches"]][0] == "inbox-20231201T000000Z"
    assert [r.get("delivery") for r in result["batches"]] == [None, "box-2", "delivery"]
    notice = next(Archive(archive).transaction_dir("GX-2023-77").glob("*/data/document.json"))
    assert json.loads(notice.read_text())["metadata"]["project_name"] == "档案数字化项目"  # its own manifest
    assert result["done"][0] == "done/inbox-20231201T000000Z/award\nnotice.pdf"  # archived: matched by its bytes
    failed = {p.name for p in (inbox / "failed").rglob("*") if p.is_file()}
    assert failed == {"notice.pdf", "notice.pdf.reason.txt", "manifest.xlsx", "manifest.xlsx.reason.txt"}
    done = {p.name for p in (inbox / "done").rglob("*") if p.is_file()}
    assert done == {"award\nnotice.pdf", "notice.pdf", "清单.csv"}
    reason = next((inbox / "failed").rglob("notice.pdf.reason.txt")).read_text()
    assert "manifest.xlsx cannot be read" in reason
    assert not any((inbox / "processing").iterdir())
    again = inbox_batch(inbox=str(inbox), archive_root=str(archive), stable_seconds=0)
    assert again == {"claimed": 0}  # the archive's own files are not scans


def test_deployments_carry_the_configured_schedules(tmp_path):
    from flows.operations import build_deployments

    path = tmp_path / "c.toml"
    path.write_text(f'home = "{tmp_path / "a"}"\ninbox = "{tmp_path / "in"}"\ningest_cron = "*/5 * * * *"\n')
    deployments = {d.name: d for d in build_deployments(load_config(str(path)))}
    assert set(deployments) == {"inbox", "weekly-verify", "nightly-optimise"}
    assert deployments["inbox"].schedules[0].schedule.cron == "*/5 * * * *"
    assert deployments["weekly-verify"].schedules[0].schedule.cron == "0 3 * * 0"
    assert deployments["inbox"].parameters["inbox"] == str(tmp_path / "in")


def test_an_archive_inside_src_is_not_ingested_again(tmp_path):
    from archive.ingest.batch import find_sources

    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.pdf").write_bytes(b"%PDF-1.4")
    access = tmp_path / "archive" / "transactions" / "X-1" / "0123456789abcdef" / "data" / "access.pdf"
    access.parent.mkdir(parents=True)
    access.write_bytes(b"%PDF-1.4")
    pdfs, ignored = find_sources(tmp_path, tmp_path / "archive")
    assert pdfs == [tmp_path / "scans" / "a.pdf"] and ignored == []


UNUSABLE = [("engine", "foo"), ("workers", "-3"), ("low_confidence", "7"), ("ingest_cron", "banana"),
            ("ingest_cron", "99 99 * * *"), ("timezone", "Mars/Base"), ("timezone", "Asia"),
            ("index", "lucene")]  # fmt: skip


@pytest.mark.parametrize("setting,value", UNUSABLE)
def test_a_setting_that_cannot_be_used_is_refused_when_read(setting, value, monkeypatch):
    from archive.config import ConfigError, load_config

    monkeypatch.setenv(f"TRADE_ARCHIVE_{setting.upper()}", value)
    with pytest.raises(ConfigError, match=re.escape(f"{setting} = '{value}'")):
        load_config()


def test_a_config_file_named_later_replaces_what_an_earlier_file_exported_but_not_the_users_variables(
    tmp_path, monkeypatch
):
    from archive import config

    monkeypatch.setattr(config, "_EXPORTED", set())
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRADE_ARCHIVE_")}
    monkeypatch.setattr(os, "environ", environment | {"TRADE_ARCHIVE_PAGE_SECONDS": "60"})  # the user's
    (tmp_path / "a.toml").write_text("low_confidence = 0.5\npage_seconds = 10\n")
    (tmp_path / "b.toml").write_text("low_confidence = 0.9\npage_seconds = 20\n")
    (tmp_path / "c.toml").write_text("workers = 1\n")
    config.export_to_environment(config.load_config(str(tmp_path / "a.toml")))  # as the CLI does first
    serve_settings = config.load_config(str(tmp_path / "b.toml"))  # serve --config b.toml
    assert (serve_settings.low_confidence, serve_settings.page_seconds) == (0.9, 60)
    config.export_to_environment(serve_settings)
    assert os.environ["TRADE_ARCHIVE_LOW_CONFIDENCE"] == "0.9" and os.environ["TRADE_ARCHIVE_PAGE_SECONDS"] == "60"
    config.export_to_environment(config.load_config(str(tmp_path / "c.toml")))  # sets no low_confidence
    assert "TRADE_ARCHIVE_LOW_CONFIDENCE" not in os.environ and os.environ["TRADE_ARCHIVE_PAGE_SECONDS"] == "60"


@pytest.mark.parametrize("text", ["workers = true", "stable_seconds = 2.9", "home = 5", 'roles = "root"',
                                  '[roles]\nrestricted = "zhangwei"'])  # fmt: skip
def test_a_config_file_value_of_the_wrong_kind_is_refused(tmp_path, text):
    from archive.config import ConfigError, load_config

    (tmp_path / "c.toml").write_text(text + "\n")
    with pytest.raises(ConfigError):
        load_config(str(tmp_path / "c.toml"))


def test_a_delivery_still_arriving_waits_whole(tmp_path):
    from archive.ingest.inbox import settled_deliveries

    old = time.time() - 3600
    for name in ("box-1/0001.pdf", "box-1/manifest.csv", "box-2/0001.pdf", "box-2/0002.pdf"):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"%PDF-1.4")
        os.utime(path, (old, old))
    soon = time.time() + 60
    os.utime(tmp_path / "box-2" / "0002.pdf", (soon, soon))  # as if being written: not settled yet
    ready = settled_deliveries(tmp_path, stable_seconds=0.2)
    assert list(ready) == ["box-1"] and len(ready["box-1"]) == 2
