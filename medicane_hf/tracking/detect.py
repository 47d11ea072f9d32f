"""Hourly detection and centre per tile: the detector on every tile of an hour, the tracker on the tiles above the
threshold, through batch inference's own loop (`medicane_hf.inference.predict.predict`) and tables
(`medicane_hf.tasks.detection_table` / `tracking_table`: calibrated probabilities, centres in grid px and lon/lat).

The frames are packed once (`medicane_hf.inference.inputs`: ``build-dataset --no-tracks``, the store reused by
content); the detector and the tracker each read the packed clips normalised with their own statistics. Nothing
here knows about merging or tracks: `HourlyDetector.detect` returns one row per detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from accelerate import Accelerator
from torch.utils.data import Subset

from medicane_hf.configuration_medicane import DETECTION_THRESHOLD_RULES
from medicane_hf.inference.inputs import InferenceInput
from medicane_hf.inference.metrics import metric_context
from medicane_hf.inference.predict import predict
from medicane_hf.processing_medicane import DataContract
from medicane_hf.tasks import PredictionInputs, detection_table, get_task, positive_class, tracking_table

__all__ = ["HourlyDetector", "threshold_rule"]


def threshold_rule(threshold: float | None, config) -> str:
    """How tiles are chosen, in words (for summary.json and the closing lines)."""
    if threshold is not None:
        return f"calibrated Medicane probability >= {threshold:g} (--threshold)"
    saved = getattr(config, "detection_threshold", None)
    if saved is not None:
        return (
            f"calibrated Medicane probability >= {saved:g} (the detector's detection_threshold, chosen on "
            f"validation to maximise {DETECTION_THRESHOLD_RULES[config.detection_threshold_rule]})"
        )
    return "the detector's most probable class is medicane (it saved no detection_threshold)"


@dataclass
class HourlyDetector:
    """The detector and tracker on the packed clips of a folder of frames.

    Attributes:
        detector, tracker: the stages' models (`medicane_hf.inference.loading.load_model`).
        detections_input, tracking_input: the same clips (same order) normalised for each model.
        accelerator: one process (its device and mixed precision).
        threshold: see `threshold_rule`.
        batch_size: clips per forward.
    """

    detector: object
    tracker: object
    detections_input: InferenceInput
    tracking_input: InferenceInput
    accelerator: Accelerator
    threshold: float | None = None
    batch_size: int = 16

    def __post_init__(self) -> None:
        clips = self.detections_input.clips
        if not clips["clip_id"].equals(self.tracking_input.clips["clip_id"]):
            raise RuntimeError(
                "the detector's and the tracker's clips differ: the packed index is inconsistent"
            )
        self.clips = clips.reset_index(drop=True)
        self._contexts = {
            name: metric_context(
                model.config, DataContract.from_config(model.config), source.contract, source.baseline_xy
            )
            for name, model, source in (
                ("detection", self.detector, self.detections_input),
                ("tracking", self.tracker, self.tracking_input),
            )
        }
        if self.threshold is not None:
            # --threshold replaces the detector's saved one: the stage's own class rule (detection_table's
            # `predicted`, `classes_at_threshold`) then applies it, so there is one rule for a tile's class
            self._contexts["detection"].detection_threshold = float(self.threshold)
        self.grid = self._contexts["tracking"].grid
        self.forward_seconds = 0.0

    @property
    def hours(self) -> pd.DatetimeIndex:
        """Every hour with complete clips (their end times), sorted."""
        return pd.DatetimeIndex(sorted(pd.to_datetime(self.clips["end_time"]).unique()))

    def _predict(self, stage: str, model: object, source: InferenceInput, rows: np.ndarray) -> np.ndarray:
        result = predict(
            model,
            Subset(source.dataset, rows.tolist()),
            get_task(stage).predictions_fn,
            self.accelerator,
            batch_size=self.batch_size,
            num_workers=0,  # an hour is a handful of tiles: workers would take longer to start than to read
            progress=False,
        )
        self.forward_seconds += result.seconds
        return result.predictions

    def detect(self, hours: Sequence[pd.Timestamp]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The detections of `hours` and what was looked at.

        Returns:
            (detections, hour table): one row per tile above the threshold (``time``, ``detection_id``,
            ``clip_id``, ``tile_row``, ``tile_col``, ``x0``, ``y0``, ``probability``, ``x``, ``y`` grid px,
            ``lon``, ``lat``, ``on_grid``, ``spread_px``, ``spread_km``), by time then tile; one row per hour
            (``time``, ``tiles``, ``detections``).
        """
        end_times = pd.to_datetime(self.clips["end_time"])
        rows = np.flatnonzero(end_times.isin(pd.DatetimeIndex(hours)).to_numpy())
        clips = self.clips.iloc[rows].reset_index(drop=True)
        context = self._contexts["detection"]
        logits = self._predict("detection", self.detector, self.detections_input, rows)
        table = detection_table(PredictionInputs(logits, None, clips, context))
        medicane = context.class_names[positive_class(context.class_names)]
        probability = table[f"prob_{medicane}"].to_numpy(np.float64)
        chosen = table["predicted"].to_numpy() == positive_class(context.class_names)
        hour_table = pd.DataFrame({"time": end_times.iloc[rows].to_numpy(), "chosen": chosen})
        hour_table = hour_table.groupby("time").agg(tiles=("chosen", "size"), detections=("chosen", "sum"))
        hour_table = hour_table.reset_index()
        picked = clips[chosen].reset_index(drop=True)
        detections = picked[["end_time", "clip_id", "tile_row", "tile_col", "x0", "y0"]].rename(
            columns={"end_time": "time"}
        )
        detections.insert(
            1,
            "detection_id",
            [
                f"{t:%Y%m%d%H}-r{r}c{c}"
                for t, r, c in zip(detections["time"], picked["tile_row"], picked["tile_col"])
            ],
        )
        detections["probability"] = probability[chosen]
        if len(picked):
            centres = self._predict("tracking", self.tracker, self.tracking_input, rows[chosen])
            where = tracking_table(PredictionInputs(centres, None, picked, self._contexts["tracking"]))
        else:
            where = pd.DataFrame({c: pd.Series([], dtype=float) for c in ("pred_x_global", "pred_y_global")})
            where = where.assign(pred_lon=[], pred_lat=[], pred_on_grid=pd.Series([], dtype=bool))
        x, y = where["pred_x_global"].to_numpy(float), where["pred_y_global"].to_numpy(float)
        detections["x"], detections["y"] = x, y
        detections["lon"], detections["lat"] = (
            where["pred_lon"].to_numpy(float),
            where["pred_lat"].to_numpy(float),
        )
        detections["on_grid"] = where["pred_on_grid"].to_numpy(bool)
        spread = where["spread_px"].to_numpy(float) if "spread_px" in where else np.full(len(picked), np.nan)
        # sigma in km: the pixel's mean size there (pixels are not square off the sub-satellite point)
        dx_km, dy_km = self.grid.pixel_size_km(x, y) if len(x) else (np.array([]), np.array([]))
        detections["spread_px"] = spread
        detections["spread_km"] = spread * (np.asarray(dx_km) + np.asarray(dy_km)) / 2.0
        return detections, hour_table
