"""Calibration chosen on validation: temperature, ECE, the tracker's spread and its coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medicane_hf.evaluation.calibration import (
    coverage,
    expected_calibration_error,
    fit_radius_factors,
    fit_spread_scale,
    fit_temperature,
    radius_for_share,
    reliability_bins,
)
from medicane_hf.modeling_medicane import soft_argmax_with_spread


def _logistic_sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits [n, 2] whose softmax is the true probability of the labels drawn from it."""
    rng = np.random.default_rng(seed)
    gap = rng.normal(0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-gap))).astype(int)
    return np.stack([np.zeros(n), gap], axis=1), labels


def test_temperature_recovers_a_known_over_confidence() -> None:
    logits, labels = _logistic_sample(20000)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.08)
    assert fit_temperature(3.0 * logits, labels) == pytest.approx(3.0, rel=0.08)


def test_ece_is_small_when_calibrated_and_large_when_not() -> None:
    logits, labels = _logistic_sample(20000)
    calibrated = 1 / (1 + np.exp(-logits[:, 1]))
    over = 1 / (1 + np.exp(-4 * logits[:, 1]))
    assert expected_calibration_error(calibrated, labels == 1) < 0.02
    assert expected_calibration_error(over, labels == 1) > 0.08
    table = reliability_bins(calibrated, labels == 1)
    assert table.count.sum() == 20000 and len(table.lower) == 10


def test_spread_scale_and_coverage_of_a_gaussian() -> None:
    rng = np.random.default_rng(1)
    error = np.hypot(*rng.normal(0, 3.0, (2, 50000)))  # isotropic, sigma 3 px
    k = fit_spread_scale(error, np.full(error.shape, 1.5))
    assert k == pytest.approx(2.0, rel=0.02)
    for share in (0.5, 0.9):
        assert coverage(error, np.full(error.shape, 3.0), share) == pytest.approx(share, abs=0.01)
    assert coverage(error, np.full(error.shape, 1.5), 0.9) < 0.5  # an over-confident spread covers far less
    assert radius_for_share(1.0, 0.5) == pytest.approx(np.sqrt(2 * np.log(2)))
    with pytest.raises(ValueError, match="not > 0"):
        fit_spread_scale(error[:3], np.array([1.0, 0.0, 1.0]))


def test_conformal_radii_cover_heavy_tailed_errors_where_the_gaussian_does_not() -> None:
    rng = np.random.default_rng(2)

    def heavy(
        n: int,
    ) -> np.ndarray:  # a 2-D Student t (3 degrees of freedom): heavier tails than any Gaussian
        return np.hypot(*rng.standard_t(3, (2, n)))

    validation, new = heavy(400), heavy(20000)
    spread = np.ones_like(validation)
    k = fit_spread_scale(validation, spread)
    factors = fit_radius_factors(validation, k * spread)
    assert set(factors) == {"0.5", "0.9"} and factors["0.9"] > factors["0.5"] > 0
    gaussian_50 = coverage(new, np.full(new.shape, k), 0.5)
    for share in (0.5, 0.9):
        # 400 validation ratios: the conformal share of new centres is within ~0.03 of the target
        assert coverage(new, np.full(new.shape, k), share, factors) == pytest.approx(share, abs=0.04)
    # the maximum-likelihood Gaussian's 50 % radius holds about 66 %: it misses by far more than that
    assert gaussian_50 > 0.58
    assert radius_for_share(2.0, 0.9, factors) == pytest.approx(2.0 * factors["0.9"])
    assert radius_for_share(2.0, 0.9, {"0.5": 1.0}) == pytest.approx(radius_for_share(2.0, 0.9))
    # n = 9: the ceil(10 * 0.9) = 9th smallest ratio, i.e. the largest
    assert fit_radius_factors(np.arange(1.0, 10.0), np.ones(9))["0.9"] == 9.0
    with pytest.raises(ValueError, match="not > 0"):
        fit_radius_factors(np.ones(3), np.array([1.0, 0.0, 1.0]))


def test_heat_map_spread_of_two_equal_pixels() -> None:
    logits = torch.full((1, 8, 8), -1e4)
    logits[0, 3, 2] = logits[0, 3, 4] = 0.0  # half the weight each at x = 2 and 4, y = 3
    centre, spread = soft_argmax_with_spread(logits)
    assert centre[0].tolist() == pytest.approx([3.0, 3.0])
    # var_x = 1, var_y = 0 -> sqrt(1 / 2)
    assert spread[0].item() == pytest.approx(np.sqrt(0.5), rel=1e-4)
