"""Bidders and prices from a bid-opening table, and the winner's price against the award amount."""

from __future__ import annotations

import json

import pytest

from archive.records.bidders import Bid, bids_in_tables, parse_price, winner_price_differs

TABLE = [
    ["序号", "投标人名称", "投标报价（元）", "工期（日历天）", "投标保证金", "签名"],
    ["1", "广西柳州桂建信息技术有限公司", "112337.24", "180", "已交", "何刚"],
    ["2", "广西柳州宏达医疗器械 有限公司", "110,048.06", "90", "已缴纳", "莫强明"],
    ["3", "广西柳州中联信息技术有限公司", "9973O.41", "60", "已缴纳", "蒙国"],
]


def test_bids_read_by_their_headers() -> None:
    assert bids_in_tables([TABLE, [["签到"], ["x"]]]) == [
        Bid("广西柳州桂建信息技术有限公司", 112337.24),
        Bid("广西柳州宏达医疗器械有限公司", 110048.06),
        Bid("广西柳州中联信息技术有限公司", None),  # a letter O among the figures: not a price
    ]
    assert parse_price("１２３.５０元") == 123.5


def test_prices_as_bid_opening_records_write_them() -> None:
    assert (
        parse_price("¥1,234,567.89")
        == parse_price("￥1234567.89元")
        == parse_price("人民币1,234,567.89元")
        == 1234567.89
    )
    assert parse_price("123.4567万元") == 1234567.0 and parse_price("123.4567", 10_000) == 1234567.0
    assert parse_price("人民币壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分") == 1234567.89  # capitals alone
    both = "¥1,234,567.89（大写：壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分）"
    assert parse_price(both) == 1234567.89
    assert parse_price(both.replace("567.89", "567.98")) == 1234567.89  # they disagree: the capitals hold
    assert parse_price("已撤回") is None and parse_price("") is None
    table = [["序号", "投标人", "投标报价（万元）"], ["1", "甲公司", "123.4567"]]
    assert bids_in_tables([table]) == [Bid("甲公司", 1234567.0)]  # a column in 万元: yuan, as the award amount


def test_the_winners_price_is_checked_against_the_award() -> None:
    bids = bids_in_tables([TABLE])
    assert not winner_price_differs(bids, "广西柳州宏达医疗器械有限公司", 110048.06)
    assert winner_price_differs(bids, "广西柳州宏达医疗器械有限公司", 110048.60)
    assert not winner_price_differs(bids, "另一家公司", 1.0)  # not among the bidders: nothing to compare
    assert not winner_price_differs(bids, None, 110048.60)


def test_acceptance_flags_a_winner_whose_bid_is_not_the_award(tmp_path) -> None:
    from archive.acceptance.checks import _metadata
    from archive.records.document import DocumentRecord
    from archive.storage.store import Archive

    archive = Archive.open(tmp_path / "archive", create=True)
    document = DocumentRecord.from_json({
        "document": "d000000000000001", "source": "bidopen.pdf", "doc_type": "bid_opening", "qc_flags": [],
        "metadata": {"project_code": "GX-1", "project_name": "某工程", "transaction_type": "政府采购",
                     "winner": "广西柳州宏达医疗器械有限公司", "amount": 110048.6},
        "bidders": [bid.to_json() for bid in bids_in_tables([TABLE])],
    })  # fmt: skip
    flags = _metadata(archive, [document]).flags
    assert [f.message for f in flags] == [
        "the winner's bid 110048.06 in the bid-opening record is not the award amount 110048.6"
    ]
    document.metadata["amount"] = 110048.06
    assert _metadata(archive, [document]).flags == []


# --- the bidders are the transaction's: transaction.json, export, the index and --party --------------------------

LOSER = "广西柳州桂建信息技术有限公司"  # bid, did not win
WINNER = "广西柳州宏达医疗器械有限公司"
METADATA = {"project_code": "GXZC2023-G1-000777-KWZB", "project_name": "柳州市医疗设备采购",
            "transaction_type": "政府采购", "purchaser": "柳州市人民医院", "agency": None, "winner": WINNER,
            "amount": 110048.06, "award_date": "2023-06-01"}  # fmt: skip
OTHER = {**METADATA, "project_code": "GXZC2023-G1-000888-KWZB", "project_name": "柳州市某公司办公家具采购",
         "purchaser": "柳州市某局", "winner": "广西某公司家具有限公司"}  # fmt: skip


def _record(document: str, doc_type: str, metadata: dict, bidders: list | None = None, time: str = "2023-06-02"):
    from archive.records.document import DocumentRecord

    return DocumentRecord(document, f"{document}.pdf", doc_type=doc_type, pages=1, metadata=dict(metadata),
                          provenance=dict.fromkeys(metadata, "text"), bidders=bidders,
                          process={"time": time})  # fmt: skip


def _file(archive, record, text: str) -> None:
    """A hand-made package (no OCR, no bag manifests): what transaction records, export and the index read."""
    package = archive.transaction_dir(record.metadata["project_code"]) / record.document
    (package / "data" / "ocr").mkdir(parents=True)
    (package / "bagit.txt").write_text("BagIt-Version: 0.97\n")
    record.save(package / "data")
    page = {"text": text, "orientation": 0, "blank": False, "confidence": 0.98, "tables": []}
    (package / "data" / "ocr" / "0001.json").write_text(json.dumps(page, ensure_ascii=False))


def test_a_transactions_record_takes_the_bid_opening_records_bidders() -> None:
    from archive.records.transaction import bidders_of, merged_record

    bids = [bid.to_json() for bid in bids_in_tables([TABLE])]
    award = _record("a1", "award_notice", METADATA, bidders=[], time="2023-06-01")
    evaluation = _record("e1", "evaluation_report", METADATA, bidders=[{"name": LOSER, "price": 1.0}])
    opening = _record("b1", "bid_opening", METADATA, bidders=bids, time="2023-06-03")
    record = merged_record("GXZC2023-G1-000777-KWZB", [(award, {}), (evaluation, {}), (opening, {})])
    assert bidders_of(record) == bids and record["provenance"]["bidders"] == "table:b1"  # the bid opening's, filed last
    relabelled = merged_record("GXZC2023-G1-000777-KWZB", [(evaluation, {"doc_type": "bid_opening"}), (opening, {})])
    assert relabelled["provenance"]["bidders"] == "table:e1"  # its type as corrected: the first filed of two
    assert merged_record("X", [(evaluation, {}), (award, {})])["provenance"]["bidders"] == "table:e1"  # none better
    without = merged_record("X", [(award, {})])
    assert "bidders" not in without and "bidders" not in without["provenance"]  # as records written before
    assert bidders_of(without) == [] and bidders_of(None) == []


@pytest.fixture
def bidding_archive(tmp_path):
    """Two transactions: one with a bid-opening record listing three bidders, one without."""
    from archive.records.transaction import refresh_all_transactions
    from archive.storage.store import Archive

    archive = Archive.open(tmp_path / "archive", create=True)
    bids = [bid.to_json() for bid in bids_in_tables([TABLE])]
    _file(archive, _record("a000000000000001", "award_notice", METADATA, []), "中标通知书：某公司医疗设备采购项目")
    _file(archive, _record("b000000000000001", "bid_opening", METADATA, bids), "开标记录表 某公司 报价")
    _file(archive, _record("c000000000000001", "award_notice", OTHER, []), "中标通知书：某公司办公家具采购项目")
    assert refresh_all_transactions(archive) == 2
    return archive


def test_the_record_export_and_verify_carry_the_bidders(bidding_archive) -> None:
    from archive.records.export import iter_pages
    from archive.records.transaction import RECORD, refresh_all_transactions, stale_records

    folder = bidding_archive.transaction_dir(METADATA["project_code"])
    record = json.loads((folder / RECORD).read_text())
    record_bidders = record["bidders"]
    assert [bid["name"] for bid in record_bidders][0] == LOSER
    assert "bidders" not in json.loads((bidding_archive.transaction_dir(OTHER["project_code"]) / RECORD).read_text())
    pages = {page["document"]: page for page in iter_pages(bidding_archive)}
    assert pages["a000000000000001"]["bidders"] == record["bidders"]  # every document of the transaction
    assert pages["c000000000000001"]["bidders"] == []
    assert list(stale_records(bidding_archive)) == []
    # A record an older version wrote (no bidders) is no damage: verify passes it, reindex adds them.
    del record["bidders"], record["provenance"]["bidders"]
    (folder / RECORD).write_text(json.dumps(record, ensure_ascii=False))
    assert list(stale_records(bidding_archive)) == []
    pages = {page["document"]: page for page in iter_pages(bidding_archive)}
    assert pages["a000000000000001"]["bidders"] == []  # the award notice lists none of its own
    assert pages["b000000000000001"]["bidders"] == record_bidders  # meanwhile the bid opening's are its own
    for wrong in ({**record, "bidders": []}, {**record, "metadata": {**record["metadata"], "winner": LOSER}}):
        (folder / RECORD).write_text(json.dumps(wrong, ensure_ascii=False))  # a record gone wrong is said to be so
        assert [what for _, what in stale_records(bidding_archive)] == ["does not match its documents"]
    refresh_all_transactions(bidding_archive)
    assert json.loads((folder / RECORD).read_text())["bidders"] == record_bidders


@pytest.mark.parametrize("backend", ["whoosh", "tantivy"])
def test_a_losing_bidder_finds_the_transactions_documents_with_party(bidding_archive, backend, monkeypatch) -> None:
    from click.testing import CliRunner

    import index
    import search_cli
    from index import Filters

    if backend == "tantivy":
        pytest.importorskip("tantivy")
    index.reindex(bidding_archive, backend=backend)

    def found(query: str, party: str) -> set[str]:
        return {hit["document"] for hit in index.search(bidding_archive, query, Filters(party=party), 20)}

    transaction = {"a000000000000001", "b000000000000001"}
    assert found("某公司", LOSER) == transaction
    assert found("某公司", "桂建信息") == transaction  # any part of the name
    assert found("某公司", WINNER) == transaction
    assert found("某公司", "广西某公司家具") == {"c000000000000001"}
    assert found("某公司", "桂建信息技术有限公司广西") == set()  # never across two names
    config = bidding_archive.root.parent / "config.toml"
    config.write_text("")
    monkeypatch.setenv("TRADE_ARCHIVE_CONFIG", str(config))
    result = CliRunner().invoke(search_cli.main, ["某公司", "--party", LOSER, "--json", "--archive",
                                                  str(bidding_archive.root)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {hit["document"] for hit in json.loads(result.output)} == transaction


# --- an archivist corrects the bidders -----------------------------------------------------------------------------

OPENING = "b000000000000001"


def test_a_corrected_price_reaches_the_record_export_and_acceptance(bidding_archive) -> None:
    """The table read 9973O.41 (an O for a 0): the archivist types the price from the paper."""
    from archive.acceptance.checks import _metadata
    from archive.preservation.verify import verify_archive
    from archive.records.corrections import bidders_as_corrected
    from archive.records.document import DocumentRecord
    from archive.records.export import iter_pages
    from archive.records.filing import correct_document_bidders
    from archive.records.transaction import RECORD, stale_records

    third = "广西柳州中联信息技术有限公司"
    changed = correct_document_bidders(bidding_archive, OPENING, {third: "99730.41"}, "per the paper table")
    assert set(changed) == {OPENING, "a000000000000001"}  # both documents of the transaction are reindexed
    record = json.loads((bidding_archive.transaction_dir(METADATA["project_code"]) / RECORD).read_text())
    assert record["bidders"][2] == {"name": third, "price": 99730.41}
    assert record["provenance"]["bidders"] == f"correction:{OPENING}"
    pages = {page["document"]: page for page in iter_pages(bidding_archive)}
    assert pages["a000000000000001"]["bidders"] == record["bidders"]
    assert list(stale_records(bidding_archive)) == []  # verify's fresh merge takes the correction too
    assert not [p for p in verify_archive(bidding_archive).problems if "review/corrections" in p.path]
    # The winner's price: flagged against an amount it does not match, clear once corrected.
    opening = DocumentRecord.load(bidding_archive.find_document(OPENING))
    opening.metadata["amount"] = 110048.6
    assert [f.message for f in _metadata(bidding_archive, [opening]).flags] == [
        "the winner's bid 110048.06 in the bid-opening record is not the award amount 110048.6"
    ]
    correct_document_bidders(bidding_archive, OPENING, {WINNER: "壹拾壹万零肆拾捌元陆角"}, "the capitals hold")
    assert _metadata(bidding_archive, [opening]).flags == []
    assert [bid["price"] for bid in bidders_as_corrected(bidding_archive, opening)] == [112337.24, 110048.6, 99730.41]
    versions = sorted(path.name for path in (bidding_archive.root / "review" / "corrections" / OPENING).iterdir())
    assert versions == ["bidders.v1.json", "bidders.v2.json"]  # each correction a new version; the table stays
    assert DocumentRecord.load(bidding_archive.find_document(OPENING)).bidders[2]["price"] is None
    latest = bidding_archive.root / "review" / "corrections" / OPENING / "bidders.v2.json"
    latest.write_text(latest.read_text().replace("110048.6", "110048.66"))  # altered after it was recorded
    assert [p.kind for p in verify_archive(bidding_archive).problems if "review/corrections" in p.path] == ["changed"]


def test_a_missed_bidder_is_added_and_a_misread_row_taken_off(bidding_archive) -> None:
    from archive.errors import InvalidValue
    from archive.records.corrections import bidders_as_corrected, correct_bidders
    from archive.records.document import DocumentRecord

    correct_bidders(bidding_archive, OPENING, {"广西 某某 建设有限公司": "3570.12万", LOSER: ""}, "row 4 was missed")
    correct_bidders(bidding_archive, OPENING, {"广西某某（建设）有限公司": "3570.12万"}, "the name as on the paper")
    opening = DocumentRecord.load(bidding_archive.find_document(OPENING))
    assert [(bid["name"], bid["price"]) for bid in bidders_as_corrected(bidding_archive, opening)] == [
        (WINNER, 110048.06), ("广西柳州中联信息技术有限公司", None), ("广西某某建设有限公司", 35701200.0),
        ("广西某某(建设)有限公司", 35701200.0)]  # fmt: skip
    with pytest.raises(InvalidValue, match="not among the bidders"):
        correct_bidders(bidding_archive, OPENING, {LOSER: ""}, "twice")
    with pytest.raises(InvalidValue, match="cannot be taken"):
        correct_bidders(bidding_archive, OPENING, {WINNER: "about 11万"}, "a guess")


def test_review_fix_bids_finds_the_new_bidder_by_party(bidding_archive, monkeypatch) -> None:
    from click.testing import CliRunner

    import index
    from flows.cli import cli

    config = bidding_archive.root.parent / "config.toml"
    config.write_text("")
    monkeypatch.setenv("TRADE_ARCHIVE_CONFIG", str(config))
    index.reindex(bidding_archive)
    result = CliRunner().invoke(cli, ["review", "fix-bids", OPENING, "广西某某建设有限公司=3570.12万", "--note",
                                      "row 4 was missed", "--archive", str(bidding_archive.root)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "reindexed 2 document(s)" in result.output
    hits = index.search(bidding_archive, "某公司", index.Filters(party="广西某某建设有限公司"), 20)
    assert {hit["document"] for hit in hits} == {"a000000000000001", OPENING}
    wrong = CliRunner().invoke(cli, ["review", "fix-bids", OPENING, "nobody=", "--note", "x", "--archive",
                                     str(bidding_archive.root)])  # fmt: skip
    assert wrong.exit_code != 0 and "not among the bidders" in wrong.output
