"""Evaluation: detection and tracking metrics (DOMAIN.md section 6), calibration and report figures.

``from medicane_hf.evaluation import detection_metrics`` works for every name in
``__all__``; the submodules (and scikit-learn, pyproj, matplotlib behind them)
are imported on first use so that importing the package stays cheap.
"""

from __future__ import annotations

from medicane_hf._lazy import lazy_getattr

_LAZY = {
    "DEFAULT_CLASS_NAMES": "medicane_hf.evaluation.detection",
    "detection_metrics": "medicane_hf.evaluation.detection",
    "detection_metrics_from_logits": "medicane_hf.evaluation.detection",
    "scalar_metrics": "medicane_hf.evaluation.detection",
    "softmax": "medicane_hf.evaluation.detection",
    "classes_at_threshold": "medicane_hf.evaluation.detection",
    "choose_threshold": "medicane_hf.evaluation.detection",
    "COVERAGE_SHARES": "medicane_hf.evaluation.calibration",
    "coverage": "medicane_hf.evaluation.calibration",
    "expected_calibration_error": "medicane_hf.evaluation.calibration",
    "fit_radius_factors": "medicane_hf.evaluation.calibration",
    "fit_spread_scale": "medicane_hf.evaluation.calibration",
    "fit_temperature": "medicane_hf.evaluation.calibration",
    "radius_for_share": "medicane_hf.evaluation.calibration",
    "reliability_bins": "medicane_hf.evaluation.calibration",
    "ERROR_COLUMNS": "medicane_hf.evaluation.tracking",
    "tracking_errors": "medicane_hf.evaluation.tracking",
    "tracking_metrics": "medicane_hf.evaluation.tracking",
    "plot_confusion_matrix": "medicane_hf.evaluation.plots",
    "plot_pr_curve": "medicane_hf.evaluation.plots",
    "plot_reconstructions": "medicane_hf.evaluation.plots",
    "plot_tracking_errors": "medicane_hf.evaluation.plots",
    "plot_tracks_on_map": "medicane_hf.evaluation.plots",
    "plot_training_curves": "medicane_hf.evaluation.plots",
    "read_jsonl": "medicane_hf.evaluation.plots",
    "input_video": "medicane_hf.evaluation.reconstructions",
    "mask_to_video": "medicane_hf.evaluation.reconstructions",
    "masked_video": "medicane_hf.evaluation.reconstructions",
    "reconstruct_video": "medicane_hf.evaluation.reconstructions",
    "reconstruction_views": "medicane_hf.evaluation.reconstructions",
}

__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
