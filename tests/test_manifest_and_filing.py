import json
import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook

from archive.preservation.verify import verify_archive
from archive.records.amounts import parse_capitals, parse_figures
from archive.records.export import iter_pages
from archive.records.filing import file_document, file_unfiled_by_project_name
from archive.records.manifest import read_manifest
from archive.records.metadata import merge, transaction_type_from
from archive.storage.store import Archive, check_project_code


def test_chinese_headers_in_gbk_with_row_numbered_problems(tmp_path):
    path = tmp_path / "export.csv"
    text = (
        "文件名,项目编号,项目名称,交易类型,中标人,中标金额,中标日期\n"
        'a.pdf,GXZC2023-G1-001234-KWZB,南宁项目,政府采购,广西甲公司,"￥1,234,567.89",2023年5月12日\n'
        "b.pdf,GXCQ2022-519,柳州项目,拍卖,广西乙公司,12a,2023-13-01\n"
        "a.pdf,X,重复,政府采购,,,\n"
    )
    path.write_bytes(text.encode("gbk"))
    manifest = read_manifest(path)
    assert manifest.rows["a.pdf"]["amount"] == "1234567.89"
    assert manifest.rows["a.pdf"]["award_date"] == "2023-05-12"
    assert manifest.rows["a.pdf"]["winner"] == "广西甲公司"
    assert "amount" not in manifest.rows["b.pdf"] and "transaction_type" not in manifest.rows["b.pdf"]
    problems = "\n".join(manifest.problems)
    assert "row 3: amount '12a'" in problems
    assert "row 3: award_date '2023-13-01'" in problems
    assert "row 3: transaction_type '拍卖'" in problems
    assert "row 4: a.pdf is listed again (first on row 2)" in problems


def test_xlsx_with_english_headers_and_a_custom_column(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["file", "project_code", "合同价", "award_date"])
    sheet.append(["scans/a.pdf", "E4506001877206002", 2606000, "2023/2/26"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    manifest = read_manifest(path, {"amount": "合同价"})
    assert manifest.get("a.pdf") == {
        "file": "scans/a.pdf", "project_code": "E4506001877206002", "amount": "2606000.00", "award_date": "2023-02-26"
    }  # fmt: skip
    assert manifest.problems == []


def test_amounts_in_figures_and_capitals_agree_or_are_flagged():
    assert parse_capitals("大写：人民币叁仟捌佰玖拾伍万伍仟柒佰柒拾叁元零陆分") == 38955773.06
    assert parse_capitals("人民币壹亿零贰佰万元整") == 102_000_000
    assert parse_figures("中标金额为¥38,955,773.06元") == 38955773.06
    text = "中标（成交）通知书\n中标金额为¥38,955,778.06元（大写：人民币叁仟捌佰玖拾伍万伍仟柒佰柒拾叁元零陆分）"
    assert "amount_figures_vs_capitals" in merge(None, text).qc_flags


def test_transaction_type_from_the_code_form():
    assert transaction_type_from("GXZC2021-G1-728594-BHZX", "") == "政府采购"
    assert transaction_type_from("GXCQ2022-519", "") == "国有产权交易"
    assert transaction_type_from("450600-GT2023-107", "") == "土地使用权出让"
    assert transaction_type_from("E4506001877206002", "") == "工程建设招标投标"
    assert transaction_type_from("GXYC20214952", "") == "药品和医疗器械采购"
    assert transaction_type_from(None, "国有建设用地使用权挂牌出让") == "土地使用权出让"


@pytest.mark.parametrize(
    "field,value", [("winner", "广西别的公司"), ("amount", "1000000"), ("project_name", "别的项目")]
)
def test_every_altered_manifest_value_is_flagged(field, value):
    text = (
        "中标（成交）通知书\n南宁新宇建设工程有限公司：\n南宁市公共资源交易中心的南宁市排水管网改造工程"
        "（项目编号：NNZC2023-G1-004567-KWZB），中标金额为¥1,234,567.89元。"
    )
    meta = merge({field: value}, text)
    assert f"manifest_disagrees:{field}" in meta.qc_flags
    assert meta.values[field] == (float(value) if field == "amount" else value)  # the manifest still wins


def _notice_unfiled(ingested_archive, tmp_path) -> tuple[Archive, Path]:
    """A copy of the archive with the notice (title: 关于做好档案数字化工作的通知) unfiled, as
    if its code had been unreadable, and a transaction known by that project name (say, from
    its award notice): (the copy, the notice's package in unfiled/)."""
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    archive = Archive(root)
    folder = archive.transaction_dir("GXZC2023-G1-001234-KWZB")
    notice = next(folder.glob("*/bagit.txt")).parent
    shutil.move(str(notice), str(root / "unfiled" / notice.name))
    shutil.rmtree(folder)
    record = archive.transaction_dir("GX-2023-77") / "transaction.json"
    record.parent.mkdir()
    record.write_text(json.dumps({"project_code": "GX-2023-77", "metadata": {"project_name": "做好档案数字化工作"},
                                  "provenance": {}, "documents": []}, ensure_ascii=False))  # fmt: skip
    return archive, root / "unfiled" / notice.name


def test_unfiled_document_is_filed_by_project_name_and_verify_follows(ingested_archive, tmp_path):
    archive, notice = _notice_unfiled(ingested_archive, tmp_path)
    assert file_unfiled_by_project_name(archive) == [(notice.name, "GX-2023-77")]
    pages = [p for p in iter_pages(archive) if p["document"] == notice.name]
    assert pages[0]["metadata"]["project_code"] == "GX-2023-77"
    last = json.loads(archive.events_path.read_text().splitlines()[-1])
    assert last["type"] == "filing" and last["to"] == f"transactions/GX-2023-77/{notice.name}"
    assert verify_archive(archive).ok  # verify follows the filing event to the new place

    target, _ = file_document(archive, notice.name, "GXZC2023-G1-001234-KWZB", "archivist corrected it")
    assert target.parent.name == "GXZC2023-G1-001234-KWZB" and verify_archive(archive).ok


def test_manifest_amounts_and_dates_in_the_forms_platforms_export():
    from archive.records.manifest import parse_amount, parse_date

    amounts = {"¥1,234,567.89": 1234567.89, "123.45万元": 1234500.0, "人民币壹佰万元整": 1_000_000.0,
               "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分": 1234567.89,
               "abc": None, "inf": None, "1e309": None, "-5": None}  # fmt: skip
    assert {text: parse_amount(text) for text in amounts} == amounts
    dates = {"2023-05-12": "2023-05-12", "2023年5月12日": "2023-05-12", "20230512": "2023-05-12",
             "20231301": None, "2023-02-30": None}  # fmt: skip
    assert {text: parse_date(text) for text in dates} == dates


@pytest.fixture
def two_transactions(ingested_archive, tmp_path):
    """A copy of the fixture archive: (archive, the award notice's id, the notice's id), each
    document in a transaction of its own (NNZC2023-G1-004567-KWZB and GXZC2023-G1-001234-KWZB)."""
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    archive = Archive(root)
    award = next(archive.transaction_dir("NNZC2023-G1-004567-KWZB").glob("*/bagit.txt")).parent.name
    notice = next(archive.transaction_dir("GXZC2023-G1-001234-KWZB").glob("*/bagit.txt")).parent.name
    return archive, award, notice


# --- a transaction's record is merged from the documents in it (archive/records/transaction.py) ---


def _document(document, doc_type, time, metadata, provenance):
    fields = ("project_code", "project_name", "transaction_type", "purchaser", "agency", "winner", "amount",
              "award_date")  # fmt: skip
    from archive.records.document import DocumentRecord

    return DocumentRecord(document, f"{document}.pdf", doc_type=doc_type, process={"time": time},
                          metadata={name: metadata.get(name) for name in fields},
                          provenance={name: provenance if name in metadata else None for name in fields})  # fmt: skip


def test_a_transactions_record_takes_corrections_then_the_manifest_then_the_likeliest_document():
    from archive.records.transaction import merged_record

    bid = _document("b1", "bid_opening", "2023-01-02", {"amount": 900.0, "winner": "甲", "agency": "代理"}, "text")
    award = _document("a1", "award_notice", "2023-01-03", {"amount": 1000.0, "winner": "乙"}, "text")
    contract = _document("c1", "contract", "2023-01-01", {"project_code": "X-1", "purchaser": "局"}, "manifest")
    record = merged_record("X-1", [(bid, {}), (award, {}), (contract, {})])
    assert record["metadata"]["amount"] == 1000.0 and record["provenance"]["amount"] == "text:a1"  # award > bid
    assert record["metadata"]["agency"] == "代理"  # only the bid opening states it
    assert record["provenance"]["project_code"] == "manifest:c1"
    assert [d["document"] for d in record["documents"]] == ["c1", "b1", "a1"]  # ingested first, first
    corrected = merged_record("X-1", [(bid, {"amount": 950.0}), (award, {"winner": None}), (contract, {})])
    assert (corrected["metadata"]["amount"], corrected["provenance"]["amount"]) == (950.0, "correction:b1")
    cleared = (corrected["metadata"]["winner"], corrected["provenance"]["winner"])
    assert cleared == (None, "correction:a1")  # cleared on the award notice: for the whole transaction
    elsewhere = _document("c2", "contract", "2023-01-01", {"project_code": "Z-9", "amount": 5.0}, "manifest")
    moved_in = merged_record("X-1", [(award, {}), (elsewhere, {})])  # its row is about Z-9: no better than text
    assert moved_in["metadata"]["amount"] == 1000.0
    filed_by_hand = merged_record("Y-2", [(bid, {}), (contract, {})])  # no document states Y-2
    assert (
        filed_by_hand["metadata"]["project_code"] == "Y-2" and filed_by_hand["provenance"]["project_code"] == "filing"
    )


def test_a_document_filed_away_takes_its_values_along_and_corrections_reach_its_transaction(two_transactions):
    """The notice joins the award notice's transaction and leaves again; the award notice's amount
    is corrected: the record, export, the index and verify follow each change."""
    from click.testing import CliRunner

    import index
    from flows.cli import cli

    archive, award, notice = two_transactions
    root = archive.root
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli, [*args, "--archive", str(root)])
        assert result.exit_code == 0, result.output
        return result.output

    def amount_of(document):
        return next(p for p in iter_pages(archive) if p["document"] == document)["metadata"]["amount"]

    def indexed_with_amount(amount):  # the index keeps each page's merged metadata, for filters
        hits = index.search(archive, "通知", index.Filters(amount_min=amount, amount_max=amount), limit=50)
        return {hit["document"] for hit in hits}

    run("file", notice, "--code", "NNZC2023-G1-004567-KWZB")
    assert not archive.transaction_dir("GXZC2023-G1-001234-KWZB").exists()  # its only document left
    assert amount_of(notice) == 1234567.89  # the award notice's amount is the transaction's
    record = json.loads((archive.transaction_dir("NNZC2023-G1-004567-KWZB") / "transaction.json").read_text())
    assert {d["document"] for d in record["documents"]} == {award, notice}

    output = run("review", "fix-metadata", award, "amount=200万", "--note", "per the contract")
    assert "reindexed 1 more" in output, output
    assert amount_of(notice) == 2_000_000.0  # the correction reached the other document
    assert notice in indexed_with_amount(2_000_000.0) and notice not in indexed_with_amount(1234567.89)

    run("review", "fix-metadata", notice, "project_code=GXZC2023-G1-001234-KWZB", "--note", "misfiled")
    assert archive.find_document(notice).parent == archive.transaction_dir("GXZC2023-G1-001234-KWZB")
    assert amount_of(notice) is None  # the award notice's amount stayed with the award notice
    assert notice not in indexed_with_amount(2_000_000.0)
    assert verify_archive(archive).ok

    record_path = archive.transaction_dir("NNZC2023-G1-004567-KWZB") / "transaction.json"
    record = json.loads(record_path.read_text())
    record["metadata"]["winner"] = "某公司"  # edited by hand
    record_path.write_text(json.dumps(record, ensure_ascii=False))
    problems = verify_archive(archive).problems
    assert [(p.kind, p.transaction) for p in problems] == [("transaction_record", "NNZC2023-G1-004567-KWZB")]
    run("reindex")
    assert verify_archive(archive).ok


def test_two_codes_that_make_the_same_safe_name_get_folders_of_their_own(tmp_path):
    archive = Archive.open(tmp_path / "archive", create=True)
    square, angle = archive.transaction_dir("桂财采【2023】001号"), archive.transaction_dir("桂财采《2023》001号")
    assert square != angle and square.parent == angle.parent == archive.root / "transactions"
    assert archive.transaction_dir("GXZC2023-G1-001234-KWZB").name == "GXZC2023-G1-001234-KWZB"  # as it is
    assert archive.transaction_dir("ＧＸＺＣ2023-G1-001234-KWZB").name == "GXZC2023-G1-001234-KWZB"  # full-width
    legacy = archive.root / "transactions" / "桂财采_2023_001号"  # named before the hash was added
    legacy.mkdir()
    (legacy / "transaction.json").write_text(json.dumps({"project_code": "桂财采【2023】001号"}, ensure_ascii=False))
    assert archive.transaction_dir("桂财采【2023】001号") == legacy
    assert archive.transaction_dir("桂财采《2023》001号") == angle
    spaced = archive.root / "transactions" / "GX_001"  # an older archive's folder of the code "GX 001"
    spaced.mkdir()
    (spaced / "transaction.json").write_text(json.dumps({"project_code": "GX 001"}))
    assert archive.transaction_dir("GX 001") == spaced


def test_a_manifest_row_with_a_spelling_variant_of_the_code_still_counts_as_the_manifest():
    from archive.records.transaction import merged_record

    award = _document("a1", "award_notice", "2023-01-02", {"project_code": "GXCQ2022-519", "amount": 900.0}, "text")
    contract = _document("c1", "contract", "2023-01-03", {"project_code": "GXCQ2022 -519", "amount": 1000.0},
                         "manifest")  # fmt: skip
    assert merged_record("GXCQ2022-519", [(award, {}), (contract, {})])["metadata"]["amount"] == 1000.0


def test_a_corrected_manifest_row_for_an_archived_file_is_reported_not_applied(ingested_archive, tmp_path, resources):
    from archive.ingest.document import ingest_document

    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    row = dict(read_manifest(resources / "manifest.csv").rows["award-notice.pdf"])
    same = ingest_document(resources / "award-notice.pdf", Archive(root), "b2", row)
    assert same.status == "duplicate" and same.manifest_changes == {}
    row["project_name"] = "南宁市排水管网改造工程（二期）"
    changed = ingest_document(resources / "award-notice.pdf", Archive(root), "b3", row)
    assert changed.manifest_changes == {"project_name": ["南宁市排水管网改造工程", "南宁市排水管网改造工程（二期）"]}


def test_a_hashed_transaction_folder_gets_its_record_back_and_ties_keep_the_filing_order(two_transactions):
    from archive.records.transaction import merged_record, refresh_all_transactions

    archive, _, notice = two_transactions
    target, _ = file_document(archive, notice, "桂财采【2023】001号", "the code as the paper file gives it")
    assert "~" in target.parent.name
    (target.parent / "transaction.json").unlink()
    assert [p.kind for p in verify_archive(archive).problems] == ["transaction_record"]
    refresh_all_transactions(archive)
    assert json.loads((target.parent / "transaction.json").read_text())["project_code"] == "桂财采【2023】001号"
    assert verify_archive(archive).ok

    first = _document("bbbb", "contract", "2023-05-12T08:00:00", {"amount": 100.0}, "manifest")
    second = _document("aaaa", "contract", "2023-05-12T08:00:00", {"amount": 200.0}, "manifest")  # same second
    record = merged_record("X-1", [(first, {}), (second, {})], filed=["bbbb", "aaaa"])
    assert record["metadata"]["amount"] == 100.0 and [d["document"] for d in record["documents"]] == ["bbbb", "aaaa"]


def test_verify_names_a_damaged_correction_instead_of_failing(two_transactions):
    from archive.records.corrections import correct_metadata

    archive, _, notice = two_transactions
    root = archive.root
    correction = correct_metadata(archive, notice, {"winner": "某公司"}, "per the contract")
    correction.write_text("{ torn")
    assert {(p.kind, p.path) for p in verify_archive(archive).problems} == {
        ("changed", str(correction.relative_to(root)))
    }


def test_a_reindex_cut_short_after_a_move_is_made_up_by_the_next_command(two_transactions, monkeypatch):
    """The award notice leaves the transaction it shared with the notice, and the index write
    fails (a full disk): running the same command again reindexes the notice too (the journal)."""
    import errno

    from click.testing import CliRunner

    import index
    from flows.cli import cli

    archive, award, notice = two_transactions
    root = archive.root
    runner = CliRunner()
    joined = runner.invoke(cli, ["file", notice, "--code", "NNZC2023-G1-004567-KWZB", "--archive", str(root)])
    assert joined.exit_code == 0

    def with_amount():
        hits = index.search(archive, "通知", index.Filters(amount_min=1234567.89, amount_max=1234567.89), limit=50)
        return {hit["document"] for hit in hits}

    assert with_amount() == {award, notice}  # the notice shares the award's amount
    module = index.backend_module(index.backend_name(archive))
    real_add = module.add_pages

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module, "add_pages", disk_full)
    move = ["file", award, "--code", "GXZC2023-G1-001234-KWZB", "--archive", str(root)]
    stopped = runner.invoke(cli, move)
    assert stopped.exit_code == 5 and "the disk is full" in stopped.output, stopped.output  # a message, no traceback
    monkeypatch.setattr(module, "add_pages", real_add)
    assert runner.invoke(cli, move).exit_code == 0  # again, as the error says: already filed there
    assert with_amount() == {award}  # the notice, left alone in its transaction, was reindexed too
    assert not (root / ".index-stale").exists()


def test_a_typed_code_variant_keeps_the_transactions_code_and_the_folder_decides_a_filed_code(two_transactions):
    from archive.records.filing import correct_document_metadata

    archive, _, notice = two_transactions
    target, _ = file_document(archive, notice, check_project_code("ＮＮＺＣ2023-G1-004567-KWZB"), "typed full-width")
    assert target.parent == archive.transaction_dir("NNZC2023-G1-004567-KWZB")
    codes = {p["document"]: p["metadata"]["project_code"] for p in iter_pages(archive)}
    assert set(codes.values()) == {"NNZC2023-G1-004567-KWZB"}  # the award's code was not rewritten
    correct_document_metadata(archive, notice, {"project_code": "GX-2023-77"}, "misread")  # refiled there
    file_document(archive, notice, "NNZC2023-G1-004567-KWZB", "back again, by hand")
    codes = {p["document"]: p["metadata"]["project_code"] for p in iter_pages(archive)}
    assert codes[notice] == "NNZC2023-G1-004567-KWZB"  # not the corrected code it no longer is filed under
    assert verify_archive(archive).ok


def test_the_latest_correction_holds_for_the_whole_transaction_and_a_cleared_field_stays_cleared(two_transactions):
    from archive.records.filing import correct_document_metadata

    archive, award, notice = two_transactions
    file_document(archive, notice, "NNZC2023-G1-004567-KWZB", "one transaction")

    def field(name):
        return {p["document"]: p["metadata"][name] for p in iter_pages(archive)}

    correct_document_metadata(archive, award, {"amount": "1万"}, "first reading")
    correct_document_metadata(archive, notice, {"amount": "2万"}, "the contract says otherwise")
    assert field("amount") == {award: 20000.0, notice: 20000.0}  # the later correction, everywhere
    assert field("winner")[notice] == "南宁新宇建设工程有限公司"  # read from the award notice
    correct_document_metadata(archive, award, {"winner": ""}, "not the winner: a misread")
    assert field("winner") == {award: None, notice: None}
    assert verify_archive(archive).ok


def test_manifest_rows_are_found_by_path_so_two_files_of_one_name_get_their_own(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("file,project_code\na/0001.pdf,GX-1\nb/0001.pdf,GX-2\nD:\\扫描\\c\\0002.pdf,GX-3\n0003.pdf,GX-4\n")
    manifest = read_manifest(path)
    assert not manifest.problems
    files = ("a/0001.pdf", "box/b/0001.pdf", "0001.pdf", "c/0002.pdf", "0002.pdf", "x/0003.pdf")
    found = {name: (manifest.get(name) or {}).get("project_code") for name in files}
    assert found == {"a/0001.pdf": "GX-1", "box/b/0001.pdf": "GX-2", "0001.pdf": None,  # two rows fit: neither
                     "c/0002.pdf": "GX-3", "0002.pdf": "GX-3", "x/0003.pdf": "GX-4"}  # fmt: skip


def test_a_delivery_of_boxes_each_with_its_manifest_reads_as_one(tmp_path):
    from archive.records.manifest import read_manifests

    for box, code in (("box-1", "GX-1"), ("box-2", "GX-2")):
        (tmp_path / box).mkdir()
        (tmp_path / box / "清单.csv").write_text(f"文件名,项目编号\n0001.pdf,{code}\n", encoding="utf-8")
    manifest = read_manifests(sorted(tmp_path.glob("*/清单.csv")), tmp_path)
    assert manifest.get("box-1/0001.pdf")["project_code"] == "GX-1"
    assert manifest.get("box-2/0001.pdf")["project_code"] == "GX-2"
    assert manifest.get("0001.pdf") is None  # which box? neither is guessed


def test_a_row_that_fits_several_files_is_given_to_none_and_folders_above_src_count(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("file,project_code\na/0001.pdf,GX-1\nb/0001.pdf,GX-2\n0002.pdf,GX-3\n")
    manifest = read_manifest(path)
    keys = manifest.keys_for(["/scans/a/0001.pdf", "/scans/x/0002.pdf", "/scans/y/0002.pdf"])  # SRC: /scans/a
    assert keys == {"/scans/a/0001.pdf": "a/0001.pdf", "/scans/x/0002.pdf": None, "/scans/y/0002.pdf": None}
    assert any("0002.pdf fits 2 files" in problem for problem in manifest.problems)


def test_a_document_archived_without_a_project_name_is_filed_by_its_real_title(ingested_archive, tmp_path):
    archive, notice = _notice_unfiled(ingested_archive, tmp_path)
    # As an archive from before red headers were read kept it: no project name in the record.
    record_path = notice / "data" / "document.json"
    document = json.loads(record_path.read_text())
    document["metadata"]["project_name"] = None
    record_path.write_text(json.dumps(document, ensure_ascii=False))
    assert file_unfiled_by_project_name(archive) == [(notice.name, "GX-2023-77")]
