"""How PP-OCR's models run: which library (onnxruntime or OpenVINO, the ``ocr_backend``
setting), OpenVINO's compile settings and precision, and which recogniser lines are read
again in 32-bit floats (``ocr_reread_below``). The settings travel with each page
(``ModelSettings``), never read from the reading process's environment."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# The recogniser runs in bf16; lines it reads with less confidence are read again in f32
# (RapidOcrEngine._reread; the ``ocr_reread_below`` setting; measured: README, the engine's options).
REREAD_BELOW = 0.97


@dataclass(frozen=True)
class ModelSettings:
    """How PP-OCR's models run: the ``ocr_backend`` and ``ocr_reread_below`` settings. Plain
    values that travel with each page (``PageJob.models``): a worker on another machine runs
    them as the archivist configured, never from its own environment."""

    backend: str = "auto"  # auto, onnxruntime, openvino (rapidocr_backend)
    reread_below: float = REREAD_BELOW  # OpenVINO, bf16 units: lines read again in f32 (RapidOcrEngine)


DEFAULT_MODELS = ModelSettings()


BACKENDS = ("auto", "onnxruntime", "openvino")
OPENVINO_F32 = ()  # the models OpenVINO runs in 32-bit floats (see RapidOcrEngine._compile_again)
# One thread, one stream, and no pinning: OpenVINO pins its inference thread to a core of its
# choosing, the same one in every OCR worker, so two workers on 2 cores shared one core for the
# models (measured: two processes reading alike took 5.9 s each for 3.1 CPU s; alone 2.8 s).
OPENVINO_CPU = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False}
OPENVINO_SHAPE_CACHE = 100  # input shapes whose kernels the recogniser keeps (OpenVINO: 5,000)
AUTO_BACKEND = "openvino"  # what "auto" picks where it is installed: see the README's engine measurements
# PP-OCRv6's recogniser quantized to 8 bits, made by bench/quantize_recogniser.py (not shipped):
# measured against bf16 by bench/engine_options.py; at equal CER on the hard set it saved too
# little to replace bf16 (README, the engine's options).
INT8_RECOGNISER = Path(__file__).parent / "models" / "PP-OCRv6_rec_small_int8.xml"


def rapidocr_backend(wanted: str = "auto") -> str:
    """The inference library RapidOCR runs its models on, for the ``ocr_backend`` setting ``wanted``
    (auto: AUTO_BACKEND). The setting comes with the page's ``PageSettings``, never from the reading
    process's environment (a Dask worker's is not the archivist's). OpenVINO is optional: where it
    cannot be imported, onnxruntime (a dependency of rapidocr itself) runs the same models; the
    engine version records which ran."""
    if wanted not in BACKENDS:
        raise ValueError(f"unknown OCR backend {wanted!r}; choose one of {', '.join(BACKENDS)}")
    choice = AUTO_BACKEND if wanted == "auto" else wanted
    if choice == "openvino" and not importable("openvino"):
        return "onnxruntime"
    return choice


def int8_recogniser() -> object | None:
    """The 8-bit recogniser as an OpenVINO model, or None where its files are missing."""
    import openvino

    return openvino.Core().read_model(INT8_RECOGNISER) if INT8_RECOGNISER.is_file() else None


def compile_openvino(model: object, f32: bool, shapes: int | None = None) -> object:
    """An OpenVINO infer request for ``model`` on one unpinned thread (OPENVINO_CPU); ``f32``: held
    to 32-bit floats; ``shapes``: how many input shapes' kernels it keeps."""
    import openvino

    config: dict = dict(OPENVINO_CPU)
    if f32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    if shapes is not None:
        config["CPU_RUNTIME_CACHE_CAPACITY"] = shapes
    return openvino.Core().compile_model(model, "CPU", config).create_infer_request()


@cache
def has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin has bf16 units here (AMX, AVX512-BF16): elsewhere it runs f32."""
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def importable(module: str) -> bool:
    """Whether ``module`` is installed, without importing it (OpenVINO takes 0.35 s: the CLI
    only needs the name for the engine version)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (blocked)
        return False


def rapidocr_params(backend: str) -> dict:
    """RapidOCR's settings: one thread, one line per recogniser run unless batched, and for
    OpenVINO the very model files the wheel bundles (no download: the ONNX files load as they are)."""
    from rapidocr import EngineType

    params: dict = {
        "Global.log_level": "error",
        "Rec.rec_batch_num": 1,
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if backend == "openvino":
        import rapidocr

        models = Path(rapidocr.__file__).parent / "models"
        params["EngineConfig.openvino.inference_num_threads"] = 1
        params["EngineConfig.openvino.num_streams"] = 1
        params["EngineConfig.openvino.enable_cpu_pinning"] = False  # see OPENVINO_CPU
        for task, model in (("Det", "PP-OCRv6_det_small"), ("Rec", "PP-OCRv6_rec_small"),
                            ("Cls", "ch_ppocr_mobile_v2.0_cls_mobile")):  # fmt: skip
            params[f"{task}.engine_type"] = EngineType.OPENVINO
            params[f"{task}.model_path"] = str(models / f"{model}.onnx")
    return params
