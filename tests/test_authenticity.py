"""Copies with legal effect (issue 20): real keys, real signatures, a real RFC 3161
exchange with a timestamp authority on loopback, pyHanko's own validator on what ingest
wrote, the DA/T 70 four-property check and the hand-over to the archives bureau."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bagit
import pytest
from click.testing import CliRunner

from archive.storage.store import Archive

RESOURCES = Path(__file__).parent / "resources"


@pytest.fixture(scope="session")
def demo_keys(tmp_path_factory):
    from archive.preservation.keys import init_demo_keys

    return init_demo_keys(tmp_path_factory.mktemp("keys") / "demo")


@pytest.fixture(scope="session")
def tsa(demo_keys):
    from archive.preservation.keys import DemoTimestampServer

    with DemoTimestampServer(demo_keys.tsa) as server:
        yield server


@pytest.fixture(scope="session")
def signed_archive(tmp_path_factory, demo_keys, tsa):
    """The fixture scans ingested with the demo keys and the loopback TSA (signing passed in,
    not set in the environment, which other tests' ingests share)."""
    from archive.ingest.document import ingest_document
    from archive.preservation.signing import SigningSettings
    from archive.records.manifest import read_manifest

    archive = Archive.open(tmp_path_factory.mktemp("signed") / "archive", create=True)
    signing = SigningSettings(demo_keys.centre, tsa.url, demo_keys.ca)
    rows = read_manifest(RESOURCES / "manifest.csv")
    for pdf in sorted(RESOURCES.glob("*.pdf")):
        outcome = ingest_document(pdf, archive, "signed-batch", rows.get(pdf.name), signing=signing)
        assert outcome.status == "archived", outcome
    return archive


@pytest.fixture
def signing_env(monkeypatch, demo_keys, tsa):
    monkeypatch.setenv("TRADE_ARCHIVE_SIGNING_KEY", str(demo_keys.centre))
    monkeypatch.setenv("TRADE_ARCHIVE_TRUST_ROOTS", str(demo_keys.ca))
    monkeypatch.setenv("TRADE_ARCHIVE_TSA_URL", tsa.url)


@pytest.fixture
def signed_copy(signed_archive, tmp_path):
    shutil.copytree(signed_archive.root, tmp_path / "archive")
    return Archive(tmp_path / "archive")


def _cli(*args: str):
    from flows.cli import cli

    return CliRunner().invoke(cli, list(args))


def _access_pdfs(archive: Archive) -> list[Path]:
    return sorted(archive.root.glob("transactions/*/*/data/access.pdf"))


def test_demo_keys_are_labelled_and_refuse_to_be_overwritten(demo_keys):
    from archive.errors import InvalidValue
    from archive.preservation.keys import init_demo_keys

    assert "NOT FOR PRODUCTION" in (demo_keys.folder / "README-NOT-FOR-PRODUCTION.txt").read_text()
    assert demo_keys.ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    with pytest.raises(InvalidValue):
        init_demo_keys(demo_keys.folder)


def test_ingest_signs_each_access_pdf_with_a_trusted_timestamp_that_pyhanko_validates(signed_archive, demo_keys, tsa):
    assert tsa.requests >= 4  # two documents, each: the PDF's timestamp and the tag manifest's, over HTTP
    for pdf in _access_pdfs(signed_archive):
        run = subprocess.run([sys.executable, "-m", "pyhanko", "sign", "validate", "--trust", str(demo_keys.ca),
                              "--trust-replace", str(pdf)], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "INTACT:TRUSTED" in run.stdout and "TIMESTAMP_TOKEN<INTACT:TRUSTED>" in run.stdout, run.stdout
        assert "UNTOUCHED" in run.stdout  # the signature covers the whole file
        assert (pdf.parent.parent / "tagmanifest-sha256.txt.p7s").is_file()
        bagit.Bag(str(pdf.parent.parent)).validate()  # the signature file beside the tag manifest breaks nothing


def test_untouched_archive_verifies_and_passes_the_archiving_check_in_four_groups(signed_copy, signing_env):
    result = _cli("verify", "--archive", str(signed_copy.root))
    assert result.exit_code == 0, result.output
    result = _cli("check", "--stage", "archiving", "--json", "--archive", str(signed_copy.root))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stage"] == "archiving" and report["outcome"] == "PASS"
    assert list(report["groups"]) == ["真实性", "完整性", "可用性", "安全性"]
    items = {item["code"]: item for items in report["groups"].values() for item in items}
    assert items["GD-1-1"]["outcome"] == "PASS" and set(items["GD-1-1"]) == {"code", "name", "outcome", "evidence"}
    assert items["GD-4-1"]["outcome"] in ("NOT CHECKED", "PASS")  # no virus scanner here: never a PASS without one
    assert list(signed_copy.root.glob("reports/four-properties-archiving-*.json"))
    for after_the_check in (["report"], ["review", "list"], ["accept"]):  # its report is not a batch's
        result = _cli(*after_the_check, "--archive", str(signed_copy.root))
        assert result.exit_code in (0, 3, 8), (after_the_check, result.output, result.exception)  # no crash


def test_an_altered_access_pdf_with_rewritten_checksums_fails_verify_and_the_storage_check(signed_copy, signing_env):
    pdf = _access_pdfs(signed_copy)[0]
    package = pdf.parent.parent
    data = bytearray(pdf.read_bytes())
    data[len(data) // 3] ^= 0x01  # one byte of the page image
    pdf.write_bytes(bytes(data))
    bagit.Bag(str(package)).save(manifests=True)  # the forger rewrites every checksum to match
    bagit.Bag(str(package)).validate()

    result = _cli("verify", "--json", "--archive", str(signed_copy.root))
    assert result.exit_code == 4, result.output
    problems = json.loads(result.output)["problems"]
    named = [p for p in problems if p["kind"] == "signature_invalid" and p["path"].endswith("data/access.pdf")]
    assert named and named[0]["document"] == package.name, problems
    assert any(p["kind"] == "signature_invalid" and p["path"].endswith(".p7s") for p in problems)  # tag manifest too

    result = _cli("check", "--stage", "storage", "--json", "--archive", str(signed_copy.root))
    assert result.exit_code == 4
    report = json.loads(result.output)
    assert report["outcome"] == "FAIL"
    failed = [item for item in report["groups"]["真实性"] if item["outcome"] == "FAIL"]
    assert "BC-1-1" in [item["code"] for item in failed]
    assert any(package.name in line for item in failed for line in item["evidence"])


def test_an_archive_signed_later_verifies_and_a_missing_signature_is_reported(ingested_archive, tmp_path, signing_env):
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    result = _cli("verify", "--json", "--archive", str(root))
    assert result.exit_code == 4
    assert {p["kind"] for p in json.loads(result.output)["problems"]} == {"signature_missing"}

    from archive.preservation.signing import SigningSettings, sign_pdf

    stopped = _access_pdfs(Archive(root))[0]  # a `sign` stopped after the PDF, before the manifests
    sign_pdf(stopped, SigningSettings(Path(os.environ["TRADE_ARCHIVE_SIGNING_KEY"])))
    result = _cli("sign", "--all", "--archive", str(root))
    assert result.exit_code == 0 and "2 signed" in result.output, result.output
    result = _cli("verify", "--archive", str(root))
    assert result.exit_code == 0, result.output  # the signing event carries the new tag manifest: not "rebagged"
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events].count("signing") == 2
    assert _cli("sign", "--all", "--archive", str(root)).output.startswith("sign: 0 signed, 2 already signed")


def test_a_timestamp_from_an_untrusted_authority_is_reported(signed_copy, tmp_path):
    from archive.preservation.keys import init_demo_keys
    from archive.preservation.signing import SigningSettings
    from archive.preservation.verify import verify_archive

    other = init_demo_keys(tmp_path / "other")
    kinds = {p.kind for p in verify_archive(signed_copy, signing=SigningSettings(trust_roots=other.ca)).problems}
    assert kinds == {"signature_invalid", "timestamp_invalid"}


def test_handover_writes_register_catalogue_and_bags_that_validate(signed_copy, signing_env, tmp_path):
    from openpyxl import load_workbook

    destination = tmp_path / "bureau"
    result = _cli("handover", str(destination), "--archive", str(signed_copy.root))
    assert result.exit_code == 0, result.output
    bags = sorted(p.parent for p in destination.glob("transactions/*/*/bagit.txt"))
    assert len(bags) == 2
    for bag in bags:
        bagit.Bag(str(bag)).validate()
    register = json.loads((destination / "移交清单.json").read_text(encoding="utf-8"))
    assert register["totals"]["packages"] == 2 and all(e["tagmanifest_sha256"] for e in register["packages"])
    assert all(e["signer"] and e["timestamp"] for e in register["packages"])
    assert (destination / "移交清单.json.p7s").is_file() and (destination / "说明文件.txt").is_file()
    header = next(load_workbook(destination / "目录" / "归档文件目录.xlsx").active.iter_rows(values_only=True))
    assert header[:8] == ("档号", "题名", "责任者", "日期", "页数", "保管期限", "文号", "项目编号")
    assert "<项目编号>NNZC2023-G1-004567-KWZB</项目编号>" in (destination / "目录" / "归档文件目录.xml").read_text()
    check = json.loads((destination / "四性检测报告-移交.json").read_text(encoding="utf-8"))
    assert check["stage"] == "transfer" and check["outcome"] == "PASS"
    assert any(json.loads(line)["type"] == "handover" for line in signed_copy.events_path.read_text().splitlines())

    result = _cli("handover", str(destination), "--archive", str(signed_copy.root))
    assert result.exit_code == 2 and "not empty" in result.output  # a hand-over goes to a new or empty folder


def test_a_visible_mark_keeps_the_access_pdf_pdfa_and_valid(ingested_archive, demo_keys, tmp_path):
    import pikepdf
    import pikepdf.pdfa

    from archive.preservation.signatures import _check_pdf, _trust_context
    from archive.preservation.signing import SigningSettings, sign_pdf

    pdf = tmp_path / "access.pdf"
    shutil.copy(_access_pdfs(ingested_archive)[0], pdf)
    settings = SigningSettings(demo_keys.centre, trust_roots=demo_keys.ca, visible=True)
    sign_pdf(pdf, settings)
    assert _check_pdf(pdf, _trust_context(settings)) == []
    assert not pikepdf.pdfa.validate_written(pdf, "2b").violations  # the stamp's font is embedded
    with pikepdf.open(pdf) as opened:
        widget = next(a for a in opened.pages[0].get("/Annots", []) if a.get("/FT") == "/Sig")
        assert float(widget.Rect[2]) > float(widget.Rect[0]) and "/AP" in widget  # drawn, not hidden


def test_signing_settings_come_from_the_config_file_relative_to_it_and_survive_serve_config(tmp_path, monkeypatch):
    from archive import config
    from archive.preservation.signing import SigningSettings

    monkeypatch.chdir(tmp_path)  # no trade-archive.toml here
    for name in ("SIGNING_KEY", "TRUST_ROOTS", "SIGNATURE_MARK", "TSA_URL", "CONFIG"):
        monkeypatch.delenv(f"TRADE_ARCHIVE_{name}", raising=False)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ta.toml").write_text('signing_key = "keys/centre.p12"\nsignature_mark = "visible"\n')
    settings = SigningSettings.from_config(config.load_config(str(tmp_path / "etc" / "ta.toml")))
    assert settings.key == tmp_path / "etc" / "keys" / "centre.p12" and settings.visible
    assert not SigningSettings.from_config(config.load_config()).enabled  # nothing configured: nothing signed
    try:  # `serve --config etc/ta.toml` exports the file's settings; ingest then finds no file of its own
        config.export_to_environment(config.load_config(str(tmp_path / "etc" / "ta.toml")))
        assert SigningSettings.from_config(config.load_config()).key == tmp_path / "etc" / "keys" / "centre.p12"
    finally:
        for key in list(config._EXPORTED):
            monkeypatch.delenv(key, raising=False)
            config._EXPORTED.discard(key)
    with pytest.raises(config.ConfigError):
        config.load_config(overrides={"signature_mark": "loud"})


def test_an_access_pdf_damaged_past_parsing_is_an_invalid_signature_not_a_missing_one(signed_copy, demo_keys):
    from archive.preservation.signing import SigningSettings
    from archive.preservation.verify import verify_archive

    pdf = _access_pdfs(signed_copy)[0]
    pdf.write_bytes(pdf.read_bytes()[:200])
    problems = verify_archive(signed_copy, signing=SigningSettings(demo_keys.centre, trust_roots=demo_keys.ca)).problems
    assert [p.kind for p in problems if p.path.endswith("data/access.pdf") and p.kind.startswith("signature")] == [
        "signature_invalid"
    ]


def test_a_tag_manifest_rewritten_by_a_filing_is_signed_again(signed_copy, signing_env):
    """Filing an unfiled document writes its 档号 into bag-info.txt, which changes the tag
    manifest its detached signature covers: the filing signs it again (``reseal``)."""
    from archive.config import load_config
    from archive.preservation.signatures import check_signatures
    from archive.preservation.signing import SigningSettings, reseal
    from archive.storage.package import update_bag

    package = next(signed_copy.documents())
    update_bag(package, ["data/document.json"], {"Archival-Code": "0001-2099-Y-0001"})  # as an arrangement does
    settings = SigningSettings.from_config(load_config())
    assert any(f.kind == "signature_invalid" for f in check_signatures(package, settings))
    assert reseal(signed_copy, [package.name]) == [package.name]
    assert check_signatures(package, settings) == []
