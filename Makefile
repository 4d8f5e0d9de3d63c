# trade-archive: every set-up step is here, so a fresh Debian/Ubuntu machine needs only
#   make demo   (ingest the bundled sample scans, search them, verify the archive)
#   make test   (lint + the test suite)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# chromium + its driver: the review page's browser tests (Debian's names; where they are
# missing, e.g. Ubuntu's snap-only chromium, the rest is installed and those tests skip)
BROWSER_PACKAGES := chromium chromium-driver
SYSTEM_PACKAGES := tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-eng poppler-utils fonts-noto-cjk python3-venv \
	$(BROWSER_PACKAGES)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_ARCHIVE := demo-out/archive
BENCH_VENV := .bench-venv

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export OMP_THREAD_LIMIT := 1

.PHONY: demo test test-all bench bench-ocr bench-throughput bench-search bench-signing system-deps venv lint clean

system-deps:  ## tesseract + Chinese data, poppler (pdftotext), CJK fonts, chromium (the review page's browser tests)
	@if dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then echo "system packages present"; \
	else ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES)) \
	  || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(filter-out $(BROWSER_PACKAGES),$(SYSTEM_PACKAGES)) \
	      && echo "warning: could not install $(BROWSER_PACKAGES); the review page's browser tests are skipped") \
	  || echo "warning: could not install $(SYSTEM_PACKAGES); RapidOCR still works, tesseract/pdftotext tests are skipped"; fi

$(BIN)/trade-archive: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/trade-archive

demo: system-deps venv  ## ingest the bundled sample scans (plus one broken file), search, verify
	rm -rf demo-out && mkdir -p demo-out/scans
	cp tests/resources/*.pdf tests/resources/manifest.csv demo-out/scans/
	printf 'this is not a PDF\n' > demo-out/scans/broken-scan.pdf
	$(BIN)/trade-archive ingest demo-out/scans --manifest demo-out/scans/manifest.csv --archive $(DEMO_ARCHIVE)
	$(BIN)/python search_cli.py 交易中心 --archive $(DEMO_ARCHIVE)
	$(BIN)/python search_cli.py NNZC2023-G1-004567-KWZB --archive $(DEMO_ARCHIVE)
	$(BIN)/trade-archive verify --archive $(DEMO_ARCHIVE)
	$(BIN)/trade-archive export --format jsonl --archive $(DEMO_ARCHIVE) | head -c 600; echo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: system-deps venv lint  ## the fast default suite (real OCR end to end included)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: system-deps venv
	$(BIN)/python -m pytest -q

bench: bench-ocr bench-throughput bench-search bench-signing  ## every benchmark on ../shared/data/scans-dev (~25 min)

bench-ocr: system-deps venv  ## OCR accuracy (CER, orientation, blank pages), RapidOCR and tesseract
	$(BIN)/python bench/ocr_quality.py --engine both
	$(BIN)/python bench/metadata_quality.py

# OCRmyPDF lives in its own venv: it is the yardstick, not a dependency of trade-archive.
$(BENCH_VENV)/bin/ocrmypdf:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q ocrmypdf ocrmypdf-rapidocr

bench-throughput: system-deps venv $(BENCH_VENV)/bin/ocrmypdf  ## pages/min vs OCRmyPDF, overhead, CER; 300-page scan under a 2 GB memory cap
	$(BIN)/python bench/throughput.py --vs-ocrmypdf --vs-ocrmypdf-rapidocr
	$(BIN)/python bench/throughput.py --big 300 --memory-cap 2000000000

bench-signing: venv  ## what the centre's signature costs per page and per document (demo keys, loopback TSA)
	$(BIN)/python bench/signing_cost.py

bench-search: system-deps venv  ## search recall@10 on the dev set; both backends at 200,000 synthetic pages
	$(BIN)/python bench/search_quality.py
	$(BIN)/python bench/search_scale.py --backend tantivy --pages 200000
	$(BIN)/python bench/search_scale.py --backend whoosh --pages 20000

clean:
	rm -rf demo-out .pytest_cache
