"""The threshold chosen on validation (balanced accuracy / Youden's J)."""

from __future__ import annotations

import numpy as np
import pytest

from medicane_hf.evaluation.detection import balanced_accuracy_threshold, detection_metrics


def test_threshold_maximises_balanced_accuracy_and_falls_between_scores() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    probability = np.array([0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.12, 0.20])
    threshold = balanced_accuracy_threshold(labels, probability)
    assert threshold == pytest.approx((0.08 + 0.05) / 2)  # everything from 0.08 up is called a cyclone
    at_threshold = detection_metrics(labels, scores=probability, threshold=threshold)
    at_half = detection_metrics(labels, scores=probability, threshold=0.5)
    assert at_threshold["balanced_accuracy"] == pytest.approx((1.0 + 4 / 5) / 2)
    assert at_half["balanced_accuracy"] == 0.5  # nothing reaches 0.5


def test_threshold_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        balanced_accuracy_threshold(np.zeros(4), np.linspace(0, 1, 4))
