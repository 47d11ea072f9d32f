"""The threshold chosen on validation: balanced accuracy (Youden's J) or the Heidke skill score."""

from __future__ import annotations

import numpy as np
import pytest

from medicane_hf.evaluation.detection import choose_threshold, detection_metrics


def test_threshold_maximises_balanced_accuracy_and_falls_between_scores() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    probability = np.array([0.01, 0.02, 0.03, 0.05, 0.08, 0.10, 0.12, 0.20])
    threshold = choose_threshold(labels, probability)
    assert threshold == pytest.approx((0.08 + 0.05) / 2)  # everything from 0.08 up is called a cyclone
    at_threshold = detection_metrics(labels, scores=probability, threshold=threshold)
    at_half = detection_metrics(labels, scores=probability, threshold=0.5)
    assert at_threshold["balanced_accuracy"] == pytest.approx((1.0 + 4 / 5) / 2)
    assert at_half["balanced_accuracy"] == 0.5  # nothing reaches 0.5


def test_the_heidke_rule_trades_a_rare_events_last_hit_for_fewer_false_alarms() -> None:
    # 4 cyclones among 100 clips: three score high, the fourth sits among 10 look-alikes
    labels = np.zeros(100, dtype=int)
    labels[:4] = 1
    probability = np.linspace(0.0, 0.5, 100)
    probability[:3] = [0.99, 0.98, 0.97]
    probability[4:14] = np.linspace(0.80, 0.89, 10)  # look-alikes
    probability[3] = 0.845  # below five of them
    by_j = choose_threshold(labels, probability, "balanced_accuracy")
    by_hss = choose_threshold(labels, probability, "hss")
    at_j = detection_metrics(labels, scores=probability, threshold=by_j)
    at_hss = detection_metrics(labels, scores=probability, threshold=by_hss)
    # J takes the fourth hit with the five look-alikes above it: POD 1 at FAR 5/9; HSS stops above them
    assert (at_j["pod"], at_j["far"]) == (pytest.approx(1.0), pytest.approx(5 / 9))
    assert (at_hss["pod"], at_hss["far"]) == (pytest.approx(0.75), pytest.approx(0.0))
    assert at_hss["hss"] > at_j["hss"] and at_j["balanced_accuracy"] > at_hss["balanced_accuracy"]
    assert by_hss == pytest.approx((0.97 + 0.89) / 2)  # the midpoint below the last cyclone it keeps


def test_threshold_needs_both_classes_and_a_known_rule() -> None:
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold(np.zeros(4), np.linspace(0, 1, 4))
    with pytest.raises(ValueError, match="'f1'.*balanced_accuracy, hss"):
        choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "f1")
