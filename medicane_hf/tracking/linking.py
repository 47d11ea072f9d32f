"""Hourly storm centres -> tracks: frame-to-frame assignment gated by speed, short gaps bridged, short tracks dropped.

Hour by hour (in time order), the tracks still open and the storm centres of the hour are paired by
``scipy.optimize.linear_sum_assignment`` on the speed each pairing needs (haversine km from the track's last point
over the hours since it), so the pairing that asks the least total speed wins instead of a greedy nearest match.
A pair further apart than ``max_speed_kmh`` x hours + ``position_error_km`` (the centres' own error) is not
allowed. A centre that no track takes starts a new track; a
track with no centre for more than ``max_gap_hours`` hours is closed. At the end, tracks spanning less than
``min_duration_hours`` are dropped. Track ids (``P001`` ...) number the kept tracks by start time, then
longitude, so that the same centres always give the same ids.

The pass over the hours is written here: what it does between the assignments (gates, gaps, closing) is the
tracking rule itself, which no library has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from medicane_hf.data.geo import haversine_km
from medicane_hf.tracking.merge import merge_detections
from medicane_hf.tracking.settings import TrackingSettings

__all__ = ["TRACK_ID_PREFIX", "assign_tracks", "link_tracks"]

TRACK_ID_PREFIX = "P"
_HOUR = pd.Timedelta(hours=1)
_FORBIDDEN = 1e12  # a cost no allowed pairing reaches (speeds are km/h)


@dataclass
class _Track:
    rows: list[int] = field(default_factory=list)  # positions in the centres table, in time order
    last_time: pd.Timestamp | None = None
    last_lon: float = 0.0
    last_lat: float = 0.0

    def add(self, row: int, time: pd.Timestamp, lon: float, lat: float) -> None:
        self.rows.append(row)
        self.last_time, self.last_lon, self.last_lat = time, lon, lat


def _assign(open_tracks: list[_Track], time: pd.Timestamp, lon: np.ndarray, lat: np.ndarray,
            settings: TrackingSettings) -> dict[int, int]:  # fmt: skip
    """{centre index: open-track index} for the allowed pairings of minimum total speed."""
    if not open_tracks or not len(lon):
        return {}
    last_lon = np.array([t.last_lon for t in open_tracks])
    last_lat = np.array([t.last_lat for t in open_tracks])
    hours = np.array([(time - t.last_time) / _HOUR for t in open_tracks])
    distance = haversine_km(last_lon[:, None], last_lat[:, None], lon[None, :], lat[None, :])
    speed = distance / hours[:, None]
    allowed = distance <= settings.max_speed_kmh * hours[:, None] + settings.position_error_km
    tracks, centres = linear_sum_assignment(np.where(allowed, speed, _FORBIDDEN))
    return {int(c): int(t) for t, c in zip(tracks, centres) if allowed[t, c]}


def link_tracks(centres: pd.DataFrame, settings: TrackingSettings) -> pd.Series:
    """The track of every storm centre.

    Args:
        centres: one row per storm and hour (the kept detections): ``time`` (on the hour), ``lon``, ``lat``
            (degrees); any index, any order.
        settings: ``max_speed_kmh``, ``position_error_km``, ``max_gap_hours``, ``min_duration_hours``.

    Returns:
        str Series on `centres`' index: the track id, or ``""`` for a centre whose track was too short.
    """
    table = centres.reset_index(drop=True)
    times = pd.to_datetime(table["time"])
    lon, lat = table["lon"].to_numpy(float), table["lat"].to_numpy(float)
    max_wait = (settings.max_gap_hours + 1) * _HOUR
    open_tracks: list[_Track] = []
    closed: list[_Track] = []
    for time, group in table.groupby(times, sort=True):
        time = pd.Timestamp(time)
        still_open = []
        for track in open_tracks:
            (still_open if time - track.last_time <= max_wait else closed).append(track)
        open_tracks = still_open
        rows = group.index.to_numpy()
        # centres of one hour in a fixed order (by longitude), so ties in the assignment never depend on input order
        rows = rows[np.lexsort((lat[rows], lon[rows]))]
        taken = _assign(open_tracks, time, lon[rows], lat[rows], settings)
        for k, row in enumerate(rows):
            if k in taken:
                open_tracks[taken[k]].add(int(row), time, lon[row], lat[row])
            else:
                track = _Track()
                track.add(int(row), time, lon[row], lat[row])
                open_tracks.append(track)
    tracks = closed + open_tracks
    long_enough = [
        t for t in tracks
        if (times.iloc[t.rows[-1]] - times.iloc[t.rows[0]]) / _HOUR >= settings.min_duration_hours
    ]  # fmt: skip
    long_enough.sort(key=lambda t: (times.iloc[t.rows[0]], lon[t.rows[0]], lat[t.rows[0]]))
    ids = np.full(len(table), "", dtype=object)
    for number, track in enumerate(long_enough, start=1):
        ids[track.rows] = f"{TRACK_ID_PREFIX}{number:03d}"
    return pd.Series(ids, index=centres.index, dtype=str, name="track_id")


def assign_tracks(detections: pd.DataFrame, settings: TrackingSettings) -> pd.DataFrame:
    """Detections -> the same rows with ``kept``, ``merged_into`` (`merge_detections`) and ``track_id`` (the kept
    detections linked by `link_tracks`; ``""`` elsewhere)."""
    merged = merge_detections(detections, settings.merge_radius_km)
    kept = merged["kept"].to_numpy(bool)
    track_id = pd.Series("", index=merged.index, dtype=str)
    if kept.any():
        track_id[kept] = link_tracks(merged[kept], settings)
    return merged.assign(track_id=track_id)
