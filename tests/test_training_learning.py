"""Learning check on the embedded synthetic basin (tiny preset, CPU). Figures: benchmarks/RESULTS.md.

The held-out criteria of the brief are measured in full by benchmarks/bench_learning.py (several
detection seeds, a longer specialization). Here, within a test's budget: the validation loss falls by
30 %, the detector's balanced accuracy on the held-out storms (validation + test, evaluated once at the
end) is well above chance, and the tracker's median error on held-out storms is well below the constant
train-mean guess.
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
def test_detection_is_well_above_chance_on_held_out_storms(dataset_dir, specialization, tmp_path):
    # attention pooling + translated train tiles; measured (seed 0, 600 steps from this 120-step
    # specialization): held-out balanced accuracy 0.727 (POD 0.76), test storms alone 0.666. The
    # original mean-pooled head on fixed tiles gave 0.58-0.61; without class balancing a short run
    # answered "background" for every clip (exactly 0.5).
    encoder = specialization[0] / "best"
    figures = run_stage("detection", dataset_dir, tmp_path, 600, LearningBudget(), encoder)
    assert figures["train_loss_fall"] >= 0.1, figures
    assert figures["held_out_medicane_clips"] >= 40, figures  # both held-out splits are counted
    assert figures["held_out_pod"] >= 0.4, figures
    assert figures["held_out_balanced_accuracy"] >= 0.62, figures


@pytest.mark.slow
def test_tracking_beats_the_constant_guess_on_held_out_storms(dataset_dir, specialization, tmp_path):
    # token arg-max head, train tiles translated and turned; measured (seed 0, 600 steps from this
    # 120-step specialization): test median 182 km against the constant guess's 333 km (0.55); without
    # the quarter turns 239-323 km over seeds (benchmarks/RESULTS.md)
    encoder = specialization[0] / "best"
    figures = run_stage("tracking", dataset_dir, tmp_path, 600, LearningBudget(), encoder)
    assert figures["train_loss_fall"] >= 0.3, figures
    assert figures["median_km"] <= 0.7 * figures["baseline_median_km"], figures
