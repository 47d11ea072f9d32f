"""Learning check on the embedded synthetic basin (tiny preset, CPU). Figures: benchmarks/RESULTS.md.

The held-out criteria of the brief are measured by benchmarks/bench_learning.py. Specialization meets
its criterion and is asserted here in full. Detection and tracking do NOT yet generalise well to the
held-out storms (test balanced accuracy 0.58, tracking 308 km against the constant guess's 333 km, see
RESULTS.md), so for them this test asserts what must hold for any working pipeline and what failed
before the class balancing: detection finds Medicanes on held-out storms instead of answering
"background" everywhere, and both heads fit their training clips.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medicane_hf.training.learning_check import LearningBudget, run_stage


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a small shared machine more threads fight each other (10x slower seen)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset_dir() -> Path:
    from medicane_hf.data.default import ensure_default_dataset

    return Path(ensure_default_dataset())


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
def test_tracking_fits_its_training_clips(dataset_dir, tmp_path):
    # translated train tiles: the fall is on fresh (tile, target) pairs, not memorised ones;
    # measured (seed 0): 25% after 100 steps, 60% after 300
    figures = run_stage("tracking", dataset_dir, tmp_path, 100, LearningBudget())
    assert figures["train_loss_fall"] >= 0.15, figures
