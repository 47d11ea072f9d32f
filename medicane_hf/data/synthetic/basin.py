"""A synthetic Mediterranean: Medicanes on tracks, look-alikes and sensor gaps.

No real SEVIRI archive ships with the project, so this is what ``make demo``,
every script run without arguments, the tests and the benchmarks run on. It
writes exactly what the real pipeline reads::

    OUT/frames/YYYY/MM/DD/airmass_rgb_YYYYMMDD_HHMM.png   RGB uint8, 5-minute cadence, grid of the preset
    OUT/tracks.csv            hourly Medicane positions + window (tracks.write_tracks layout)
    OUT/grid.json             {"grid": SeviriGrid.to_dict(), "tiles": {tile_size, stride_x, stride_y}}
    OUT/synthetic_truth.csv   every frame time x object: exact centre lon/lat/x/y, radius, intensity, phase
                              (with realism also eye_opacity, eye_fill, eyeless, shield_offset_km)
    OUT/label_error.csv       with realism only: per tracks.csv row the drawn and the labelled
                              position and the offset between them (km)
    OUT/faults.csv            missing / black / noisy frames
    OUT/synthetic.json        preset, seed, start, days and every setting used

What is in the images (see ``rendering`` for the drawing):

- drifting air masses in Airmass RGB colours over a faint fixed land/sea pattern;
- Medicanes: compact (50-150 km) cloud discs with spiral bands and a dark eye,
  rotating counter-clockwise, moving over the sea at 5-40 km/h, growing,
  maturing (the Medicane window) and decaying over one to four days; the image
  centre at every frame is the linear interpolation of the hourly track;
- look-alikes that are *not* in tracks.csv: land vortices (the same spiral with
  an eye, over land), big comma clouds with a dry slot, frontal bands, short-lived
  convective clusters;
- sensor faults: single missing frames, gaps of 15-60 minutes, all-black frames,
  noisy frames;
- with the realism settings (the ``realistic`` preset, docs/synthetic.md): tracks.csv
  off the drawn centre by a slowly varying offset, cloud-filled eyes, eyeless weak
  Medicanes, lopsided cloud shields, sea vortices with an eye that are not in tracks.csv,
  and eyes coloured like the clear air around them.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed`` (and
per-frame generators seeded by ``(seed, frame index)``), so the same call gives
byte-identical PNGs and CSVs, with any number of ``workers``.

Entry points: :func:`generate_basin` (the files), :func:`write_preview` /
:func:`preview_only` (one annotated frame, the latter without writing the frames),
and ``medicane-hf synth`` (``command``). Settings and presets:
``config``; coastline: ``geography``; tracks and look-alikes:
``plans``; drawing: ``rendering``.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from medicane_hf.data.geo import SeviriGrid, haversine_km
from medicane_hf.data.synthetic.config import PRESETS, SyntheticConfig, get_preset
from medicane_hf.data.synthetic.geography import get_geography
from medicane_hf.data.synthetic.plans import (
    KM_PER_DEG_LAT,
    BasinPlan,
    VortexPlan,
    count_for,
    make_plan,
    phase_of,
)
from medicane_hf.data.synthetic.rendering import FrameRenderer
from medicane_hf.data.tracks import TRACK_COLUMNS, write_tracks

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_START",
    "FRAME_NAME_FORMAT",
    "PRESETS",
    "SyntheticBasin",
    "SyntheticConfig",
    "frame_path",
    "generate_basin",
    "grid_for",
    "label_error_table",
    "preview_only",
    "tracks_table",
    "write_preview",
]

DEFAULT_START = "2023-01-01"
DEFAULT_DAYS = 6
DEFAULT_SEED = 0
FRAME_NAME_FORMAT = "airmass_rgb_%Y%m%d_%H%M.png"
TRUTH_COLUMNS = [
    "time", "object_id", "kind", "in_tracks", "lon", "lat", "x", "y",
    "radius_km", "intensity", "phase", "in_window",
]  # fmt: skip
# Truth columns added when a realism setting is on (the old presets' truth keeps its bytes):
# the drawn eye's peak opacity 0..1 (0 = no eye visible), the cloud filling it 0..1, whether the
# object is an eyeless weak Medicane, and the distance of the cloud shield's centre from the
# vortex centre in km (eye_fill and shield_offset_km empty for objects that are no vortex).
REALISM_TRUTH_COLUMNS = ["eye_opacity", "eye_fill", "eyeless", "shield_offset_km"]
_NOT_A_VORTEX = {"eye_opacity": 0.0, "eye_fill": np.nan, "eyeless": False, "shield_offset_km": np.nan}
LABEL_ERROR_COLUMNS = [
    "storm_id", "time", "drawn_lon", "drawn_lat", "label_lon", "label_lat",
    "offset_east_km", "offset_north_km", "offset_km",
]  # fmt: skip
FAULT_COLUMNS = ["time", "fault", "event_id", "event_frames"]


@dataclass
class SyntheticBasin:
    """What ``generate_basin`` wrote, and the tables a caller usually wants next.

    Attributes:
        out_dir, frames_dir, tracks_path, grid_path, truth_path, faults_path, settings_path: files.
        label_error_path: ``out_dir / "label_error.csv"`` with realism, else None (the label is
            the drawn centre).
        preview_path: ``out_dir / "preview.png"`` when a preview was asked for, else None.
        grid: the pixel grid of the frames. tiles: ``{"tile_size", "stride_x", "stride_y"}``.
        config, seed, start, days: how it was made.
        frame_times: every nominal frame time (including the missing ones), ``DatetimeIndex``.
        n_frames_written: PNG files on disk (frame times minus missing frames).
        storms: one row per Medicane (storm_id, name, start, end, window_start, window_end,
            n_hours, radius_km, eye_radius_km, rotation_deg_per_h, mean_speed_kmh, max_speed_kmh,
            peak_intensity, eyeless).
        tracks: the table written to tracks.csv (``tracks.TRACK_COLUMNS``).
        objects: one row per drawn object, look-alikes included (object_id, kind, start, end, in_tracks).
        faults: the table written to faults.csv.
        plan: every object drawn (``plans.BasinPlan``), to re-render any frame.
    """

    out_dir: Path
    frames_dir: Path
    tracks_path: Path
    grid_path: Path
    truth_path: Path
    faults_path: Path
    settings_path: Path
    grid: SeviriGrid
    tiles: dict[str, int]
    config: SyntheticConfig
    seed: int
    start: pd.Timestamp
    days: float
    frame_times: pd.DatetimeIndex
    n_frames_written: int
    storms: pd.DataFrame
    tracks: pd.DataFrame
    objects: pd.DataFrame
    faults: pd.DataFrame
    preview_path: Path | None = None
    plan: BasinPlan = field(default_factory=BasinPlan, repr=False)
    label_error_path: Path | None = None

    def truth(self) -> pd.DataFrame:
        """synthetic_truth.csv as a DataFrame (``time`` parsed)."""
        return pd.read_csv(self.truth_path, parse_dates=["time"], keep_default_na=False, na_values=[""])

    def label_error(self) -> pd.DataFrame:
        """label_error.csv as a DataFrame; without realism the exact zeros it would hold."""
        if self.label_error_path is not None:
            return pd.read_csv(self.label_error_path, parse_dates=["time"])
        return label_error_table(self.plan.medicanes)


def grid_for(config: SyntheticConfig) -> SeviriGrid:
    """The preset's pixel grid: ``config.width x config.height`` over the real SEVIRI corners."""
    return SeviriGrid(width=config.width, height=config.height)


def frame_path(frames_dir: Path, time: pd.Timestamp, day_folders: bool = True) -> Path:
    """Where the frame of ``time`` goes: ``frames/YYYY/MM/DD/airmass_rgb_YYYYMMDD_HHMM.png`` (or flat)."""
    name = time.strftime(FRAME_NAME_FORMAT)
    return frames_dir / time.strftime("%Y/%m/%d") / name if day_folders else frames_dir / name


# ---- faults -----------------------------------------------------------------------------------


def plan_faults(
    rng: np.random.Generator, config: SyntheticConfig, n_frames: int, days: float
) -> dict[int, tuple[str, int, int]]:
    """Frame index -> (fault, event id, frames in the event); events never overlap.

    Faults: ``missing`` (single frames and gaps of ``gap_minutes``), ``black``, ``noisy``.
    """
    taken: dict[int, tuple[str, int, int]] = {}
    event = 0

    def place(kind: str, length: int) -> None:
        nonlocal event
        for _ in range(100):
            first = int(rng.integers(0, max(1, n_frames - length + 1)))
            span = range(first, min(n_frames, first + length))
            # keep a clean frame between events, so a gap's length is what faults.csv says
            if all(j not in taken for j in range(first - 1, first + length + 1)):
                event += 1
                for j in span:
                    taken[j] = (kind, event, len(span))
                return

    lo, hi = (int(round(m / config.frame_minutes)) for m in config.gap_minutes)
    for _ in range(count_for(config.gaps_per_day, days)):
        place("missing", int(rng.integers(max(2, lo), max(2, hi) + 1)))
    for _ in range(count_for(config.missing_frames_per_day, days)):
        place("missing", 1)
    for _ in range(count_for(config.black_frames_per_day, days)):
        place("black", 1)
    for _ in range(count_for(config.noisy_frames_per_day, days)):
        place("noisy", 1)
    return taken


def _faults_table(faults: dict[int, tuple[str, int, int]], times: pd.DatetimeIndex) -> pd.DataFrame:
    rows = [(times[i], kind, ev, n) for i, (kind, ev, n) in sorted(faults.items())]
    return pd.DataFrame(rows, columns=FAULT_COLUMNS)


# ---- tables -----------------------------------------------------------------------------------


def tracks_table(medicanes: list[VortexPlan]) -> pd.DataFrame:
    """Hourly Medicane positions in the tidy ``tracks.TRACK_COLUMNS`` layout (what tracks.csv holds).

    The positions are the labels: the drawn centre, or with a label error the labelled track.
    """
    rows = []
    for p in medicanes:
        rows.append(
            pd.DataFrame(
                {
                    "storm_id": p.object_id,
                    "name": p.name,
                    "time": p.hours,
                    "lat": p.label_lat,
                    "lon": p.label_lon,
                    "window_start": p.window_start,
                    "window_end": p.window_end,
                    "source": "synthetic",
                }
            )
        )
    return pd.concat(rows, ignore_index=True)[TRACK_COLUMNS]


def label_error_table(medicanes: list[VortexPlan]) -> pd.DataFrame:
    """Per tracks.csv row: the drawn and the labelled position (degrees) and the offset between them.

    ``offset_east_km`` / ``offset_north_km``: label minus drawn, local equirectangular km at the
    drawn latitude; ``offset_km``: the haversine distance (what a tracking error in km measures).
    Computed from the rounded positions actually written, so it is the label error exactly.
    """
    rows = []
    for p in medicanes:
        lon, lat, label_lon, label_lat = p.lon, p.lat, p.label_lon, p.label_lat
        rows.append(
            pd.DataFrame(
                {
                    "storm_id": p.object_id,
                    "time": p.hours,
                    "drawn_lon": lon,
                    "drawn_lat": lat,
                    "label_lon": label_lon,
                    "label_lat": label_lat,
                    "offset_east_km": (label_lon - lon) * KM_PER_DEG_LAT * np.cos(np.radians(lat)),
                    "offset_north_km": (label_lat - lat) * KM_PER_DEG_LAT,
                    "offset_km": haversine_km(lon, lat, label_lon, label_lat),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=LABEL_ERROR_COLUMNS)
    return pd.concat(rows, ignore_index=True)[LABEL_ERROR_COLUMNS]


def _storms_table(medicanes: list[VortexPlan]) -> pd.DataFrame:
    rows = []
    for p in medicanes:
        speeds = haversine_km(p.lon[:-1], p.lat[:-1], p.lon[1:], p.lat[1:])
        rows.append(
            {
                "storm_id": p.object_id,
                "name": p.name,
                "start": p.start,
                "end": p.end,
                "window_start": p.window_start,
                "window_end": p.window_end,
                "n_hours": p.lon.size,
                "radius_km": round(p.radius_km, 1),
                "eye_radius_km": round(p.eye_radius_km, 1),
                "rotation_deg_per_h": round(p.rotation_deg_per_h, 1),
                "mean_speed_kmh": round(float(speeds.mean()), 1),
                "max_speed_kmh": round(float(speeds.max()), 1),
                "peak_intensity": round(p.peak_intensity, 3),
                "eyeless": p.realism is not None and p.realism.eyeless,
            }
        )
    return pd.DataFrame(rows)


def _objects_table(plan: BasinPlan) -> pd.DataFrame:
    rows = []
    for p in plan.vortices:
        rows.append((p.object_id, p.kind, p.start, p.end, p.kind == "medicane"))
    for kind, objects in (("convection", plan.convection), ("comma", plan.commas), ("front", plan.fronts)):
        for o in objects:
            rows.append((o.object_id, kind, o.start, o.start + pd.Timedelta(hours=o.duration_h), False))
    return pd.DataFrame(rows, columns=["object_id", "kind", "start", "end", "in_tracks"])


def _truth_table(renderer: FrameRenderer, times: pd.DatetimeIndex) -> pd.DataFrame:
    """Every frame time x object alive then; vortices from their per-frame states, the rest from their drift.

    With realism the vortices also give their eye opacity, eye fill and shield offset
    (``REALISM_TRUTH_COLUMNS``; the other objects have no eye: opacity 0, the rest empty).
    """
    grid, minutes = renderer.grid, renderer.config.frame_minutes
    realism = renderer.config.realism
    parts = []
    for s in renderer.medicanes + renderer.land_vortices + renderer.sea_vortices:
        idx = np.arange(s.first, s.first + len(s))
        keep = (idx >= 0) & (idx < len(times))
        p = s.plan
        t = times[idx[keep]]
        extra = {}
        if realism:
            assert s.eye_opacity is not None and s.eye_fill is not None
            extra = {
                "eye_opacity": s.eye_opacity[keep],
                "eye_fill": s.eye_fill[keep],
                "eyeless": p.realism is not None and p.realism.eyeless,
                "shield_offset_km": np.hypot(s.shield_east_km, s.shield_north_km)[keep],  # type: ignore[arg-type]
            }
        parts.append(
            pd.DataFrame(
                {
                    "time": t,
                    "object_id": p.object_id,
                    "kind": p.kind,
                    "in_tracks": p.kind == "medicane",
                    "lon": s.lon[keep],
                    "lat": s.lat[keep],
                    "x": s.x[keep],
                    "y": s.y[keep],
                    "radius_km": s.radius_km[keep],
                    "intensity": s.intensity[keep],
                    "phase": phase_of(s.t_h[keep], p.duration_h, p.growth_h, p.decay_h),
                    "in_window": (t >= p.window_start) & (t <= p.window_end)
                    if p.kind == "medicane"
                    else False,
                    **extra,
                }
            )
        )
    plan = renderer.plan
    for kind, objects in (("convection", plan.convection), ("comma", plan.commas), ("front", plan.fronts)):
        for o in objects:
            first = int(np.ceil((o.start - times[0]) / pd.Timedelta(minutes=minutes)))
            last = int(
                np.floor(
                    (o.start + pd.Timedelta(hours=o.duration_h) - times[0]) / pd.Timedelta(minutes=minutes)
                )
            )
            idx = np.arange(max(first, 0), min(last, len(times) - 1) + 1)
            if idx.size == 0:
                continue
            t_h = (times[idx] - o.start) / pd.Timedelta(hours=1)
            t_h = np.asarray(t_h, dtype=np.float64)
            lon, lat = o.position_at(t_h)
            x, y = grid.lonlat_to_pixel(lon, lat)
            radius = getattr(o, "radius_km", None) or o.width_km  # fronts: the band width
            parts.append(
                pd.DataFrame(
                    {
                        "time": times[idx],
                        "object_id": o.object_id,
                        "kind": kind,
                        "in_tracks": False,
                        "lon": lon,
                        "lat": lat,
                        "x": x,
                        "y": y,
                        "radius_km": radius,
                        "intensity": o.intensity(t_h),
                        "phase": phase_of(t_h, o.duration_h, 0.3 * o.duration_h, 0.3 * o.duration_h),
                        "in_window": False,
                        **(_NOT_A_VORTEX if realism else {}),
                    }
                )
            )
    columns = TRUTH_COLUMNS + (REALISM_TRUTH_COLUMNS if realism else [])
    truth = pd.concat(parts, ignore_index=True)[columns]
    return truth.sort_values(["time", "object_id"], kind="stable").reset_index(drop=True)


# ---- frames -----------------------------------------------------------------------------------

Job = tuple[int, Path, "str | None"]  # frame index, PNG path, fault (None, "missing", "black", "noisy")
_WORKER: dict[str, object] = {}


def _write_frame(renderer: FrameRenderer, job: Job) -> None:
    """Render and save one frame as its fault says (a missing frame writes nothing)."""
    i, path, fault = job
    if fault == "missing":
        return
    if fault == "black":
        image = np.zeros((renderer.grid.height, renderer.grid.width, 3), dtype=np.uint8)
    else:
        image = renderer.render(i, noisy=fault == "noisy")
    path.parent.mkdir(parents=True, exist_ok=True)
    config = renderer.config
    Image.fromarray(image, mode="RGB").save(
        path,
        format="PNG",
        compress_level=config.png_compress_level,
        compress_type=config.png_compress_strategy,
    )


def _worker_init(renderer: FrameRenderer, jobs: list[Job]) -> None:
    _WORKER.update(renderer=renderer, jobs=jobs)


def _worker_run(k: int) -> int:
    _write_frame(_WORKER["renderer"], _WORKER["jobs"][k])  # type: ignore[arg-type,index]
    return k


def _render_all(renderer: FrameRenderer, jobs: list[Job], workers: int, progress: bool) -> None:
    """Write every frame; with ``workers > 1`` frames are split over forked processes (same bytes)."""
    bar = tqdm(total=len(jobs), desc="synthetic frames", unit="frame", disable=not progress)
    if workers <= 1:
        for job in jobs:
            _write_frame(renderer, job)
            bar.update(1)
    else:
        # fork shares the renderer's arrays without pickling them; frames are independent by construction
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_worker_init, initargs=(renderer, jobs)) as pool:
            for _ in pool.imap_unordered(_worker_run, range(len(jobs)), chunksize=8):
                bar.update(1)
    bar.close()


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> Path:
    frames_dir = out_dir / "frames"
    if frames_dir.exists() and any(frames_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{frames_dir} already holds frames; pass overwrite=True (--overwrite) to replace them, "
                "or choose another output folder"
            )
        shutil.rmtree(frames_dir)
    frames_dir.mkdir(parents=True, exist_ok=True)
    return frames_dir


def _parse_start(start: str | pd.Timestamp) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(start)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"start {start!r} is not a date/time (use e.g. 2023-01-01 or '2023-01-01 06:00')"
        ) from error
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    if ts != ts.floor("h"):
        raise ValueError(f"start {start!r} must be on the hour (tracks are hourly)")
    return ts


def generate_basin(
    out_dir: str | Path,
    *,
    start: str | pd.Timestamp = DEFAULT_START,
    days: float = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    preset: str = "demo",
    config: SyntheticConfig | None = None,
    progress: bool = True,
    workers: int = 1,
    preview: bool = False,
    overwrite: bool = False,
) -> SyntheticBasin:
    """Write a synthetic basin (frames, tracks, grid, truth, faults) under ``out_dir``.

    Args:
        out_dir: output folder (created). Its ``frames/`` must be empty unless ``overwrite``.
        start: time of the first frame, on the hour (UTC, naive).
        days: length; ``days x 24 x 60 / frame_minutes`` frame times (fractions of a day allowed, >= 6 h).
        seed: everything is drawn from it; same seed -> byte-identical files.
        preset: ``demo`` (384 x 128, the embedded default), ``default`` (full 1290 x 420 grid),
            ``hard`` or ``realistic`` (the demo grid with label error, filled eyes and more look-alikes,
            docs/synthetic.md); ignored when ``config`` is given.
        config: explicit settings (e.g. ``PRESETS["demo"].replace(black_frames_per_day=4)``).
        progress: show a tqdm bar over frames.
        workers: processes rendering frames (fork); the output does not depend on it.
        preview: also write ``out_dir/preview.png`` (a mature-storm frame with every track drawn).
        overwrite: replace frames already in ``out_dir/frames``.

    Returns:
        A :class:`SyntheticBasin` with the paths and tables.
    """
    config = config if config is not None else get_preset(preset)
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    start_ts = _parse_start(start)
    out = Path(out_dir)
    frames_dir = _prepare_out_dir(out, overwrite)
    grid = grid_for(config)
    n_frames = int(round(days * config.frames_per_day))
    times = pd.date_range(start_ts, periods=n_frames, freq=f"{config.frame_minutes}min")

    rng = np.random.default_rng(seed)
    plan = make_plan(rng, config, grid, get_geography(), start_ts, days)
    faults = plan_faults(rng, config, n_frames, days)
    renderer = FrameRenderer(config, grid, plan, start_ts, n_frames, seed)

    jobs = [
        (i, frame_path(frames_dir, t, config.day_folders), faults.get(i, (None,))[0])
        for i, t in enumerate(times)
    ]
    _render_all(renderer, jobs, workers, progress)

    basin = _write_tables(out, frames_dir, config, grid, seed, start_ts, days, times, plan, renderer, faults)
    if preview:
        basin.preview_path = write_preview(basin, renderer)
    return basin


def _write_tables(
    out: Path,
    frames_dir: Path,
    config: SyntheticConfig,
    grid: SeviriGrid,
    seed: int,
    start: pd.Timestamp,
    days: float,
    times: pd.DatetimeIndex,
    plan: BasinPlan,
    renderer: FrameRenderer,
    faults: dict[int, tuple[str, int, int]],
) -> SyntheticBasin:
    tracks = tracks_table(plan.medicanes)
    tracks_path = out / "tracks.csv"
    write_tracks(tracks, tracks_path)
    grid_path = out / "grid.json"
    grid_path.write_text(json.dumps({"grid": grid.to_dict(), "tiles": config.tiles}, indent=2) + "\n")
    truth_path = out / "synthetic_truth.csv"
    _truth_table(renderer, times).to_csv(
        truth_path, index=False, float_format="%.6f", date_format="%Y-%m-%d %H:%M:%S"
    )
    label_error_path = None
    if config.realism:
        label_error_path = out / "label_error.csv"
        label_error_table(plan.medicanes).to_csv(
            label_error_path, index=False, float_format="%.6f", date_format="%Y-%m-%d %H:%M:%S"
        )
    faults_table = _faults_table(faults, times)
    faults_path = out / "faults.csv"
    faults_table.to_csv(faults_path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    settings_path = out / "synthetic.json"
    settings = {
        "preset": config.name,
        "seed": seed,
        "start": str(start),
        "days": days,
        "config": config.to_dict(),
    }
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")
    n_missing = sum(1 for kind, _, _ in faults.values() if kind == "missing")
    return SyntheticBasin(
        out_dir=out,
        frames_dir=frames_dir,
        tracks_path=tracks_path,
        grid_path=grid_path,
        truth_path=truth_path,
        faults_path=faults_path,
        settings_path=settings_path,
        grid=grid,
        tiles=config.tiles,
        config=config,
        seed=seed,
        start=start,
        days=days,
        frame_times=times,
        n_frames_written=len(times) - n_missing,
        storms=_storms_table(plan.medicanes),
        tracks=tracks,
        objects=_objects_table(plan),
        faults=faults_table,
        plan=plan,
        label_error_path=label_error_path,
    )


# ---- preview ----------------------------------------------------------------------------------


def _preview_frame(plan: BasinPlan, times: pd.DatetimeIndex) -> int:
    """Index of the frame where the most Medicanes are mature (ties: the longest-lived storm's mid-window)."""
    mature = np.zeros(len(times), dtype=np.int64)
    for p in plan.medicanes:
        mature += ((times >= p.window_start) & (times <= p.window_end)).astype(np.int64)
    best = np.flatnonzero(mature == mature.max())
    return int(best[len(best) // 2])


def _track_lines(
    plan: VortexPlan, grid: SeviriGrid
) -> Iterator[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], bool]]:
    """(x, y, in_window) pieces of a track in pixels: before, during and after the window."""
    x, y = grid.lonlat_to_pixel(plan.lon, plan.lat)
    hours = plan.hours
    inside = (hours >= plan.window_start) & (hours <= plan.window_end)
    first, last = int(np.argmax(inside)), int(len(inside) - 1 - np.argmax(inside[::-1]))
    yield x[: first + 1], y[: first + 1], False
    yield x[first : last + 1], y[first : last + 1], True
    yield x[last:], y[last:], False


def write_preview(
    basin: SyntheticBasin, renderer: FrameRenderer | None = None, path: Path | None = None
) -> Path:
    """Draw one frame with a mature Medicane and every track on it; returns the PNG path.

    Default path ``basin.out_dir / "preview.png"``. Medicane tracks are coloured (thick inside
    the Medicane window, a circle at the frame time); land vortices (look-alikes) are dashed grey.
    """
    if renderer is None:
        renderer = FrameRenderer(
            basin.config, basin.grid, basin.plan, basin.start, len(basin.frame_times), basin.seed
        )
    return draw_preview(
        renderer, basin.frame_times, path if path is not None else basin.out_dir / "preview.png"
    )


def preview_only(
    path: str | Path,
    *,
    start: str | pd.Timestamp = DEFAULT_START,
    days: float = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    preset: str = "demo",
    config: SyntheticConfig | None = None,
) -> Path:
    """The preview of a basin without writing its frames (a few seconds even for the full grid)."""
    config = config if config is not None else get_preset(preset)
    start_ts = _parse_start(start)
    grid = grid_for(config)
    n_frames = int(round(days * config.frames_per_day))
    times = pd.date_range(start_ts, periods=n_frames, freq=f"{config.frame_minutes}min")
    rng = np.random.default_rng(seed)
    plan = make_plan(rng, config, grid, get_geography(), start_ts, days)
    renderer = FrameRenderer(config, grid, plan, start_ts, n_frames, seed)
    return draw_preview(renderer, times, Path(path))


def draw_preview(renderer: FrameRenderer, times: pd.DatetimeIndex, path: Path) -> Path:
    """Render the preview frame (most Medicanes mature) and draw it with matplotlib.

    Top: the whole frame with every Medicane track (thick inside its window, a dotted ring
    around the storm at the frame time) and the land vortices (dashed). Bottom: the frame
    itself, unannotated, zoomed on up to three storms alive at that time, with a small cross
    where the track puts the centre.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan, grid, config = renderer.plan, renderer.grid, renderer.config
    i = _preview_frame(plan, times)
    image = renderer.render(i)
    time = times[i]
    alive = [p for p in plan.medicanes if p.start <= time <= p.end]
    alive = sorted(alive, key=lambda p: -p.radius_km)[:3]
    width = 12.0
    top = width * grid.height / grid.width
    fig = plt.figure(figsize=(width, top + (width / 3) * 0.75 + 1.2), dpi=110)
    grid_spec = fig.add_gridspec(2, 3, height_ratios=[top, (width / 3) * 0.75])
    ax = fig.add_subplot(grid_spec[0, :])
    ax.imshow(image, interpolation="nearest")
    colours = plt.get_cmap("tab10")
    for k, p in enumerate(plan.medicanes):
        colour = colours(k % 10)
        for xs, ys, in_window in _track_lines(p, grid):
            ax.plot(xs, ys, color=colour, lw=2.0 if in_window else 0.8, alpha=0.8 if in_window else 0.6)
        if p in alive:
            x, y = _position_px(p, grid, time)
            # a ring well outside the storm, so the eye stays visible
            ring = 1.5 * p.radius_km / float(np.mean(grid.pixel_size_km(x, y)))
            ax.add_patch(plt.Circle((x, y), ring, fill=False, ec=colour, lw=1.0, ls=":"))
        x0, y0 = grid.lonlat_to_pixel(p.lon[0], p.lat[0])
        ax.annotate(p.name, (x0, y0), color=colour, fontsize=8, xytext=(3, 3), textcoords="offset points")
    for p in plan.land_vortices:
        x, y = grid.lonlat_to_pixel(p.lon, p.lat)
        ax.plot(x, y, ls="--", color="0.85", lw=0.8)
    for p in plan.sea_vortices:
        x, y = grid.lonlat_to_pixel(p.lon, p.lat)
        ax.plot(x, y, ls="--", color="cyan", lw=0.8)
    ax.set_xlim(-0.5, grid.width - 0.5)
    ax.set_ylim(grid.height - 0.5, -0.5)
    ax.set_title(
        f"synthetic basin ({config.name}, seed {renderer.seed}), {time:%Y-%m-%d %H:%M} UTC: "
        f"{len(plan.medicanes)} Medicane tracks (thick = Medicane window), dashed = land vortices"
        + (" (grey) and sea vortices (cyan)" if plan.sea_vortices else ""),
        fontsize=9,
    )
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
    for k, p in enumerate(alive):
        _draw_zoom(
            fig.add_subplot(grid_spec[1, k]), image, p, grid, time, colours(plan.medicanes.index(p) % 10)
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _position_px(p: VortexPlan, grid: SeviriGrid, time: pd.Timestamp) -> tuple[float, float]:
    lon, lat = p.position_at((time - p.start) / pd.Timedelta(hours=1))
    x, y = grid.lonlat_to_pixel(lon, lat)
    return float(x), float(y)


def _draw_zoom(
    ax: object, image: np.ndarray, p: VortexPlan, grid: SeviriGrid, time: pd.Timestamp, colour: object
) -> None:
    """A 4:3 crop of ``image`` about 4 storm radii wide around the storm's drawn position.

    ``+`` marks the drawn centre; with a label error an ``x`` marks where tracks.csv puts it.
    """
    x, y = _position_px(p, grid, time)
    half_w = max(12.0, 2.0 * p.radius_km / float(grid.pixel_size_km(x, y)[0]))
    half_h = 0.75 * half_w
    ax.imshow(image, interpolation="nearest")  # type: ignore[attr-defined]
    ax.plot([x], [y], "+", color=colour, ms=8, mew=1.0)  # type: ignore[attr-defined]
    title = f"{p.name}: radius {p.radius_km:.0f} km, + = track"
    if p.realism is not None and p.realism.label_lon is not p.lon:
        hours = np.arange(p.lon.size, dtype=np.float64)
        t_h = (time - p.start) / pd.Timedelta(hours=1)
        lx, ly = grid.lonlat_to_pixel(np.interp(t_h, hours, p.label_lon), np.interp(t_h, hours, p.label_lat))
        ax.plot([float(lx)], [float(ly)], "x", color="yellow", ms=7, mew=1.2)  # type: ignore[attr-defined]
        title = f"{p.name}: radius {p.radius_km:.0f} km, + = drawn, x = tracks.csv"
    ax.set_xlim(x - half_w, x + half_w)  # type: ignore[attr-defined]
    ax.set_ylim(y + half_h, y - half_h)  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=8, color="black")  # type: ignore[attr-defined]
    ax.set_xticks([])  # type: ignore[attr-defined]
    ax.set_yticks([])  # type: ignore[attr-defined]
