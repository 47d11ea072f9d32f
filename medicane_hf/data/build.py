"""``medicane-hf build-dataset``: frames folder + tracks file -> packed store + clip index.

Output folder::

    store/               FrameStore (every frame decoded once; resumable packing)
    index/               datasets.DatasetDict: train, validation, test, pretrain (save_to_disk); with
                         --no-tracks one ``unlabelled`` split of clips without labels (what inference predicts)
    normalization.json   {"image_mean": [C], "image_std": [C], ...} from train frames, 0..1 units
    dataset_info.json    grid, tiles, settings, counts per split and class, skipped clips, storms
    export/              only with --export: one flat table per split

Rerunning resumes an interrupted store and rebuilds the index. The store is reused only when it was
packed from the same frames (times, names, and size + modification time, or SHA-256 with
``--check-content``); otherwise it is removed and repacked, and the summary says which. The new index and JSON files
are written to a temporary folder inside the output folder and swapped in only once they
are complete, so a failed run never loses the previous complete output.

The grid: ``--grid FILE``, else ``grid.json`` at the frames root or its parent (what
``medicane-hf synth`` writes), else the default SEVIRI grid; tile flags override the file.

``--start`` / ``--end`` keep the clips that end in that period (the frames from one clip span before
``--start`` are packed too, so the first clip is whole). Without a track file (``--no-tracks``, or
``tracks_path=None``) the index holds every tile of every complete hourly clip, unlabelled, and the
normalisation statistics come from all frames; a track file that is given must still hold track rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from medicane_hf import __version__
from medicane_hf.data.clips import TIME_RULES, ClipSettings, TileLayout
from medicane_hf.data.frames import (
    DEFAULT_FRAME_PATTERN,
    FrameScan,
    FrameSizeError,
    FrameStore,
    FrameStoreError,
    scan_frames,
)
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import (
    UNLABELLED_SPLIT,
    ClipIndex,
    UnlabelledIndex,
    build_clip_index,
    build_unlabelled_index,
    compute_normalization,
    export_index,
    frame_index_array,
    save_index,
)
from medicane_hf.data.sources import PngFolderSource
from medicane_hf.data.splits import SPLITS, SplitSettings, UnknownStormError, plan_splits
from medicane_hf.data.store import packed_frames, recorded_fingerprint, source_fingerprint
from medicane_hf.data.tracks import TrackFileError, read_tracks

__all__ = ["BuildResult", "build_dataset", "find_grid_file", "load_grid_file", "main"]

DATASET_FORMAT = "medicane_hf.ClipDataset"
DATASET_FORMAT_VERSION = 1
GRID_FILE = "grid.json"
_MAX_LISTED = 12  # storms named per split in the summary
_EXAMPLES = 3  # paths shown per kind of frame problem in the summary (dataset_info.json keeps them all)
# kinds of frame problems, in the order and words of the summary
PROBLEM_KINDS = {
    "ignored": "name does not match the pattern",
    "impossible_time": "impossible time in the name",
    "unreadable": "unreadable",
    "not_rgb": "not RGB",
    "black": "black",
    "duplicate_different": "same time, different content",  # the first by path order is kept, and named
    "duplicate_same": "same time, same content",
}


@dataclass
class BuildResult:
    """What ``build_dataset`` made.

    Attributes:
        out_dir: the output folder.
        info: the content of ``dataset_info.json``.
        summary: the text ``main`` prints.
    """

    out_dir: Path
    info: dict[str, Any]
    summary: str


# ---- grid ---------------------------------------------------------------------------------


def find_grid_file(frames_dir: str | os.PathLike[str]) -> Path | None:
    """``grid.json`` at the frames root or its parent, else None."""
    frames_dir = Path(frames_dir)
    for folder in (frames_dir, frames_dir.parent):
        if (folder / GRID_FILE).is_file():
            return folder / GRID_FILE
    return None


def load_grid_file(path: str | os.PathLike[str]) -> tuple[SeviriGrid, TileLayout | None]:
    """``{"grid": {...}, "tiles": {...}}`` (tiles optional) -> (grid, layout or None)."""
    path = Path(path)
    try:
        with open(path) as f:
            content = json.load(f)
        grid = SeviriGrid.from_dict(content["grid"])
        layout = TileLayout.from_dict(content["tiles"]) if "tiles" in content else None
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a grid file ({{'grid': {{...}}, 'tiles': {{...}}}}): {err}") from err
    return grid, layout


def _resolve_grid(
    frames_dir: Path,
    grid_path: str | os.PathLike[str] | None,
    tile_overrides: dict[str, int | None],
    given: tuple[SeviriGrid, str] | None = None,
) -> tuple[SeviriGrid, TileLayout, str]:
    """(grid, tiles, where the grid came from): `given` (no file read), else the grid file, else SEVIRI's;
    the tile arguments override the file's tiles."""
    path = Path(grid_path) if grid_path is not None else find_grid_file(frames_dir)
    if given is not None:
        (grid, source), layout = given, None
    elif path is not None:
        grid, layout = load_grid_file(path)
        source = str(path)
    else:
        grid, layout, source = SeviriGrid(), None, "default SEVIRI grid"
    tiles = (layout or TileLayout()).to_dict()
    tiles.update({k: int(v) for k, v in tile_overrides.items() if v is not None})
    return grid, TileLayout(**tiles), source


# ---- steps --------------------------------------------------------------------------------


def _storms_never_on_grid(tracks: pd.DataFrame, grid: SeviriGrid) -> list[str]:
    """ "name (id)" of every storm none of whose track points lies on the grid, in storm order."""
    if len(tracks) == 0:
        return []
    x, y = grid.lonlat_to_pixel(tracks["lon"].to_numpy(), tracks["lat"].to_numpy())
    on = pd.Series(grid.on_grid(x, y), index=tracks.index)
    never = []
    for storm_id, rows in tracks.groupby("storm_id", sort=True):
        if not on[rows.index].any():
            name = str(rows["name"].iloc[0])
            never.append(storm_id if not name or name == storm_id else f"{name} ({storm_id})")
    return never


def _scan(
    frames_dir: Path,
    grid: SeviriGrid,
    grid_source: str,
    pattern: str,
    interval: int,
    check_content: bool,
    progress: bool,
    period: tuple[pd.Timestamp | None, pd.Timestamp | None] | None = None,
) -> FrameScan:
    scan = scan_frames(
        frames_dir,
        pattern=pattern,
        expected_size=(grid.width, grid.height),
        check_content=check_content,
        interval_minutes=interval,
        progress=progress,
        period=period,
    )
    if len(scan.frames) == 0:
        within = "" if period is None else f" from {period[0] or 'the first'} to {period[1] or 'the last'}"
        raise FileNotFoundError(f"no frame matching {pattern!r} under {frames_dir}{within}")
    if len(scan.wrong_size):
        first = scan.wrong_size.iloc[0]
        raise FrameSizeError(
            f"frame {first['path']} is {first['width']} x {first['height']} px, but the grid ({grid_source}) is "
            f"{grid.width} x {grid.height} px ({len(scan.wrong_size)} frame(s) of the wrong size); "
            "pass the matching --grid or remove those frames"
        )
    return scan


def _normalization_sources(
    clip_index: ClipIndex | UnlabelledIndex, n_frames: int
) -> list[tuple[str, np.ndarray]]:
    """Where the statistics may come from, in order: train-clip frames, then pretraining windows, then every
    frame; an unlabelled index has no train split: every frame."""
    if isinstance(clip_index, UnlabelledIndex):
        return [("all frames (no tracks)", np.arange(n_frames))]
    return [
        ("train clips", frame_index_array(clip_index.index["train"])),
        ("pretraining windows", frame_index_array(clip_index.index["pretrain"])),
        ("all frames (no train clip)", np.arange(n_frames)),
    ]


def _normalization(
    store: FrameStore, clip_index: ClipIndex | UnlabelledIndex, max_frames: int, seed: int, progress: bool
) -> dict[str, Any]:
    """Statistics from train-clip frames; falls back to pretraining windows, then to every frame."""
    for name, indices in _normalization_sources(clip_index, len(store)):
        valid = indices[(indices >= 0)] if indices.size else indices
        if valid.size and np.asarray(store.valid)[np.unique(valid)].any():
            stats = compute_normalization(store, valid, max_frames=max_frames, seed=seed, progress=progress)
            stats["source"] = name
            return stats
    raise ValueError(f"store {store.path} has no valid frame: cannot compute normalisation statistics")


def _frame_problems(scan: FrameScan, store: FrameStore) -> dict[str, list[dict[str, str]]]:
    """Every problem file the scan and the packing found, by kind (`PROBLEM_KINDS`): ``{"path", "reason"}`` or
    ``{"path", "kept_path"}`` rows, in path order. A file the scan and the store both flag is listed once."""
    problems: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in PROBLEM_KINDS}
    for path in scan.ignored:
        problems["ignored"][path] = {"path": path}

    def add(path: str, reason: str) -> None:
        if reason.startswith("impossible time"):
            kind = "impossible_time"
        elif reason.startswith("not RGB"):
            kind = "not_rgb"
        elif reason.startswith("black"):
            kind = "black"
        else:
            kind = "unreadable"
        problems[kind].setdefault(path, {"path": path, "reason": reason})

    for row in scan.unreadable.itertuples():
        add(str(row.path), str(row.reason))
    for index, reason in store.invalid_reasons.items():
        add(str(scan.frames["path"].iloc[index]), reason.removeprefix("unreadable: "))
    for row in scan.duplicates.itertuples():
        kind = "duplicate_same" if row.same_content else "duplicate_different"
        problems[kind][str(row.path)] = {"path": str(row.path), "kept_path": str(row.kept_path)}
    return {kind: [rows[p] for p in sorted(rows)] for kind, rows in problems.items()}


def _frames_info(scan: FrameScan, store: FrameStore) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for reason in store.invalid_reasons.values():
        key = reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    return {
        "root": str(scan.root),
        "pattern": scan.pattern,
        "n_frames": len(store),
        "first": str(store.times[0].astype("datetime64[s]")),
        "last": str(store.times[-1].astype("datetime64[s]")),
        "n_valid": int(np.sum(store.valid)),
        "invalid": reasons,
        "gaps": len(scan.gaps),
        "missing_frames": scan.n_missing,
        "duplicates": len(scan.duplicates),
        "width": store.width,
        "height": store.height,
        "channels": store.channels,
        "problems": _frame_problems(scan, store),
    }


_IDENTITY_WORDS = {"stat": "size and modification time", "sha256": "SHA-256 of the bytes"}


def _decide_store_reuse(store_dir: Path, source: PngFolderSource) -> dict[str, Any]:
    """Reuse ``store_dir`` only when it was packed from exactly these frames: the same times, names and
    content (size + modification time, or SHA-256 with --check-content). A store of other frames is
    removed here, before packing, so that it is never served under the new frames' names.

    Returns ``{"action": packed | reused | resumed | repacked, "reason": ..., "changed": [paths]}``
    (written to dataset_info.json and printed in the summary).
    """
    identity = _IDENTITY_WORDS[source.content]
    recorded = recorded_fingerprint(store_dir)
    if recorded is None:
        return {"action": "packed", "reason": "no store from an earlier run", "changed": []}
    fingerprint, complete = recorded
    if fingerprint == source_fingerprint(source):
        action = "reused" if complete else "resumed"
        reason = f"the same {len(source)} frames as its last build (times, names and {identity} match)"
        return {"action": action, "reason": reason, "changed": []}
    changed = _changed_frames(packed_frames(store_dir), source)
    shutil.rmtree(store_dir)
    example = f" (e.g. {changed[0]})" if changed else ""
    reason = (
        f"{len(changed)} frame(s) differ from the packed ones by time, name or {identity}{example}; "
        "the old store was removed"
    )
    return {"action": "repacked", "reason": reason, "changed": changed[:_MAX_LISTED]}


def _changed_frames(packed: pd.DataFrame, source: PngFolderSource) -> list[str]:
    """Paths of the frames that are new, gone or different since ``packed`` (a store's frames.csv)."""
    before = {
        pd.Timestamp(t): (os.path.basename(path), key)
        for t, path, key in zip(
            packed["time"], packed["path"], packed.get("content", pd.Series([None] * len(packed)))
        )
    }
    now = {
        pd.Timestamp(t): (os.path.basename(path), key, path)
        for t, path, key in zip(source.times, source.locations, source.content_keys())
    }
    changed = [path for t, (name, key, path) in now.items() if before.get(t) != (name, key)]
    gone = [
        f"{packed_path} (gone)"
        for t, packed_path in zip(packed["time"], packed["path"])
        if pd.Timestamp(t) not in now
    ]
    return sorted(changed) + gone


def _atomic_publish(staging: Path, out_dir: Path, names: list[str]) -> None:
    """Move complete outputs from ``staging`` into ``out_dir``; ``dataset_info.json`` last (the complete marker)."""
    old = Path(tempfile.mkdtemp(prefix=".old-", dir=out_dir))
    try:
        for name in names:
            src, dst = staging / name, out_dir / name
            if src.is_dir():
                if dst.exists():
                    os.replace(dst, old / name)
                os.replace(src, dst)
            else:
                os.replace(src, dst)
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _datasets_progress(enabled: bool) -> Iterator[None]:
    """Silence the datasets library's own bars when the caller asked for none, then restore the setting."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    if not enabled:
        datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()


# ---- summary ------------------------------------------------------------------------------


def _split_line(name: str, row: dict[str, int], class_names: list[str]) -> str:
    classes = ", ".join(f"{c} {row.get(f'label_{k}', 0):,}" for k, c in enumerate(class_names))
    return f"    {name:<10} {row['clips']:>9,}  ({classes}; with a tracking target {row['has_target']:,})"


def _problem_lines(frames: dict[str, Any]) -> list[str]:
    """The frame problems of the scan and the packing: a count and the first few paths per kind."""
    problems = frames.get("problems")  # dataset_info.json of builds before the problem list have none
    if not problems or not any(problems.values()):
        return []
    lines = ["  frame problems (every path in dataset_info.json, frames.problems):"]
    for kind, words in PROBLEM_KINDS.items():
        rows = problems.get(kind, [])
        if not rows:
            continue
        examples = []
        for row in rows[:_EXAMPLES]:
            detail = f": {row['reason'].removeprefix(words + ': ')}" if "reason" in row else ""
            detail += f" (kept {row['kept_path']})" if "kept_path" in row else ""
            examples.append(f"{row['path']}{detail}")
        more = f"; and {len(rows) - _EXAMPLES:,} more" if len(rows) > _EXAMPLES else ""
        lines.append(f"    {words}: {len(rows):,}, e.g. " + "; ".join(examples) + more)
    return lines


def _storm_warnings(info: dict[str, Any]) -> list[str]:
    """Storms of the tracks file that never fall on the grid (lat/lon swapped, another grid): named, since
    they can give no clip."""
    never = info.get("storms", {}).get("never_on_grid", [])
    if not never:
        return []
    shown = ", ".join(never[:_MAX_LISTED]) + (", ..." if len(never) > _MAX_LISTED else "")
    return [
        f"  WARNING: {len(never)} storm(s) of the tracks file never fall on the grid ({info['grid_source']}), "
        f"so no clip holds them: {shown}. Are lat and lon swapped, or is the grid another one?"
    ]


def _split_warnings(info: dict[str, Any]) -> list[str]:
    """An empty train split, or a split without one Medicane clip: said plainly, since a model trained or
    selected on it learns or measures nothing about Medicanes."""
    lines = []
    if info["counts"]["train"]["clips"] == 0:
        lines.append(
            "  WARNING: the train split is empty: there is nothing to train on (training refuses it)."
        )
    elif info["counts"]["train"].get("label_1", 0) == 0:
        lines.append(
            f"  WARNING: the train split holds no Medicane clip ({info['counts']['train']['clips']:,} clips): "
            "a detector trained on it cannot learn what a Medicane looks like."
        )
    for name in ("validation", "test"):
        if info["counts"][name].get("label_1", 0) == 0:
            lines.append(
                f"  WARNING: the {name} split holds no Medicane clip ({info['counts'][name]['clips']:,} clips): "
                "detection scores on it (POD, CSI, PR-AUC) are undefined and no checkpoint is chosen on Medicanes."
            )
    return lines


def _unlabelled_lines(info: dict[str, Any]) -> list[str]:
    """The part of the summary of a build without tracks: its clips and why the others were skipped."""
    skipped = ", ".join(f"{k} {v:,}" for k, v in info["skipped"].items()) or "none"
    return [
        f"  unlabelled clips (no track file: no labels, targets or splits): "
        f"{info['counts'][UNLABELLED_SPLIT]['clips']:,} of {info['candidate_clips']:,} candidates",
        f"  skipped clips: {skipped}",
        f"  clips with filled frames: {info['filled_clips']:,} "
        f"(max_missing_frames={info['settings']['clips']['max_missing_frames']})",
    ]


def format_summary(info: dict[str, Any]) -> str:
    """The human summary of a ``dataset_info.json``."""
    fr = info["frames"]
    invalid = ", ".join(f"{k} {v}" for k, v in fr["invalid"].items()) or "none"
    tiles = info["tiles"]
    store_line = []
    if "store" in info:  # dataset_info.json of builds before the reuse record have none
        store_line = [f"  store: {info['store']['action']} ({info['store']['reason']})"]
    lines = [
        f"Dataset in {info['out_dir']}",
        *store_line,
        f"  frames: {fr['n_frames']:,} from {fr['first']} to {fr['last']} ({fr['width']} x {fr['height']} px, "
        f"{fr['channels']} channels)",
        f"  gaps: {fr['gaps']:,} ({fr['missing_frames']:,} missing frames); invalid frames: {invalid}",
        *_problem_lines(fr),
        f"  grid: {info['grid_source']}; tiles: {info['n_tiles']} per frame ({tiles['tile_size']} px, strides "
        f"{tiles['stride_x']} x {tiles['stride_y']})",
    ]
    if not info.get("labelled", True):
        norm = info["normalization"]
        return "\n".join(
            lines
            + _unlabelled_lines(info)
            + [f"  normalisation ({norm['source']}, {norm['n_frames']} frames)"]
        )
    lines += [
        f"  labelled clips (tile-clips ending at minute {info['settings']['clips']['end_minute']:02d}): "
        f"{info['candidate_clips']:,} candidates",
    ]
    for name in SPLITS:
        lines.append(_split_line(name, info["counts"][name], info["class_names"]))
    skipped = ", ".join(f"{k} {v:,}" for k, v in info["skipped"].items()) or "none"
    lines.append(f"  skipped clips: {skipped}")
    lines.append(
        f"  clips with filled frames: {info['filled_clips']:,} "
        f"(max_missing_frames={info['settings']['clips']['max_missing_frames']})"
    )
    pre_skipped = ", ".join(f"{k} {v:,}" for k, v in info["pretrain"]["skipped"].items()) or "none"
    lines.append(
        f"  pretraining windows: {info['counts']['pretrain']['windows']:,} of {info['pretrain']['candidates']:,} "
        f"(skipped: {pre_skipped})"
    )
    for name in SPLITS:
        storms = info["storms"][name]
        shown = ", ".join(storms[:_MAX_LISTED]) + (", ..." if len(storms) > _MAX_LISTED else "")
        lines.append(f"  storms in {name}: {len(storms)}" + (f" ({shown})" if storms else ""))
    lines += _storm_warnings(info)
    lines += _split_warnings(info)
    for name in ("validation", "test"):
        if not info["storms"][name]:
            flag = "--val-storms" if name == "validation" else "--test-storms"
            lines.append(
                f"  WARNING: no storm in {name} (storms overlapping in time form too few groups); "
                f"its clips are storm-free days only. Name storms with {flag} to choose them."
            )
    if info["storms"]["outside_period"]:
        lines.append(
            f"  storms outside the frames' period (no clips): {len(info['storms']['outside_period'])}"
        )
    norm = info["normalization"]
    lines.append(
        f"  normalisation ({norm['source']}, {norm['n_frames']} frames): mean "
        f"{[round(v, 4) for v in norm['image_mean']]}, std {[round(v, 4) for v in norm['image_std']]}"
    )
    return "\n".join(lines)


# ---- API ----------------------------------------------------------------------------------


def _frame_period(
    period: tuple[Any, Any] | None, settings: ClipSettings
) -> tuple[pd.Timestamp | None, pd.Timestamp | None] | None:
    """Clip end times ``(first, last)`` -> the frame times a scan keeps: from one clip span before ``first``."""
    if period is None:
        return None
    first, last = (None if p is None else pd.Timestamp(p) for p in period)
    if first is not None and last is not None and last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    return (None if first is None else first - settings.span, last)


def build_dataset(
    frames_dir: str | os.PathLike[str],
    tracks_path: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    grid_path: str | os.PathLike[str] | None = None,
    grid: SeviriGrid | None = None,
    tile_size: int | None = None,
    stride_x: int | None = None,
    stride_y: int | None = None,
    clip_settings: ClipSettings | None = None,
    split_settings: SplitSettings | None = None,
    period: tuple[Any, Any] | None = None,
    pretrain_stride: int = 4,
    compression: str | None = None,
    export: str | None = None,
    pattern: str = DEFAULT_FRAME_PATTERN,
    check_content: bool = False,
    normalization_frames: int = 200,
    num_workers: int = 1,
    progress: bool = True,
) -> BuildResult:
    """Scan frames, pack the store, build the clip index and statistics; see the module docstring.

    Args:
        tracks_path: the track file; None builds an unlabelled index (`build_unlabelled_index`): every tile of
            every complete clip, no labels, targets or splits.
        grid: the frames' grid itself (what inference passes: the model's), instead of ``grid_path`` or a
            ``grid.json`` beside the frames; the tiles then come from the tile arguments (else `TileLayout`'s
            defaults).
        period: ``(first, last)`` clip end times (``pandas.Timestamp``-like; either may be None), inclusive;
            frames from one clip span before ``first`` to ``last`` are scanned and packed.

    Raises:
        FileNotFoundError: no frames / no tracks file.
        FrameSizeError: a frame's size differs from the grid (names the file).
        TrackFileError: a bad track row, or a track file without rows (names the file and line).
        UnknownStormError: an explicit split list names a storm not in the tracks.
        FrameStoreError: ``out_dir/store`` holds a store of another frame list.
    """
    frames_dir, out_dir = Path(frames_dir), Path(out_dir)
    clip_settings = clip_settings or ClipSettings()
    split_settings = split_settings or SplitSettings()
    grid, layout, grid_source = _resolve_grid(
        frames_dir,
        grid_path,
        {"tile_size": tile_size, "stride_x": stride_x, "stride_y": stride_y},
        given=None if grid is None else (grid, "given grid"),
    )
    offsets = layout.offsets(grid.width, grid.height)  # fails early on a tile larger than the grid
    tracks = None
    never_on_grid: list[str] = []
    if tracks_path is not None:
        tracks = read_tracks(tracks_path)
        never_on_grid = _storms_never_on_grid(tracks, grid)
        # unknown names in --val-storms/--test-storms fail now, not after packing a year of frames
        plan_splits(tracks, split_settings, margin=clip_settings.span)
    scan = _scan(
        frames_dir,
        grid,
        grid_source,
        pattern,
        clip_settings.frame_interval_minutes,
        check_content,
        progress,
        _frame_period(period, clip_settings),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    source = PngFolderSource(scan.frames, content="sha256" if check_content else "stat")
    store_decision = _decide_store_reuse(out_dir / "store", source)
    store = FrameStore.pack(
        source,
        out_dir / "store",
        compression=compression,
        progress=progress,
        expected_size=(grid.width, grid.height),
        num_workers=num_workers,
    )
    if tracks is None:
        clip_index: ClipIndex | UnlabelledIndex = build_unlabelled_index(store, grid, layout, clip_settings)
    else:
        clip_index = build_clip_index(
            store, tracks, grid, layout, clip_settings, split_settings, pretrain_stride=pretrain_stride
        )
    normalization = _normalization(store, clip_index, normalization_frames, split_settings.seed, progress)
    info: dict[str, Any] = {
        "format": DATASET_FORMAT,
        "version": DATASET_FORMAT_VERSION,
        "package_version": __version__,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "out_dir": str(out_dir),
        "labelled": tracks is not None,
        "inputs": {
            "frames_dir": str(frames_dir),
            "tracks": None if tracks_path is None else str(tracks_path),
        },
        "grid_source": grid_source,
        "grid": grid.to_dict(),
        "tiles": layout.to_dict(),
        "tile_offsets": [list(o) for o in offsets],
        "n_tiles": len(offsets),
        "num_channels": store.channels,
        "class_names": clip_settings.class_names,
        "settings": {
            "clips": clip_settings.to_dict(),
            "splits": split_settings.to_dict(),
            "period": None
            if period is None
            else [None if p is None else str(pd.Timestamp(p)) for p in period],
            "pretrain_stride": pretrain_stride,
            "compression": compression,
            "normalization_frames": normalization_frames,
        },
        "frames": _frames_info(scan, store),
        "store": store_decision,
        "counts": clip_index.counts(),
        "candidate_clips": clip_index.candidate_clips,
        "skipped": clip_index.skipped,
        "filled_clips": clip_index.filled_clips,
    }
    if isinstance(clip_index, ClipIndex):
        info.update(
            {
                "pretrain": {
                    "candidates": clip_index.pretrain_candidates,
                    "skipped": clip_index.pretrain_skipped,
                },
                "storms": {
                    **clip_index.plan.storms_per_split(),
                    "outside_period": clip_index.plan.storms_outside_period,
                    "never_on_grid": never_on_grid,
                },
                "split_plan": clip_index.plan.to_dict(),
            }
        )
    info["normalization"] = normalization
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        with _datasets_progress(progress):
            save_index(clip_index.index, staging / "index")
        (staging / "normalization.json").write_text(json.dumps(normalization, indent=1))
        (staging / "dataset_info.json").write_text(json.dumps(info, indent=1, default=str))
        _atomic_publish(staging, out_dir, ["index", "normalization.json", "dataset_info.json"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if export:
        export_index(out_dir, export)
    return BuildResult(out_dir=out_dir, info=info, summary=format_summary(info))


# ---- command line -------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _fractions(text: str) -> tuple[float, float, float]:
    parts = [float(v) for v in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"--fractions needs train,validation,test, got {text!r}")
    return parts[0], parts[1], parts[2]


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Append "(default: X)" to a flag's help when it has a value default its help does not already state."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is False  # a store_true flag (0, a real default, is shown)
            or default == argparse.SUPPRESS
            or not action.option_strings
            or "default" in text
            or (isinstance(default, list) and not default)
        ):
            return text
        shown = ",".join(str(v) for v in default) if isinstance(default, (tuple, list)) else "%(default)s"
        return f"{text} (default: {shown})"


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``medicane-hf build-dataset`` (what its ``--help`` prints, each with its default)."""
    p = argparse.ArgumentParser(
        prog="medicane-hf build-dataset",
        description="Frames folder + tracks file -> packed frame store + clip index (train/validation/test/pretrain).",
        formatter_class=_DefaultsHelpFormatter,
    )
    p.add_argument(
        "--frames", required=True, type=Path, help="folder of airmass_rgb_YYYYmmdd_HHMM.png frames"
    )
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--tracks", type=Path, help="track file (any layout read_tracks knows)")
    labels.add_argument(
        "--no-tracks",
        action="store_true",
        help="no track file: index every tile of every complete clip without labels (for inference; "
        "training refuses such a folder)",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (store/, index/, JSON files)")
    p.add_argument(
        "--grid", type=Path, help="grid.json (default: at the frames root or its parent, else SEVIRI)"
    )
    p.add_argument("--pattern", default=DEFAULT_FRAME_PATTERN, help="strftime pattern of frame file names")
    tiles = TileLayout()  # the defaults, declared once in clips.TileLayout
    p.add_argument(
        "--tile-size", type=int, help=f"tile side, px (default: grid file, else {tiles.tile_size})"
    )
    p.add_argument(
        "--stride-x", type=int, help=f"tile stride in x, px (default: grid file, else {tiles.stride_x})"
    )
    p.add_argument(
        "--stride-y", type=int, help=f"tile stride in y, px (default: grid file, else {tiles.stride_y})"
    )
    p.add_argument("--start", type=pd.Timestamp, help="first clip end time, UTC (default: the frames' first)")
    p.add_argument("--end", type=pd.Timestamp, help="last clip end time, UTC (default: the frames' last)")
    p.add_argument("--num-frames", type=int, default=16, help="frames per clip")
    p.add_argument("--frame-interval", type=int, default=5, help="minutes between frames")
    p.add_argument(
        "--max-missing-frames",
        type=int,
        default=0,
        help="0: skip a clip with any missing/invalid frame; N: fill up to N with the nearest frame",
    )
    p.add_argument("--min-positive-frames", type=int, default=6, help="positive frames for a positive clip")
    p.add_argument(
        "--time-rule", choices=TIME_RULES, default="interpolate", help="frame time vs hourly track"
    )
    p.add_argument(
        "--max-track-gap",
        type=int,
        default=120,
        help="minutes: never interpolate a track across a longer hole (0: bridge every hole)",
    )
    p.add_argument(
        "--neighbour-class", action="store_true", help="3 classes: + neighbouring tiles of a medicane"
    )
    p.add_argument(
        "--no-window", action="store_true", help="count the whole track, not only the Medicane window"
    )
    p.add_argument("--val-storms", type=_names, default=[], help="comma-separated storm names or ids")
    p.add_argument("--test-storms", type=_names, default=[], help="comma-separated storm names or ids")
    p.add_argument(
        "--fractions", type=_fractions, default=(0.7, 0.15, 0.15), help="train,validation,test shares"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the storm split and of storm-free days")
    p.add_argument("--pretrain-stride", type=int, default=4, help="frames between pretraining windows")
    p.add_argument("--compression", choices=["none", "zlib"], default="none", help="frame store compression")
    p.add_argument("--check-content", action="store_true", help="decode every frame while scanning")
    p.add_argument("--export", choices=["csv", "parquet"], help="also write flat tables under OUT/export/")
    p.add_argument("--workers", type=int, default=1, help="decoding threads while packing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``medicane-hf build-dataset``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        clip_settings = ClipSettings(
            num_frames=args.num_frames,
            frame_interval_minutes=args.frame_interval,
            max_missing_frames=args.max_missing_frames,
            min_positive_frames=args.min_positive_frames,
            time_rule=args.time_rule,
            use_window=not args.no_window,
            neighbour_class=args.neighbour_class,
            max_track_gap_minutes=args.max_track_gap,
        )
        split_settings = SplitSettings(
            fractions=args.fractions, seed=args.seed, val_storms=args.val_storms, test_storms=args.test_storms
        )
        result = build_dataset(
            args.frames,
            None if args.no_tracks else args.tracks,
            args.out,
            grid_path=args.grid,
            tile_size=args.tile_size,
            stride_x=args.stride_x,
            stride_y=args.stride_y,
            clip_settings=clip_settings,
            split_settings=split_settings,
            period=None if args.start is None and args.end is None else (args.start, args.end),
            pretrain_stride=args.pretrain_stride,
            compression=None if args.compression == "none" else args.compression,
            export=args.export,
            pattern=args.pattern,
            check_content=args.check_content,
            num_workers=args.workers,
            progress=not args.no_progress,
        )
    except (
        FileNotFoundError,
        FrameSizeError,
        FrameStoreError,
        TrackFileError,
        UnknownStormError,
        ValueError,
    ) as err:
        print(f"medicane-hf build-dataset: error: {err}", file=sys.stderr)
        return 1
    print(result.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
