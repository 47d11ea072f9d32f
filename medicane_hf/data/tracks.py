"""Read cyclone track files of every known layout into one tidy table; interpolate positions in time.

The tidy table (``read_tracks``) has one row per (storm, track time), sorted by
``storm_id`` then ``time``:

==============  ===============  ===========================================================
column          dtype            meaning
==============  ===============  ===========================================================
storm_id        str              stable id: the storm's name when it has one ("Apollo"),
                                 else its numeric id as a clean string ("7001283")
name            str              storm name, "" when unnamed
time            datetime64[ns]   track time, UTC, timezone-naive (hourly in the known files)
lat, lon        float64          degrees; lon normalised to [-180, 180)
window_start    datetime64[ns]   start of the window in which the storm counts as a Medicane
window_end      datetime64[ns]   end of that window (can be narrower than the track)
source          str              e.g. "CL7", "ERA5", "composite"
pressure        float64          minimum pressure, hPa -- only when the file has it (raw layout)
==============  ===============  ===========================================================

Known layouts (``LAYOUTS``; detected from the header, or forced with ``layout=``):

- ``tracks``: what ``write_tracks`` writes: ``time,start_time,end_time,lon,lat,name,storm_id,source``
  (+ ``pressure``).
- ``windows``: ``id_cyc_unico,lat,lon,time,source,x_pix,y_pix,idorig,name,start_time,end_time,id_final``
  (composite and named ERA5 storms together; named rows have no ``id_cyc_unico``).
- ``composite_windows``: ``id_cyc_unico,start_time,end_time,lat,lon,time,source,x_pix,y_pix,idorig``.
- ``era5``: ``time,start_time,end_time,lon,lat,name`` (named storms; source "ERA5").
- ``raw``: whitespace separated, no header: ``id lon lat year month day hour pressure`` (the ERA5
  composite "CLn" files of Flaounas et al. 2023); window = track span, source "composite".

The old system's ``x_pix``/``y_pix`` columns are ignored: pixels come from ``SeviriGrid``.
Every problem in a file is a ``TrackFileError`` naming the file and the 1-based line.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "LAYOUTS",
    "TRACK_COLUMNS",
    "TrackFileError",
    "TrackLayout",
    "interpolate_positions",
    "read_tracks",
    "write_tracks",
]

TRACK_COLUMNS = ["storm_id", "name", "time", "lat", "lon", "window_start", "window_end", "source"]
INTERPOLATED_COLUMNS = ["storm_id", "time", "lat", "lon", "in_window"]
RAW_COLUMNS = ["id", "lon", "lat", "year", "month", "day", "hour", "pressure"]
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TrackFileError(ValueError):
    """A track file cannot be read; the message names the file and the 1-based line number."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}, line {line}: {problem}")


@dataclass(frozen=True)
class TrackLayout:
    """A header-based CSV layout.

    Attributes:
        name: layout name, as accepted by ``read_tracks(layout=...)``.
        required: columns that must be in the header (others are ignored).
        id_columns: where the storm id comes from: the first non-empty of these columns.
        default_source: ``source`` when the file has no (or an empty) ``source`` column.
    """

    name: str
    required: tuple[str, ...]
    id_columns: tuple[str, ...]
    default_source: str


# Order matters for detection: a layout whose columns include another's comes first.
LAYOUTS: dict[str, TrackLayout] = {
    layout.name: layout
    for layout in (
        TrackLayout(
            "tracks",
            ("storm_id", "time", "start_time", "end_time", "lon", "lat", "name"),
            ("storm_id",),
            "unknown",
        ),
        TrackLayout(
            "windows",
            ("id_cyc_unico", "id_final", "name", "lat", "lon", "time", "start_time", "end_time"),
            ("name", "id_final", "id_cyc_unico"),
            "unknown",
        ),
        TrackLayout(
            "composite_windows",
            ("id_cyc_unico", "start_time", "end_time", "lat", "lon", "time"),
            ("name", "id_cyc_unico"),
            "composite",
        ),
        TrackLayout("era5", ("time", "start_time", "end_time", "lon", "lat", "name"), ("name",), "ERA5"),
    )
}
RAW_LAYOUT = "raw"


def _known_layouts_text() -> str:
    described = [f"{layout.name} ({', '.join(layout.required)})" for layout in LAYOUTS.values()]
    described.append(f"{RAW_LAYOUT} (whitespace separated, no header: {' '.join(RAW_COLUMNS)})")
    return "; ".join(described)


# ---- reading the text -----------------------------------------------------------------------


@dataclass
class _RawTable:
    """The file's cells as strings, plus the 1-based line of each row."""

    header: list[str]
    header_line: int
    cells: pd.DataFrame  # str columns
    lines: np.ndarray  # int64, one per row


def _check_utf8(path: Path) -> None:
    """A `TrackFileError` naming the first line that is not UTF-8 text (the readers below decode UTF-8, and
    Python's own error gives a byte offset into a buffer, not a line)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TrackFileError(
                path,
                number,
                f"not UTF-8 text (byte 0x{line[error.start]:02x} at column {error.start + 1}); "
                "save the file as UTF-8 (it may be Latin-1 or Windows-1252)",
            ) from None


def _first_content_line(path: Path) -> tuple[int, str] | None:
    with open(path, encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if text.strip():
                return number, text
    return None


def _read_csv_cells(path: Path) -> _RawTable:
    """Read a CSV with a header, keeping line numbers (blank lines skipped, not renumbered)."""
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header, header_line = [cell.strip() for cell in row], reader.line_num
                duplicated = sorted({c for c in header if header.count(c) > 1})
                if duplicated:
                    raise TrackFileError(path, header_line, f"duplicate column(s) {duplicated} in the header")
                continue
            if len(row) != len(header):
                raise TrackFileError(
                    path,
                    reader.line_num,
                    f"{len(row)} fields, but the header has {len(header)} ({','.join(header)})",
                )
            rows.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    if header is None:
        raise TrackFileError(path, 1, "the file is empty")
    if not rows:
        raise TrackFileError(path, header_line + 1, "no track rows after the header")
    return _RawTable(header, header_line, pd.DataFrame(rows, columns=header, dtype=str), np.asarray(lines))


def _read_whitespace_cells(path: Path) -> _RawTable:
    """Read the header-less whitespace composite layout, keeping line numbers."""
    rows: list[list[str]] = []
    lines: list[int] = []
    with open(path, encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) != len(RAW_COLUMNS):
                raise TrackFileError(
                    path,
                    number,
                    f"{len(fields)} fields, the {RAW_LAYOUT} layout has {len(RAW_COLUMNS)} ({' '.join(RAW_COLUMNS)})",
                )
            rows.append(fields)
            lines.append(number)
    if not rows:
        raise TrackFileError(path, 1, "the file is empty")
    return _RawTable(
        list(RAW_COLUMNS), 0, pd.DataFrame(rows, columns=RAW_COLUMNS, dtype=str), np.asarray(lines)
    )


def _looks_like_raw(line: str) -> bool:
    fields = line.split()
    if "," in line or len(fields) != len(RAW_COLUMNS):
        return False
    return bool(pd.to_numeric(pd.Series(fields), errors="coerce").notna().all())


def _detect_layout(path: Path, table: _RawTable) -> TrackLayout:
    columns = set(table.header)
    for layout in LAYOUTS.values():
        if columns >= set(layout.required):
            return layout
    best = max(LAYOUTS.values(), key=lambda lay: len(columns & set(lay.required)) / len(lay.required))
    shared = columns & set(best.required)
    if len(shared) >= len(best.required) / 2:
        missing = [c for c in best.required if c not in columns]
        raise TrackFileError(
            path,
            table.header_line,
            f"missing column(s) {missing} for the {best.name!r} layout; columns found: {table.header}; "
            f"known layouts: {_known_layouts_text()}",
        )
    raise TrackFileError(
        path,
        table.header_line,
        f"unknown layout: columns found: {table.header}; known layouts: {_known_layouts_text()}",
    )


# ---- parsing columns ------------------------------------------------------------------------


def _fail_at(path: Path, table: _RawTable, bad: np.ndarray, problem_of_row: Callable[[int], str]) -> None:
    """Raise for the first True in ``bad``; ``problem_of_row(i)`` describes row i."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TrackFileError(path, int(table.lines[i]), problem_of_row(i))


def _parse_numbers(path: Path, table: _RawTable, column: str) -> np.ndarray:
    text = table.cells[column]
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    _fail_at(path, table, bad, lambda i: f"{column} {text.iloc[i]!r} is not a number")
    return values


def _parse_times(path: Path, table: _RawTable, column: str) -> np.ndarray:
    text = table.cells[column]
    # ISO 8601 only: no day/month guessing. utc=True turns offsets into UTC, naive stays as is.
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    _fail_at(
        path,
        table,
        parsed.isna().to_numpy(),
        lambda i: f"{column} {text.iloc[i]!r} is not a time (expected ISO 8601, e.g. 2021-10-24 16:00:00)",
    )
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _parse_raw_times(path: Path, table: _RawTable) -> np.ndarray:
    parts = {c: _parse_numbers(path, table, c) for c in ("year", "month", "day", "hour")}
    for column, values in parts.items():
        _fail_at(
            path,
            table,
            values != np.round(values),
            lambda i, c=column: f"{c} {table.cells[c].iloc[i]!r} is not a whole number",
        )
    parsed = pd.to_datetime(pd.DataFrame({c: v.astype(np.int64) for c, v in parts.items()}), errors="coerce")
    _fail_at(
        path,
        table,
        parsed.isna().to_numpy(),
        lambda i: (
            "year/month/day/hour " + " ".join(table.cells[c].iloc[i] for c in parts) + " is not a valid time"
        ),
    )
    return parsed.to_numpy(dtype="datetime64[ns]")


def _clean_ids(text: pd.Series) -> pd.Series:
    """'7001283.0' -> '7001283' (ids pass through float columns in pandas-written files)."""
    return text.str.strip().str.replace(r"^([+-]?\d+)\.0*$", r"\1", regex=True)


def _storm_ids(path: Path, table: _RawTable, id_columns: Sequence[str]) -> np.ndarray:
    """First non-empty of ``id_columns`` per row, as a clean string; never empty or "0"."""
    available = [c for c in id_columns if c in table.cells]
    ids = pd.Series("", index=table.cells.index, dtype=object)
    for column in reversed(available):  # earlier columns win
        cleaned = _clean_ids(table.cells[column])
        ids = ids.where(cleaned == "", cleaned)
    values = ids.to_numpy(dtype=object)
    _fail_at(path, table, values == "", lambda i: f"no storm id: {' / '.join(available)} all empty")
    _fail_at(path, table, values == "0", lambda i: "storm id is 0, which is not a valid id")
    return values


def _check_ranges(path: Path, table: _RawTable, lat: np.ndarray, lon: np.ndarray) -> None:
    _fail_at(path, table, (lat < -90) | (lat > 90), lambda i: f"lat {lat[i]} is outside [-90, 90]")
    _fail_at(path, table, (lon < -180) | (lon >= 360), lambda i: f"lon {lon[i]} is outside [-180, 360)")


# ---- building and checking the tidy table ----------------------------------------------------


def _tidy_from_csv(path: Path, table: _RawTable, layout: TrackLayout) -> pd.DataFrame:
    missing = [c for c in layout.required if c not in table.cells]
    if missing:
        raise TrackFileError(
            path,
            table.header_line,
            f"missing column(s) {missing} for the {layout.name!r} layout; columns found: {table.header}",
        )
    cells = table.cells
    lat = _parse_numbers(path, table, "lat")
    lon = _parse_numbers(path, table, "lon")
    _check_ranges(path, table, lat, lon)
    source = cells["source"] if "source" in cells else pd.Series("", index=cells.index)
    data = {
        "storm_id": _storm_ids(path, table, layout.id_columns),
        "name": cells["name"].to_numpy(dtype=object) if "name" in cells else "",
        "time": _parse_times(path, table, "time"),
        "lat": lat,
        "lon": lon,
        "window_start": _parse_times(path, table, "start_time"),
        "window_end": _parse_times(path, table, "end_time"),
        "source": source.where(source != "", layout.default_source).to_numpy(dtype=object),
    }
    if "pressure" in cells:
        data["pressure"] = _parse_numbers(path, table, "pressure")
    return pd.DataFrame(data)


def _tidy_from_raw(path: Path, table: _RawTable) -> pd.DataFrame:
    lat = _parse_numbers(path, table, "lat")
    lon = _parse_numbers(path, table, "lon")
    _check_ranges(path, table, lat, lon)
    df = pd.DataFrame(
        {
            "storm_id": _storm_ids(path, table, ["id"]),
            "name": "",
            "time": _parse_raw_times(path, table),
            "lat": lat,
            "lon": lon,
            "source": "composite",
            "pressure": _parse_numbers(path, table, "pressure"),
        }
    )
    # no window in the file: the storm counts over its whole track
    span = df.groupby("storm_id")["time"]
    df["window_start"] = span.transform("min")
    df["window_end"] = span.transform("max")
    return df


def _check_table(path: Path, table: _RawTable, df: pd.DataFrame) -> None:
    """Row and storm consistency; ``df`` rows are in file order (aligned with ``table.lines``)."""
    start = df["window_start"].to_numpy()
    end = df["window_end"].to_numpy()
    _fail_at(
        path,
        table,
        end < start,
        lambda i: f"window end {pd.Timestamp(end[i])} is before window start {pd.Timestamp(start[i])}",
    )
    for column in ("name", "window_start", "window_end"):
        first = df.groupby("storm_id")[column].transform("first")
        differs = (df[column] != first).to_numpy()

        def problem(i: int, column: str = column, first: pd.Series = first) -> str:
            sid = df["storm_id"].iloc[i]
            j = int(np.flatnonzero((df["storm_id"] == sid).to_numpy())[0])
            return (
                f"storm {sid!r} has {column} {df[column].iloc[i]!r} here "
                f"but {first.iloc[i]!r} on line {int(table.lines[j])}"
            )

        _fail_at(path, table, differs, problem)
    duplicated = df.duplicated(["storm_id", "time"]).to_numpy()

    def duplicate_problem(i: int) -> str:
        same = (df["storm_id"] == df["storm_id"].iloc[i]) & (df["time"] == df["time"].iloc[i])
        j = int(np.flatnonzero(same.to_numpy())[0])
        return (
            f"duplicate track point: storm {df['storm_id'].iloc[i]!r} at {df['time'].iloc[i]} "
            f"already on line {int(table.lines[j])}"
        )

    _fail_at(path, table, duplicated, duplicate_problem)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Normalise lon, fix dtypes and column order, sort."""
    df = df.copy()
    df["lon"] = np.where(df["lon"] >= 180.0, df["lon"] - 360.0, df["lon"])
    for column in ("storm_id", "name", "source"):
        df[column] = df[column].astype(str)
    for column in ("time", "window_start", "window_end"):
        df[column] = df[column].astype("datetime64[ns]")
    columns = TRACK_COLUMNS + (["pressure"] if "pressure" in df else [])
    return df[columns].sort_values(["storm_id", "time"], kind="stable").reset_index(drop=True)


def read_tracks(path: str | os.PathLike[str], layout: str = "auto") -> pd.DataFrame:
    """Read a track file of any known layout into the tidy table (see the module docstring).

    Args:
        path: the track file.
        layout: "auto" (detect from the header / first line) or one of ``LAYOUTS`` or "raw".

    Returns:
        DataFrame with ``TRACK_COLUMNS`` (+ ``pressure`` when the file has it), sorted by
        storm_id then time, index 0..n-1.

    Raises:
        TrackFileError: naming the file and line, for any problem in the file.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if layout not in ("auto", RAW_LAYOUT, *LAYOUTS):
        raise ValueError(f"layout must be 'auto', {RAW_LAYOUT!r} or one of {list(LAYOUTS)}, got {layout!r}")
    _check_utf8(path)
    first = _first_content_line(path)
    if first is None:
        raise TrackFileError(path, 1, "the file is empty")
    if layout == RAW_LAYOUT or (layout == "auto" and _looks_like_raw(first[1])):
        table = _read_whitespace_cells(path)
        df = _tidy_from_raw(path, table)
    else:
        table = _read_csv_cells(path)
        chosen = _detect_layout(path, table) if layout == "auto" else LAYOUTS[layout]
        df = _tidy_from_csv(path, table, chosen)
    _check_table(path, table, df)
    return _finish(df)


def write_tracks(df: pd.DataFrame, path: str | os.PathLike[str], extra_columns: Sequence[str] = ()) -> None:
    """Write a tidy table in the ``tracks`` layout, which ``read_tracks`` reads back identically.

    Columns: ``time,start_time,end_time,lon,lat,name,storm_id,source`` (+ ``pressure`` when
    ``df`` has it, + `extra_columns` of ``df`` as they are, e.g. predict-track's probability, which
    ``read_tracks`` ignores); times as ``YYYY-mm-dd HH:MM:SS``; floats at full precision.
    """
    missing = [c for c in (*TRACK_COLUMNS, *extra_columns) if c not in df]
    if missing:
        raise ValueError(f"write_tracks: the table lacks column(s) {missing}; expected {TRACK_COLUMNS}")
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(df["time"]).dt.strftime(_TIME_FORMAT),
            "start_time": pd.to_datetime(df["window_start"]).dt.strftime(_TIME_FORMAT),
            "end_time": pd.to_datetime(df["window_end"]).dt.strftime(_TIME_FORMAT),
            "lon": df["lon"].astype(np.float64),
            "lat": df["lat"].astype(np.float64),
            "name": df["name"].astype(str),
            "storm_id": df["storm_id"].astype(str),
            "source": df["source"].astype(str),
        }
    )
    if "pressure" in df:
        out["pressure"] = df["pressure"].astype(np.float64)
    for column in extra_columns:
        out[column] = df[column].to_numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)


# ---- interpolation --------------------------------------------------------------------------


def _as_sorted_unique_ns(times: object) -> np.ndarray:
    """Any datetime-like sequence -> sorted unique int64 ns since the epoch (UTC, naive)."""
    if isinstance(times, str | pd.Timestamp | np.datetime64 | datetime):
        times = [times]
    index = pd.DatetimeIndex(pd.to_datetime(times))  # type: ignore[arg-type]
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    ns = np.sort(index.as_unit("ns").asi8)
    # sort + diff: np.unique is ~50x slower on a million already-sorted frame times
    return ns[np.concatenate([[True], ns[1:] != ns[:-1]])] if len(ns) else ns


def _within_max_gap(q: np.ndarray, t: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """True where query time q (inside [t[0], t[-1]]) is a track time or lies in a gap <= max_gap."""
    left = np.clip(np.searchsorted(t, q, "right") - 1, 0, len(t) - 1)
    right = np.minimum(left + 1, len(t) - 1)
    return (q == t[left]) | (t[right] - t[left] <= max_gap_ns)


def _empty_positions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "storm_id": pd.Series([], dtype=str),
            "time": pd.Series([], dtype="datetime64[ns]"),
            "lat": pd.Series([], dtype=np.float64),
            "lon": pd.Series([], dtype=np.float64),
            "in_window": pd.Series([], dtype=bool),
        }
    )


def interpolate_positions(
    tracks: pd.DataFrame, times: object, max_gap: pd.Timedelta | str | None = None
) -> pd.DataFrame:
    """Storm positions at the requested times, linear in time between track points.

    For every storm and every requested time inside the storm's [first, last] track time
    (inclusive), lat and lon are interpolated linearly between the neighbouring track points;
    times outside a storm's span give no row for it (no extrapolation). Interpolation is linear
    in degrees with no dateline handling: fine for the Mediterranean, wrong across 180 deg.

    Args:
        tracks: tidy table from ``read_tracks`` (needs storm_id, time, lat, lon, window_start,
            window_end).
        times: datetime-likes (array, list, DatetimeIndex, Series), UTC; duplicates are merged.
        max_gap: if given, a time strictly between two track points further apart than this gets
            no row (track points themselves are always kept). Real tracks have such holes where
            rows were cut, e.g. storm 7001702 (Ianos) in manos_medicanes_only.csv jumps 6 h and
            13 h while it was south of the grid; None interpolates across every hole.

    Returns:
        DataFrame ``storm_id, time, lat, lon, in_window`` sorted by storm_id then time;
        ``in_window`` is ``window_start <= time <= window_end``.
    """
    missing = [c for c in ("storm_id", "time", "lat", "lon", "window_start", "window_end") if c not in tracks]
    if missing:
        raise ValueError(f"interpolate_positions: the tracks table lacks column(s) {missing}")
    query = _as_sorted_unique_ns(times)
    ordered = tracks.sort_values(["storm_id", "time"], kind="stable")
    t_all = ordered["time"].astype("datetime64[ns]").to_numpy().view(np.int64)
    lat_all = ordered["lat"].to_numpy(dtype=np.float64)
    lon_all = ordered["lon"].to_numpy(dtype=np.float64)
    start_all = ordered["window_start"].astype("datetime64[ns]").to_numpy().view(np.int64)
    end_all = ordered["window_end"].astype("datetime64[ns]").to_numpy().view(np.int64)
    ids = ordered["storm_id"].astype(str).to_numpy()
    # storms are contiguous after sorting: one slice each
    boundaries = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], boundaries]) if len(ids) else np.array([], dtype=np.int64)
    ends = np.concatenate([boundaries, [len(ids)]]) if len(ids) else np.array([], dtype=np.int64)

    pieces: list[dict[str, np.ndarray]] = []
    for lo, hi in zip(starts, ends):
        t = t_all[lo:hi]
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"interpolate_positions: storm {ids[lo]!r} has duplicate track times")
        q = query[np.searchsorted(query, t[0], "left") : np.searchsorted(query, t[-1], "right")]
        if max_gap is not None:
            q = q[_within_max_gap(q, t, pd.Timedelta(max_gap).value)]
        if not len(q):
            continue
        # offsets from the first point keep float64 exact to well below a second
        qf, tf = (q - t[0]).astype(np.float64), (t - t[0]).astype(np.float64)
        pieces.append(
            {
                "storm_id": np.full(len(q), ids[lo], dtype=object),
                "time": q,
                "lat": np.interp(qf, tf, lat_all[lo:hi]),
                "lon": np.interp(qf, tf, lon_all[lo:hi]),
                "in_window": (q >= start_all[lo]) & (q <= end_all[lo]),
            }
        )
    if not pieces:
        return _empty_positions()
    result = pd.DataFrame({c: np.concatenate([p[c] for p in pieces]) for c in INTERPOLATED_COLUMNS})
    result["storm_id"] = result["storm_id"].astype(str)
    result["time"] = result["time"].astype("datetime64[ns]")
    return result
