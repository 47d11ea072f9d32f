"""The test hours of the predict-track tests and their command line (a module of its own: test modules import it
by package path, which a `conftest` import cannot do reliably beside other tests/ folders' conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# a few held-out hours of the default basin (episode 5, the test split) with both of its storms in view; the
# 12:00 clip lacks its 11:40 frame (a fault the basin draws), so the hours with a complete clip are 13:00-18:00
START, END = "2023-10-17 12:00", "2023-10-17 18:00"
HOURS = list(pd.date_range("2023-10-17 13:00", END, freq="h"))


def run_argv(models: dict[str, Path], frames: Path, out: Path, *more: str) -> list[str]:
    """predict-track's command line on the test hours."""
    return ["--detector", str(models["detection"]), "--tracker", str(models["tracking"]), "--frames", str(frames),
            "--out", str(out), "--start", START, "--end", END, "--no-progress", *more]  # fmt: skip
