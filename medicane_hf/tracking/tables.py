"""The tables predict-track writes, and writing them so that a reader never sees half a file.

``detections.csv``: one row per tile above the threshold (`DETECTION_COLUMNS`): ``time`` (the clip's last frame,
on the hour, UTC), ``detection_id`` (``YYYYmmddHH-r<row>c<col>``), the tile (``clip_id``, ``tile_row``,
``tile_col``, offset ``x0``, ``y0`` grid px), ``probability`` (the calibrated Medicane probability), the centre
(``x``, ``y`` grid px; ``lon``, ``lat`` degrees; ``on_grid``), ``spread_px`` / ``spread_km`` (the tracker's
centre uncertainty, sigma; NaN without one), ``kept`` / ``merged_into`` (`medicane_hf.tracking.merge`) and
``track_id`` (``""``: not on a kept track).

``hours.csv``: every processed hour (`HOUR_COLUMNS`): ``time``, ``tiles`` predicted, ``detections``, ``storms``
(kept detections). It says which hours were looked at, including those without a detection.

``tracks.csv``: ``write_tracks``' layout (``time,start_time,end_time,lon,lat,name,storm_id,source``, which
``build-dataset`` reads; ``start_time``/``end_time`` = the track's first and last hour, ``source`` =
``predict-track``) plus `TRACK_EXTRA_COLUMNS` per point: ``probability``, ``spread_km``, ``tiles`` (detections
merged into the point), ``detection_id``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medicane_hf.data.tracks import TRACK_COLUMNS, write_tracks
from medicane_hf.jsonable import jsonable

__all__ = [
    "DETECTION_COLUMNS",
    "DETECTIONS_FILE",
    "HOURS_FILE",
    "HOUR_COLUMNS",
    "SUMMARY_FILE",
    "TRACKS_FILE",
    "TRACK_EXTRA_COLUMNS",
    "TRACK_SOURCE",
    "atomic_write",
    "read_detections",
    "read_hours",
    "track_points",
    "write_detections",
    "write_hours",
    "write_summary",
    "write_track_file",
]

DETECTIONS_FILE, HOURS_FILE, TRACKS_FILE, SUMMARY_FILE = (
    "detections.csv",
    "hours.csv",
    "tracks.csv",
    "summary.json",
)
DETECTION_COLUMNS = (
    "time", "detection_id", "clip_id", "tile_row", "tile_col", "x0", "y0", "probability",
    "x", "y", "lon", "lat", "on_grid", "spread_px", "spread_km", "kept", "merged_into", "track_id",
)  # fmt: skip
HOUR_COLUMNS = ("time", "tiles", "detections", "storms")
TRACK_EXTRA_COLUMNS = ("probability", "spread_km", "tiles", "detection_id")
TRACK_SOURCE = "predict-track"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(temporary path)`` then rename it over `path`: a reader sees the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def _csv(table: pd.DataFrame) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        out = table.copy()
        out["time"] = pd.to_datetime(out["time"]).dt.strftime(_TIME_FORMAT)
        out.to_csv(path, index=False)

    return write


def write_detections(detections: pd.DataFrame, path: Path) -> None:
    """``detections.csv`` (`DETECTION_COLUMNS`, rows by time then tile), atomically."""
    atomic_write(path, _csv(detections[list(DETECTION_COLUMNS)]))


def write_hours(hours: pd.DataFrame, path: Path) -> None:
    """``hours.csv`` (`HOUR_COLUMNS`), atomically."""
    atomic_write(path, _csv(hours[list(HOUR_COLUMNS)]))


def read_detections(path: Path) -> pd.DataFrame:
    """``detections.csv`` back with its types (times, booleans, ids as str)."""
    table = pd.read_csv(path, keep_default_na=False, na_values={"spread_px": [""], "spread_km": [""]})
    table["time"] = pd.to_datetime(table["time"])
    for column in ("detection_id", "clip_id", "merged_into", "track_id"):
        table[column] = table[column].astype(str)
    for column in ("kept", "on_grid"):
        table[column] = table[column].astype(str).str.lower() == "true"
    return table


def read_hours(path: Path) -> pd.DataFrame:
    """``hours.csv`` back (``time`` as datetimes)."""
    table = pd.read_csv(path)
    table["time"] = pd.to_datetime(table["time"])
    return table


def track_points(detections: pd.DataFrame) -> pd.DataFrame:
    """The points of the kept tracks in ``read_tracks``' tidy layout + `TRACK_EXTRA_COLUMNS`, by track then time."""
    kept = detections[detections["kept"].to_numpy(bool) & (detections["track_id"].astype(str) != "")]
    tiles = detections.groupby("merged_into").size()
    points = pd.DataFrame(
        {
            "storm_id": kept["track_id"].astype(str),
            "name": kept["track_id"].astype(str),
            "time": pd.to_datetime(kept["time"]),
            "lat": kept["lat"].astype(np.float64),
            "lon": kept["lon"].astype(np.float64),
            "source": TRACK_SOURCE,
            "probability": kept["probability"].astype(np.float64),
            "spread_km": kept["spread_km"].astype(np.float64),
            "tiles": kept["detection_id"].map(tiles).fillna(1).astype(np.int64),
            "detection_id": kept["detection_id"].astype(str),
        }
    ).sort_values(["storm_id", "time"], kind="stable")
    times = points.groupby("storm_id")["time"]
    points["window_start"] = times.transform("min").astype("datetime64[ns]")
    points["window_end"] = times.transform("max").astype("datetime64[ns]")
    return points[[*TRACK_COLUMNS, *TRACK_EXTRA_COLUMNS]].reset_index(drop=True)


def write_track_file(points: pd.DataFrame, path: Path) -> None:
    """``tracks.csv`` through ``write_tracks`` (+ `TRACK_EXTRA_COLUMNS`), atomically."""
    atomic_write(path, lambda temporary: write_tracks(points, temporary, extra_columns=TRACK_EXTRA_COLUMNS))


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """``summary.json`` (NaN as null), atomically."""
    text = json.dumps(jsonable(summary, non_finite_as_null=True), indent=2)
    atomic_write(path, lambda temporary: temporary.write_text(text + "\n"))
