"""The run folder of batch inference: what it holds, how it is written, and why nothing already there is lost.

Files (``--output_dir``)::

    predictions.parquet, predictions.csv   one row per clip, in clip order (the same table twice)
    logits.npy, embeddings.npy             with --save_logits / --save_embeddings: [N, D] float32, rows = table rows
    metrics.json                           when the input has labels: the stage's metrics (and baseline)
    *.png                                  when the input has labels: the stage's figures
    log.jsonl                              one JSON object per event (start, input, progress, metrics, done)
    frames_dataset/                        with --frames (default place): the packed store and clip index,
                                           reused by the next run on the same frames; never a "result"

A folder that already holds results is refused unless ``--overwrite``. Everything is written into a hidden
staging folder inside it and moved into place only once the run has finished, the old results first set aside
and deleted last: a run that fails (bad input, a crash) leaves the previous results as they were. While a run is
going, its log is ``OUTPUT_DIR/.inference-*/log.jsonl``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from medicane_hf.inference.predict import ARRAY_OUTPUTS
from medicane_hf.jsonable import jsonable
from medicane_hf.tasks import TASKS

__all__ = [
    "LOG_FILE",
    "METRICS_FILE",
    "TABLE_FILES",
    "JsonlLog",
    "ResultsExistError",
    "RunFolder",
    "check_output_dir",
    "result_names",
    "write_json",
    "write_table",
]

TABLE_FILES = ("predictions.parquet", "predictions.csv")
METRICS_FILE = "metrics.json"
LOG_FILE = "log.jsonl"


class ResultsExistError(FileExistsError):
    """The output folder holds results of an earlier run and ``--overwrite`` was not given."""


def result_names() -> tuple[str, ...]:
    """Every file name an inference run of any stage may write (what counts as results already there)."""
    figures = {f.file_name for t in TASKS.values() if t.inference is not None for f in t.inference.figures}
    return (
        *TABLE_FILES,
        *(f"{name}.npy" for name in ARRAY_OUTPUTS),
        METRICS_FILE,
        LOG_FILE,
        *sorted(figures),
    )


def check_output_dir(
    output_dir: Path, overwrite: bool, *, names: Sequence[str] | None = None, flag: str = "--output_dir"
) -> list[str]:
    """The results already in `output_dir` (empty when none); refuses them unless `overwrite`.

    Args:
        names: the file names that count as results (default: `result_names`, batch inference's).
        flag: the command's flag for the folder, as messages name it.

    Raises:
        ResultsExistError: results are there and `overwrite` is False (nothing is touched).
        NotADirectoryError: `output_dir` is a file.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"{flag} {output_dir} is a file, not a folder")
    existing = [name for name in (result_names() if names is None else names) if (output_dir / name).exists()]
    if existing and not overwrite:
        raise ResultsExistError(
            f"{output_dir} already holds results ({', '.join(existing)}); pass --overwrite to replace them "
            f"(they stay until the new run has finished), or choose another {flag}"
        )
    return existing


class RunFolder:
    """A staging folder inside the output folder; `publish` moves its files into place, `discard` drops it."""

    def __init__(self, output_dir: Path, names: Sequence[str] | None = None) -> None:
        """`names`: the file names that count as results (default: `result_names`, batch inference's)."""
        self.output_dir = output_dir
        self.names = tuple(result_names() if names is None else names)
        output_dir.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=".inference-", dir=output_dir))

    def path(self, name: str) -> Path:
        """Where `name` is written during the run."""
        return self.staging / name

    def publish(self) -> list[str]:
        """Replace the folder's results by the staged files (old results of other names are removed too, so
        that no stale file sits beside the new table); returns the names published."""
        names = sorted(p.name for p in self.staging.iterdir())
        old = Path(tempfile.mkdtemp(prefix=".replaced-", dir=self.output_dir))
        try:
            for name in self.names:
                if (self.output_dir / name).exists():
                    os.replace(self.output_dir / name, old / name)
            for name in names:
                os.replace(self.staging / name, self.output_dir / name)
        finally:
            shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(self.staging, ignore_errors=True)
        return names

    def discard(self) -> None:
        """Remove the staging folder (the folder's earlier results stay as they were)."""
        shutil.rmtree(self.staging, ignore_errors=True)


class JsonlLog:
    """Append-only JSON-lines log: ``{"time": ISO UTC, "event": name, ...}`` per line, flushed at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        record = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "event": event, **fields}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(jsonable(record, non_finite_as_null=True)) + "\n")


def write_table(table: pd.DataFrame, folder: Path) -> list[Path]:
    """``predictions.parquet`` (types kept: times, booleans, ints) and ``predictions.csv`` (the same rows)."""
    parquet, csv = (folder / name for name in TABLE_FILES)
    table.to_parquet(parquet, index=False)
    table.to_csv(csv, index=False)
    return [parquet, csv]


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Metrics as JSON: NaN (undefined here, e.g. POD without a Medicane clip) becomes null."""
    path.write_text(json.dumps(jsonable(values, non_finite_as_null=True), indent=2, sort_keys=True))
