"""Red-headed documents (红头文件): the issuing body in large type (``柳州市公共资源交易中心文件``),
the document number (文号, ``南公管〔2021〕58号``), a red rule, then the real title
(``关于…的通知``). The title-based readings (project name, document type) must look at that
title, not at the page's first line. Pure functions on OCR text, so they are tested on strings.

OCR reads the hexagonal brackets of a 文号 as 〔〕, ﹝﹞, [], 【】 or (), or drops them: every
form is read and written back as 〔〕.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

HEAD_LINES = 8  # the header and the title sit in a page's first lines; a body's 文号 (cited acts) come later
TITLE_LINES = 3  # a long title wraps onto at most this many lines
# How official documents' titles end (GB/T 9704 document kinds), so a wrapped title is joined until one.
_TITLE = re.compile(r"^关于.{2,80}?的(?:通知|通报|决定|意见|批复|复函|函|报告|请示|公告|通告|办法|方案|规定|纪要)")
_OPEN, _CLOSE = r"[〔﹝\[［【(（]", r"[〕﹞\]］】)）]"
_DOC_NUMBER = re.compile(rf"([\u4e00-\u9fff]{{1,10}}?)\s*{_OPEN}?\s*((?:19|20)\d{{2}})\s*{_CLOSE}?\s*(\d{{1,4}})\s*号")
_ISSUER = re.compile(r"^(.{2,40}?)\s*文\s*件$")  # 柳州市公共资源交易中心文件
_ORG_LINE = re.compile(r"^(.{2,40}?(?:中心|局|委员会|政府|办公室|办公厅|厅|委|院|公司))$")  # a header without 文件


@dataclass(frozen=True)
class RedHeader:
    """What a document's head says about itself; None where it does not say."""

    issuer: str | None = None  # 责任者: the issuing body
    doc_number: str | None = None  # 文号, brackets written 〔〕
    title: str | None = None  # 题名, wrapped lines joined

    def fields(self) -> dict[str, str]:
        """The values read, by name (for a document's ``extracted`` facts)."""
        return {name: value for name, value in asdict(self).items() if value}


def read_red_header(text: str) -> RedHeader:
    """The issuer, 文号 and title at the head of a document's text (any document: a
    plain notice gives only its title, a page with no 关于… title gives nothing)."""
    lines = [_squeeze(line) for line in unicodedata.normalize("NFKC", text).splitlines()[:HEAD_LINES]]
    lines = [line for line in lines if line]
    at, title = find_title(lines)
    head = lines[:at] if title else lines[:3]  # without a title the header is the first lines at most
    number = doc_number_in(head)
    if not title and not number:
        return RedHeader()  # an award notice or a contract: its first lines are no header
    return RedHeader(issuer_in(head), number, title)


def find_title(lines: list[str]) -> tuple[int, str | None]:
    """(index of the title's first line, the title with its wrapped lines joined)."""
    for at, line in enumerate(lines):
        if not line.startswith("关于"):
            continue
        joined = ""
        for part in lines[at : at + TITLE_LINES]:
            joined += part
            if match := _TITLE.match(joined):
                return at, match.group(0)
        return at, line  # a 关于 line that never ends like a title: the line as it is
    return 0, None


def doc_number_in(lines: list[str]) -> str | None:
    """The first 文号 in the header lines, brackets normalised to 〔〕."""
    for line in lines:
        if match := _DOC_NUMBER.search(line):
            prefix, year, number = match.groups()
            return f"{prefix}〔{year}〕{int(number)}号"
    return None


def issuer_in(lines: list[str]) -> str | None:
    """The issuing body: the header line ``<body>文件``, else a line that is only an organisation's name."""
    for pattern in (_ISSUER, _ORG_LINE):
        for line in lines:
            if _DOC_NUMBER.search(line):
                break  # the issuer stands above the number
            if match := pattern.match(line):
                return match.group(1)
    return None


def project_name_in_title(title: str | None) -> str | None:
    """The project a notice is about: 关于<项目>(有关|相关)?事项的通知 -> <项目>."""
    if not title:
        return None
    match = re.match(r"^关于(.{2,40}?)(?:有关事项|相关事项|事项)?的(?:通知|通报|函|批复)", title)
    return match.group(1) if match else None


def _squeeze(line: str) -> str:
    """A header line without the spaces OCR puts between large, widely set characters."""
    return re.sub(r"(?<=[\u4e00-\u9fff〔〕\[\]()])\s+|\s+(?=[\u4e00-\u9fff〔〕\[\]()])", "", line.strip())
