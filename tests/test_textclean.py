from archive.capture.textclean import clean_page_lines
from archive.records.metadata import merge


def test_the_script_is_kept_as_recognised_and_metadata_reads_either():
    """Stored text is what is on the page (a receipt in traditional characters mostly uses
    characters common to both scripts: no page-level guess rewrites it); values are read
    through a simplified copy, and search folds both forms."""
    lines = ["中標通知書", "項目編號：GXZC2023-G1-001234-KWZB", "中標金額：¥1,234.00元"]
    assert clean_page_lines(lines) == lines
    assert merge(None, "\n".join(lines)).values["project_code"] == "GXZC2023-G1-001234-KWZB"
    assert merge(None, "\n".join(lines)).doc_type == "award_notice"


def test_control_and_private_use_characters_go():
    assert clean_page_lines(["dan\x02gerous\ue687 是\u200b的\tx"]) == ["dangerous 是的 x"]


def test_fullwidth_letters_and_digits_fold_but_cjk_punctuation_stays():
    assert clean_page_lines(["项目编号：ＧＸＺＣ２０２３（重）"]) == ["项目编号：GXZC2023（重）"]


def test_spaces_between_chinese_characters_go():
    assert clean_page_lines(["中 标 通 知 书 No. 12"]) == ["中标通知书 No. 12"]
