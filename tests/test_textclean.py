from archive.capture.textclean import clean_page_lines
from archive.records.metadata import merge


def test_stray_traditional_forms_on_a_plainly_simplified_page_become_simplified():
    lines = ["柳州市河道整治工程开标记录表", "项目编号：LZZC2022-G1-000123-KWZB 采购单位：柳州市水利局",
             "开標时间：2022年3月1日", "1 廣西柳州宏达電力工程有限公司 1,234.00"]  # fmt: skip
    assert clean_page_lines(lines)[2:] == ["开标时间：2022年3月1日", "1 广西柳州宏达电力工程有限公司 1,234.00"]


def test_a_page_mostly_of_characters_common_to_both_scripts_keeps_its_own():
    """A traditional receipt shows few traditional-only characters and no simplified-only
    one: it is not rewritten (the old rule, 'under 30% traditional-only', rewrote it)."""
    receipt = ["收據", "機號：A123 日期：2023年5月1日", "品名：數量單價", "合計：壹佰元整"]
    assert clean_page_lines(receipt) == receipt
    mixed = ["開標記錄表", "廣西電力工程有限公司於二零二二年參與投标"]  # one simplified slip (标)
    assert clean_page_lines(mixed) == mixed


def test_the_script_is_kept_and_metadata_reads_either():
    """Values are read through a simplified copy; search folds both forms."""
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


def test_a_yuan_sign_read_as_a_space_before_an_amount_comes_back() -> None:
    lines = ["中标（成交）金额为 3,545,000.00元（大写", "合同总价款为 34,569,951.03元", "共 3 页", "金额为 1200元"]
    assert clean_page_lines(lines) == [
        "中标（成交）金额为¥3,545,000.00元（大写",
        "合同总价款为¥34,569,951.03元",
        "共 3 页",  # a number that is no amount keeps its space
        "金额为 1200元",  # nor one without thousands separators: too little to go on
    ]
