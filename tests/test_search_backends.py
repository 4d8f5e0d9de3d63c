"""The same queries and filters against both index backends, on small indexes
built from page dicts in the export shape (no OCR)."""

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import whoosh.index
from click.testing import CliRunner

import index
import search_cli
from archive.errors import ArchiveError, QueryError
from archive.storage.store import Archive
from index import Filters, backend_module
from index.analysis import RUN_GAP, terms, token_string
from index.query import flat_text

BACKENDS = ["whoosh", "tantivy"]
HIT_KEYS = {"document", "source", "page", "project_code", "doc_type", "score", "snippet"}

AWARD = {
    "project_code": "GXZC2023-G1-001234-KWZB",
    "project_name": "城区排水管网改造工程",
    "transaction_type": "政府采购",
    "purchaser": "南宁市排水有限责任公司",
    "agency": "广西招标有限公司",
    "winner": "中建三局集团有限公司",
    "amount": 1234567.89,
    "award_date": "2023-05-10",
}
CONTRACT = {
    "project_code": "NNZC2024-G3-004567-RY",
    "project_name": "轨道交通单轨运行系统",
    "transaction_type": "工程建设招标投标",
    "purchaser": "柳州市轨道交通集团",
    "agency": None,
    "winner": "华鑫科技有限公司",
    "amount": 50000,
    "award_date": "2024-02-01",
}
UNKNOWN = dict.fromkeys(AWARD)


def _page(document, source, number, text, doc_type, metadata):
    return {
        "document": document,
        "source": source,
        "source_sha256": document * 4,
        "page": number,
        "text": text,
        "orientation": 0,
        "blank": False,
        "confidence": 0.98,
        "doc_type": doc_type,
        "metadata": dict(metadata),
    }


PAGES = [
    _page(
        "a1a1a1a1a1a1a1a1",
        "award-notice.pdf",
        1,
        "中标（成交）通知书\n项目编号：GXZC2023-G1-001234-KWZB\n广西壮族自治区公共资源交 易 中 心\n"
        "经评标委员会评审，确定中建三局集团有限公司为城区排水管网改造工程的中标人。",
        "award_notice",
        AWARD,
    ),
    _page(
        "a1a1a1a1a1a1a1a1",
        "award-notice.pdf",
        2,
        "本通知书一式三份，交易中心存档一份，档案编号 ＧＸＺＣ２０２３ 。",
        "award_notice",
        AWARD,
    ),
    _page(
        "b2b2b2b2b2b2b2b2",
        "contract.pdf",
        1,
        "采购合同 项目编号：NNZC2024-G3-004567-RY 单轨运行系统 供应商：华鑫\n评标委员会的评审意见附后。",
        "contract",
        CONTRACT,
    ),
    _page(
        "c3c3c3c3c3c3c3c3",
        "scan-0042.pdf",
        1,
        "关于鑫源公司废标的通知 交易中心 2023年",
        None,
        UNKNOWN,
    ),
]
AWARD_1 = ("award-notice.pdf", 1)
AWARD_2 = ("award-notice.pdf", 2)
CONTRACT_1 = ("contract.pdf", 1)
NOTICE_1 = ("scan-0042.pdf", 1)


@pytest.fixture(scope="module", params=BACKENDS)
def archive(request, tmp_path_factory):
    if request.param == "tantivy":
        pytest.importorskip("tantivy")
    arch = Archive.open(tmp_path_factory.mktemp(request.param), create=True)
    assert backend_module(request.param).add_pages(arch, PAGES) == len(PAGES)
    assert index.backend_name(arch) == request.param
    return arch


def _found(archive, query, **filters):
    return {(h["source"], h["page"]) for h in index.search(archive, query, Filters(**filters), 50)}


def test_token_string_is_the_analyzers_tokens():
    text = "交 易中心 GXZC2023-g1 ＡＢ 档 评标委员会"
    assert [token for token in token_string(text).split() if token != RUN_GAP] == terms(text)
    runs = ["交易 易中 中心 心", "gxzc2023", "g1", "ab", "档评 评标 标委 委员 员会 会"]
    assert token_string(text).split(f" {RUN_GAP} ") == runs


def test_stored_snippet_text_is_idempotent():
    for text in ("中 \n 心 AB\nCD  交 易", "ＧＸ，中\u3000心\nab", "a\n中"):
        assert flat_text(flat_text(text)) == flat_text(text)


def test_hits_have_exactly_the_contract_keys(archive):
    hits = index.search(archive, "交易中心")
    assert hits and all(set(hit) == HIT_KEYS for hit in hits)
    award = next(h for h in hits if h["source"] == "award-notice.pdf" and h["page"] == 1)
    assert award["document"] == "a1a1a1a1a1a1a1a1"
    assert award["project_code"] == "GXZC2023-G1-001234-KWZB"
    assert award["doc_type"] == "award_notice"
    assert isinstance(award["score"], float) and award["score"] > 0
    assert "【交易中心】" in award["snippet"]  # OCR's spaces between Han removed


def test_words_are_anded_and_spaces_between_han_ignored(archive):
    assert _found(archive, "交易中心") == {AWARD_1, AWARD_2, NOTICE_1}
    assert _found(archive, "交易中心 存档") == {AWARD_2}
    assert _found(archive, "评标委员会 评审") == {AWARD_1, CONTRACT_1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_phrases_match_exactly_across_run_ends(backend, tmp_path):
    """A phrase matches a page when its characters stand in a row in one run of the page's
    text (punctuation and letters end a run). tantivy checks only every other bigram of a
    run: pages full of run ends must not fool it."""
    if backend == "tantivy":
        pytest.importorskip("tantivy")
    rng = random.Random(7)
    texts = ["".join(rng.choice("甲乙丙丁甲乙，x") for _ in range(rng.randint(1, 14))) for _ in range(120)]
    pages = [_page(f"d{i:015d}", f"p{i}.pdf", 1, text, "contract", UNKNOWN) for i, text in enumerate(texts)]
    arch = Archive.open(tmp_path, create=True)
    backend_module(backend).add_pages(arch, pages)
    runs = [re.findall("[甲乙丙丁]+", text) for text in texts]
    for phrase in sorted({"".join(rng.choice("甲乙丙丁") for _ in range(rng.randint(2, 7))) for _ in range(60)}):
        want = {f"p{i}.pdf" for i, page_runs in enumerate(runs) if any(phrase in run for run in page_runs)}
        hits, total = index.search_page(arch, f'"{phrase}"', limit=200)
        assert {hit["source"] for hit in hits} == want, phrase
        assert total == len(want)


def test_tantivy_index_built_before_run_gaps_is_kept_as_it_was(tmp_path):
    """An index without the run-gaps marker is written without gaps and searched with every
    bigram, until `trade-archive reindex` rebuilds it."""
    tantivy_index = pytest.importorskip("index.tantivy_index")
    arch = Archive.open(tmp_path, create=True)
    tantivy_index.add_pages(arch, [])
    (arch.index_dir / tantivy_index.RUN_GAPS_MARKER).unlink()  # as an older version left it
    tantivy_index.add_pages(arch, PAGES)
    assert not tantivy_index.tantivy.Index.open(str(arch.index_dir)).searcher().doc_freq("text", RUN_GAP)
    assert _found(arch, "“评标委员会评审”") == {AWARD_1}
    assert _found(arch, "交易中心 存档") == {AWARD_2}
    assert not tantivy_index.has_run_gaps(arch.index_dir)


def test_phrase_needs_adjacent_characters(archive):
    assert _found(archive, "“评标委员会评审”") == {AWARD_1}
    assert _found(archive, '"评标委员会评审"') == {AWARD_1}
    assert _found(archive, '"评审 评标委员会"') == set()


def test_single_character_as_bigram_start_and_run_end(archive):
    # 鑫 ends the run 华鑫 on the contract page and starts 鑫源 on the notice.
    assert _found(archive, "鑫") == {CONTRACT_1, NOTICE_1}
    assert _found(archive, "档") == {AWARD_2}


def test_project_code_whole_segment_and_full_width(archive):
    assert AWARD_1 in _found(archive, "GXZC2023-G1-001234-KWZB")
    assert _found(archive, "001234") == {AWARD_1, AWARD_2}  # the code field holds every segment
    assert _found(archive, "gxzc2023") == {AWARD_1, AWARD_2}
    assert _found(archive, "ＧＸＺＣ２０２３") == {AWARD_1, AWARD_2}
    assert _found(archive, "004567") == {CONTRACT_1}
    assert _found(archive, "nnzc2024-g3-004567-ry") == {CONTRACT_1}


def test_not_excludes(archive):
    assert _found(archive, "交易中心 -档案") == {AWARD_1, NOTICE_1}
    assert _found(archive, "交易中心 -档案 -废标") == {AWARD_1}
    assert _found(archive, "交易中心 -001234") == {NOTICE_1}
    # the words staff type from other search boxes: NOT is a minus sign, AND a space
    assert _found(archive, "交易中心 NOT 档案 AND NOT 废标") == {AWARD_1}
    assert _found(archive, "交易中心 AND 档案") == _found(archive, "交易中心 档案")


def test_or_matches_either_and_binds_tighter_than_and(archive):
    # Page 2 of the award never says 排水管网: its project's name does.
    assert _found(archive, "排水管网 OR 单轨运行") == {AWARD_1, AWARD_2, CONTRACT_1}
    assert _found(archive, "排水管网 OR 单轨运行 OR 鑫源") == {AWARD_1, AWARD_2, CONTRACT_1, NOTICE_1}
    assert _found(archive, "评审 排水管网 OR 单轨运行") == {AWARD_1, CONTRACT_1}
    assert _found(archive, "中标人 排水管网 OR 单轨运行") == {AWARD_1}


def test_what_staff_call_the_document_type_finds_it(archive):
    assert AWARD_2 in _found(archive, "中标通知书")  # the page never says 中标通知书


def test_filter_transaction_and_document_type(archive):
    assert _found(archive, "评审", transaction_type="政府采购") == {AWARD_1}
    assert _found(archive, "评审", transaction_type="工程建设招标投标") == {CONTRACT_1}
    assert _found(archive, "评审", doc_type="contract") == {CONTRACT_1}
    assert _found(archive, "交易中心", doc_type="award") == {AWARD_1, AWARD_2}  # manifest alias


def test_filter_code_whole_or_segment(archive):
    assert _found(archive, "交易中心", code="GXZC2023-G1-001234-KWZB") == {AWARD_1, AWARD_2}
    assert _found(archive, "评审", code="004567") == {CONTRACT_1}
    assert _found(archive, "评审", code="ＮＮＺＣ２０２４") == {CONTRACT_1}
    assert _found(archive, "交易中心", code="999999") == set()


def test_filter_award_dates(archive):
    assert _found(archive, "评审", date_from="2024-01-01") == {CONTRACT_1}
    assert _found(archive, "评审", date_to="2023-12-31") == {AWARD_1}
    assert _found(archive, "评审", date_from="2023-05-10", date_to="2023-05-10") == {AWARD_1}
    assert _found(archive, "交易中心", date_from="2000-01-01") == {AWARD_1, AWARD_2}  # no date: out


def test_filter_amounts(archive):
    assert _found(archive, "评审", amount_min=100000) == {AWARD_1}
    assert _found(archive, "评审", amount_max=50000) == {CONTRACT_1}
    assert _found(archive, "评审", amount_min=50000, amount_max=50000.0) == {CONTRACT_1}
    assert _found(archive, "交易中心", amount_min=0) == {AWARD_1, AWARD_2}  # no amount: out


def test_filter_party_by_substring_of_any_party(archive):
    assert _found(archive, "评审", party="中建三局") == {AWARD_1}  # winner
    assert _found(archive, "评审", party="招标有限") == {AWARD_1}  # agency
    assert _found(archive, "评审", party="柳州市轨道") == {CONTRACT_1}  # purchaser
    assert _found(archive, "评审", party="鑫") == {CONTRACT_1}  # one character
    assert _found(archive, "评审", party="公司广西") == set()  # never across two names
    assert _found(archive, "交易中心", party="鑫源") == set()  # the text is not a party


def test_filters_combine(archive):
    assert _found(archive, "交易中心", doc_type="award_notice", code="001234", date_from="2023-01-01",
                  amount_max=2e6, party="中建", transaction_type="政府采购") == {AWARD_1, AWARD_2}  # fmt: skip
    assert _found(archive, "交易中心", doc_type="contract", code="001234") == set()


@pytest.mark.parametrize(
    "bad",
    ['"unclosed', "“半个", "OR 中标", "中标 OR", "中标 OR OR 成交", "-废标", "   ", "——", "中标 -", "中标 NOT"],
)
def test_malformed_queries_raise_clear_errors(archive, bad):
    if bad == "中标 -":  # a lone dash is a word with nothing searchable in it
        with pytest.raises(QueryError, match="nothing searchable"):
            index.search(archive, bad)
        return
    with pytest.raises(QueryError) as caught:
        index.search(archive, bad)
    assert str(caught.value) and "Traceback" not in str(caught.value)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"date_from": "2023/01/01"}, "YYYY-MM-DD"),
        ({"date_to": "2023-02-30"}, "YYYY-MM-DD"),
        ({"date_from": "2024-01-01", "date_to": "2023-01-01"}, "after"),
        ({"amount_min": 10, "amount_max": 5}, "more than"),
        ({"doc_type": "receipt"}, "award_notice"),
        ({"party": "——"}, "nothing searchable"),
        ({"code": "——"}, "nothing searchable"),
    ],
)
def test_malformed_filters_raise_clear_errors(archive, filters, message):
    with pytest.raises(QueryError, match=message):
        index.search(archive, "交易中心", Filters(**filters))


def test_both_backends_agree(tmp_path):
    pytest.importorskip("tantivy")
    archives = {}
    for name in ("whoosh", "tantivy"):
        archives[name] = Archive.open(tmp_path / name, create=True)
        backend_module(name).add_pages(archives[name], PAGES)
    for query in ("交易中心", "“评标委员会评审”", "鑫", "001234", "交易中心 -档案", "排水管网 OR 单轨运行", "通知书"):
        assert _found(archives["whoosh"], query) == _found(archives["tantivy"], query), query


# --- paging and ranking --------------------------------------------------------------------------------------------

# Another project's document that mentions the award's code, project and winner in its text,
# more often than the award's own pages do; its own code shares the segments gxzc2023, g1, kwzb.
MENTION = _page(
    "d4d4d4d4d4d4d4d4",
    "appeal.pdf",
    1,
    "关于GXZC2023-G1-001234-KWZB的质疑：GXZC2023-G1-001234-KWZB（城区排水管网改造工程）"
    + "排水管网，" * 4
    + "中建三局集团有限公司，"
    + "中建三局，" * 4,
    "notice",
    {**CONTRACT, "project_code": "GXZC2023-G1-009999-KWZB", "project_name": "质疑答复"},
)
APPEAL_1 = ("appeal.pdf", 1)


@pytest.fixture(scope="module", params=BACKENDS)
def ranked(request, tmp_path_factory):
    if request.param == "tantivy":
        pytest.importorskip("tantivy")
    arch = Archive.open(tmp_path_factory.mktemp("ranked-" + request.param), create=True)
    backend_module(request.param).add_pages(arch, [*PAGES, MENTION])
    return arch


def _ranked(archive, query):
    return [(h["source"], h["page"]) for h in index.search(archive, query, limit=50)]


def test_search_page_pages_through_all_hits_with_a_total(ranked):
    everything = _ranked(ranked, "交易中心 OR 评审 OR 排水管网")
    assert len(everything) == 5
    seen = []
    for offset in range(0, 6, 2):
        hits, total = index.search_page(ranked, "交易中心 OR 评审 OR 排水管网", limit=2, offset=offset)
        assert total == 5 and len(hits) == min(2, 5 - offset)
        assert all(set(hit) == HIT_KEYS for hit in hits)
        seen += [(h["source"], h["page"]) for h in hits]
    assert seen == everything  # the same order, no page twice, none left out
    assert index.search_page(ranked, "交易中心", limit=5, offset=50) == ([], 3)
    assert index.search_page(ranked, "交易中心", Filters(doc_type="award_notice"), limit=1)[1] == 2
    assert index.search_page(ranked, "没有这个词") == ([], 0)
    with pytest.raises(QueryError):
        index.search_page(ranked, '"unclosed')
    with pytest.raises(ValueError):
        index.search_page(ranked, "交易中心", limit=0)


def test_whole_project_code_ranks_its_documents_first(ranked):
    hits = _ranked(ranked, "GXZC2023-G1-001234-KWZB")
    # Page 2 of the award never mentions the code; the appeal names it twice in its text.
    assert set(hits[:2]) == {AWARD_1, AWARD_2} and hits[2:] == [APPEAL_1]
    assert _ranked(ranked, "gxzc2023-g1-001234-kwzb")[:2] == hits[:2]


def test_code_segment_ranks_its_documents_above_mentions(ranked):
    assert _ranked(ranked, "001234")[2:] == [APPEAL_1]


def test_project_name_and_parties_weigh_more_than_page_text(ranked):
    # Page 2 of the award has neither word in its text, only in its project name / winner;
    # the appeal has each in its text five times.
    assert _ranked(ranked, "排水管网") == [AWARD_1, AWARD_2, APPEAL_1]
    assert _ranked(ranked, "中建三局") == [AWARD_1, AWARD_2, APPEAL_1]


def test_both_backends_rank_alike(tmp_path):
    pytest.importorskip("tantivy")
    archives = {}
    for name in ("whoosh", "tantivy"):
        archives[name] = Archive.open(tmp_path / name, create=True)
        backend_module(name).add_pages(archives[name], [*PAGES, MENTION])
    for query in ("GXZC2023-G1-001234-KWZB", "排水管网", "中建三局", "华鑫"):
        assert _ranked(archives["whoosh"], query) == _ranked(archives["tantivy"], query), query


@pytest.mark.parametrize("name", BACKENDS)
def test_an_index_built_before_the_project_name_field_keeps_working(tmp_path, monkeypatch, name):
    if name == "tantivy":
        pytest.importorskip("tantivy")
    module = backend_module(name)
    arch = Archive.open(tmp_path / "a", create=True)
    with monkeypatch.context() as old:  # build the index as it was before the field existed
        if name == "whoosh":
            new_schema = module.schema
            old.setattr(module, "schema", lambda later_fields=False: new_schema(later_fields=False))
        else:
            old.setattr(module, "SCHEMA", module.schema(later_fields=False))
        module.add_pages(arch, PAGES[:2])
    assert _found(arch, "排水管网") == {AWARD_1}  # the old pages have no project name to match
    assert module.add_pages(arch, PAGES[2:]) == 2  # new pages go into the old index
    assert _found(arch, "评审") == {AWARD_1, CONTRACT_1}
    # 交通单轨 is only in the contract's project name: whoosh adds the field to an old index,
    # tantivy cannot (its pages gain it on reindex).
    assert _found(arch, "交通单轨") == ({CONTRACT_1} if name == "whoosh" else set())
    assert index.rebuild(arch, backend=name) == 0  # (a hand-made archive: no bags to read back)
    module.add_pages(arch, PAGES)
    assert _found(arch, "排水管网") == {AWARD_1, AWARD_2} and _found(arch, "交通单轨") == {CONTRACT_1}


# --- the search CLI: grouped by document, paged, highlighted -------------------------------------------------------


@pytest.fixture
def cli_search(ranked, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text("")
    monkeypatch.setenv("TRADE_ARCHIVE_CONFIG", str(config))

    def run(*args, tty=False):
        monkeypatch.setattr(search_cli, "_is_tty", lambda: tty)
        result = CliRunner().invoke(search_cli.main, [*args, "--archive", str(ranked.root)], color=tty)
        assert result.exit_code == 0, result.output
        return result

    return run


def test_cli_groups_page_hits_by_document(cli_search):
    lines = cli_search("交易中心").stdout.splitlines()
    assert lines[-1] == "3 page(s)"
    heads = [i for i, line in enumerate(lines[:-1]) if not line.startswith(" ")]
    assert len(heads) == 2  # two documents, each named once
    award = next(i for i in heads if lines[i].startswith("award-notice.pdf  "))
    assert lines[award].startswith("award-notice.pdf  p.1-2  GXZC2023-G1-001234-KWZB  award_notice  best score ")
    notice = next(i for i in heads if i != award)
    assert lines[notice].startswith("scan-0042.pdf  p.1  (unfiled)  (type unknown)  best score ")
    pages = lines[award + 1 : award + 3]  # the award's pages under it, each with its snippet
    assert sorted(line.split()[0] for line in pages) == ["p.1", "p.2"]
    assert all("【交易中心】" in line for line in pages)  # not a terminal: marks stay as 【】
    best = max(float(line.rsplit(" ", 1)[1]) for line in (lines[award], lines[notice]))
    assert lines[heads[0]].endswith(f"best score {best}")  # the best document first


def test_cli_pages_through_hits_and_says_what_is_left(cli_search):
    ranking = [(h["source"], h["page"]) for h in json.loads(cli_search("交易中心", "--json").stdout)]
    assert len(ranking) == 3
    first = cli_search("交易中心", "--limit", "2").stdout
    assert first.splitlines()[-1] == "showing 1-2 of 3 pages; next: --page 2"
    last = cli_search("交易中心", "--limit", "2", "--page", "2").stdout.splitlines()
    assert last[-1] == "showing 3-3 of 3 pages"
    assert last[0].startswith(ranking[2][0] + "  p." + str(ranking[2][1]) + "  ")
    beyond = cli_search("交易中心", "--limit", "2", "--page", "5").stdout
    assert "no hits on result page 5: 3 page(s) match, result pages 1-2 with --limit 2" in beyond
    assert cli_search("没有这个词").stdout.strip() == "no matching pages"


def test_cli_json_stays_a_flat_array_of_page_hits(cli_search):
    everything = json.loads(cli_search("交易中心", "--json").stdout)
    assert all(set(hit) == HIT_KEYS for hit in everything) and "【交易中心】" in everything[0]["snippet"]
    first = cli_search("交易中心", "--json", "--limit", "2")
    second = cli_search("交易中心", "--json", "--limit", "2", "--page", "2")
    assert json.loads(first.stdout) + json.loads(second.stdout) == everything
    assert "next: --page 2" in first.stderr and not second.stderr  # the note never enters the JSON


def test_cli_hints_at_tantivy_after_a_slow_whoosh_search(cli_search, ranked, monkeypatch):
    monkeypatch.setattr(search_cli, "SLOW_SEARCH_SECONDS", 0.0)  # every search is "slow"
    result = cli_search("交易中心", "--json")
    assert json.loads(result.stdout)  # the hint stays out of the JSON
    assert ("reindex --backend tantivy" in result.stderr) == (index.backend_name(ranked) == "whoosh")


def test_cli_highlights_matches_on_a_terminal(cli_search):
    output = cli_search("交易中心", tty=True).stdout
    assert "【" not in output and "\x1b[" in output
    assert search_cli.highlight("…【交易中心】与【页码】", ["交易中心"], styled=True).endswith("与【页码】")
    assert search_cli.highlight("【廣西】", ["广西"], styled=False) == "【廣西】"
    assert "\x1b[" in search_cli.highlight("【廣西】", ["广西"], styled=True)


# --- the facade: the archive decides the backend -----------------------------------------------------------------


def test_new_index_takes_the_env_backend_then_keeps_it(tmp_path, monkeypatch):
    pytest.importorskip("tantivy")
    arch = Archive.open(tmp_path / "a", create=True)
    monkeypatch.delenv(index.ENV_BACKEND, raising=False)
    assert index.backend_name(arch) == "whoosh"  # the default
    monkeypatch.setenv(index.ENV_BACKEND, "tantivy")
    assert index.update(arch) == 0
    assert (arch.index_dir / "backend").read_text().strip() == "tantivy"
    monkeypatch.setenv(index.ENV_BACKEND, "whoosh")
    assert index.backend_name(arch) == "tantivy"  # an existing index keeps its backend
    assert index.search(arch, "交易中心") == []
    index.rebuild(arch)  # a plain rebuild too (a config file exports the variable)
    assert index.backend_name(arch) == "tantivy"


def test_rebuild_switches_backend_and_refuses_mixing(tmp_path, monkeypatch):
    pytest.importorskip("tantivy")
    monkeypatch.delenv(index.ENV_BACKEND, raising=False)
    arch = Archive.open(tmp_path / "a", create=True)
    assert index.rebuild(arch) == 0
    assert index.backend_name(arch) == "whoosh"
    assert index.rebuild(arch, backend="tantivy") == 0
    assert index.backend_name(arch) == "tantivy"
    assert not (arch.root / "index.new").exists() and not (arch.root / "index.old").exists()
    with pytest.raises(ArchiveError, match="tantivy index"):
        backend_module("whoosh").add_pages(arch, [])  # a whoosh writer must not touch a tantivy index
    monkeypatch.setenv(index.ENV_BACKEND, "whoosh")
    index.rebuild(arch)  # the env var (a config file's `index`) names a new archive's backend only
    assert index.backend_name(arch) == "tantivy"
    index.rebuild(arch, backend="whoosh")  # reindex --backend switches
    assert index.backend_name(arch) == "whoosh"


def test_unknown_backend_names_are_refused(tmp_path, monkeypatch):
    arch = Archive.open(tmp_path / "a", create=True)
    monkeypatch.setenv(index.ENV_BACKEND, "lucene")
    with pytest.raises(ArchiveError, match="whoosh, tantivy"):
        index.backend_name(arch)
    with pytest.raises(ArchiveError, match="whoosh, tantivy"):
        index.rebuild(arch, backend="elastic")


# --- update and rebuild read the archive (a hand-made one: bags without OCR) ---------------------------------------


def _file_document(archive, pages):
    """Lay ``pages`` (one document) out as archive.records.export.iter_pages reads them back."""
    first = pages[0]
    code = first["metadata"]["project_code"]
    package = archive.root / ("transactions/" + code if code else "unfiled") / first["document"]
    (package / "data" / "ocr").mkdir(parents=True)
    (package / "bagit.txt").write_text("BagIt-Version: 0.97\n")
    document = {key: first[key] for key in ("document", "source", "source_sha256", "doc_type", "metadata")}
    (package / "data" / "document.json").write_text(json.dumps({**document, "pages": len(pages)}, ensure_ascii=False))
    for page in pages:
        ocr = {key: page[key] for key in ("text", "orientation", "blank", "confidence")}
        (package / "data" / "ocr" / f"{page['page']:04d}.json").write_text(json.dumps(ocr, ensure_ascii=False))


@pytest.mark.parametrize("backend", BACKENDS)
def test_totals_count_every_match_over_several_segments(backend, tmp_path):
    """The total is every page that matches, whatever kind of query, however many segments
    the index has (whoosh undercounted OR and NOT queries when asked to score without
    block skipping: 29 of 470 pages)."""
    if backend == "tantivy":
        pytest.importorskip("tantivy")
    rng = random.Random(11)
    words = ["交易中心", "中标", "废标", "鑫源", "成交", "排水管网", "单轨运行", "合同"]
    texts = ["，".join(rng.sample(words, 3)) for _ in range(400)]
    arch = Archive.open(tmp_path, create=True)
    for start in range(0, 400, 100):  # four commits: four segments
        pages = [_page(f"d{i:015d}", f"p{i}.pdf", 1, texts[i], "other", UNKNOWN) for i in range(start, start + 100)]
        backend_module(backend).add_pages(arch, pages)
    for raw, want in (
        ("排水管网 OR 单轨运行", lambda t: "排水管网" in t or "单轨运行" in t),
        ("中标 -废标", lambda t: "中标" in t and "废标" not in t),
        ("合同 OR 鑫", lambda t: "合同" in t or "鑫" in t),
        ("交易中心", lambda t: "交易中心" in t),
    ):
        hits, total = index.search_page(arch, raw, limit=1000)
        assert total == len(hits) == sum(map(want, texts)), raw


def test_tantivy_parts_searched_at_once_rank_as_one_query(tmp_path, monkeypatch):
    """The pages are searched in parts on threads (tantivy_index.PARTS) and merged: the
    same hits in the same order, the same scores and totals as one query, on every result page."""
    tantivy = pytest.importorskip("tantivy")
    from index import tantivy_index

    monkeypatch.setattr(tantivy_index, "PART_RUN", 16)  # runs of 16 pages, so that both parts hold some here
    rng = random.Random(5)
    words = ["交易中心", "中标人", "废标", "鑫源", "成交", "排水管网", "合同", "GXZC2023"]
    arch = Archive.open(tmp_path, create=True)
    for start in range(0, 300, 100):  # three commits: three segments
        pages = [_page(f"d{i:015d}", f"p{i}.pdf", 1, "，".join(rng.choices(words, k=rng.randint(1, 6))), "other",
                       UNKNOWN) for i in range(start, start + 100)]  # fmt: skip
        tantivy_index.add_pages(arch, pages)
    searcher = tantivy.Index.open(str(arch.index_dir)).searcher()
    part = tantivy.Query.term_query(tantivy_index.SCHEMA, "part", "0")
    assert searcher.search(part, 1, count=True).count == 9 * 16 + 12  # pages 0-15, 32-47, ..., 288-299

    def ranked(raw, limit, offset, parted):
        hits, total = tantivy_index.ranked_hits(
            searcher, lambda within: tantivy_index.build_query(raw, within=within), limit, offset, parted
        )
        return [(score, a.segment_ord, a.doc) for score, a in hits], total

    for raw in ("中标人", "交易中心 -废标", "鑫 OR 合同", "“排水管网，合同”", "GXZC2023"):
        for limit, offset in ((10, 0), (7, 21), (300, 0)):
            assert ranked(raw, limit, offset, True) == ranked(raw, limit, offset, False), (raw, offset)


def test_whoosh_reindex_in_its_own_process_writes_in_parallel(tmp_path, monkeypatch):
    """`trade-archive reindex` runs single-threaded, so whoosh splits the pages over two
    writer processes (in pytest, with Prefect's threads about, it never does)."""
    monkeypatch.setenv(index.ENV_BACKEND, "whoosh")
    arch = Archive.open(tmp_path / "archive", create=True)
    pages = [{**page, "document": f"{n // 10:016x}", "page": n % 10 + 1} for n, page in enumerate(PAGES * 60)]
    for start in range(0, len(pages), 10):  # 24 documents of 10 pages
        _file_document(arch, pages[start : start + 10])
    command = [sys.executable, "-c", "from index import whoosh_index; print(whoosh_index._parallel_writer())"]
    assert subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip() in (
        "{'procs': 2, 'multisegment': True}",
        "{}",  # a one-core machine
    )
    # with its progress bar, which must not start a thread (whoosh forks its writers)
    command = [sys.executable, "-m", "flows.cli", "reindex", "--archive", str(arch.root), "--progress"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert f"{len(pages)} pages" in result.stdout and f"{len(pages)}/{len(pages)} pages" in result.stderr
    segments = len(whoosh.index.open_dir(str(arch.index_dir))._segments())
    assert segments == (2 if (os.cpu_count() or 1) > 1 else 1)  # one a writer process
    assert index.search_page(arch, "交易中心", limit=1)[1] == 3 * 60
    assert index.search_page(arch, "“评标委员会评审”", limit=1)[1] == 60


@pytest.mark.parametrize("name", ["whoosh", "tantivy"])
def test_update_adds_only_missing_documents_and_rebuild_swaps(tmp_path, monkeypatch, name):
    if name == "tantivy":
        pytest.importorskip("tantivy")
    monkeypatch.setenv(index.ENV_BACKEND, name)
    arch = Archive.open(tmp_path / "archive", create=True)
    _file_document(arch, PAGES[:2])
    _file_document(arch, PAGES[2:3])
    assert index.update(arch) == 3
    assert index.update(arch) == 0  # nothing new
    _file_document(arch, PAGES[3:])
    assert index.update(arch) == 1
    assert _found(arch, "交易中心") == {AWARD_1, AWARD_2, NOTICE_1}
    assert _found(arch, "评审", party="中建三局", amount_min=1e6, date_to="2023-12-31") == {AWARD_1}
    monkeypatch.delenv(index.ENV_BACKEND)
    assert index.rebuild(arch) == 4
    assert index.backend_name(arch) == name
    assert _found(arch, "鑫") == {CONTRACT_1, NOTICE_1}


def test_cli_takes_minus_word_anywhere_as_an_exclusion_and_refuses_a_mistyped_option(cli_search, ranked):
    """The README's own example: -废标 is a word to exclude, not an option (click read it as one)."""
    both = {(h["source"], h["page"]) for h in json.loads(cli_search("交易中心", "--json").stdout)}
    excluded = json.loads(cli_search("交易中心", "-排水管网", "--json").stdout)
    assert excluded and {(h["source"], h["page"]) for h in excluded} < both
    assert json.loads(cli_search("--json", "交易中心", "-排水管网").stdout) == excluded  # wherever it stands
    mistyped = CliRunner().invoke(search_cli.main, ["交易中心", "--limt", "3", "--archive", str(ranked.root)])
    assert mistyped.exit_code == 2 and "no such option: --limt" in mistyped.output


def test_cli_refuses_an_overlong_query_with_exit_6(ranked):
    words = " ".join(["交易中心"] * 1000)
    result = CliRunner().invoke(search_cli.main, [words, "--archive", str(ranked.root)])
    assert result.exit_code == 6 and "at most 200" in result.output, result.output


def test_a_removed_index_is_said_not_taken_for_no_hits(ingested_archive, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    shutil.rmtree(root / "index")
    result = CliRunner().invoke(search_cli.main, ["交易中心", "--archive", str(root)])
    assert result.exit_code == 5 and "no search index" in result.output and "reindex" in result.output
