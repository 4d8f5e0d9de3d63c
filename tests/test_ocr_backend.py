"""Which library runs RapidOCR's models (the ``ocr_backend`` setting): what auto picks, the
fallback to onnxruntime where OpenVINO is missing, and that the engine version says which ran."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from archive.capture import backends, ocr
from archive.capture.backends import ModelSettings, rapidocr_backend
from archive.capture.ocr import _same_width_runs, engine_version, get_engine
from archive.capture.pageproc import PageSettings
from archive.config import ConfigError, load_config

openvino_installed = backends.importable("openvino")


@pytest.fixture(autouse=True)
def fresh_versions():
    engine_version.cache_clear()
    yield
    engine_version.cache_clear()


@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_openvino_is_reported_in_the_engine_version():
    assert rapidocr_backend("auto") == backends.AUTO_BACKEND
    assert "(openvino " in engine_version("rapidocr", "openvino")
    assert "(onnxruntime " in engine_version("rapidocr", "onnxruntime")
    # the pipeline's recogniser is bf16/f32; the 8-bit one (a bench option) is named where it reads
    assert "8-bit" not in engine_version("rapidocr", "openvino")
    assert engine_version("rapidocr", "openvino", rec_int8=True).endswith(", 8-bit recogniser)")


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
    """Stands in for RapidOcrEngine: no models loaded, the settings it was made with kept."""

    def __init__(self, backend: str, reread_below: float) -> None:
        self.backend, self.reread_below = backend, reread_below


def test_the_engine_cache_keys_on_the_model_settings(monkeypatch):
    monkeypatch.setitem(ocr.ENGINES, "rapidocr", _Engine)
    ocr._engine.cache_clear()
    try:
        onnx = get_engine("rapidocr", ModelSettings("onnxruntime"))
        assert onnx.backend == "onnxruntime" and get_engine("rapidocr", ModelSettings("onnxruntime")) is onnx
        assert get_engine("rapidocr", ModelSettings("onnxruntime", 0.5)).reread_below == 0.5
        auto = get_engine("rapidocr")
        # "auto" and what it picks: one engine
        assert auto is get_engine("rapidocr", ModelSettings(rapidocr_backend("auto")))
        if openvino_installed:
            assert auto is not onnx and auto.backend == "openvino"
    finally:
        ocr._engine.cache_clear()


class _Recogniser:
    """RapidOCR's recogniser as ``RapidOcrEngine._reread`` sees it: a session it swaps."""

    def __init__(self) -> None:
        self.session = SimpleNamespace(session="bf16")


def test_uncertain_and_traditional_lines_are_read_again_in_f32():
    engine = object.__new__(ocr.RapidOcrEngine)  # no models: the recogniser's two precisions faked
    recogniser = _Recogniser()
    engine._ocr = SimpleNamespace(_load_rec_model=lambda: recogniser)
    engine._exact, engine.reread_below, engine.lines_read_again = "f32", 0.98, 0
    seen = []

    def recognise(arrays):  # noqa: ANN001, ANN202
        seen.append((recogniser.session.session, list(arrays)))
        return [f"{recogniser.session.session}:{a}" for a in arrays], [0.99] * len(arrays)

    engine._recognise = recognise
    texts, scores = ["开标", "开标時间", "金额", "合同"], [0.99, 0.99, 0.90, 0.985]
    engine._reread(["a", "b", "c", "d"], texts, scores)
    assert seen == [("f32", ["b", "c"])]  # a traditional-only character; confidence under 0.98
    assert texts == ["开标", "f32:b", "f32:c", "合同"] and scores[1:3] == [0.99, 0.99]
    assert recogniser.session.session == "bf16" and engine.lines_read_again == 2


@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_the_f32_recogniser_is_compiled_only_where_lines_are_read_again():
    rereads = ocr.RapidOcrEngine("openvino")
    assert (rereads._exact is not None) == backends.has_bf16()  # without bf16 units every line is f32 already
    assert ocr.RapidOcrEngine("openvino", reread_below=1.0)._exact is None  # every line in f32
    assert ocr.RapidOcrEngine("openvino", reread_below=0.0)._exact is None  # none: all bf16


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


def test_the_config_files_backend_travels_with_each_page(tmp_path, resources, page_jobs_of):
    """In the page settings a document carries (pickled to a Dask worker), and so in every page job."""
    (tmp_path / "trade-archive.toml").write_text('ocr_backend = "onnxruntime"\nocr_reread_below = 0.9\n',
                                                 encoding="utf-8")  # fmt: skip
    settings = PageSettings.of(load_config(str(tmp_path / "trade-archive.toml")))
    assert settings.models == ModelSettings("onnxruntime", 0.9)
    outcome, jobs = page_jobs_of(resources / "award-notice.pdf", settings=settings)
    assert outcome.reason == "stopped" and jobs and {job.models for job in jobs} == {settings.models}


@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_openvino_pins_no_core():
    """OpenVINO pins its inference thread to a core of its choosing, the same in every OCR worker:
    two workers then share one core. Each model is compiled without pinning, on one thread."""
    engine = ocr.RapidOcrEngine("openvino")
    for load in (engine._ocr._load_det_model, engine._ocr._load_cls_model, engine._ocr._load_rec_model):
        compiled = load().session.session.get_compiled_model()
        assert compiled.get_property("ENABLE_CPU_PINNING") is False
        assert compiled.get_property("INFERENCE_NUM_THREADS") == 1


def test_recogniser_input_widths_come_in_steps():
    """Padded to a multiple of the step (never narrower than RapidOCR's own width), so that OpenVINO
    meets a few input shapes instead of one per line."""
    widths = []
    padded = ocr._padded_to_step(lambda _image, ratio: widths.append(int(ocr.REC_HEIGHT * ratio)), 32)
    for ratio in (320 / 48, 7.01, 1000 / 48, 1001 / 48, 37.3):
        padded(None, ratio)
    assert widths == [320, 352, 1024, 1024, 1792]


@pytest.mark.skipif(not openvino_installed, reason="openvino not installed")
def test_the_engine_line_says_what_the_reading_process_ran(tmp_path, resources, monkeypatch):
    """With ocr_backend auto, a worker elsewhere without OpenVINO reads on onnxruntime: the document's
    engine line and its bag-info say so, though this machine would have run OpenVINO."""
    from archive.capture.pageproc import process_page
    from archive.ingest.document import ingest_document
    from archive.records.document import DocumentRecord
    from archive.storage.package import read_bag_info
    from archive.storage.store import Archive

    def worker_without_openvino(jobs):  # noqa: ANN001, ANN202 - a run_pages on "another machine"
        with pytest.MonkeyPatch.context() as there:
            there.setitem(sys.modules, "openvino", None)
            engine_version.cache_clear()
            return [process_page(job) for job in jobs]

    archive = Archive.open(tmp_path / "archive", create=True)
    outcome = ingest_document(resources / "award-notice.pdf", archive, "b", run_pages=worker_without_openvino)
    engine_version.cache_clear()
    assert "(openvino " in engine_version("rapidocr", "auto")  # what this machine would have said
    package = Path(outcome.path)
    assert "(onnxruntime " in DocumentRecord.load(package).process["engine"]
    assert read_bag_info(package)["OCR-Engine"] == DocumentRecord.load(package).process["engine"]
