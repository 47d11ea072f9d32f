"""Find satellite frames in a folder tree, parse their times, and report what is wrong with the archive.

A frame is one image file per time (``airmass_rgb_YYYYMMDD_HHMM.png`` by default), possibly spread over
sub-folders. :func:`scan_frames` walks the tree once, keeps the files whose name matches a strftime-style
pattern, and reports the problems a user needs to know about before building a dataset:

- gaps: runs of missing 5-minute slots between two present frames (``start``/``end`` are the first and
  last *missing* slot, ``missing_frames`` how many slots are missing);
- duplicates: two files with the same time (the first by path order is kept), and whether their bytes are
  the same (a copy) or not (two different images claim one time);
- unreadable files (a header PIL cannot read, or with ``check_content`` data that cannot be decoded), and
  files that are not RGB images (`medicane_hf.data.sources.png.mode_problem`), whose reason says so;
- frames whose size is not ``expected_size`` (``(width, height)``);
- all-black frames (only with ``check_content``, which decodes every image).

Sizes are read from image headers only (PIL's ``Image.open`` is lazy), so a plain scan of a year of
frames costs seconds, not the minutes a full decode takes.

``FrameScan.frames`` keeps every unique frame that has a time, problems included, so that a store packed
from it stays aligned with time: unreadable and black frames get a slot marked invalid there. Frames of
the wrong size make packing fail loudly; drop them first with ``scan.exclude("wrong_size")``.

The packed store lives in :mod:`medicane_hf.data.store` and is re-exported here.
"""

from __future__ import annotations

import filecmp
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from medicane_hf.data.sources.png import inspect_image
from medicane_hf.data.store import (
    BLACK_MAX_VALUE,
    FrameSizeError,
    FrameStore,
    FrameStoreError,
    IncompleteStoreError,
)

__all__ = [
    "DEFAULT_FRAME_PATTERN",
    "FrameScan",
    "FrameSizeError",
    "FrameStore",
    "FrameStoreError",
    "IncompleteStoreError",
    "parse_frame_time",
    "pattern_to_regex",
    "scan_frames",
]

DEFAULT_FRAME_PATTERN = "airmass_rgb_%Y%m%d_%H%M.png"

# strftime directives a frame pattern may use, with the digits each takes in a file name.
_DIRECTIVE_DIGITS = {"Y": 4, "y": 2, "m": 2, "d": 2, "j": 3, "H": 2, "M": 2, "S": 2}
_EXCLUDABLE = ("unreadable", "wrong_size", "black")  # problem tables whose frames stay in `frames`


def pattern_to_regex(pattern: str) -> re.Pattern[str]:
    """Turn a strftime-style file pattern into a regex with one named group per directive.

    Supported directives: ``%Y %y %m %d %j %H %M %S`` and ``%%``. A directive used twice (as in
    ``%Y/%m/airmass_%Y%m%d_%H%M.png``) must carry the same digits both times. A pattern containing
    ``/`` is matched against the path relative to the scan root, otherwise against the file name.
    """
    parts: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char != "%":
            parts.append(re.escape(char))
            i += 1
            continue
        if i + 1 >= len(pattern):
            raise ValueError(f"frame pattern {pattern!r} ends with a lone '%'")
        code = pattern[i + 1]
        if code == "%":
            parts.append("%")
        elif code in _DIRECTIVE_DIGITS:
            parts.append(f"(?P={code})" if code in seen else rf"(?P<{code}>\d{{{_DIRECTIVE_DIGITS[code]}}})")
            seen.add(code)
        else:
            supported = " ".join(f"%{c}" for c in _DIRECTIVE_DIGITS)
            raise ValueError(f"frame pattern {pattern!r}: %{code} is not supported (use {supported})")
        i += 2
    if not ({"Y", "y"} & seen):
        raise ValueError(f"frame pattern {pattern!r} has no year (%Y or %y): times cannot be parsed")
    return re.compile("".join(parts))


def parse_frame_time(groups: dict[str, str]) -> pd.Timestamp:
    """Build the frame time from a pattern match's groups; ``ValueError`` when the date is impossible."""
    year = int(groups["Y"]) if "Y" in groups else 2000 + int(groups["y"])  # %y: 2000-2099 (MSG era)
    hour, minute, second = (int(groups.get(k, 0)) for k in ("H", "M", "S"))
    if "j" in groups:
        day_of_year = int(groups["j"])
        start = datetime(year, 1, 1, hour, minute, second)
        when = pd.Timestamp(start) + pd.Timedelta(days=day_of_year - 1)
        if day_of_year < 1 or when.year != year:
            raise ValueError(f"day of year {day_of_year} does not exist in {year}")
        return when
    return pd.Timestamp(
        datetime(year, int(groups.get("m", 1)), int(groups.get("d", 1)), hour, minute, second)
    )


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


_FRAMES_COLUMNS = {"time": "datetime64[ns]", "path": "object"}
_GAPS_COLUMNS = {"start": "datetime64[ns]", "end": "datetime64[ns]", "missing_frames": "int64"}
_DUPLICATES_COLUMNS = {
    "time": "datetime64[ns]",
    "path": "object",
    "kept_path": "object",
    "same_content": "bool",
}
_UNREADABLE_COLUMNS = {"time": "datetime64[ns]", "path": "object", "reason": "object"}
_WRONG_SIZE_COLUMNS = {"time": "datetime64[ns]", "path": "object", "width": "int64", "height": "int64"}


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    if not rows:
        return _empty(columns)
    df = pd.DataFrame(rows, columns=list(columns))
    return df.astype({k: v for k, v in columns.items() if v != "object"})


@dataclass
class FrameScan:
    """What :func:`scan_frames` found. Every table is a ``pandas.DataFrame``; paths are strings.

    Attributes:
        frames: ``[time, path]``, sorted by time, one row per time (problem frames included).
        gaps: ``[start, end, missing_frames]``: first and last missing slot of each run of missing slots.
        duplicates: ``[time, path, kept_path, same_content]``: files dropped because an earlier path had the
            same time; ``same_content``: their bytes equal the kept file's.
        unreadable: ``[time, path, reason]``: files PIL cannot read (``time`` is NaT when the name's date
            is impossible, e.g. month 13).
        wrong_size: ``[time, path, width, height]``: frames whose size is not ``expected_size``.
        black: ``[time, path]``: all-black frames (only filled when ``content_checked``).
        ignored: files under ``root`` whose name does not match the pattern.
    """

    root: Path
    pattern: str
    interval_minutes: int
    expected_size: tuple[int, int] | None
    content_checked: bool
    frames: pd.DataFrame
    gaps: pd.DataFrame
    duplicates: pd.DataFrame
    unreadable: pd.DataFrame
    wrong_size: pd.DataFrame
    black: pd.DataFrame
    ignored: list[str] = field(default_factory=list)

    @property
    def n_missing(self) -> int:
        """Missing 5-minute slots between the first and the last frame."""
        return int(self.gaps["missing_frames"].sum()) if len(self.gaps) else 0

    def exclude(self, *problems: str) -> pd.DataFrame:
        """``frames`` without the frames listed in the named problem tables (``unreadable``, ``wrong_size``, ``black``)."""
        unknown = set(problems) - set(_EXCLUDABLE)
        if unknown:
            raise ValueError(f"unknown problem table(s) {sorted(unknown)}; choose from {list(_EXCLUDABLE)}")
        dropped: set[str] = set()
        for name in problems:
            dropped.update(getattr(self, name)["path"])
        keep = ~self.frames["path"].isin(dropped)
        return self.frames[keep].reset_index(drop=True)

    def summary(self) -> str:
        """A few lines for people: coverage, then each problem with a count and an example."""
        lines = [f"Frames under {self.root} (pattern {self.pattern!r}, {self.interval_minutes}-min slots)"]
        if len(self.frames) == 0:
            lines.append("  no frame found")
        else:
            first, last = self.frames["time"].iloc[0], self.frames["time"].iloc[-1]
            slots = len(self.frames) + self.n_missing
            lines.append(
                f"  {len(self.frames):,} frames from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} "
                f"({100.0 * len(self.frames) / slots:.1f}% of {slots:,} slots)"
            )
        lines.append(self._gap_line())
        lines.append(self._problem_line("duplicates", self.duplicates, "kept the first by path order"))
        lines.append(self._problem_line("unreadable", self.unreadable, None, reason=True))
        size_note = (
            f"expected {self.expected_size[0]} x {self.expected_size[1]}" if self.expected_size else None
        )
        if self.expected_size is None:
            lines.append("  wrong size: not checked (no expected_size)")
        else:
            lines.append(self._problem_line("wrong size", self.wrong_size, size_note))
        if self.content_checked:
            lines.append(self._problem_line("black", self.black, None))
        else:
            lines.append("  black: not checked (check_content=False)")
        lines.append(f"  ignored files (name does not match the pattern): {len(self.ignored):,}")
        return "\n".join(lines)

    def _gap_line(self) -> str:
        if len(self.gaps) == 0:
            return "  gaps: none"
        longest = self.gaps.loc[self.gaps["missing_frames"].idxmax()]
        return (
            f"  gaps: {len(self.gaps):,} ({self.n_missing:,} missing frames; longest "
            f"{longest['start']:%Y-%m-%d %H:%M} .. {longest['end']:%Y-%m-%d %H:%M}, "
            f"{int(longest['missing_frames'])} frames)"
        )

    @staticmethod
    def _problem_line(label: str, table: pd.DataFrame, note: str | None, reason: bool = False) -> str:
        if len(table) == 0:
            return f"  {label}: none"
        example = table.iloc[0]
        text = f"  {label}: {len(table):,}" + (f" ({note})" if note else "") + f"; e.g. {example['path']}"
        if reason:
            text += f": {example['reason']}"
        return text


def _list_files(root: Path) -> list[Path]:
    """Every file under ``root``, in path order (sorted per folder, folders walked depth first)."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        found.extend(Path(folder) / name for name in sorted(names))
    return sorted(found, key=lambda p: p.as_posix())


def _match_files(
    root: Path, files: list[Path], regex: re.Pattern[str], by_relative_path: bool
) -> tuple[list[tuple[pd.Timestamp, str]], list[dict], list[str]]:
    """Split files into (time, path) candidates, impossible-date names and ignored files."""
    candidates: list[tuple[pd.Timestamp, str]] = []
    bad_names: list[dict] = []
    ignored: list[str] = []
    for path in files:
        target = path.relative_to(root).as_posix() if by_relative_path else path.name
        match = regex.fullmatch(target)
        if match is None:
            ignored.append(str(path))
            continue
        try:
            candidates.append((parse_frame_time(match.groupdict()), str(path)))
        except ValueError as err:
            bad_names.append({"time": pd.NaT, "path": str(path), "reason": f"impossible time in name: {err}"})
    return candidates, bad_names, ignored


def _same_bytes(a: str, b: str) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:  # one cannot be read: not known to be the same
        return False


def _split_duplicates(candidates: list[tuple[pd.Timestamp, str]]) -> tuple[list[tuple], list[dict]]:
    """Keep the first path per time (candidates are in path order); list the others."""
    kept: dict[pd.Timestamp, str] = {}
    duplicates: list[dict] = []
    for time, path in candidates:
        if time in kept:
            # byte comparison of the two files only (duplicates are few): a copy, or two images for one time
            same = _same_bytes(path, kept[time])
            duplicates.append({"time": time, "path": path, "kept_path": kept[time], "same_content": same})
        else:
            kept[time] = path
    return sorted(kept.items()), sorted(duplicates, key=lambda row: (row["time"], row["path"]))


def find_gaps(times: pd.Series | np.ndarray, interval_minutes: int = 5) -> pd.DataFrame:
    """Runs of missing slots between consecutive sorted times: ``[start, end, missing_frames]``.

    ``start``/``end`` are the first and last missing slot (``previous + interval``, ``next - interval``);
    ``missing_frames`` counts the slots strictly between the two present frames.
    """
    values = pd.to_datetime(pd.Series(times)).to_numpy(dtype="datetime64[ns]")
    if len(values) < 2:
        return _empty(_GAPS_COLUMNS)
    step = np.timedelta64(interval_minutes, "m").astype("timedelta64[ns]")
    diffs = np.diff(values)
    # Slots strictly between two frames: ceil(diff / step) - 1, which is exact for on-grid times.
    missing = -(-diffs // step) - 1
    where = np.flatnonzero(missing > 0)
    return pd.DataFrame(
        {
            "start": values[where] + step,
            "end": values[where + 1] - step,
            "missing_frames": missing[where].astype(np.int64),
        }
    )


def scan_frames(
    root: str | os.PathLike,
    pattern: str = DEFAULT_FRAME_PATTERN,
    expected_size: tuple[int, int] | None = None,
    check_content: bool = False,
    interval_minutes: int = 5,
    *,
    progress: bool = True,
    period: tuple[Any, Any] | None = None,
) -> FrameScan:
    """Find the frames under ``root`` and report gaps, duplicates and bad files.

    Args:
        root: folder to search, sub-folders included.
        pattern: strftime-style pattern of a frame's file name (see :func:`pattern_to_regex`).
        expected_size: ``(width, height)`` in pixels; frames of another size are listed in ``wrong_size``.
        check_content: decode every frame to find all-black ones and corrupt image data (slower).
        interval_minutes: time between two frames, for the gap report.
        progress: show a progress bar while reading image headers.
        period: ``(first, last)`` frame times to keep, inclusive (either may be None: open); the others are
            dropped by name before any file is opened, so a short period of a long archive scans quickly.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"frame folder {root} does not exist or is not a folder")
    if interval_minutes <= 0:
        raise ValueError(f"interval_minutes must be positive, got {interval_minutes}")
    regex = pattern_to_regex(pattern)
    candidates, unreadable, ignored = _match_files(root, _list_files(root), regex, "/" in pattern)
    if period is not None:
        first, last = (None if p is None else pd.Timestamp(p) for p in period)
        candidates = [
            (t, path)
            for t, path in candidates
            if (first is None or t >= first) and (last is None or t <= last)
        ]
    kept, duplicates = _split_duplicates(candidates)

    wrong_size: list[dict] = []
    black: list[dict] = []
    what = "decoding frames" if check_content else "reading frame headers"
    for time, path in tqdm(kept, desc=what, unit="frame", disable=not progress, leave=False):
        size, is_black, error = inspect_image(path, check_content, BLACK_MAX_VALUE)
        if error is not None:
            unreadable.append({"time": time, "path": path, "reason": error})
            continue
        if expected_size is not None and tuple(size) != tuple(expected_size):
            wrong_size.append({"time": time, "path": path, "width": size[0], "height": size[1]})
        if is_black:
            black.append({"time": time, "path": path})

    frames = _frame([{"time": t, "path": p} for t, p in kept], _FRAMES_COLUMNS)
    return FrameScan(
        root=root,
        pattern=pattern,
        interval_minutes=interval_minutes,
        expected_size=tuple(expected_size) if expected_size is not None else None,
        content_checked=check_content,
        frames=frames,
        gaps=find_gaps(frames["time"], interval_minutes),
        duplicates=_frame(duplicates, _DUPLICATES_COLUMNS),
        unreadable=_frame(unreadable, _UNREADABLE_COLUMNS),
        wrong_size=_frame(wrong_size, _WRONG_SIZE_COLUMNS),
        black=_frame(black, _FRAMES_COLUMNS),
        ignored=ignored,
    )
