"""Calibration chosen on validation: detection temperature and threshold, the tracker's centre spread.

- Detection: one temperature ``T`` for the logits (``softmax(logits / T)``) that minimises the validation
  negative log-likelihood (Guo et al. 2017, "On calibration of modern neural networks"), then the
  threshold on the calibrated Medicane probability that maximises the validation score of the model's
  ``detection_threshold_rule`` (balanced accuracy or the Heidke skill score; `choose_threshold`).
  ``expected_calibration_error`` and ``reliability_bins`` measure it.
- Tracking: the heat-map head gives each centre a spread ``s`` (px, the isotropic standard deviation of
  its soft arg-max weights); the calibrated spread is ``k * s`` with the one factor ``k`` that maximises
  the validation likelihood of an isotropic 2-D Gaussian (closed form below). The radius that holds a
  share ``q`` of such a Gaussian's mass is ``sigma * sqrt(-2 ln(1 - q))`` (the Rayleigh quantile);
  ``coverage`` is the share of true centres inside it.
- Tracking radii: measured errors have heavier tails than that Gaussian (held-out demo basin, one scale for
  both: 60 % of centres inside the 50 % radius, 83 % inside the 90 % one). So the radius of each reported
  share ``q`` is its own factor ``f_q`` times the calibrated spread, the split-conformal quantile of the
  validation ratios ``e / s`` (Vovk et al. 2005; Angelopoulos & Bates 2021: the ``ceil((n + 1) q)``-th
  smallest of ``n``, which holds at least ``q`` of exchangeable new centres on average).

scikit-learn has no temperature scaling and no Gaussian spread calibration, hence these few lines; the
optimiser is scipy's bounded scalar minimiser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = [
    "COVERAGE_SHARES",
    "ReliabilityBins",
    "coverage",
    "expected_calibration_error",
    "fit_radius_factors",
    "fit_spread_scale",
    "fit_temperature",
    "radius_for_share",
    "reliability_bins",
]


def fit_temperature(
    logits: npt.ArrayLike, labels: npt.ArrayLike, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature ``T`` minimising the mean negative log-likelihood of ``softmax(logits / T)``.

    Args:
        logits: ``[N, C]`` class scores.
        labels: ``[N]`` class ids in ``[0, C)``.
        bounds: the search interval for ``T``.

    Raises:
        ValueError: shapes disagree, no rows, or a label outside the classes.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if z.ndim != 2 or y.shape != (z.shape[0],) or z.shape[0] == 0:
        raise ValueError(f"fit_temperature needs logits [N, C] and labels [N], got {z.shape} and {y.shape}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must lie in [0, {z.shape[1]}), got {y.min()}..{y.max()}")
    rows = np.arange(len(y))

    def nll(temperature: float) -> float:
        return float(-log_softmax(z / temperature, axis=1)[rows, y].mean())

    # log T is the better-conditioned variable: the NLL is flat for large T and steep for small T
    result = minimize_scalar(lambda log_t: nll(float(np.exp(log_t))), bounds=np.log(bounds), method="bounded")
    return float(np.exp(result.x))


@dataclass(frozen=True)
class ReliabilityBins:
    """Equal-width probability bins: ``[B]`` edges' lower ends, mean predicted probability, observed
    frequency and count per bin (NaN means in empty bins)."""

    lower: np.ndarray
    mean_probability: np.ndarray
    observed_frequency: np.ndarray
    count: np.ndarray


def reliability_bins(
    probability: npt.ArrayLike, is_positive: npt.ArrayLike, bins: int = 10
) -> ReliabilityBins:
    """Bin ``[N]`` predicted probabilities of the positive class against ``[N]`` booleans (what happened)."""
    p = np.asarray(probability, dtype=np.float64)
    hit = np.asarray(is_positive, dtype=bool)
    if p.shape != hit.shape or p.ndim != 1:
        raise ValueError(f"probability and is_positive must be [N] alike, got {p.shape} and {hit.shape}")
    which = np.clip((p * bins).astype(np.int64), 0, bins - 1)  # p == 1 goes to the last bin
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, weights=p, minlength=bins) / count
        frequency = np.bincount(which, weights=hit.astype(np.float64), minlength=bins) / count
    return ReliabilityBins(np.arange(bins) / bins, mean_p, frequency, count)


def expected_calibration_error(
    probability: npt.ArrayLike, is_positive: npt.ArrayLike, bins: int = 10
) -> float:
    """ECE of the positive-class probability: sum over equal-width bins of ``count / N * |mean p - frequency|``."""
    table = reliability_bins(probability, is_positive, bins)
    filled = table.count > 0
    gaps = np.abs(table.mean_probability[filled] - table.observed_frequency[filled])
    return float((table.count[filled] * gaps).sum() / max(int(table.count.sum()), 1))


def _errors_and_spreads(error_px: npt.ArrayLike, spread_px: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validation errors and spreads as float64 ``[N]`` arrays, checked: same shape, non-empty, spreads > 0."""
    e = np.asarray(error_px, dtype=np.float64)
    s = np.asarray(spread_px, dtype=np.float64)
    if e.shape != s.shape or e.ndim != 1 or e.size == 0:
        raise ValueError(f"error_px and spread_px must be non-empty [N] alike, got {e.shape} and {s.shape}")
    if not np.all(s > 0):
        raise ValueError(f"spread_px: row {int(np.flatnonzero(~(s > 0))[0])} is not > 0")
    return e, s


def fit_spread_scale(error_px: npt.ArrayLike, spread_px: npt.ArrayLike) -> float:
    """The factor ``k`` for which ``k * spread`` is the maximum-likelihood isotropic 2-D Gaussian sigma.

    The negative log-likelihood of an error ``e`` under sigma ``k s`` is ``2 ln(k s) + e^2 / (2 k^2 s^2)``
    (+ const); its minimum over one shared ``k`` is ``k^2 = mean(e^2 / (2 s^2))``.

    Args:
        error_px: ``[N]`` distance from predicted to true centre (px).
        spread_px: ``[N]`` the model's uncalibrated spread (px, > 0).
    """
    e, s = _errors_and_spreads(error_px, spread_px)
    return float(np.sqrt(np.mean(e**2 / (2 * s**2))))


COVERAGE_SHARES = (0.5, 0.9)
"""The shares of true centres whose radius the tracking metrics, the prediction tables and calibration report."""


def share_key(share: float) -> str:
    """The config / JSON key of a share: ``0.9`` -> ``"0.9"``."""
    return f"{float(share):g}"


def fit_radius_factors(
    error_px: npt.ArrayLike, spread_px: npt.ArrayLike, shares: tuple[float, ...] = COVERAGE_SHARES
) -> dict[str, float]:
    """Per share ``q``, the factor ``f_q`` for which the radius ``f_q * spread`` holds ``q`` of new true centres
    (split conformal: the ``ceil((n + 1) q)``-th smallest validation ratio ``error / spread``, at most the largest).

    Args:
        error_px: ``[N]`` distance from predicted to true centre on validation (px).
        spread_px: ``[N]`` the calibrated spread (sigma, px, > 0) of the same predictions.
        shares: the shares in (0, 1).

    Returns:
        ``{share_key(q): f_q}``, e.g. ``{"0.5": 1.1, "0.9": 2.6}``.
    """
    e, s = _errors_and_spreads(error_px, spread_px)
    ratios = np.sort(e / s)
    n = len(ratios)
    factors = {}
    for share in shares:
        if not 0 < share < 1:
            raise ValueError(f"share must lie in (0, 1), got {share}")
        rank = min(int(np.ceil((n + 1) * share)), n)  # 1-based
        # floored at the smallest positive float: the config requires a factor > 0
        factors[share_key(share)] = max(float(ratios[rank - 1]), float(np.finfo(np.float64).tiny))
    return factors


def radius_for_share(
    sigma: npt.ArrayLike, share: float, factors: dict[str, float] | None = None
) -> np.ndarray:
    """The radius around the centre that holds ``share`` of true centres (same unit as sigma): ``factors[share]``
    x sigma where calibration chose one (`fit_radius_factors`), else the isotropic 2-D Gaussian's
    ``sigma * sqrt(-2 ln(1 - share))``."""
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), got {share}")
    sigma = np.asarray(sigma, dtype=np.float64)
    if factors and share_key(share) in factors:
        return sigma * float(factors[share_key(share)])
    return sigma * np.sqrt(-2.0 * np.log1p(-share))


def coverage(
    error: npt.ArrayLike, sigma: npt.ArrayLike, share: float, factors: dict[str, float] | None = None
) -> float:
    """The share of true centres within the predicted ``share`` radius (`radius_for_share`; calibrated: ~``share``)."""
    e = np.asarray(error, dtype=np.float64)
    return float(np.mean(e <= radius_for_share(sigma, share, factors)))
