"""Which library runs RapidOCR's models (the ``ocr_backend`` setting): what auto picks, the
fallback to onnxruntime where OpenVINO is missing, and that the engine version says which ran."""

import sys

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from archive.capture import ocr
from archive.capture.ocr import _same_width_runs, engine_version, get_engine, rapidocr_backend
from archive.capture.pageproc import PageJob, PageSettings
from archive.config import ConfigError, load_config

openvino_installed = ocr._importable("openvino")


@pytest.fixture(autouse=True)
def fresh_versions():
    engine_version.cache_clear()
    yield
    engine_version.cache_clear()


@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_openvino_is_reported_in_the_engine_version():
    assert rapidocr_backend("auto") == ocr.AUTO_BACKEND
    assert "(openvino " in engine_version("rapidocr", "openvino")
    assert "(onnxruntime " in engine_version("rapidocr", "onnxruntime")


def test_without_openvino_the_same_models_run_on_onnxruntime(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # importing it now raises ImportError
    assert rapidocr_backend("openvino") == "onnxruntime"
    assert rapidocr_backend("auto") == "onnxruntime"
    assert "(onnxruntime " in engine_version("rapidocr", "openvino")


def test_the_setting_is_read_from_the_page_settings_not_the_environment(monkeypatch):
    monkeypatch.setenv("TRADE_ARCHIVE_OCR_BACKEND", "cuda")  # a worker machine's own environment: not asked
    assert rapidocr_backend() == rapidocr_backend("auto")
    assert "(onnxruntime " in engine_version("rapidocr", "onnxruntime")
    with pytest.raises(ValueError, match="unknown OCR backend"):
        rapidocr_backend("cuda")


class _Engine:
    """Stands in for RapidOcrEngine: no models loaded, the backend it was made for kept."""

    def __init__(self, backend: str) -> None:
        self.backend = backend


def test_the_engine_cache_keys_on_the_backend(monkeypatch):
    monkeypatch.setitem(ocr.ENGINES, "rapidocr", _Engine)
    ocr._engine.cache_clear()
    try:
        onnx = get_engine("rapidocr", "onnxruntime")
        assert onnx.backend == "onnxruntime" and get_engine("rapidocr", "onnxruntime") is onnx
        auto = get_engine("rapidocr")
        assert auto is get_engine("rapidocr", rapidocr_backend("auto"))  # "auto" and what it picks: one engine
        if openvino_installed:
            assert auto is not onnx and auto.backend == "openvino"
    finally:
        ocr._engine.cache_clear()


def test_an_unknown_backend_in_the_config_is_refused(tmp_path):
    config = tmp_path / "trade-archive.toml"
    config.write_text('ocr_backend = "cuda"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="ocr_backend is one of: auto, onnxruntime, openvino"):
        load_config(str(config))


def test_only_lines_padded_to_about_one_width_share_a_recogniser_run():
    crops = [np.zeros((48, w, 3), np.uint8) for w in (100, 2000, 300, 2100, 700, 320, 1000)]
    runs = _same_width_runs(crops, most=3)
    assert runs == [[0, 2, 5], [4], [6], [1, 3]]  # 100-320 px all pad to 320; 2000 and 2100 within 10%
    assert sorted(i for run in runs for i in run) == list(range(len(crops)))
    assert all(len(run) == 1 for run in _same_width_runs(crops, most=1))


@pytest.mark.slow
@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_both_backends_read_the_same_page_alike(resources):
    image: Image.Image = PdfReader(resources / "notice-upside-down.pdf").pages[0].images[0].image
    texts = {}
    for backend in ("onnxruntime", "openvino"):
        reading = ocr.RapidOcrEngine(backend).read_page(image.convert("RGB"))
        assert reading.turn == 180
        texts[backend] = "".join(box.text for box in reading.boxes)
    assert "档案" in texts["openvino"]
    assert texts["openvino"] == texts["onnxruntime"]


def test_the_config_files_backend_travels_with_each_page(tmp_path, resources):
    """In the page settings a document carries (pickled to a Dask worker), and so in every page job."""
    from archive.errors import InputRejected
    from archive.ingest.document import ingest_document
    from archive.storage.store import Archive

    (tmp_path / "trade-archive.toml").write_text('ocr_backend = "onnxruntime"\n', encoding="utf-8")
    settings = PageSettings.of(load_config(str(tmp_path / "trade-archive.toml")))
    assert settings.ocr_backend == "onnxruntime"
    jobs: list[PageJob] = []

    def capture(page_jobs):  # noqa: ANN001, ANN202 - stops the ingest once the jobs are seen
        jobs.extend(page_jobs)
        raise InputRejected("stopped", "stopped by the test")

    archive = Archive.open(tmp_path / "archive", create=True)
    outcome = ingest_document(resources / "award-notice.pdf", archive, "b", settings=settings, run_pages=capture)
    assert outcome.reason == "stopped" and jobs and {job.ocr_backend for job in jobs} == {"onnxruntime"}


@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_openvino_pins_no_core():
    """OpenVINO pins its inference thread to a core of its choosing, the same in every OCR worker:
    two workers then share one core. Each model is compiled without pinning, on one thread."""
    engine = ocr.RapidOcrEngine("openvino")
    for load in (engine._ocr._load_det_model, engine._ocr._load_cls_model, engine._ocr._load_rec_model):
        compiled = load().session.session.get_compiled_model()
        assert compiled.get_property("ENABLE_CPU_PINNING") is False
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
