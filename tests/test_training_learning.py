"""Learning check on the embedded synthetic basin (tiny preset, CPU). Figures: benchmarks/RESULTS.md.

The held-out criteria of the brief are measured by benchmarks/bench_learning.py. Specialization and
tracking meet theirs and are asserted here in full: the validation loss falls by 30 %, and the tracker's
median error on held-out storms is well below the constant train-mean guess. Detection does NOT yet
generalise well to held-out storms (test balanced accuracy 0.58, see RESULTS.md), so for it this test
asserts what must hold for any working pipeline and what failed before the class balancing: it finds
Medicanes on held-out storms instead of answering "background" everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medicane_hf.training.learning_check import LearningBudget, run_stage

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def specialization(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """120 specialization steps from scratch: (output folder, figures); detection starts from its best."""
    out = tmp_path_factory.mktemp("specialization")
    figures = run_stage("specialization", dataset_dir, out, 120, LearningBudget(max_eval_samples=48))
    return out, figures


@pytest.mark.slow
def test_specialization_validation_loss_falls_by_30_percent(specialization):
    _, figures = specialization
    assert figures["fall"] >= 0.30, figures  # on validation clips: never trained on


@pytest.mark.slow
def test_detection_finds_medicanes_on_held_out_storms(dataset_dir, specialization, tmp_path):
    # measured (seed 0, 300 steps): train loss falls 19%, test POD 0.58, balanced accuracy 0.58;
    # without class balancing the same run answered "background" for every clip (POD 0, 0.50)
    encoder = specialization[0] / "best"
    figures = run_stage("detection", dataset_dir, tmp_path, 300, LearningBudget(), encoder)
    assert figures["train_loss_fall"] >= 0.05, figures
    assert figures["pod"] >= 0.2, figures
    assert figures["balanced_accuracy"] > 0.5, figures


@pytest.mark.slow
def test_tracking_beats_the_constant_guess_on_held_out_storms(dataset_dir, specialization, tmp_path):
    # token arg-max head, translated train tiles; measured (seed 0, 600 steps from the 300-step
    # specialization of bench_learning.py): test median 239 km against the constant guess's 333 km
    encoder = specialization[0] / "best"
    figures = run_stage("tracking", dataset_dir, tmp_path, 600, LearningBudget(), encoder)
    assert figures["train_loss_fall"] >= 0.3, figures
    assert figures["median_km"] <= 0.8 * figures["baseline_median_km"], figures
