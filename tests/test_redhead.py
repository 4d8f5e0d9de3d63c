"""Red-headed documents (红头文件): issuer, 文号 and the real title read from OCR text."""

from __future__ import annotations

from archive.records.metadata import doc_type_from_text, extract_fields
from archive.records.redhead import RedHeader, project_name_in_title, read_red_header

BODY = "（二）广西1.关于印发2023年工作要点的通知（2023年5月26日）桂政办发〔2023〕27号各市、县人民政府：\n现印发给你们。"


def test_red_header_gives_issuer_number_and_title() -> None:
    text = "柳州市公共资源交易中心文件\n南公管〔2021〕58号\n关于柳州市污水处理厂扩建工程有关事项的通知\n" + BODY
    title = "关于柳州市污水处理厂扩建工程有关事项的通知"
    assert read_red_header(text) == RedHeader("柳州市公共资源交易中心", "南公管〔2021〕58号", title)


def test_ocr_variants_of_the_header() -> None:
    # wide-set header characters read with spaces, the brackets as [] or missing, the title wrapped
    text = "钦 州 市 公 共 资 源 交 易 中 心 文 件\n南公管[2023]41号\n关于钦州市校舍维修工程有关事项的通\n知\n" + BODY
    header = read_red_header(text)
    assert header.issuer == "钦州市公共资源交易中心"
    assert header.doc_number == "南公管〔2023〕41号"
    assert header.title == "关于钦州市校舍维修工程有关事项的通知"
    assert read_red_header("南公管2021 7号\n关于某某工程的通知").doc_number == "南公管〔2021〕7号"


def test_plain_documents_have_no_header() -> None:
    assert read_red_header("中标（成交）通知书\n广西某某有限公司：\n贵单位于2022年3月1日参加…") == RedHeader()
    # a plain notice: its title, no issuer or number; a number cited in the body is not the document's
    header = read_red_header("关于北海市污水处理厂扩建工程有关事项的通知\n" + BODY)
    assert header == RedHeader(title="关于北海市污水处理厂扩建工程有关事项的通知")
    assert header.fields() == {"title": "关于北海市污水处理厂扩建工程有关事项的通知"}


def test_project_name_and_doc_type_come_from_the_real_title() -> None:
    assert project_name_in_title("关于防城港市河道整治工程有关事项的通知") == "防城港市河道整治工程"
    assert project_name_in_title("关于印发工作要点的意见") is None
    text = "防城港市公共资源交易中心文件\n南公管〔2023〕85号\n关于防城港市河道整治工程有关\n事项的通知\n" + BODY
    fields = extract_fields(text)
    assert fields["project_name"] == "防城港市河道整治工程"
    assert (fields["issuer"], fields["doc_number"]) == ("防城港市公共资源交易中心", "南公管〔2023〕85号")
    assert doc_type_from_text(text) == "notice"
