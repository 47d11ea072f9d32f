"""The embedded default dataset: a small synthetic basin, built once and cached.

``ensure_default_dataset()`` returns a build-dataset folder that every script run without
arguments uses. The first call synthesises the ``demo`` preset (fixed seeds and dates, 384 x
128 px, 64-px tiles) as eight 1.5-day episodes four days apart, so that storm groups (storms
overlapping in time) exist for train, validation and test, and builds it with the default
build-dataset settings; later calls return the cached folder at once.

Location: ``cache_dir`` argument, else ``$MEDICANE_HF_CACHE``, else ``~/.cache/medicane_hf``;
the dataset is ``<cache>/default-v2/`` (the build-dataset output; the synthetic frames and
tracks it was made from are in ``<cache>/default-v2/source/``). Bump ``DEFAULT_NAME`` when
the recipe changes so old caches are not reused.

Several processes starting together (DDP ranks) are safe: a file lock lets one build while
the others wait, and the result appears by an atomic rename of a finished folder, so a
reader never sees half a dataset and a crash leaves only a temporary folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from filelock import FileLock

__all__ = ["DEFAULT_EPISODES", "DEFAULT_NAME", "DEFAULT_SEED", "default_cache_dir", "ensure_default_dataset"]

DEFAULT_NAME = "default-v2"
# (start, days) of each synthetic episode: 12 days of frames, 2 storms per episode. Eight
# episodes (not four) give the train split 12 storms / ~130 Medicane clips instead of 4 / 46:
# with four, detection and tracking had too few storms to learn anything that transfers.
DEFAULT_EPISODES: tuple[tuple[str, float], ...] = (
    ("2023-10-01", 1.5),
    ("2023-10-05", 1.5),
    ("2023-10-09", 1.5),
    ("2023-10-13", 1.5),
    ("2023-10-17", 1.5),
    ("2023-10-21", 1.5),
    ("2023-10-25", 1.5),
    ("2023-10-29", 1.5),
)
DEFAULT_SEED = 0
DEFAULT_PRESET = "demo"
_COMPLETE_MARKER = "dataset_info.json"


def default_cache_dir() -> Path:
    """``$MEDICANE_HF_CACHE`` or ``~/.cache/medicane_hf``."""
    return Path(os.environ.get("MEDICANE_HF_CACHE") or Path.home() / ".cache" / "medicane_hf").expanduser()


def _point_info_at(target: Path, staging: Path) -> None:
    """Rewrite the staging folder's path in dataset_info.json to the final one (after the rename)."""
    info_path = target / _COMPLETE_MARKER
    text = info_path.read_text().replace(json.dumps(str(staging))[1:-1], json.dumps(str(target))[1:-1])
    tmp = info_path.with_name(info_path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, info_path)


def _merge_episode(episode_dir: Path, frames_dir: Path, k: int, seen_names: set[str]) -> pd.DataFrame:
    """Move an episode's frames into ``frames_dir``; its tracks with ids made unique across episodes."""
    from medicane_hf.data.tracks import read_tracks

    for path in sorted((episode_dir / "frames").rglob("*.png")):
        dest = frames_dir / path.relative_to(episode_dir / "frames")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
    shutil.rmtree(episode_dir / "frames")
    tracks = read_tracks(episode_dir / "tracks.csv")
    tracks["storm_id"] = f"e{k + 1}-" + tracks["storm_id"]
    renamed = {}
    for name in tracks["name"].unique():
        unique = name if name not in seen_names else f"{name}-{k + 1}"
        seen_names.add(unique)
        renamed[name] = unique
    tracks["name"] = tracks["name"].map(renamed)
    return tracks


def _synthesise(source: Path, *, progress: bool) -> tuple[Path, Path]:
    """The demo basin as separate episodes in one archive; returns (frames folder, tracks file).

    The synthetic basin always has a storm somewhere, so one long run would give a single
    storm group (storms overlapping in time share a split) and no validation or test storms.
    Episodes a few days apart, like the storm periods of a real archive, give one group each.
    """
    from medicane_hf.data.synthetic.basin import generate_basin
    from medicane_hf.data.tracks import write_tracks

    frames_dir = source / "frames"
    frames_dir.mkdir(parents=True)
    seen: set[str] = set()
    tables = []
    for k, (start, days) in enumerate(DEFAULT_EPISODES):
        episode = source / "episodes" / f"episode{k + 1}"
        basin = generate_basin(
            episode,
            start=start,
            days=days,
            seed=DEFAULT_SEED + k,
            preset=DEFAULT_PRESET,
            progress=progress,
            workers=min(2, os.cpu_count() or 1),
        )
        tables.append(_merge_episode(episode, frames_dir, k, seen))
        shutil.copy(basin.grid_path, source / "grid.json")
    tracks_path = source / "tracks.csv"
    write_tracks(pd.concat(tables, ignore_index=True), tracks_path)
    return frames_dir, tracks_path


def _build(target: Path, *, progress: bool) -> None:
    # imported here: the cached path needs none of this
    from medicane_hf.data.build import build_dataset

    staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_NAME}-building-", dir=target.parent))
    try:
        frames_dir, tracks_path = _synthesise(staging / "source", progress=progress)
        result = build_dataset(frames_dir, tracks_path, staging, progress=progress)
        os.replace(staging, target)
        _point_info_at(target, staging)
        print(result.summary.replace(str(staging), str(target)), file=sys.stderr)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def ensure_default_dataset(cache_dir: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """The cached default dataset folder, built on first use (see the module docstring).

    Args:
        cache_dir: cache root (default ``default_cache_dir()``).
        progress: progress bars while synthesising and building.

    Returns:
        the build-dataset folder (``store/``, ``index/``, ``normalization.json``, ``dataset_info.json``).
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / DEFAULT_NAME
    if (target / _COMPLETE_MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{DEFAULT_NAME}.lock")):
        if (target / _COMPLETE_MARKER).is_file():  # another process built it while we waited
            print(
                f"medicane-hf: using the default dataset another process just built at {target}",
                file=sys.stderr,
            )
            return target
        if target.exists():  # a folder without the marker is not ours to trust
            shutil.rmtree(target)
        print(
            f"medicane-hf: building the default dataset (synthetic '{DEFAULT_PRESET}' basin, "
            f"{len(DEFAULT_EPISODES)} episodes of {DEFAULT_EPISODES[0][1]} days from {DEFAULT_EPISODES[0][0]}, "
            f"seed {DEFAULT_SEED}) in {target}; this happens once (about a minute)",
            file=sys.stderr,
        )
        started = time.perf_counter()
        _build(target, progress=progress)
        print(
            f"medicane-hf: default dataset ready in {time.perf_counter() - started:.0f} s: {target}",
            file=sys.stderr,
        )
    return target
