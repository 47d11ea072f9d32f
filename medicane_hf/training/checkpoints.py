"""Which training states are complete, and writing model folders atomically.

``transformers.Trainer`` (v5) writes ``checkpoint-N/`` file by file in place:
a run killed while saving leaves a folder that looks like a checkpoint but
lacks the optimizer, the RNG state or ``trainer_state.json``, and
``get_last_checkpoint`` would pick it. So a checkpoint counts as complete
only once a marker file, written (and fsynced) after everything else, is
in it; resuming skips and removes the folders without one.

``best/`` and ``final/`` are written into a temporary sibling folder and
then renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _fsync_file(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def mark_complete(checkpoint_dir: str | Path, global_step: int) -> None:
    """Declare `checkpoint_dir` complete: everything in it has been written."""
    checkpoint_dir = Path(checkpoint_dir)
    files = sorted(p.name for p in checkpoint_dir.iterdir() if p.name != COMPLETE_MARKER)
    _fsync_file(checkpoint_dir / COMPLETE_MARKER, json.dumps({"global_step": global_step, "files": files}))


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
