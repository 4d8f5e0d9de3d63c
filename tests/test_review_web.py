"""The review page (`trade-archive review serve`) in a real browser: headless
Chromium goes flag list -> flag -> corrected text -> resolved; search then finds the
correction, the original OCR is kept, verify passes. Without the token: 403.

REVIEW_SCREENSHOTS=docs writes the list and a flag page as PNGs there (the README's)."""

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner

import search_cli
from archive.storage.store import Archive, read_json
from flows.cli import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CORRECTED = "中标（成交）通知书\n经档案员核对的更正文本"


@pytest.fixture
def review_archive(ingested_archive, tmp_path) -> Archive:
    """A copy of the ingested fixture batch: the 150 dpi scans give an image-quality
    flag on every page (3), the notice's missing manifest row a completeness flag."""
    root = tmp_path / "archive"
    shutil.copytree(ingested_archive.root, root)
    return Archive(root)


@pytest.fixture
def server(review_archive, monkeypatch):
    """The review app on a free port of 127.0.0.1, in a thread; (archive, printed URL)."""
    import uvicorn

    import archive.acceptance.review
    from flows.web import bind, create_app

    # The fixture pages read well: the threshold is set at the award notice's median line, so half are marked.
    ocr = next(review_archive.root.glob("transactions/NNZC2023-G1-004567-KWZB/*/data/ocr/0001.json"))
    confidences = sorted(line["confidence"] for line in read_json(ocr)["lines"])
    monkeypatch.setattr(
        archive.acceptance.review, "low_confidence_of", lambda _record: confidences[len(confidences) // 2]
    )
    app = create_app(review_archive)
    sock = bind(0)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.05)
    yield review_archive, f"http://127.0.0.1:{sock.getsockname()[1]}/?token={app.state.review.token}"
    uv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromium-driver are not installed (`make system-deps` installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1400,1000"]  # fmt: skip
    for flag in [*flags, f"--user-data-dir={tmp_path / 'chromium'}"]:  # a fresh profile: nothing from another run
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def _done(driver, starts: str) -> str:
    """The page's confirmation once it starts with ``starts`` (the new page may still be loading)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):  # noqa: ANN001, ANN202
        done = d.find_elements("id", "done")
        return done and done[0].text.startswith(starts) and done[0].text

    return WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException]).until(shown)


def _moved(driver, away_from: str) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 30).until(lambda d: d.current_url != away_from and d.current_url)


def _screenshot(driver, name: str) -> None:
    if folder := os.environ.get("REVIEW_SCREENSHOTS"):
        from PIL import Image

        target = Path(folder) / name
        driver.save_screenshot(str(target))
        with Image.open(target) as shot:  # 256 colours: a fifth of the size, as sharp
            shot.convert("RGB").quantize(256).save(target, optimize=True)


def test_an_archivist_corrects_and_resolves_a_flag_in_the_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    archive, url = server
    browser.get(url)
    assert "token" not in browser.current_url  # the token became a cookie
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading == "4 open flags"
    assert browser.find_element(By.CLASS_NAME, "counts").text == "Check: all (4) completeness (1) image quality (3)"
    _screenshot(browser, "review-list.png")

    listed = browser.current_url
    Select(browser.find_element(By.NAME, "doc_type")).select_by_visible_text("notice")
    _moved(browser, listed)
    files = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#flags tr td:nth-child(4)")]
    assert files == ["notice-upside-down.pdf"]  # the notice's page: the award notice's two are filtered out
    browser.get(listed)
    browser.find_element(By.CSS_SELECTOR, "a[data-check='image quality']").click()
    _moved(browser, listed)
    rows = browser.find_elements(By.CSS_SELECTOR, "#flags a.flag")
    assert rows and all("dpi" in r.find_element(By.XPATH, "../..").text for r in rows)
    award = next(archive.root.glob("transactions/NNZC2023-G1-004567-KWZB/*/data/document.json")).parent.parent.name
    row = next(r for r in rows if "award-notice.pdf" in r.find_element(By.XPATH, "../..").text)
    row.click()

    # The flag page: the evidence, the page image loaded, the OCR text with its low-confidence lines marked.
    assert "150 dpi is under the 200 dpi minimum" in browser.find_element(By.ID, "evidence").text
    loaded = "var p = document.getElementById('page'); return p.complete && p.naturalWidth"
    assert WebDriverWait(browser, 30).until(lambda d: d.execute_script(loaded)) > 1000  # the master image, full size
    text = browser.find_element(By.ID, "text")
    assert "南宁市公共资源交易中心" in text.get_attribute("value")
    lines = len(text.get_attribute("value").splitlines())
    assert 0 < browser.execute_script("return document.querySelectorAll('#backdrop mark').length") < lines
    assert browser.find_element(By.ID, "m-project_code").get_attribute("value") == "NNZC2023-G1-004567-KWZB"
    _screenshot(browser, "review-flag.png")
    flag_page = browser.current_url
    ocr = next(archive.root.glob(f"transactions/*/{award}/data/ocr/0001.json"))
    original = ocr.read_bytes()

    text.clear()
    text.send_keys(CORRECTED)
    browser.find_element(By.ID, "text-note").send_keys("seal covered the date")
    browser.find_element(By.ID, "save-text").click()
    _done(browser, "text saved as a new version")
    assert browser.find_element(By.ID, "text").get_attribute("value") == CORRECTED

    winner = browser.find_element(By.ID, "m-winner")
    winner.clear()
    winner.send_keys("广西柳州中联电力工程有限公司")
    browser.find_element(By.ID, "metadata-note").send_keys("per contract")
    browser.find_element(By.ID, "save-metadata").click()
    assert _done(browser, "corrected") == "corrected winner"

    # r: the resolve note; Enter sends it and the next flag opens.
    browser.find_element(By.TAG_NAME, "body").send_keys("r")
    browser.switch_to.active_element.send_keys("checked against the paper", Keys.ENTER)
    resolved = _done(browser, "resolved ").split()[-1]
    assert resolved in flag_page and resolved not in urlparse(browser.current_url).path  # the next flag is open
    # k goes to the previous flag and j comes back, or the other way round at the list's start
    after = browser.current_url
    there, back = ("k", "j") if browser.execute_script("return !!document.getElementById('previous')") else ("j", "k")
    browser.find_element(By.TAG_NAME, "body").send_keys(there)
    other = _moved(browser, after)
    assert resolved not in urlparse(other).path  # the resolved flag is no longer listed
    browser.find_element(By.TAG_NAME, "body").send_keys(back)
    assert urlparse(_moved(browser, other)).path == urlparse(after).path

    runner = CliRunner()
    hits = json.loads(runner.invoke(search_cli.main, ["档案员核对", "--json", "--archive", str(archive.root)]).output)
    assert [(h["document"], h["page"]) for h in hits] == [(award, 1)]
    assert ocr.read_bytes() == original  # the original OCR is kept
    history = archive.root / "review" / "corrections" / award
    assert read_json(history / "page-0001.v1.json")["text"] == CORRECTED
    assert read_json(history / "metadata.v1.json")["fields"] == {"winner": "广西柳州中联电力工程有限公司"}
    resolutions = (archive.root / "review" / "resolutions.jsonl").read_text(encoding="utf-8")
    assert resolved in resolutions and "checked against the paper" in resolutions
    events = [json.loads(line) for line in archive.events_path.read_text(encoding="utf-8").splitlines()]
    logged = [e for e in events if e["type"] in ("metadata modification", "flag resolution")]
    assert len(logged) == 3 and all(e["agent"] for e in logged)  # two corrections, one resolution, with the user
    assert runner.invoke(cli, ["verify", "--archive", str(archive.root)]).exit_code == 0


def test_without_the_token_every_request_is_refused(server):
    archive, url = server
    base, token = url.split("/?token=")
    for address in (base + "/", base + "/?token=wrong", base + "/?token=%E4%B8%AD", base + "/flag/x/page.png",
                    base + "/flag/x/resolve"):  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(address, data=b"note=x" if address.endswith("resolve") else None)
        assert refused.value.code == 403, address
    cookie = {"Cookie": f"trade-archive-review-{base.rsplit(':', 1)[1]}={token}"}
    listed = urllib.request.urlopen(urllib.request.Request(base + "/", headers=cookie))
    assert listed.status == 200 and "open flag" in listed.read().decode()
    # A form posted from elsewhere carries the cookie but not the token: refused, nothing resolved.
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(urllib.request.Request(base + "/flag/x/resolve", data=b"note=x", headers=cookie))
    assert forged.value.code == 403 and not (archive.root / "review" / "resolutions.jsonl").exists()


def _client(url: str):
    """A request function carrying the server's cookie: (status, body)."""
    base, token = url.split("/?token=")
    cookie = {"Cookie": f"trade-archive-review-{base.rsplit(':', 1)[1]}={token}"}

    def request(path: str, form: dict | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode({"token": token, **form}).encode() if form is not None else None
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=cookie)) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return request


def test_a_restricted_document_is_not_shown_to_a_user_without_the_role(server, tmp_path, monkeypatch):
    import index
    from archive.acceptance.review import fix_metadata, open_flags

    archive, url = server
    notice = next(archive.transaction_dir("GXZC2023-G1-001234-KWZB").glob("*/bagit.txt")).parent.name
    fix_metadata(archive, notice, {"access": "restricted"}, "a losing bidder's file", reindex=index.refresh)
    hidden = next(f for f in open_flags(archive)[1] if f.document == notice)
    config = tmp_path / "roles.toml"
    config.write_text('[roles]\nrestricted = ["someone-else"]\n')
    monkeypatch.setenv("TRADE_ARCHIVE_CONFIG", str(config))
    request = _client(url)
    status, listed = request("/")
    assert status == 200 and "award-notice.pdf" in listed and hidden.id not in listed
    status, page = request(f"/flag/{hidden.id}")
    assert status == 404 and "单轨运行" not in page
    assert request(f"/flag/{hidden.id}/page.png")[0] == 404
    assert request(f"/flag/{hidden.id}/text", {"text": "x", "note": "n"})[0] == 404


def test_bad_input_is_named_and_the_typed_text_kept(server):
    from archive.acceptance.review import open_flags

    archive, url = server
    flag = next(f for f in open_flags(archive)[1] if f.page)
    request = _client(url)
    status, page = request(f"/flag/{flag.id}/text", {"text": "我的更正", "note": " "})
    assert status == 400 and "write a note" in page and "我的更正" in page
    status, page = request(f"/flag/{flag.id}/metadata", {"amount": "abc", "note": "n"})
    assert status == 400 and "amount" in page and 'value="abc"' in page
    assert request(f"/flag/{flag.id}/resolve", {"note": ""})[0] == 400
    with archive.writer_lock():  # an ingest is writing: said so, the typed text kept
        status, page = request(f"/flag/{flag.id}/text", {"text": "我的更正", "note": "n"})
    assert status == 400 and "being written" in page and "我的更正" in page
    assert request("/flag/nosuch")[0] == 404
    assert not (archive.root / "review").exists()  # nothing was saved


def test_the_page_image_stands_upright_though_the_master_is_kept_as_scanned(review_archive):
    import io

    from PIL import Image

    from archive.acceptance.certificate import page_png

    package = next(review_archive.transaction_dir("GXZC2023-G1-001234-KWZB").glob("*/bagit.txt")).parent
    ocr = read_json(package / "data" / "ocr" / "0001.json")
    assert ocr["orientation"] == 180  # notice-upside-down.pdf
    with (
        Image.open(package / "data" / ocr["master_image"]) as master,
        Image.open(io.BytesIO(page_png(review_archive, package.name, 1, width=None))) as shown,
    ):
        assert shown.tobytes() == master.convert("RGB").transpose(Image.Transpose.ROTATE_180).tobytes()


def test_review_serve_prints_its_address_and_stops_on_ctrl_c(review_archive):
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-m", "flows.cli", "review", "serve", "--port", "0"]
    command += ["--archive", str(review_archive.root)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as served:
        line = served.stdout.readline()
        assert line.startswith("open http://127.0.0.1:") and "/?token=" in line, line + served.stderr.read()
        url = line.split()[1]
        assert _client(url)("/")[0] == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.split("?")[0])
        assert refused.value.code == 403
        served.send_signal(signal.SIGINT)
        assert served.wait(30) == 0, served.stderr.read()


def test_bidders_are_corrected_on_the_flag_page(server):
    """A bid-opening record's table as the page shows it: a price corrected, a missed row added."""
    from archive.acceptance.review import open_flags
    from archive.records.corrections import bidders_as_corrected, correct_bidders
    from archive.records.document import DocumentRecord

    archive, url = server
    flag = next(f for f in open_flags(archive)[1] if f.document)
    request = _client(url)
    assert 'id="bidders-form"' not in request(f"/flag/{flag.id}")[1]  # it lists none and opens no bids
    correct_bidders(archive, flag.document, {"广西甲公司": "100.5"}, "as the table read it")
    status, page = request(f"/flag/{flag.id}")
    assert status == 200 and 'id="bidders-form"' in page and 'value="100.50"' in page
    assert request(f"/flag/{flag.id}/bidders", {"price-0": "100.50", "note": "n"})[0] == 400  # nothing changed
    status, _page = request(f"/flag/{flag.id}/bidders", {"price-0": "105.5", "new-name": "广西乙公司",
                                                         "new-price": "12万", "note": "per the paper"})  # fmt: skip
    assert status == 200
    record = DocumentRecord.load(archive.find_document(flag.document))
    assert bidders_as_corrected(archive, record) == [{"name": "广西甲公司", "price": 105.5},
                                                     {"name": "广西乙公司", "price": 120000.0}]  # fmt: skip
