"""Predicted tracks against a tracks file: hourly POD / FAR, centre errors in km, per-storm and false-track counts.

What counts as truth: the true storms' positions (``read_tracks``, interpolated to the processed hours by
``interpolate_positions``) inside their Medicane window and on the grid, at the hours that were processed (an
hour without a complete clip is not counted against the model). Each hour, the predicted track points and the
true positions are paired by ``scipy.optimize.linear_sum_assignment`` on their haversine distance; a pair closer
than ``match_radius_km`` is a hit. POD = hits / true positions, FAR = unmatched predictions / predictions
(the definitions of ``medicane_hf.evaluation.detection``, counted on points instead of tiles). The centre
error is the distance of each hit (mean, median, 90th percentile). A true storm is found when any of its
positions is hit (first: the first hit hour; hours: how many are hit); a predicted track is false when none
of its points hits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from medicane_hf.data.geo import SeviriGrid, haversine_km
from medicane_hf.data.tracks import interpolate_positions

__all__ = ["score_tracks", "true_positions"]

_HOUR = pd.Timedelta(hours=1)


def true_positions(truth: pd.DataFrame, hours: pd.DatetimeIndex, grid: SeviriGrid) -> pd.DataFrame:
    """The positions the predictions are scored against: ``storm_id, name, time, lon, lat`` at `hours`, inside the
    storm's window and on `grid`."""
    positions = interpolate_positions(truth, hours)
    positions = positions[positions["in_window"].to_numpy(bool)]
    x, y = grid.lonlat_to_pixel(positions["lon"].to_numpy(float), positions["lat"].to_numpy(float))
    positions = positions[grid.on_grid(x, y)]
    names = truth.drop_duplicates("storm_id").set_index("storm_id")["name"]
    positions = positions.assign(name=positions["storm_id"].map(names).fillna(""))
    return positions[["storm_id", "name", "time", "lon", "lat"]].reset_index(drop=True)


def _match_hour(pred: pd.DataFrame, true: pd.DataFrame, radius_km: float) -> list[tuple[int, int, float]]:
    """(pred index, true index, km) of the hits of one hour."""
    if not len(pred) or not len(true):
        return []
    distance = haversine_km(
        pred["lon"].to_numpy(float)[:, None], pred["lat"].to_numpy(float)[:, None],
        true["lon"].to_numpy(float)[None, :], true["lat"].to_numpy(float)[None, :],
    )  # fmt: skip
    rows, cols = linear_sum_assignment(np.where(distance <= radius_km, distance, 1e12))
    return [
        (int(pred.index[r]), int(true.index[c]), float(distance[r, c]))
        for r, c in zip(rows, cols)
        if distance[r, c] <= radius_km
    ]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def score_tracks(
    points: pd.DataFrame,
    truth: pd.DataFrame,
    hours: pd.DatetimeIndex,
    grid: SeviriGrid,
    match_radius_km: float,
) -> dict[str, Any]:
    """Scores of the predicted track points against the true tracks (see the module docstring).

    Args:
        points: predicted track points (`tables.track_points`), ``storm_id`` (the track id), ``time``, ``lon``, ``lat``.
        truth: the true tracks, ``read_tracks``' tidy table.
        hours: the hours that were processed (clip end times).
        grid: the frames' grid (a true position off it is not counted).
        match_radius_km: the hit radius.

    Returns:
        ``{"match_radius_km", "true_positions", "predicted_points", "hits", "misses", "false_alarms", "pod",
        "far", "centre_error_km": {"mean", "median", "p90"}, "storms": [per true storm: storm_id, name, found,
        first_true, first_found, delay_hours, hours_true, hours_found], "tracks": n, "false_tracks": n,
        "false_track_ids": [...]}``; NaN where undefined (no true position: POD; no prediction: FAR).
    """
    true = true_positions(truth, hours, grid)
    pred = points.reset_index(drop=True)
    pred_times, true_times = pd.to_datetime(pred["time"]), pd.to_datetime(true["time"])
    hits: list[tuple[int, int, float]] = []
    for time in sorted(set(pred_times) | set(true_times)):
        hits += _match_hour(pred[pred_times == time], true[true_times == time], match_radius_km)
    errors = np.array([km for _, _, km in hits], dtype=np.float64)
    hit_true = {t for _, t, _ in hits}
    hit_pred = {p for p, _, _ in hits}
    storms = []
    for storm_id, rows in true.groupby("storm_id", sort=True):
        found = rows[rows.index.isin(hit_true)]
        first_true = pd.Timestamp(rows["time"].min())
        first_found = pd.Timestamp(found["time"].min()) if len(found) else None
        storms.append(
            {
                "storm_id": storm_id,
                "name": str(rows["name"].iloc[0]),
                "found": bool(len(found)),
                "first_true": first_true,
                "first_found": first_found,
                "delay_hours": (first_found - first_true) / _HOUR if first_found is not None else None,
                "hours_true": int(len(rows)),
                "hours_found": int(len(found)),
            }
        )
    track_ids = sorted(set(pred["storm_id"].astype(str)))
    hitting = {str(pred["storm_id"].iloc[p]) for p in hit_pred}
    false_tracks = [t for t in track_ids if t not in hitting]
    n_hits = len(hits)
    return {
        "match_radius_km": float(match_radius_km),
        "true_positions": int(len(true)),
        "predicted_points": int(len(pred)),
        "hits": n_hits,
        "misses": int(len(true) - n_hits),
        "false_alarms": int(len(pred) - n_hits),
        "pod": _ratio(n_hits, len(true)),
        "far": _ratio(len(pred) - n_hits, len(pred)),
        "centre_error_km": {
            "mean": float(errors.mean()) if errors.size else float("nan"),
            "median": float(np.median(errors)) if errors.size else float("nan"),
            "p90": float(np.percentile(errors, 90)) if errors.size else float("nan"),
        },
        "storms": storms,
        "storms_found": sum(s["found"] for s in storms),
        "tracks": len(track_ids),
        "false_tracks": len(false_tracks),
        "false_track_ids": false_tracks,
    }
