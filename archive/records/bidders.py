"""Bidders and their prices from a bid-opening record's table (开标记录表), and the
cross-check of the winner's price against the award amount. Pure functions on the
tables the page worker read (``archive.capture.tables``): rows of cell strings, header first."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

from archive.records.amounts import parse_capitals

NAME_HEADERS = ("投标人", "供应商", "竞买人", "竞得人", "单位名称", "投标单位", "报价人")
PRICE_HEADERS = ("报价", "投标价", "金额", "价格")
PRICE_TOLERANCE = 0.005  # yuan: figures are written to the fen
TEN_THOUSAND = 10_000  # 万
_CAPITAL = re.compile(r"[零〇壹贰貳叁參肆伍陆陸柒捌玖拾佰仟]")  # where an amount in capitals starts


@dataclass(frozen=True)
class Bid:
    name: str
    price: float | None  # yuan; None where the cell is not a figure

    def to_json(self) -> dict:
        return asdict(self)


def bids_in_tables(tables: list[list[list[str]]]) -> list[Bid]:
    """Every bid in the tables that have a bidder column and a price column, in table order."""
    return [bid for table in tables for bid in bids_in_table(table)]


def bids_in_table(table: list[list[str]]) -> list[Bid]:
    if len(table) < 2:
        return []
    header = [_clean(cell) for cell in table[0]]
    name_col = _column(header, NAME_HEADERS)
    price_col = _column(header, PRICE_HEADERS, skip=name_col)
    if name_col is None or price_col is None:
        return []
    unit = TEN_THOUSAND if "万元" in header[price_col] else 1  # 投标报价（万元）: the award amount is in yuan
    bids = []
    for row in table[1:]:
        name = _clean(row[name_col]) if name_col < len(row) else ""
        if name:
            bids.append(Bid(name, parse_price(row[price_col], unit) if price_col < len(row) else None))
    return bids


def parse_price(cell: str, unit: int = 1) -> float | None:
    """A price cell's amount in yuan: figures (1,234.50, ¥1234.5, 1234.50元, 123.45万元;
    ``unit``: yuan per figure, 10,000 in a column headed 万元) and capitals (人民币壹佰贰拾叁元
    肆角伍分). Where a cell has both and they disagree, the capitals hold, as they do in the
    evaluation (评标委员会和评标方法暂行规定 Art. 19: 投标文件中的大写金额与小写金额不一致的，
    以大写金额为准). None where the cell says no amount (a letter among the figures)."""
    text = _clean(cell)
    first = _CAPITAL.search(text)
    capitals = parse_capitals("大写" + text[first.start() :]) if first else None
    figures = _figures(text[: first.start()] if first else text, unit)
    if capitals is not None and (figures is None or abs(figures - capitals) > PRICE_TOLERANCE):
        return capitals
    return figures


def _figures(text: str, unit: int) -> float | None:
    """The amount a cell's figures say (labels, ¥, thousands commas, 元 and 整 around them)."""
    figure = re.sub(r"小写|大写|人民币|RMB|[¥￥$,，:：()（）]", "", text).removesuffix("整").removesuffix("元")
    if figure.endswith("万"):
        figure, unit = figure[:-1], TEN_THOUSAND
    return round(float(figure) * unit, 2) if re.fullmatch(r"\d+(?:\.\d+)?", figure) else None


def winner_price_differs(bids: list[Bid], winner: object, amount: object) -> bool:
    """Whether the winner's bid, as the bid-opening record read it, differs from the award
    amount (both known, the winner among the bidders with a figure)."""
    if winner is None or amount is None:
        return False
    prices = [bid.price for bid in bids if bid.name == _clean(str(winner)) and bid.price is not None]
    return bool(prices) and all(abs(price - float(amount)) > PRICE_TOLERANCE for price in prices)  # type: ignore[arg-type]


def _column(header: list[str], keywords: tuple[str, ...], skip: int | None = None) -> int | None:
    return next((i for i, cell in enumerate(header) if i != skip and any(k in cell for k in keywords)), None)


def _clean(cell: str) -> str:
    return "".join(unicodedata.normalize("NFKC", cell).split())


def bidder_name(typed: str) -> str:
    """A bidder's name as the table reader keeps it (NFKC: half-width brackets; no white space),
    for a name an archivist types to match the one read."""
    return _clean(typed)
