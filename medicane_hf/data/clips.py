"""Tiles, clip windows, continuity, frame and clip labels, tracking targets.

A *clip* is ``num_frames`` (16) frames at ``frame_interval_minutes`` (5) steps whose last
frame is at minute ``end_minute`` (0) of an hour; it is cut into tiles of a ``TileLayout``.
Everything here is vectorised over clip end times, frames and tiles: a year is about 105k
frames x 12 tiles, so there is no Python loop over clips x frames x storms.

Conventions (also in docs/DESIGN.md):

- Continuity is checked on *expected* times (end time - k x interval), never on row
  positions, so a gap cannot hide inside a clip (the old system built clips by row index
  and let gaps of up to an hour through). A frame is missing when it is absent from the
  store or marked invalid (``store.valid`` False: black or unreadable).
- ``max_missing_frames = N`` fills up to N missing frames with the nearest available frame
  of the same clip window (ties: the earlier frame); the clip keeps the filled frame's store
  index in ``frame_indices`` and counts it in ``n_filled``. More than N missing: skipped,
  with reason ``no_frames`` (the whole window lies in a gap of the archive),
  ``missing_frames`` (some frame absent) or ``invalid_frames`` (all present, some invalid).
- Labels use the expected frame times (a filled frame stands in for its expected time).
- Point-in-tile, pixel-edge convention: pixel centres sit at integer coordinates, so tile
  ``(x0, y0)`` covers ``x0 - 0.5 <= x < x0 + tile_size - 0.5`` and the same in y. The west
  and north edges are inside, the east and south edges outside, so a point on the edge
  shared by two abutting tiles belongs to exactly one of them. Points off the grid are
  never clamped: they simply fall in no tile.
- Time rule (``time_rule``): ``interpolate`` (default) interpolates the hourly track
  linearly at the exact frame time; ``floor`` takes the track point of the hour at or before
  the frame; ``nearest`` takes the nearest hour, half up (12:30 -> 13:00, unlike pandas'
  half-to-even ``round('h')`` that the old system used, which sends 12:30 to 12:00 but
  13:30 to 14:00). With ``use_window`` only positions inside the storm's Medicane window
  count (judged at the frame time for ``interpolate``, at the track point's hour otherwise).
- Track holes: ``interpolate`` never bridges two track points more than
  ``max_track_gap_minutes`` (120) apart. Hourly tracks have such holes where rows were cut
  while the storm was off the grid (Ianos, 7001702 in manos_medicanes_only.csv, jumps 6 h
  and 13 h along the south edge); a straight line across the hole would invent a storm in
  the edge tiles for up to 13 h. Frames inside a hole have no position (negative), the
  track points themselves still count. 0 bridges every hole; a track coarser than the limit
  (e.g. 6-hourly) triggers a warning naming the storms.
- Clip label: 1 when at least ``min_positive_frames`` frames have a storm in the tile; with
  ``neighbour_class`` a negative tile that is an 8-neighbour (in the tile grid) of a
  positive tile of the same clip time is 2.
- Tracking target: the centre at the last frame in tile pixels (``x - x0``, ``y - y0``);
  ``has_target`` only when a storm is in the tile at the last frame. Several storms in the
  tile at the last frame: the one with the most positive frames in this clip wins, ties go
  to the one nearest the tile centre, then to the smaller storm id. ``n_storms`` is the
  number of storms in the tile at the last frame. ``storm_id`` is the target storm, or for
  a tile with positive frames but none at the last frame the storm with the most positive
  frames (same tie rules, distance taken at its last position in the clip), else "".
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.tracks import interpolate_positions

__all__ = [
    "CLASS_NAMES",
    "SKIP_REASONS",
    "TIME_RULES",
    "ClipSettings",
    "ClipWindows",
    "TileLayout",
    "assemble_windows",
    "candidate_end_times",
    "candidate_start_times",
    "label_tiles",
    "storm_pixel_positions",
]

TIME_RULES = ("interpolate", "floor", "nearest")
SKIP_REASONS = ("no_frames", "missing_frames", "invalid_frames", "split_boundary")
CLASS_NAMES = ("background", "medicane", "neighbouring")
_HOUR_NS = np.int64(3_600_000_000_000)
_MINUTE_NS = np.int64(60_000_000_000)


# ---- tiles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileLayout:
    """Square tiles laid on the grid at fixed strides (pixels); the defaults give 6 x 2 tiles on 1290 x 420."""

    tile_size: int = 224
    stride_x: int = 213
    stride_y: int = 196

    def __post_init__(self) -> None:
        if min(self.tile_size, self.stride_x, self.stride_y) < 1:
            raise ValueError(f"TileLayout: tile_size and strides must be >= 1, got {self}")

    def _starts(self, length: int, stride: int, axis: str) -> list[int]:
        if length < self.tile_size:
            raise ValueError(
                f"TileLayout: the grid {axis} ({length} px) is smaller than a tile ({self.tile_size} px)"
            )
        return list(range(0, length - self.tile_size + 1, stride))

    def shape(self, width: int, height: int) -> tuple[int, int]:
        """(n_rows, n_cols) of the tile grid."""
        return len(self._starts(height, self.stride_y, "height")), len(
            self._starts(width, self.stride_x, "width")
        )

    def offsets(self, width: int, height: int) -> list[tuple[int, int]]:
        """Tile offsets ``(x0, y0)`` in pixels, row-major (y outer); pixels beyond the last tile are uncovered."""
        xs = self._starts(width, self.stride_x, "width")
        ys = self._starts(height, self.stride_y, "height")
        return [(x0, y0) for y0 in ys for x0 in xs]

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TileLayout:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TileLayout.from_dict: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**{k: int(v) for k, v in d.items()})


# ---- settings -----------------------------------------------------------------------------


@dataclass
class ClipSettings:
    """How clips are cut, checked and labelled (see the module docstring for each rule)."""

    num_frames: int = 16
    frame_interval_minutes: int = 5
    end_minute: int = 0
    max_missing_frames: int = 0
    min_positive_frames: int = 6
    time_rule: str = "interpolate"
    use_window: bool = True
    neighbour_class: bool = False
    max_track_gap_minutes: int = 120

    def __post_init__(self) -> None:
        if self.time_rule not in TIME_RULES:
            raise ValueError(f"ClipSettings: time_rule must be one of {TIME_RULES}, got {self.time_rule!r}")
        if self.num_frames < 1 or self.frame_interval_minutes < 1:
            raise ValueError("ClipSettings: num_frames and frame_interval_minutes must be >= 1")
        if not 0 <= self.end_minute < 60 or self.end_minute % self.frame_interval_minutes:
            raise ValueError(
                f"ClipSettings: end_minute {self.end_minute} must be in [0, 60) and a multiple of "
                f"frame_interval_minutes ({self.frame_interval_minutes})"
            )
        if not 0 <= self.max_missing_frames < self.num_frames:
            raise ValueError(f"ClipSettings: max_missing_frames must be in [0, {self.num_frames - 1}]")
        if not 1 <= self.min_positive_frames <= self.num_frames:
            raise ValueError(f"ClipSettings: min_positive_frames must be in [1, {self.num_frames}]")
        if self.max_track_gap_minutes < 0:
            raise ValueError(
                f"ClipSettings: max_track_gap_minutes must be >= 0 (0 = no limit), got {self.max_track_gap_minutes}"
            )

    @property
    def interval_ns(self) -> np.int64:
        return np.int64(self.frame_interval_minutes) * _MINUTE_NS

    @property
    def span(self) -> pd.Timedelta:
        """Time from the first to the last frame of a clip (75 min by default)."""
        return pd.Timedelta(minutes=(self.num_frames - 1) * self.frame_interval_minutes)

    @property
    def max_track_gap(self) -> pd.Timedelta | None:
        """Longest track hole ``interpolate`` bridges; None when ``max_track_gap_minutes`` is 0 (no limit)."""
        return pd.Timedelta(minutes=self.max_track_gap_minutes) if self.max_track_gap_minutes else None

    @property
    def num_classes(self) -> int:
        return 3 if self.neighbour_class else 2

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES[: self.num_classes])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- clip windows and continuity ----------------------------------------------------------


def _to_ns(times: Any) -> npt.NDArray[np.int64]:
    return np.asarray(times, dtype="datetime64[ns]").astype(np.int64)


def candidate_end_times(store_times: Any, settings: ClipSettings) -> npt.NDArray[np.datetime64]:
    """Every time at minute ``end_minute`` whose whole clip window lies inside [first, last] store time.

    Returns:
        datetime64[ns] [n], ascending (hourly steps with the defaults).
    """
    t = _to_ns(store_times)
    if not len(t):
        return np.array([], dtype="datetime64[ns]")
    span = np.int64(settings.num_frames - 1) * settings.interval_ns
    offset = np.int64(settings.end_minute) * _MINUTE_NS
    first_end = t.min() + span
    # ceil to the next hour + end_minute
    first = -((-(first_end - offset)) // _HOUR_NS) * _HOUR_NS + offset
    ends = np.arange(first, t.max() + 1, _HOUR_NS, dtype=np.int64)
    return ends.astype("datetime64[ns]")


def candidate_start_times(
    store_times: Any, settings: ClipSettings, stride_frames: int
) -> npt.NDArray[np.datetime64]:
    """Start times of unlabelled windows: every ``stride_frames`` frame steps from the first store time.

    Returns:
        datetime64[ns] [n]: starts whose whole window lies inside [first, last] store time.
    """
    if stride_frames < 1:
        raise ValueError(f"stride_frames must be >= 1, got {stride_frames}")
    t = _to_ns(store_times)
    if not len(t):
        return np.array([], dtype="datetime64[ns]")
    span = np.int64(settings.num_frames - 1) * settings.interval_ns
    starts = np.arange(
        t.min(), t.max() - span + 1, np.int64(stride_frames) * settings.interval_ns, dtype=np.int64
    )
    return starts.astype("datetime64[ns]")


@dataclass
class ClipWindows:
    """Clip windows (one per clip time, shared by all tiles) after the continuity check.

    Attributes:
        expected_times: datetime64[ns] [n, T], the frame times a complete clip would have.
        frame_indices: int64 [n, T] store indices (filled frames repeat a neighbour; -1 where a
            skipped clip has no frame).
        n_filled: int64 [n] frames filled by the nearest frame.
        skip_reason: object [n], "" for a kept clip, else one of ``SKIP_REASONS``.
    """

    expected_times: npt.NDArray[np.datetime64]
    frame_indices: npt.NDArray[np.int64]
    n_filled: npt.NDArray[np.int64]
    skip_reason: npt.NDArray[np.object_]

    @property
    def keep(self) -> npt.NDArray[np.bool_]:
        return self.skip_reason == ""

    @property
    def end_times(self) -> npt.NDArray[np.datetime64]:
        return self.expected_times[:, -1]

    def __len__(self) -> int:
        return len(self.expected_times)

    def subset(self, mask: npt.NDArray[np.bool_]) -> ClipWindows:
        return ClipWindows(
            self.expected_times[mask], self.frame_indices[mask], self.n_filled[mask], self.skip_reason[mask]
        )


def _lookup(store_times_ns: npt.NDArray[np.int64], query_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Store index of each query time, -1 where absent (store times sorted ascending)."""
    pos = np.searchsorted(store_times_ns, query_ns)
    pos_c = np.minimum(pos, max(len(store_times_ns) - 1, 0))
    found = (
        (pos < len(store_times_ns)) & (store_times_ns[pos_c] == query_ns) if len(store_times_ns) else pos < 0
    )
    return np.where(found, pos_c, -1).astype(np.int64)


def assemble_windows(
    store_times: Any,
    store_valid: Any,
    reference_times: Any,
    settings: ClipSettings,
    *,
    anchor: str = "end",
) -> ClipWindows:
    """Look up each clip's frames by expected time and apply the missing-frame policy.

    Args:
        store_times: datetime64 [N] sorted store times.
        store_valid: bool [N], False for black/unreadable frames (they count as missing).
        reference_times: datetime64 [n], the last (``anchor="end"``) or first (``"start"``)
            frame time of each clip.
        settings: ``num_frames``, ``frame_interval_minutes`` and ``max_missing_frames`` are used.

    Returns:
        ``ClipWindows`` with one row per reference time.
    """
    t_store = _to_ns(store_times)
    valid = np.asarray(store_valid, dtype=bool)
    ref = _to_ns(reference_times)
    steps = np.arange(settings.num_frames, dtype=np.int64) * settings.interval_ns
    if anchor == "end":
        expected = ref[:, None] - steps[::-1][None, :]
    elif anchor == "start":
        expected = ref[:, None] + steps[None, :]
    else:
        raise ValueError(f"anchor must be 'end' or 'start', got {anchor!r}")
    idx = _lookup(t_store, expected.ravel()).reshape(expected.shape)
    present = idx >= 0
    available = present & valid[np.maximum(idx, 0)] if len(valid) else present
    n_missing = (~available).sum(axis=1)

    keep = (n_missing <= settings.max_missing_frames) & (n_missing < settings.num_frames)
    frame_indices = np.where(available, idx, -1)
    fill = np.flatnonzero(keep & (n_missing > 0))  # only these need the [T, T] search
    if len(fill):
        # nearest available position in the same window; argmin takes the earlier one on ties
        positions = np.arange(settings.num_frames)
        distance = np.abs(positions[:, None] - positions[None, :]).astype(np.float64)  # [T(k), T(j)]
        cost = np.where(available[fill, None, :], distance[None, :, :], np.inf)  # [n_fill, k, j]
        nearest = cost.argmin(axis=2)  # [n_fill, k]
        filled = np.take_along_axis(idx[fill], nearest, axis=1)
        frame_indices[fill] = np.where(available[fill], idx[fill], filled)
    reason = np.full(len(ref), "", dtype=object)
    reason[~keep & (~present).any(axis=1)] = "missing_frames"
    reason[~keep & present.all(axis=1)] = "invalid_frames"
    # a window inside a long gap is told apart so that archive gaps do not swamp the counts
    reason[~present.any(axis=1)] = "no_frames"
    return ClipWindows(
        expected_times=expected.astype("datetime64[ns]"),
        frame_indices=frame_indices.astype(np.int64),
        n_filled=np.where(keep, n_missing, 0).astype(np.int64),
        skip_reason=reason,
    )


# ---- storm positions ----------------------------------------------------------------------


def _hour_positions(tracks: pd.DataFrame, times_ns: npt.NDArray[np.int64], rule: str) -> pd.DataFrame:
    """Positions taken from the track point of one hour per frame time (floor or nearest half up)."""
    if rule == "floor":
        hours = (times_ns // _HOUR_NS) * _HOUR_NS
    else:  # nearest, half up: 12:30 -> 13:00
        hours = ((times_ns + _HOUR_NS // 2) // _HOUR_NS) * _HOUR_NS
    query = pd.DataFrame(
        {"time": times_ns.astype("datetime64[ns]"), "track_time": hours.astype("datetime64[ns]")}
    )
    points = tracks[["storm_id", "time", "lat", "lon", "window_start", "window_end"]].rename(
        columns={"time": "track_time"}
    )
    merged = query.merge(points, on="track_time", how="inner")
    in_window = (merged["track_time"] >= merged["window_start"]) & (
        merged["track_time"] <= merged["window_end"]
    )
    return pd.DataFrame(
        {
            "storm_id": merged["storm_id"].astype(str),
            "time": merged["time"],
            "lat": merged["lat"],
            "lon": merged["lon"],
            "in_window": in_window.to_numpy(),
        }
    )


def _warn_coarse_tracks(tracks: pd.DataFrame, max_gap: pd.Timedelta) -> None:
    """Warn when a storm's typical time step exceeds ``max_gap``: almost none of its frames would get a position."""
    ordered = tracks.sort_values(["storm_id", "time"])
    steps = ordered.groupby("storm_id")["time"].diff()  # NaT at each storm's first point: median skips it
    median = steps.groupby(ordered["storm_id"].to_numpy()).median()
    coarse = median[median > max_gap]
    if len(coarse):
        shown = ", ".join(f"{sid} ({step})" for sid, step in coarse.head(5).items())
        warnings.warn(
            f"{len(coarse)} storm(s) have a typical track step longer than the largest hole interpolation "
            f"bridges ({max_gap}): {shown}{', ...' if len(coarse) > 5 else ''}; their frames between track "
            "points get no position. Raise max_track_gap_minutes (--max-track-gap) for coarse tracks.",
            stacklevel=3,
        )


def storm_pixel_positions(
    tracks: pd.DataFrame,
    times: Any,
    grid: SeviriGrid,
    time_rule: str,
    *,
    max_gap: pd.Timedelta | str | None = None,
) -> pd.DataFrame:
    """Every storm's position at each frame time, in degrees and in float grid pixels.

    Args:
        tracks: tidy table from ``read_tracks``.
        times: datetime64 frame times (duplicates merged).
        grid: pixel grid; positions are projected once here, never clamped.
        time_rule: one of ``TIME_RULES``.
        max_gap: ``interpolate`` only: track points further apart than this are not bridged
            (``ClipSettings.max_track_gap``); None bridges every hole.

    Returns:
        DataFrame ``storm_id, time, lat, lon, in_window, x, y`` (x, y float pixels; off-grid
        points keep their out-of-range values, NaN where the satellite cannot see them).
    """
    if time_rule not in TIME_RULES:
        raise ValueError(f"time_rule must be one of {TIME_RULES}, got {time_rule!r}")
    times_ns = np.unique(_to_ns(times))
    if time_rule == "interpolate":
        if max_gap is not None:
            _warn_coarse_tracks(tracks, pd.Timedelta(max_gap))
        positions = interpolate_positions(tracks, times_ns.astype("datetime64[ns]"), max_gap=max_gap)
    else:
        positions = _hour_positions(tracks, times_ns, time_rule)
    x, y = grid.lonlat_to_pixel(positions["lon"].to_numpy(), positions["lat"].to_numpy())
    positions = positions.reset_index(drop=True)
    positions["x"] = np.asarray(x, dtype=np.float64)
    positions["y"] = np.asarray(y, dtype=np.float64)
    return positions


# ---- labels and targets -------------------------------------------------------------------


def _inside_tiles(x: np.ndarray, y: np.ndarray, offsets: np.ndarray, tile_size: int) -> np.ndarray:
    """bool [n_points, n_tiles]: point inside tile, west/north edges in, east/south edges out."""
    x0 = offsets[None, :, 0] - 0.5
    y0 = offsets[None, :, 1] - 0.5
    xs, ys = x[:, None], y[:, None]
    return (xs >= x0) & (xs < x0 + tile_size) & (ys >= y0) & (ys < y0 + tile_size)


def _neighbour_labels(positive: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """[n, n_tiles] bool positive -> int labels with 2 for 8-neighbours of a positive tile."""
    grid = positive.reshape(-1, n_rows, n_cols)
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)))
    near = np.zeros_like(grid)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                near |= padded[:, 1 + dy : 1 + dy + n_rows, 1 + dx : 1 + dx + n_cols]
    labels = np.where(grid, 1, np.where(near, 2, 0))
    return labels.reshape(positive.shape)


def _storm_candidates(
    pos_time: np.ndarray,
    pos_storm: np.ndarray,
    pos_tile: np.ndarray,
    pos_x: np.ndarray,
    pos_y: np.ndarray,
    pos_row: np.ndarray,
    clip_last: np.ndarray,
    num_frames: int,
) -> pd.DataFrame:
    """(clip, tile, storm) triples with the storm's positive-frame count in that clip.

    ``clip_last`` is each clip's last time index, ascending; ``clip`` in the result indexes it. A position at time index t
    belongs to every clip whose last index L has L - T + 1 <= t <= L.
    """
    lo = np.searchsorted(clip_last, pos_time, "left")
    hi = np.searchsorted(clip_last, pos_time + num_frames - 1, "right")
    n_per = hi - lo
    rep = np.repeat(np.arange(len(pos_time)), n_per)
    clip = np.repeat(lo, n_per) + (np.arange(n_per.sum()) - np.repeat(np.cumsum(n_per) - n_per, n_per))
    table = pd.DataFrame(
        {
            "clip": clip,
            "tile": pos_tile[rep],
            "storm": pos_storm[rep],
            "time": pos_time[rep],
            "x": pos_x[rep],
            "y": pos_y[rep],
            "row": pos_row[rep],
        }
    )
    table["at_last"] = table["time"].to_numpy() == clip_last[table["clip"].to_numpy()]
    counts = table.groupby(["clip", "tile", "storm"], sort=False)["time"].transform("size")
    table["count"] = counts.to_numpy()
    # keep the storm's latest position in the clip (its last-frame position when it has one)
    table = table.sort_values(["clip", "tile", "storm", "time"]).drop_duplicates(
        ["clip", "tile", "storm"], keep="last"
    )
    return table


def label_tiles(
    expected_times: Any,
    positions: pd.DataFrame,
    offsets: list[tuple[int, int]],
    tile_shape: tuple[int, int],
    settings: ClipSettings,
    tile_size: int,
) -> dict[str, np.ndarray]:
    """Labels and targets of every (clip, tile).

    Args:
        expected_times: datetime64 [n, T] expected frame times of each clip (any row order; all
            on one ``frame_interval_minutes`` time axis).
        positions: from ``storm_pixel_positions`` (covering those times).
        offsets: tile offsets ``(x0, y0)``, row-major.
        tile_shape: (n_rows, n_cols) of the tile grid.
        settings: labelling rules.
        tile_size: tile side in pixels.

    Returns:
        dict of arrays shaped [n, n_tiles]: ``n_positive_frames`` (int64), ``label`` (int64),
        ``storm_id`` (object), ``n_storms`` (int64), ``has_target`` (bool), ``target_x``,
        ``target_y`` (float64 tile pixels), ``target_lat``, ``target_lon`` (float64 degrees).
    """
    exp = _to_ns(expected_times).reshape(-1, settings.num_frames)
    n_clips, n_tiles = len(exp), len(offsets)
    offs = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    out: dict[str, np.ndarray] = {
        "n_positive_frames": np.zeros((n_clips, n_tiles), np.int64),
        "label": np.zeros((n_clips, n_tiles), np.int64),
        "storm_id": np.full((n_clips, n_tiles), "", dtype=object),
        "n_storms": np.zeros((n_clips, n_tiles), np.int64),
        "has_target": np.zeros((n_clips, n_tiles), bool),
        "target_x": np.full((n_clips, n_tiles), np.nan),
        "target_y": np.full((n_clips, n_tiles), np.nan),
        "target_lat": np.full((n_clips, n_tiles), np.nan),
        "target_lon": np.full((n_clips, n_tiles), np.nan),
    }
    if n_clips == 0:
        return out
    if settings.use_window:
        positions = positions[positions["in_window"].to_numpy(dtype=bool)]
    t0 = exp.min()
    step = settings.interval_ns
    clip_tidx = (exp - t0) // step  # [n, T] on one regular time axis
    n_axis = int(clip_tidx.max()) + 1

    p_time_ns = _to_ns(positions["time"].to_numpy())
    on_axis = ((p_time_ns - t0) % step == 0) & (p_time_ns >= t0) & ((p_time_ns - t0) // step < n_axis)
    positions = positions[on_axis]
    p_tidx = (p_time_ns[on_axis] - t0) // step
    px, py = positions["x"].to_numpy(np.float64), positions["y"].to_numpy(np.float64)
    inside = _inside_tiles(px, py, offs, tile_size)  # [n_pos, n_tiles]
    pos_i, tile_i = np.nonzero(inside)

    # storms per (time, tile), then gathered per clip frame
    count = np.zeros((n_axis, n_tiles), np.int16)  # int16: a multi-year axis stays small
    np.add.at(count, (p_tidx[pos_i], tile_i), 1)
    frame_positive = count[clip_tidx] > 0  # [n, T, n_tiles]
    out["n_positive_frames"] = frame_positive.sum(axis=1).astype(np.int64)
    out["n_storms"] = count[clip_tidx[:, -1]].astype(np.int64)
    positive = out["n_positive_frames"] >= settings.min_positive_frames
    if settings.neighbour_class:
        out["label"] = _neighbour_labels(positive, *tile_shape).astype(np.int64)
    else:
        out["label"] = positive.astype(np.int64)

    if len(pos_i):
        order = np.argsort(clip_tidx[:, -1], kind="stable")  # candidate search needs ascending last times
        storm_codes, storm_names = pd.factorize(positions["storm_id"].to_numpy(), sort=True)
        cand = _storm_candidates(
            p_tidx[pos_i],
            storm_codes[pos_i],
            tile_i,
            px[pos_i],
            py[pos_i],
            pos_i,
            clip_tidx[order, -1],
            settings.num_frames,
        )
        cand["clip"] = order[cand["clip"].to_numpy()]
        centre = offs[cand["tile"].to_numpy()] + (tile_size - 1) / 2.0
        cand["dist"] = np.hypot(cand["x"].to_numpy() - centre[:, 0], cand["y"].to_numpy() - centre[:, 1])
        cand = cand.sort_values(
            ["clip", "tile", "at_last", "count", "dist", "storm"],
            ascending=[True, True, False, False, True, True],
        ).drop_duplicates(["clip", "tile"], keep="first")
        c, t = cand["clip"].to_numpy(), cand["tile"].to_numpy()
        out["storm_id"][c, t] = np.asarray(storm_names, dtype=object)[cand["storm"].to_numpy()]
        target = cand["at_last"].to_numpy()
        ct, tt = c[target], t[target]
        rows = cand["row"].to_numpy()[target]
        out["has_target"][ct, tt] = True
        out["target_x"][ct, tt] = cand["x"].to_numpy()[target] - offs[tt, 0]
        out["target_y"][ct, tt] = cand["y"].to_numpy()[target] - offs[tt, 1]
        out["target_lat"][ct, tt] = positions["lat"].to_numpy(np.float64)[rows]
        out["target_lon"][ct, tt] = positions["lon"].to_numpy(np.float64)[rows]
    return out
