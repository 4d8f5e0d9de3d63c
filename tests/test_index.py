import random
import unicodedata

import pytest

from archive.errors import QueryError
from archive.han import join_han
from index.analysis import (
    RUN_GAP,
    CjkTokenizer,
    _t2s_table,
    code_terms,
    flatten,
    is_han,
    nfkc,
    normalise,
    terms,
    token_string,
)
from index.query import build_query, flat_text
from index.whoosh_index import Filters, search, snippet


def test_bigrams_with_true_positions_and_alnum_runs():
    tokens = [(t.text, t.pos) for t in CjkTokenizer()("交易 中心 GXZC2023-g1", positions=True)]
    assert tokens == [("交易", 0), ("易中", 1), ("中心", 2), ("心", 3), ("gxzc2023", 4), ("g1", 5)]


def test_fullwidth_folds_to_halfwidth():
    assert terms("ＧＸＺＣ２０２３") == ["gxzc2023"]


def test_code_terms_cover_whole_code_and_segments():
    assert code_terms("GXZC2023-G1-001234-KWZB") == ["gxzc2023-g1-001234-kwzb", "gxzc2023", "g1", "001234", "kwzb"]


@pytest.mark.parametrize("bad", ['"unclosed', "OR 中标", "-废标", "   ", "“半个"])
def test_malformed_queries_raise_clear_errors(bad):
    with pytest.raises(QueryError):
        build_query(bad)


def test_snippet_marks_match_in_original_case():
    assert "【GXZC2023】" in snippet("项目编号：GXZC2023-G1", ["gxzc2023"])


def test_traditional_characters_fold_to_simplified_like_case():
    # The recogniser sometimes emits 廣西, 電力; staff type 广西, 电力.
    assert terms("廣西柳州宏达電力") == terms("广西柳州宏达电力")
    assert terms("乾隆") == ["乾隆", "隆"]  # also a simplified character in its own right: kept
    assert snippet("2 廣西柳州宏达電力工程有限公司", ["宏达电力"]) == "2 廣西柳州【宏达電力】工程有限公司"


def _sources(archive, query, **filters):
    return {(h["source"], h["page"]) for h in search(archive, query, Filters(**filters))}


def test_search_finds_substrings_phrases_and_codes(ingested_archive):
    assert _sources(ingested_archive, "交易中心") == {("award-notice.pdf", 1), ("notice-upside-down.pdf", 1)}
    assert _sources(ingested_archive, "“评标委员会评审”") == {("award-notice.pdf", 1)}
    assert ("award-notice.pdf", 1) in _sources(ingested_archive, "NNZC2023-G1-004567-KWZB")
    assert ("award-notice.pdf", 1) in _sources(ingested_archive, "004567")
    assert ("notice-upside-down.pdf", 1) in _sources(ingested_archive, "gxzc2023")
    assert _sources(ingested_archive, "档") == {("notice-upside-down.pdf", 1)}


def test_search_operators_and_filters(ingested_archive):
    assert _sources(ingested_archive, "交易中心 -档案") == {("award-notice.pdf", 1)}
    # Page 2 of the award (blank) is found by its project's name, 南宁市排水管网改造工程.
    assert _sources(ingested_archive, "排水管网 OR 单轨运行") == {
        ("award-notice.pdf", 1),
        ("award-notice.pdf", 2),
        ("notice-upside-down.pdf", 1),
    }
    assert _sources(ingested_archive, "交易中心", doc_type="award_notice") == {("award-notice.pdf", 1)}
    # Both codes (GXZC…, NNZC…) are government procurement, read from the code's form.
    assert len(_sources(ingested_archive, "交易中心", transaction_type="政府采购")) == 2
    assert _sources(ingested_archive, "交易中心", code="nnzc2023") == {("award-notice.pdf", 1)}


def test_common_name_of_the_document_type_finds_it(ingested_archive):
    # The fixture's title is 中标（成交）通知书; staff type 中标通知书.
    assert ("award-notice.pdf", 1) in _sources(ingested_archive, "中标通知书")


def _slow_normalise(text: str) -> str:
    """normalise as first written, without the fast paths: NFKC, spaces between Han removed,
    lower case, every character looked up for traditional -> simplified."""
    flat = join_han(unicodedata.normalize("NFKC", text))
    lower = flat.lower()
    if len(lower) != len(flat):
        lower = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in flat)
    return lower.translate(_t2s_table())


def _plain_token_string(text: str) -> str:
    """``terms`` with RUN_GAP after the last token of each run (a unigram or alphanumeric
    token: a bigram never ends a run), but the last."""
    words = []
    for word in terms(text):
        words.append(word)
        if not (len(word) == 2 and is_han(word[0])):
            words.append(RUN_GAP)
    return " ".join(words[:-1])


def test_fast_analysis_paths_agree_with_the_plain_definitions():
    # full-width and CJK punctuation, half-width katakana and voicing marks, combining accents,
    # traditional and simplified Han, compatibility ideographs, Latin with odd lower cases, spaces
    alphabet = "中國電力交易档鑫乾于𠁞𠀾，：（）。、「」\u3000ＡＢ１２ｶﾞﾟ\u0301\u0308\uf900\ufa10İΣAbc09 \n\t-·"
    rng = random.Random(20240601)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert nfkc(text) == unicodedata.normalize("NFKC", text)
        assert normalise(text) == _slow_normalise(text)
        assert token_string(text) == _plain_token_string(text)
        assert flatten(text).replace("\n", " ") == flat_text(text)
