"""Bidders and prices from a bid-opening table, and the winner's price against the award amount."""

from __future__ import annotations

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


def test_the_winners_price_is_checked_against_the_award() -> None:
    bids = bids_in_tables([TABLE])
    assert not winner_price_differs(bids, "广西柳州宏达医疗器械有限公司", 110048.06)
    assert winner_price_differs(bids, "广西柳州宏达医疗器械有限公司", 110048.60)
    assert not winner_price_differs(bids, "另一家公司", 1.0)  # not among the bidders: nothing to compare
    assert not winner_price_differs(bids, None, 110048.60)


def test_acceptance_flags_a_winner_whose_bid_is_not_the_award() -> None:
    from archive.acceptance.checks import _metadata
    from archive.records.document import DocumentRecord

    document = DocumentRecord.from_json({
        "document": "d1", "source": "bidopen.pdf", "doc_type": "bid_opening", "qc_flags": [],
        "metadata": {"project_code": "GX-1", "project_name": "某工程", "transaction_type": "政府采购",
                     "winner": "广西柳州宏达医疗器械有限公司", "amount": 110048.6},
        "bidders": [bid.to_json() for bid in bids_in_tables([TABLE])],
    })  # fmt: skip
    flags = _metadata([document]).flags
    assert [f.message for f in flags] == [
        "the winner's bid 110048.06 in the bid-opening record is not the award amount 110048.6"
    ]
    document.metadata["amount"] = 110048.06
    assert _metadata([document]).flags == []
