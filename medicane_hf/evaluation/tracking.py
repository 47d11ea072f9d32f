"""Tracking (centre-fixing) errors in pixels and km (DOMAIN.md section 6).

A tracking model predicts the storm centre at a clip's last frame in *tile*
pixels (x, y in 0..tile_size-1). The error in km is measured on the global grid:
tile pixel + tile offset -> global pixel -> lon/lat (``SeviriGrid.pixel_to_lonlat``,
rows counted from the top, so none of the old system's one-row error) ->
haversine on a sphere of radius 6371.0088 km. The pixel error is the plain
Euclidean distance in pixels, which is the same in tile and global pixels.

A prediction off the grid is kept (its km error is still a distance on the
Earth); one off the Earth's disc gets NaN lon/lat and a NaN km error, which
``tracking_metrics`` counts separately instead of averaging.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from medicane_hf.data.geo import SeviriGrid, haversine_km

__all__ = ["ERROR_COLUMNS", "tracking_errors", "tracking_metrics"]

ERROR_COLUMNS = [
    "pred_x",
    "pred_y",
    "target_x",
    "target_y",
    "tile_offset_x",
    "tile_offset_y",
    "pred_x_global",
    "pred_y_global",
    "target_x_global",
    "target_y_global",
    "pred_lon",
    "pred_lat",
    "target_lon",
    "target_lat",
    "pred_on_grid",
    "err_px",
    "err_km",
]
"""Columns of ``tracking_errors`` (after an optional leading ``clip_id``)."""


def _xy_array(values: Any, name: str) -> npt.NDArray[np.float64]:
    """[N, 2] float64 (x, y) pairs from an array-like or a torch tensor."""
    if hasattr(values, "detach"):  # a torch tensor, maybe bf16 or on a GPU
        values = values.detach().float().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be [N, 2] (x, y) pixels, got shape {arr.shape}")
    return arr


def tracking_errors(
    pred_xy_tile: npt.ArrayLike,
    target_xy_tile: npt.ArrayLike,
    tile_offsets: npt.ArrayLike,
    grid: SeviriGrid,
    *,
    clip_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-clip centre errors.

    Args:
        pred_xy_tile: [N, 2] predicted centre (x, y) in tile pixels (floats; may lie off the tile).
        target_xy_tile: [N, 2] true centre (x, y) in tile pixels.
        tile_offsets: [N, 2] tile offset (x0, y0) in global grid pixels.
        grid: the pixel grid of the frames.
        clip_ids: optional N ids, stored as a leading ``clip_id`` column.

    Returns:
        DataFrame with one row per clip and the columns ``ERROR_COLUMNS``: tile and
        global pixels (global = tile + offset), lon/lat in degrees of both points,
        ``pred_on_grid`` (the prediction lies on the grid), ``err_px`` (Euclidean,
        pixels) and ``err_km`` (haversine, km; NaN where a point is off the Earth's disc).

    Raises:
        ValueError: the arrays are not [N, 2], their N differ, a target or offset is not
            finite (row named), or ``clip_ids`` has the wrong length.
    """
    pred = _xy_array(pred_xy_tile, "pred_xy_tile")
    target = _xy_array(target_xy_tile, "target_xy_tile")
    offsets = _xy_array(tile_offsets, "tile_offsets")
    if not (pred.shape[0] == target.shape[0] == offsets.shape[0]):
        raise ValueError(
            f"row counts differ: pred_xy_tile {pred.shape[0]}, target_xy_tile {target.shape[0]}, "
            f"tile_offsets {offsets.shape[0]}"
        )
    for name, arr in (("target_xy_tile", target), ("tile_offsets", offsets)):
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if bad.size:
            raise ValueError(f"{name}: row {int(bad[0])} is not finite: {arr[bad[0]].tolist()}")

    pred_g = pred + offsets
    target_g = target + offsets
    pred_lon, pred_lat = grid.pixel_to_lonlat(pred_g[:, 0], pred_g[:, 1])
    target_lon, target_lat = grid.pixel_to_lonlat(target_g[:, 0], target_g[:, 1])

    columns: dict[str, Any] = {}
    if clip_ids is not None:
        if len(clip_ids) != pred.shape[0]:
            raise ValueError(f"clip_ids has {len(clip_ids)} entries for {pred.shape[0]} rows")
        columns["clip_id"] = list(clip_ids)
    columns.update(
        pred_x=pred[:, 0],
        pred_y=pred[:, 1],
        target_x=target[:, 0],
        target_y=target[:, 1],
        tile_offset_x=offsets[:, 0],
        tile_offset_y=offsets[:, 1],
        pred_x_global=pred_g[:, 0],
        pred_y_global=pred_g[:, 1],
        target_x_global=target_g[:, 0],
        target_y_global=target_g[:, 1],
        pred_lon=pred_lon,
        pred_lat=pred_lat,
        target_lon=target_lon,
        target_lat=target_lat,
        pred_on_grid=grid.on_grid(pred_g[:, 0], pred_g[:, 1]),
        err_px=np.hypot(pred[:, 0] - target[:, 0], pred[:, 1] - target[:, 1]),
        err_km=haversine_km(pred_lon, pred_lat, target_lon, target_lat),
    )
    return pd.DataFrame(columns)


def _summary(values: npt.NDArray[np.float64], unit: str) -> dict[str, float]:
    """mean, median, RMS and 90th percentile of the finite values; NaN when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {f"{stat}_{unit}": math.nan for stat in ("mean", "median", "rms", "p90")}
    return {
        f"mean_{unit}": float(np.mean(finite)),
        f"median_{unit}": float(np.median(finite)),
        f"rms_{unit}": float(np.sqrt(np.mean(finite**2))),
        # linear interpolation between order statistics (numpy's default, as pandas' quantile)
        f"p90_{unit}": float(np.percentile(finite, 90)),
    }


def _error_column(errors: pd.DataFrame | Mapping[str, Any], key: str) -> npt.NDArray[np.float64] | None:
    if key not in errors:
        return None
    arr = np.asarray(errors[key], dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"errors[{key!r}] must be 1-D [N], got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError(f"errors[{key!r}]: row {int(np.flatnonzero(arr < 0)[0])} is negative")
    return arr


def tracking_metrics(
    errors: pd.DataFrame | Mapping[str, Any] | None = None,
    *,
    err_px: npt.ArrayLike | None = None,
    err_km: npt.ArrayLike | None = None,
) -> dict[str, float | int]:
    """Summary of centre errors: mean, median, RMS and 90th percentile, in km and in pixels.

    Args:
        errors: the DataFrame of ``tracking_errors`` (or any mapping) with ``err_px``
            and/or ``err_km`` columns; or leave it None and pass the arrays.
        err_px, err_km: [N] errors in pixels / km (used when ``errors`` is None).

    Returns:
        ``count`` (rows), and for each unit u present (``px``, ``km``): ``mean_u``,
        ``median_u``, ``rms_u`` (root mean square), ``p90_u`` over the finite errors,
        and ``nonfinite_u`` (errors left out because NaN: a point off the Earth's
        disc). With no rows every statistic is NaN.

    Raises:
        ValueError: neither unit given, both ``errors`` and arrays given, lengths differ,
            or an error is negative.
    """
    if errors is None:
        errors = {k: v for k, v in (("err_px", err_px), ("err_km", err_km)) if v is not None}
    elif err_px is not None or err_km is not None:
        raise ValueError("tracking_metrics: give either an errors table or err_px/err_km arrays, not both")
    arrays = {unit: _error_column(errors, f"err_{unit}") for unit in ("km", "px")}
    arrays = {unit: arr for unit, arr in arrays.items() if arr is not None}
    if not arrays:
        raise ValueError("tracking_metrics: no 'err_px' or 'err_km' errors given")
    lengths = {arr.shape[0] for arr in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(
            f"tracking_metrics: err_px and err_km lengths differ: { {u: a.shape[0] for u, a in arrays.items()} }"
        )

    metrics: dict[str, float | int] = {"count": int(lengths.pop())}
    for unit, arr in arrays.items():
        metrics.update(_summary(arr, unit))
        metrics[f"nonfinite_{unit}"] = int(np.count_nonzero(~np.isfinite(arr)))
    return metrics
