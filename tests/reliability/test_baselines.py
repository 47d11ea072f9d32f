"""The tracking error is shown beside the constant guess wherever it is shown (issue 11, "First contact").

The summary line, the per-clip table and tracking_errors_test.png gave the model's error alone: 50 km reads as
good or bad only beside what a constant guess (the train split's mean centre) gets.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from transformers.trainer_utils import EvalPrediction

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.evaluation import plots
from medicane_hf.tasks import TASKS, MetricContext, tracking_metrics
from medicane_hf.training.run import _closing_lines

matplotlib.use("Agg")


class _Tiles:
    """What tracking_metrics reads of a dataset: the tile offsets."""

    def __init__(self, n: int) -> None:
        self.x0 = np.zeros(n)
        self.y0 = np.zeros(n)

    def __len__(self) -> int:
        return len(self.x0)


def _details() -> dict:
    rng = np.random.default_rng(0)
    target = rng.uniform(10, 54, (20, 2))
    predicted = target + rng.normal(0, 1, (20, 2))
    context = MetricContext(grid=SeviriGrid(width=384, height=128), baseline_xy=np.array([32.0, 32.0]))
    return tracking_metrics(
        EvalPrediction(predictions=predicted, label_ids=target), _Tiles(20), context
    ).details


def test_the_error_table_has_the_constant_guess_per_clip():
    errors = _details()["errors"]
    assert {"baseline_err_km", "baseline_err_px"} <= set(errors.columns)
    assert errors["baseline_err_px"].median() > errors["err_px"].median()


def test_the_error_figure_draws_the_constant_guess(tmp_path, monkeypatch):
    shown = {}
    real_save = plots._save

    def keep(fig, path):
        shown["title"] = fig._suptitle.get_text()
        shown["labels"] = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    details = _details()
    path = plots.plot_tracking_errors(details["errors"], tmp_path / "tracking_errors_test.png")
    assert Path(path).is_file()
    assert "constant guess" in shown["title"] and any("constant guess" in label for label in shown["labels"])


def test_the_closing_line_and_the_summary_name_the_constant_guess():
    summary = {"evaluated_model": "best", "test_median_km": 12.5, "test_baseline_median_km": 80.25}
    assert "test_median_km = 12.5 (constant guess: 80.25)" in _closing_lines(
        TASKS["tracking"], Path("out"), summary, seconds=10, trained=5
    )
    assert "test_baseline_median_km" in TASKS["tracking"].summary_metrics
