"""``predict-track --follow``: watch the frames folder and process each hour as soon as its clip is complete.

Each poll scans the folder's file names (`medicane_hf.data.frames.scan_frames`, limited to the frames after the
last processed hour) and takes the hours on the hour whose clip frames are all there (up to
``--max-missing-frames`` missing); those hours are packed (``build-dataset --no-tracks`` of just their frames,
`command.hourly_detector`) and predicted, and ``detections.csv``, ``hours.csv``, ``tracks.csv`` and
``summary.json`` are rewritten, each atomically (a temporary file renamed over the old one: a reader sees the
old file or the new one, whole). Tracks are linked again from all the detections each time: open tracks extend,
and a track closes once the gap tolerance has passed, exactly as the batch run links them.

Frames are expected in time order: an hour still incomplete when a later hour is complete is given up (the batch
run skips it too). ``hours.csv`` records the finished hours: restarted with the same command after a kill, the
run reads it back, drops any detection of an hour it does not list (written just before the kill), and goes on
from the next hour, so no hour is predicted twice and the files end as an uninterrupted run's. The run stops at
``--end`` (once that hour is done), after ``--idle-exit-seconds`` without a new hour, or when killed; stopping
normally, it draws the map and the animation of every processed hour. Memory holds the detection tables and one
poll's clips, not the frames of the whole period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from accelerate import Accelerator
from tqdm.auto import tqdm

from medicane_hf.data.frames import scan_frames
from medicane_hf.inference.inputs import InputError
from medicane_hf.tracking.tables import (
    DETECTION_COLUMNS,
    DETECTIONS_FILE,
    HOURS_FILE,
    read_detections,
    read_hours,
)

__all__ = ["RAW_COLUMNS", "FollowState", "follow", "ready_hours"]

RAW_COLUMNS = tuple(c for c in DETECTION_COLUMNS if c not in ("kept", "merged_into", "track_id"))
"""What `HourlyDetector.detect` gives: the merge and the linking are recomputed from these."""


@dataclass
class FollowState:
    """The detections and hours done so far (what the files in ``--out`` say)."""

    raw: pd.DataFrame
    hours: pd.DataFrame  # time, tiles, detections

    @classmethod
    def load(cls, out: Path) -> FollowState:
        """The state in `out` (empty when it holds none); detections of hours not in ``hours.csv`` are dropped."""
        if not (out / HOURS_FILE).is_file():
            return cls(
                pd.DataFrame(columns=list(RAW_COLUMNS)), pd.DataFrame(columns=["time", "tiles", "detections"])
            )
        hours = read_hours(out / HOURS_FILE)[["time", "tiles", "detections"]]
        raw = pd.DataFrame(columns=list(RAW_COLUMNS))
        if (out / DETECTIONS_FILE).is_file():
            detections = read_detections(out / DETECTIONS_FILE)
            raw = detections[detections["time"].isin(hours["time"])][list(RAW_COLUMNS)]
        return cls(raw.reset_index(drop=True), hours)

    @property
    def last_hour(self) -> pd.Timestamp | None:
        return None if self.hours.empty else pd.Timestamp(self.hours["time"].max())

    def add(self, raw: pd.DataFrame, hours: pd.DataFrame) -> None:
        parts = [part for part in (self.raw, raw) if len(part)]
        self.raw = pd.concat(parts, ignore_index=True) if parts else raw
        self.hours = pd.concat([self.hours, hours], ignore_index=True) if len(self.hours) else hours


def ready_hours(
    frames: Path,
    pattern: str,
    num_frames: int,
    interval_minutes: int,
    max_missing: int,
    after: pd.Timestamp | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> list[pd.Timestamp]:
    """The hours after `after` (and in `start`..`end`) whose clip has its frames, oldest first.

    An hour counts when at least ``num_frames - max_missing`` of its frame times (the hour and the
    ``num_frames - 1`` before it, `interval_minutes` apart) have a readable file.
    """
    span = pd.Timedelta(minutes=interval_minutes * (num_frames - 1))
    # the frames the next hour's clip needs, and none older (a long archive is not scanned on every poll)
    after_next = after + pd.Timedelta(hours=1) if after is not None else None
    first = max([t - span for t in (after_next, start) if t is not None], default=None)
    scan = scan_frames(frames, pattern, period=(first, end))
    present = set(pd.to_datetime(scan.frames["time"])) - set(pd.to_datetime(scan.unreadable["time"].dropna()))
    if not present:
        return []
    offsets = pd.to_timedelta(np.arange(num_frames) * interval_minutes, unit="min")
    hours = pd.date_range(min(present).ceil("h"), max(present).floor("h"), freq="h")
    ready = []
    for hour in hours:
        if (after is not None and hour <= after) or (start is not None and hour < start):
            continue
        if end is not None and hour > end:
            break
        have = sum((hour - offset) in present for offset in offsets)
        if have >= num_frames - max_missing:
            ready.append(hour)
    return ready


def follow(args: Any, models: Any, accelerator: Accelerator, truth: pd.DataFrame | None) -> dict[str, Any]:
    """The follow loop (see the module docstring); returns the final summary.

    Raises:
        InputError: it stopped without a single complete hour.
    """
    from medicane_hf.tracking.command import closing_lines, hourly_detector, write_results

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    state = FollowState.load(args.out)
    if state.last_hour is not None:
        print(
            f"predict-track --follow: resuming after {state.last_hour} ({len(state.hours)} hours done)",
            flush=True,
        )
    contract = models.expected
    forward_seconds = 0.0
    idle_since = time.monotonic()
    looked_at = state.last_hour  # the newest hour taken from the folder (done, or given up by the packing)
    bar = tqdm(unit="hour", desc="predict-track --follow", disable=not args.progress)
    while True:
        ready = ready_hours(
            args.frames, args.pattern, contract.num_frames, contract.frame_interval_minutes,
            args.max_missing_frames, looked_at, args.start, args.end,
        )  # fmt: skip
        if ready:
            looked_at = ready[-1]
            try:
                detector, _ = hourly_detector(args, models, accelerator, ready[0], ready[-1])
            except (
                InputError
            ):  # an unreadable frame: not one complete clip after all; those hours are given up
                continue
            for hour in detector.hours:
                found, looked = detector.detect([hour])
                state.add(found[list(RAW_COLUMNS)], looked)
                write_results(args, models, args.out, state.raw, state.hours, truth, detector.grid, None)
                bar.update(1)
            forward_seconds += detector.forward_seconds
            idle_since = time.monotonic()
            continue
        if args.end is not None and looked_at is not None and looked_at >= args.end:
            break
        if args.idle_exit_seconds is not None and time.monotonic() - idle_since >= args.idle_exit_seconds:
            break
        time.sleep(args.poll_seconds)
    bar.close()
    if state.last_hour is None:
        raise InputError(f"--follow stopped without a complete hour of frames in {args.frames}")
    # the map and the animation of the whole period: its frames packed once, at the end
    first, last = pd.Timestamp(state.hours["time"].min()), state.last_hour
    detector, store_dir = hourly_detector(args, models, accelerator, first, last)
    timing = {"seconds": time.perf_counter() - started, "model_forward_seconds": forward_seconds}
    summary = write_results(
        args, models, args.out, state.raw, state.hours, truth, detector.grid, store_dir, timing=timing
    )
    published = sorted(p.name for p in args.out.iterdir() if p.is_file())
    print(closing_lines(summary, args.out, published), flush=True)
    return summary
