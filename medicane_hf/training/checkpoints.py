"""Which training states are complete, and writing model folders atomically.

``transformers.Trainer`` (v5) writes ``checkpoint-N/`` file by file in place:
a run killed while saving leaves a folder that looks like a checkpoint but
lacks the optimizer, the RNG state or ``trainer_state.json``, and
``get_last_checkpoint`` would pick it. So a checkpoint counts as complete
only once a marker file, written (and fsynced) after everything else, is
in it; resuming skips and removes the folders without one.

A complete checkpoint can still be damaged afterwards (a disk that filled up
or failed, a copy that stopped half-way): before resuming, every file the
marker lists is checked (`checkpoint_problem`: present, at the size recorded
when it was written, and readable as what its name says: safetensors header
and data, torch zip archive, JSON, YAML), so that a run falls back to the
newest checkpoint that can be resumed and names the ones it skipped
(`newest_resumable_checkpoint`), instead of failing on the same file at every
restart.

``best/`` and ``final/`` are written into a temporary sibling folder and
then renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
# a damaged checkpoint-N is renamed corrupt-checkpoint-N: kept for the user, out of Trainer's way
SET_ASIDE_PREFIX = "corrupt-"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# what torch.save writes (zip archives): optimizer, scheduler, RNG states, training_args.bin, EMA weights
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def _fsync_file(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def mark_complete(checkpoint_dir: str | Path, global_step: int) -> None:
    """Declare `checkpoint_dir` complete: everything in it has been written."""
    checkpoint_dir = Path(checkpoint_dir)
    files = sorted(p.name for p in checkpoint_dir.iterdir() if p.name != COMPLETE_MARKER)
    # sizes let a later check see a file cut short without reading all of it
    sizes = {
        name: (checkpoint_dir / name).stat().st_size for name in files if (checkpoint_dir / name).is_file()
    }
    _fsync_file(
        checkpoint_dir / COMPLETE_MARKER,
        json.dumps({"global_step": global_step, "files": files, "sizes": sizes}),
    )


def is_complete(checkpoint_dir: str | Path) -> bool:
    """Whether `checkpoint_dir` holds a marker and every file the marker lists."""
    marker = Path(checkpoint_dir) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        files = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError):
        return False
    return all((Path(checkpoint_dir) / name).exists() for name in files)


def checkpoint_folders(output_dir: str | Path) -> list[Path]:
    """The `checkpoint-N` folders of `output_dir`, by increasing N."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete `checkpoint-N` of `output_dir`, or None."""
    complete = [p for p in checkpoint_folders(output_dir) if is_complete(p)]
    return complete[-1] if complete else None


def _safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file: its header must parse and its tensors end at the file's end."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            (header_size,) = struct.unpack("<Q", handle.read(8))
            if 8 + header_size > size:
                return f"truncated ({size} bytes, its header alone says {8 + header_size})"
            header = json.loads(handle.read(header_size))
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        return f"not a safetensors file ({error})"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_size + max(ends, default=0)
    if size < expected:
        return f"truncated ({size} of {expected} bytes)"
    if size > expected:
        return f"{size - expected} bytes beyond its last tensor"
    return None


def _file_problem(path: Path) -> str | None:
    """Why one checkpoint file cannot be read as what its name says (None: it can)."""
    name = path.name
    try:
        if name.endswith(".safetensors"):
            return _safetensors_problem(path)
        if name.endswith(_TORCH_SUFFIXES):
            # torch.save writes a zip archive whose directory sits at the end: a cut file has none
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith((".yaml", ".yml")):
            yaml.safe_load(path.read_text())
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, OSError, yaml.YAMLError) as error:
        return f"unreadable ({type(error).__name__}: {error})"
    return None


def checkpoint_problem(checkpoint_dir: str | Path) -> str | None:
    """Why `checkpoint_dir` cannot be resumed from, naming the file (None: it can).

    Checks the completeness marker, then every file it lists: present, at the size recorded when the checkpoint
    was written (markers from before sizes were recorded skip this), and readable by its kind.
    """
    checkpoint_dir = Path(checkpoint_dir)
    marker = checkpoint_dir / COMPLETE_MARKER
    if not marker.is_file():
        return f"no {COMPLETE_MARKER} (it was not completely written)"
    try:
        content = json.loads(marker.read_text())
        files, sizes = content["files"], content.get("sizes", {})
    except (ValueError, KeyError, TypeError) as error:
        return f"{COMPLETE_MARKER} is unreadable ({error})"
    for name in files:
        path = checkpoint_dir / name
        if not path.exists():
            return f"{name} is missing"
        if path.is_dir():
            continue
        recorded = sizes.get(name)
        if recorded is not None and path.stat().st_size != recorded:
            return f"{name} is {path.stat().st_size} bytes, {recorded} when it was written (truncated or changed)"
        problem = _file_problem(path)
        if problem is not None:
            return f"{name} is {problem}"
    return None


def set_aside(checkpoint_dir: str | Path) -> Path:
    """Rename a damaged `checkpoint-N` to `corrupt-checkpoint-N` (numbered if taken) and return the new path.

    Kept for the user to look at, but no longer named `checkpoint-*`: Trainer would otherwise write a new
    checkpoint of the same step into it, or keep it and rotate a good one away (`save_total_limit`).
    """
    checkpoint_dir = Path(checkpoint_dir)
    target = checkpoint_dir.with_name(SET_ASIDE_PREFIX + checkpoint_dir.name)
    n = 1
    while target.exists():
        n += 1
        target = checkpoint_dir.with_name(f"{SET_ASIDE_PREFIX}{checkpoint_dir.name}-{n}")
    checkpoint_dir.rename(target)
    return target


def newest_resumable_checkpoint(output_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint of `output_dir` that passes `checkpoint_problem`, and the complete ones
    newer than it that did not, each with its reason (newest first). Reads only; see `set_aside`."""
    skipped: list[tuple[Path, str]] = []
    for path in reversed(checkpoint_folders(output_dir)):
        if not is_complete(path):
            continue
        problem = checkpoint_problem(path)
        if problem is None:
            return path, skipped
        skipped.append((path, problem))
    return None, skipped


def remove_incomplete_checkpoints(output_dir: str | Path) -> list[Path]:
    """Delete the `checkpoint-N` folders without a complete marker (left by a killed run); returns them."""
    removed = [p for p in checkpoint_folders(output_dir) if not is_complete(p)]
    for path in removed:
        logger.warning("Removing %s: it was not completely written (the run was stopped while saving)", path)
        shutil.rmtree(path, ignore_errors=True)
    return removed


def write_folder_atomically(target: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp_folder)` then move the folder to `target`, replacing an older one."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old")
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
