from archive.capture.textclean import clean_page_lines


def test_traditional_forms_on_a_simplified_page_become_simplified():
    lines = ["柳州市河道整治工程开标记录表", "开標时间：2022年3月1日", "1 廣西柳州宏达電力工程有限公司 1,234.00"]
    assert clean_page_lines(lines)[1:] == ["开标时间：2022年3月1日", "1 广西柳州宏达电力工程有限公司 1,234.00"]


def test_a_traditional_page_is_left_alone():
    lines = ["開標記錄表", "廣西電力工程有限公司於二零二二年參與投標"]
    assert clean_page_lines(lines) == lines


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
