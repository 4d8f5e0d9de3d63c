from archive.records.manifest import read_manifest
from archive.records.metadata import doc_type_from_text, extract_fields, merge

AWARD_TEXT = """中标（成交）通知书
南宁新宇建设工程有限公司：
南宁市公共资源交易中心的南宁市排水管网改造工程（项目编号：NNZC2023-G1-0
04567-KWZB）于2023年5月12日经评标委员会评审，中标金额为¥1,234,567.89元。
采购人：南宁市住房和城乡建设局
代理机构：广西正和招标代理有限公司
2023年5月12日"""


def test_fields_read_from_award_notice_text():
    found = extract_fields(AWARD_TEXT)
    assert found["project_code"] == "NNZC2023-G1-004567-KWZB"  # wrapped across two lines
    assert found["amount"] == 1234567.89
    assert found["award_date"] == "2023-05-12"
    assert found["purchaser"] == "南宁市住房和城乡建设局"
    assert found["agency"] == "广西正和招标代理有限公司"
    assert found["winner"] == "南宁新宇建设工程有限公司"


def test_doc_type_from_title():
    assert doc_type_from_text(AWARD_TEXT) == "award_notice"
    assert doc_type_from_text("柳州市河道整治工程开标记录表\n项目编号：X") == "bid_opening"
    assert doc_type_from_text("政府采购合同\n合同编号：X") == "contract"


def test_manifest_wins_and_disagreement_is_recorded():
    row = {"project_code": "NNZC2023-G1-004567-KWZB", "amount": "1,234,000.00", "doc_type": "award"}
    meta = merge(row, AWARD_TEXT)
    assert meta.doc_type == "award_notice"
    assert meta.values["amount"] == 1234000.0 and meta.provenance["amount"] == "manifest"
    assert meta.extracted["amount"] == 1234567.89
    assert "amount" in meta.conflicts
    assert meta.provenance["winner"] == "text"
    assert meta.values["project_name"] == "南宁市排水管网改造工程" and meta.provenance["project_name"] == "text"
    assert "manifest_disagrees:amount" in meta.qc_flags


def test_manifest_in_gb18030_with_folder_paths(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("file,project_code,project_name\nscans/a.pdf,GX-1,南宁项目\n".encode("gb18030"))
    assert read_manifest(path).get("a.pdf")["project_name"] == "南宁项目"


def test_manifest_in_utf8_with_bom(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("\ufefffile,project_code\na.pdf,GX-1\n".encode())
    assert read_manifest(path).rows["a.pdf"]["project_code"] == "GX-1"
