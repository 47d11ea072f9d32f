"""Cached synthetic datasets: the embedded default and any preset / seed / episode list.

``ensure_synthetic_dataset(name, preset=..., seed=...)`` returns a build-dataset folder made
from a synthetic basin: the first call synthesises the preset as separate episodes (episode
``k`` with seed ``seed + k``), so that storm groups (storms overlapping in time) exist for
train, validation and test, merges them into one archive and builds it (default build-dataset
settings unless ``build_options`` says otherwise); later calls return the cached folder at once.

``ensure_default_dataset()`` is the one every script run without arguments uses: the ``demo``
preset (384 x 128 px, 64-px tiles), seed 0, eight 1.5-day episodes four days apart, in
``<cache>/default-v2/``. Benchmarks make others, e.g. ``ensure_synthetic_dataset("realistic-v1",
preset="realistic", seed=0)`` for training and ``ensure_synthetic_dataset("heldout-demo-s1000",
preset="demo", seed=1000)`` for a basin no stage has seen.

Location: ``cache_dir`` argument, else ``$MEDICANE_HF_CACHE``, else ``~/.cache/medicane_hf``;
the dataset is ``<cache>/<name>/`` (the build-dataset output; the synthetic frames and tracks
it was made from are in ``<cache>/<name>/source/``, each episode's truth, faults and label
error in ``source/episodes/episode<k>/``, and the recipe in ``source/recipe.json``). A cached
folder is reused by its name; a different recipe under a name already built (other seed,
episodes, build options, or preset settings) is refused; a folder from before recipes were
recorded is trusted. Bump the name when a recipe changes, as ``DEFAULT_NAME`` is bumped, so
old caches are not reused.

Several processes starting together (DDP ranks) are safe: a file lock lets one build while
the others wait, and the result appears by an atomic rename of a finished folder, so a
reader never sees half a dataset and a crash leaves only a temporary folder behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock
from tqdm.auto import tqdm

__all__ = [
    "DEFAULT_EPISODES",
    "DEFAULT_NAME",
    "DEFAULT_SEED",
    "default_cache_dir",
    "ensure_default_dataset",
    "ensure_synthetic_dataset",
    "read_source_label_error",
    "read_source_truth",
    "spaced_episodes",
]

DEFAULT_NAME = "default-v2"


def spaced_episodes(
    count: int, start: str = "2023-10-01", days: float = 1.5, every_days: int = 4
) -> tuple[tuple[str, float], ...]:
    """`count` episodes of `days` days, one every `every_days` days from `start` (``(start, days)`` pairs): the
    default's layout (8) or a larger training basin of the same kind (each episode its own seed, so its own
    storms)."""
    first = pd.Timestamp(start)
    return tuple(
        ((first + pd.Timedelta(days=every_days * k)).strftime("%Y-%m-%d"), float(days)) for k in range(count)
    )


# (start, days) of each synthetic episode: 12 days of frames, 2 storms per episode. Eight
# episodes (not four) give the train split 12 storms / ~130 Medicane clips instead of 4 / 46:
# with four, detection and tracking had too few storms to learn anything that transfers.
DEFAULT_EPISODES: tuple[tuple[str, float], ...] = spaced_episodes(8)
DEFAULT_SEED = 0
DEFAULT_PRESET = "demo"
_COMPLETE_MARKER = "dataset_info.json"
_RECIPE_FILE = "recipe.json"  # in <name>/source/


@dataclass(frozen=True)
class _Recipe:
    """How a cached synthetic dataset is made: what its name stands for.

    ``config`` is the preset's every setting (``SyntheticConfig.to_dict()``), so that a preset
    whose numbers changed is not served from a cache built with the old ones.
    """

    name: str
    preset: str
    seed: int
    episodes: tuple[tuple[str, float], ...]
    build_options: Mapping[str, Any]
    config: Mapping[str, Any]

    def to_json(self) -> str:
        """Stable JSON (sorted keys; dataclass options as dicts, other objects by repr)."""

        def encode(value: Any) -> Any:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return dataclasses.asdict(value)
            return repr(value)

        record = {
            "name": self.name,
            "preset": self.preset,
            "seed": self.seed,
            "episodes": [[start, days] for start, days in self.episodes],
            "build_options": dict(self.build_options),
            "config": dict(self.config),
        }
        return json.dumps(record, indent=2, sort_keys=True, default=encode) + "\n"

    def differences(self, recorded: Mapping[str, Any]) -> list[str]:
        """What differs between this recipe and a recorded one (``recipe.json``), by key.

        A setting missing from the recorded config was added to ``SyntheticConfig`` after that
        build; it counts as the same while it holds its default (new settings default to off,
        which keeps the old presets' bytes), so an upgrade does not orphan every cache.
        """
        from medicane_hf.data.synthetic.config import SyntheticConfig

        current = json.loads(self.to_json())
        diffs = [
            key
            for key in ("name", "preset", "seed", "episodes", "build_options")
            if recorded.get(key) != current[key]
        ]
        if "config" not in recorded:  # a recipe that did not record the settings: nothing to compare
            return diffs
        old, new = recorded["config"], current["config"]
        defaults = json.loads(json.dumps(SyntheticConfig().to_dict()))
        for key in sorted(set(old) | set(new)):
            if key not in old:
                if new[key] != defaults.get(key):
                    diffs.append(f"config.{key}")
            elif old[key] != new.get(key):
                diffs.append(f"config.{key}")
        return diffs


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


def _synthesise(source: Path, recipe: _Recipe, *, progress: bool) -> tuple[Path, Path]:
    """The recipe's basin as separate episodes in one archive; returns (frames folder, tracks file).

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
    # one bar for the whole basin, not one per episode (the default has 8, which stacked up as 8 bars)
    bar = tqdm(total=len(recipe.episodes), desc="synthetic basin", unit="episode", disable=not progress)
    for k, (start, days) in enumerate(recipe.episodes):
        episode = source / "episodes" / f"episode{k + 1}"
        basin = generate_basin(
            episode,
            start=start,
            days=days,
            seed=recipe.seed + k,
            preset=recipe.preset,
            progress=False,
            workers=min(2, os.cpu_count() or 1),
        )
        tables.append(_merge_episode(episode, frames_dir, k, seen))
        shutil.copy(basin.grid_path, source / "grid.json")
        bar.update(1)
    bar.close()
    tracks_path = source / "tracks.csv"
    write_tracks(pd.concat(tables, ignore_index=True), tracks_path)
    return frames_dir, tracks_path


def _build(target: Path, recipe: _Recipe, *, progress: bool) -> None:
    """Synthesise and build ``recipe`` in a staging folder next to ``target``, then rename it there."""
    # imported here: the cached path needs none of this
    from medicane_hf.data.build import build_dataset

    staging = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-building-", dir=target.parent))
    try:
        frames_dir, tracks_path = _synthesise(staging / "source", recipe, progress=progress)
        (staging / "source" / _RECIPE_FILE).write_text(recipe.to_json())
        options = {"progress": progress, **recipe.build_options}
        result = build_dataset(frames_dir, tracks_path, staging, **options)
        os.replace(staging, target)
        _point_info_at(target, staging)
        print(result.summary.replace(str(staging), str(target)), file=sys.stderr)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_recipe(target: Path, recipe: _Recipe) -> None:
    """Refuse a cached folder whose recorded recipe is not ``recipe`` (a name means one dataset)."""
    path = target / "source" / _RECIPE_FILE
    if not path.is_file():  # built before recipes were recorded: the name is all we have
        return
    diffs = recipe.differences(json.loads(path.read_text()))
    if diffs:
        raise ValueError(
            f"the cached synthetic dataset {target} was built from another recipe than the one asked "
            f"for (differs in {', '.join(diffs)}; recorded in {path}): use another name, or delete "
            "the folder to rebuild it"
        )


def ensure_synthetic_dataset(
    name: str,
    *,
    preset: str,
    seed: int,
    episodes: Sequence[tuple[str, float]] = DEFAULT_EPISODES,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    build_options: Mapping[str, Any] | None = None,
) -> Path:
    """A cached synthetic dataset folder, built on first use (see the module docstring).

    Args:
        name: folder name under the cache root (one name, one recipe: bump it when anything changes).
        preset: synthetic preset (``PRESETS``: demo, default, hard, realistic).
        seed: episode ``k`` (0-based) is synthesised with seed ``seed + k``.
        episodes: ``(start, days)`` of each episode: start on the hour (UTC), length in days. The
            default: eight 1.5-day episodes four days apart from 2023-10-01.
        cache_dir: cache root (default ``default_cache_dir()``).
        progress: progress bars while synthesising and building.
        build_options: keyword arguments for ``medicane_hf.data.build.build_dataset`` (e.g.
            ``clip_settings``, ``split_settings``); default: its defaults.

    Returns:
        the build-dataset folder (``store/``, ``index/``, ``normalization.json``, ``dataset_info.json``,
        and ``source/`` with what it was made from).

    Raises:
        ValueError: an unknown preset, a name that is not a plain folder name, or a cached folder of
            that name built from another recipe.
    """
    from medicane_hf.data.synthetic.config import get_preset

    config = get_preset(preset)  # an unknown preset fails before any lock or folder
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"dataset name must be a plain folder name, got {name!r}")
    recipe = _Recipe(
        name=name,
        preset=preset,
        seed=int(seed),
        episodes=tuple((str(start), float(days)) for start, days in episodes),
        build_options=dict(build_options or {}),
        config=config.to_dict(),
    )
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / name
    if (target / _COMPLETE_MARKER).is_file():
        _check_recipe(target, recipe)
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{name}.lock")):
        if (target / _COMPLETE_MARKER).is_file():  # another process built it while we waited
            _check_recipe(target, recipe)
            print(
                f"medicane-hf: using the synthetic dataset {name!r} another process just built at {target}",
                file=sys.stderr,
            )
            return target
        if target.exists():  # a folder without the marker is not ours to trust
            shutil.rmtree(target)
        total_days = sum(days for _, days in recipe.episodes)
        print(
            f"medicane-hf: building the synthetic dataset {name!r} ('{preset}' basin, "
            f"{len(recipe.episodes)} episodes, {total_days:g} days from {recipe.episodes[0][0]}, "
            f"seed {seed}) in {target}; this happens once"
            + (
                " (about 2 minutes on 2 CPU cores for the default; more on a busy machine)"
                if name == DEFAULT_NAME
                else ""
            ),
            file=sys.stderr,
        )
        started = time.perf_counter()
        _build(target, recipe, progress=progress)
        print(
            f"medicane-hf: synthetic dataset {name!r} ready in {time.perf_counter() - started:.0f} s: {target}",
            file=sys.stderr,
        )
    return target


def ensure_default_dataset(cache_dir: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path:
    """The cached default dataset folder (``default-v2``: demo preset, seed 0), built on first use.

    Args:
        cache_dir: cache root (default ``default_cache_dir()``).
        progress: progress bars while synthesising and building.

    Returns:
        the build-dataset folder (``store/``, ``index/``, ``normalization.json``, ``dataset_info.json``).
    """
    # the module globals are read at call time, so a test may shorten DEFAULT_EPISODES
    return ensure_synthetic_dataset(
        DEFAULT_NAME,
        preset=DEFAULT_PRESET,
        seed=DEFAULT_SEED,
        episodes=DEFAULT_EPISODES,
        cache_dir=cache_dir,
        progress=progress,
    )


# ---- what a cached dataset was made from ------------------------------------------------------


def _episode_dirs(dataset_dir: Path) -> list[tuple[str, Path]]:
    """(storm-id prefix, folder) of each episode under ``dataset_dir/source/episodes``, in order."""
    root = Path(dataset_dir) / "source" / "episodes"
    dirs = sorted(
        (int(p.name.removeprefix("episode")), p)
        for p in root.glob("episode*")
        if p.is_dir() and p.name.removeprefix("episode").isdigit()
    )
    if not dirs:
        raise FileNotFoundError(f"{root} holds no episode folders: not a cached synthetic dataset")
    return [(f"e{k}-", p) for k, p in dirs]


def read_source_truth(dataset_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every episode's synthetic_truth.csv in one table, ids as in the dataset (``e<k>-syn001``).

    The drawn centre of every object at every frame time (``basin.TRUTH_COLUMNS``; with realism
    also ``eye_opacity``, ``eye_fill``, ``shield_offset_km``) plus an ``episode`` column. Medicane
    rows' ``object_id`` is the dataset's ``storm_id``; the other objects get the same prefix.
    """
    parts = []
    for prefix, folder in _episode_dirs(Path(dataset_dir)):
        truth = pd.read_csv(
            folder / "synthetic_truth.csv", parse_dates=["time"], keep_default_na=False, na_values=[""]
        )
        truth["object_id"] = prefix + truth["object_id"]
        truth.insert(0, "episode", prefix[:-1])
        parts.append(truth)
    return pd.concat(parts, ignore_index=True)


def read_source_label_error(dataset_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every episode's label_error.csv in one table, ``storm_id`` as in the dataset's tracks.

    One row per tracks.csv row: drawn and labelled lon/lat, ``offset_east_km``,
    ``offset_north_km``, ``offset_km`` (``basin.LABEL_ERROR_COLUMNS``). An episode without the
    file (a preset without realism) has no label error: its rows are its tracks with zero offsets.
    """
    from medicane_hf.data.synthetic.basin import LABEL_ERROR_COLUMNS
    from medicane_hf.data.tracks import read_tracks

    parts = []
    for prefix, folder in _episode_dirs(Path(dataset_dir)):
        path = folder / "label_error.csv"
        if path.is_file():
            table = pd.read_csv(path, parse_dates=["time"])
        else:
            tracks = read_tracks(folder / "tracks.csv")
            table = pd.DataFrame(
                {
                    "storm_id": tracks["storm_id"],
                    "time": tracks["time"],
                    "drawn_lon": tracks["lon"],
                    "drawn_lat": tracks["lat"],
                    "label_lon": tracks["lon"],
                    "label_lat": tracks["lat"],
                    "offset_east_km": 0.0,
                    "offset_north_km": 0.0,
                    "offset_km": 0.0,
                }
            )[LABEL_ERROR_COLUMNS]
        table["storm_id"] = prefix + table["storm_id"].astype(str)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)
