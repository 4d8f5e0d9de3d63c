"""Where the time goes: seconds per stage of a page or a document, for the batch
report and the throughput bench (which separates the OCR models' own time from
the pipeline's overhead)."""

from __future__ import annotations

import time
from collections.abc import Iterable


class StageClock:
    """Seconds spent in each stage; ``lap(stage)`` charges the time since the last lap."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.laps[stage] = round(self.laps.get(stage, 0.0) + now - self._last, 3)
        self._last = now

    def move(self, seconds: float, source: str, target: str) -> None:
        """Re-charge ``seconds`` of ``source`` to ``target`` (a step inside one call that
        belongs to another stage, e.g. the direction classifier inside the OCR call)."""
        seconds = min(seconds, self.laps.get(source, 0.0))
        self.laps[source] = round(self.laps.get(source, 0.0) - seconds, 3)
        self.laps[target] = round(self.laps.get(target, 0.0) + seconds, 3)


def add_up(laps: Iterable[dict[str, float]], digits: int = 3) -> dict[str, float]:
    """Seconds per stage summed over several ``StageClock.laps`` (the pages of a document,
    the documents of a batch)."""
    total: dict[str, float] = {}
    for stages in laps:
        for stage, seconds in stages.items():
            total[stage] = round(total.get(stage, 0.0) + seconds, digits)
    return total


def model_seconds(*engines: object) -> dict[str, float]:
    """Seconds the engines have spent inside their models so far, by method (see ``archive.capture.ocr.timed``);
    an engine that serves twice (OCR and orientation) counts once."""
    total: dict[str, float] = {}
    for engine in {id(e): e for e in engines}.values():
        for name, seconds in getattr(engine, "model_seconds_by", {}).items():
            total[name] = total.get(name, 0.0) + seconds
    return total
