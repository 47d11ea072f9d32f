"""Learning check on the embedded synthetic basin (tiny preset, CPU). Figures: benchmarks/RESULTS.md.

The held-out detection and tracking figures of the brief (balanced accuracy well above chance, median
error well below the train-mean guess) are measured by benchmarks/bench_learning.py; on the embedded
basin (4 training storms, 47 tracking clips) they are NOT reached yet, see RESULTS.md. This test asserts
what a test can afford and what must hold for any working pipeline.
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


@pytest.mark.slow
def test_specialization_validation_loss_falls_by_30_percent(dataset_dir, tmp_path):
    budget = LearningBudget(max_eval_samples=48)
    figures = run_stage("specialization", dataset_dir, tmp_path, 120, budget)
    assert figures["fall"] >= 0.30, figures  # on validation clips: never trained on


@pytest.mark.slow
def test_tracking_fits_its_training_clips(dataset_dir, tmp_path):
    figures = run_stage("tracking", dataset_dir, tmp_path, 100, LearningBudget())
    assert figures["train_loss_fall"] >= 0.5, figures
