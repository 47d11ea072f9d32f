"""Train / validation / test splits by storm, never by clip.

Storms whose tracks overlap in time (within a margin of one clip span) form a *group*; a
group goes to one split as a whole, either seeded (fractions by number of storms) or from
explicit lists of storm ids or names. Time is then cut into *blocks*:

- each storm group owns ``[first track time - margin, last track time + margin]`` (margin =
  one clip span, 75 min by default) and its split;
- every other time belongs to its UTC day, and each day draws its split from the fractions
  with a generator seeded by (seed, date), so a day's split does not depend on which other
  days are present.

A clip belongs to the split of the block holding its last frame; a clip whose frames touch
blocks of different splits is dropped (reason ``split_boundary``). Hence every frame of a
kept clip lies in a block of the clip's own split, and no frame of a validation or test clip
appears in a train clip (or in a pretraining window, which uses train blocks only).

Split names are exactly ``train``, ``validation`` and ``test``: model selection must look at
``validation`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "SPLITS",
    "SplitPlan",
    "SplitSettings",
    "StormGroup",
    "UnknownStormError",
    "assign_clip_splits",
    "plan_splits",
    "storm_groups",
]

SPLITS = ("train", "validation", "test")
_DAY_NS = np.int64(86_400_000_000_000)


class UnknownStormError(ValueError):
    """A storm named in an explicit split list is not in the tracks."""


@dataclass
class SplitSettings:
    """How storms are split.

    Attributes:
        fractions: (train, validation, test) shares of storms (and of storm-free days).
        seed: seeds the group shuffle and the per-day draws.
        val_storms, test_storms: explicit storm ids or names (case-insensitive). When either
            is given, the groups holding those storms go to that split and every other group
            goes to train.
    """

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    val_storms: Sequence[str] = ()
    test_storms: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.fractions = tuple(float(f) for f in self.fractions)  # type: ignore[assignment]
        if len(self.fractions) != 3 or min(self.fractions) < 0 or not np.isclose(sum(self.fractions), 1.0):
            raise ValueError(
                f"SplitSettings: fractions must be 3 non-negative numbers summing to 1, got {self.fractions}"
            )
        # a bare string is one storm, not a sequence of one-letter names
        self.val_storms = (self.val_storms,) if isinstance(self.val_storms, str) else tuple(self.val_storms)
        self.test_storms = (
            (self.test_storms,) if isinstance(self.test_storms, str) else tuple(self.test_storms)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fractions": list(self.fractions),
            "seed": self.seed,
            "val_storms": list(self.val_storms),
            "test_storms": list(self.test_storms),
        }


@dataclass
class StormGroup:
    """Storms whose tracks overlap in time, and the time block they own (datetime64[ns])."""

    storms: list[str]
    names: list[str]
    start: np.datetime64
    end: np.datetime64
    block_start: np.datetime64
    block_end: np.datetime64
    split: str = ""


@dataclass
class SplitPlan:
    """Storm groups with their splits, plus the per-day rule for storm-free times."""

    groups: list[StormGroup]
    fractions: tuple[float, float, float]
    seed: int
    storms_outside_period: list[str] = field(default_factory=list)

    def storms_per_split(self) -> dict[str, list[str]]:
        """Split -> storm labels ("name (id)" or id), in time order."""
        out: dict[str, list[str]] = {s: [] for s in SPLITS}
        for group in self.groups:
            out[group.split].extend(_storm_label(s, n) for s, n in zip(group.storms, group.names))
        return out

    def day_split(self, days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Split code (0 train, 1 validation, 2 test) of each day number (days since 1970-01-01)."""
        cumulative = np.cumsum(self.fractions)
        codes = np.empty(len(days), np.int64)
        unique, inverse = np.unique(days, return_inverse=True)
        draws = np.array([np.random.default_rng([self.seed, int(d) + 1_000_000]).random() for d in unique])
        per_day = np.minimum(np.searchsorted(cumulative, draws, side="right"), 2)
        codes[:] = per_day[inverse]
        return codes

    def split_codes(self, times: Any) -> npt.NDArray[np.int64]:
        """Split code of the block holding each time; any shape in, same shape out."""
        t = np.asarray(times, dtype="datetime64[ns]")
        flat = t.ravel().astype(np.int64)
        codes = self.day_split(flat // _DAY_NS)
        if self.groups:
            starts = np.array([g.block_start for g in self.groups], dtype="datetime64[ns]").astype(np.int64)
            ends = np.array([g.block_end for g in self.groups], dtype="datetime64[ns]").astype(np.int64)
            group_codes = np.array([SPLITS.index(g.split) for g in self.groups])
            k = np.searchsorted(starts, flat, side="right") - 1
            in_block = (k >= 0) & (flat <= ends[np.maximum(k, 0)])
            codes = np.where(in_block, group_codes[np.maximum(k, 0)], codes)
        return codes.reshape(t.shape)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fractions": list(self.fractions),
            "seed": self.seed,
            "groups": [
                {
                    "storms": g.storms,
                    "names": g.names,
                    "split": g.split,
                    "block_start": str(pd.Timestamp(g.block_start)),
                    "block_end": str(pd.Timestamp(g.block_end)),
                }
                for g in self.groups
            ],
            "storms_outside_period": self.storms_outside_period,
        }


def _storm_label(storm_id: str, name: str) -> str:
    return storm_id if not name or name == storm_id else f"{name} ({storm_id})"


def storm_groups(tracks: pd.DataFrame, margin: pd.Timedelta) -> list[StormGroup]:
    """Group storms whose [first - margin, last + margin] track spans overlap; groups in time order."""
    spans = (
        tracks.groupby("storm_id")
        .agg(start=("time", "min"), end=("time", "max"), name=("name", "first"))
        .sort_values(["start", "end"])
    )
    groups: list[StormGroup] = []
    for storm_id, row in spans.iterrows():
        start = np.datetime64(row["start"], "ns")
        end = np.datetime64(row["end"], "ns")
        m = np.timedelta64(int(margin.value), "ns")
        if groups and start - m <= groups[-1].block_end:
            g = groups[-1]
            g.storms.append(str(storm_id))
            g.names.append(str(row["name"]))
            g.end = max(g.end, end)
            g.block_end = max(g.block_end, end + m)
        else:
            groups.append(StormGroup([str(storm_id)], [str(row["name"])], start, end, start - m, end + m))
    return groups


def _resolve(names: Sequence[str], tracks: pd.DataFrame) -> set[str]:
    """Storm ids for ids or names (case-insensitive); unknown ones raise ``UnknownStormError``."""
    table = tracks[["storm_id", "name"]].drop_duplicates()
    lookup: dict[str, str] = {}
    for sid, name in zip(table["storm_id"].astype(str), table["name"].astype(str)):
        lookup[sid.lower()] = sid
        if name:
            lookup[name.lower()] = sid
    unknown = [n for n in names if n.strip().lower() not in lookup]
    if unknown:
        known = sorted(
            {_storm_label(s, n) for s, n in zip(table["storm_id"].astype(str), table["name"].astype(str))}
        )
        raise UnknownStormError(f"unknown storm(s) {unknown}; the tracks hold: {', '.join(known)}")
    return {lookup[n.strip().lower()] for n in names}


def _assign_explicit(groups: list[StormGroup], val: set[str], test: set[str]) -> None:
    for g in groups:
        in_val, in_test = bool(val & set(g.storms)), bool(test & set(g.storms))
        if in_val and in_test:
            raise ValueError(
                f"storms {g.storms} overlap in time and must share a split, but some are listed for "
                "validation and some for test"
            )
        g.split = "validation" if in_val else "test" if in_test else "train"


def _assign_seeded(groups: list[StormGroup], fractions: tuple[float, float, float], seed: int) -> None:
    """Shuffle groups, give validation and test one group each first (when >= 3 groups), then fill by deficit."""
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    total = sum(len(g.storms) for g in groups)
    assigned = dict.fromkeys(SPLITS, 0)
    if len(order) >= 3:
        for split in ("validation", "test"):
            if fractions[SPLITS.index(split)] > 0:
                g = order.pop(0)
                g.split = split
                assigned[split] += len(g.storms)
    for g in order:
        deficits = [fractions[i] * total - assigned[s] for i, s in enumerate(SPLITS)]
        split = SPLITS[int(np.argmax(deficits))]
        g.split = split
        assigned[split] += len(g.storms)


def plan_splits(
    tracks: pd.DataFrame,
    settings: SplitSettings,
    *,
    margin: pd.Timedelta,
    period: tuple[Any, Any] | None = None,
) -> SplitPlan:
    """Group storms and assign each group a split.

    Args:
        tracks: tidy table from ``read_tracks``.
        settings: fractions, seed, explicit lists.
        margin: one clip span; storms closer than this share a group, and blocks extend by it.
        period: (first, last) frame time; only storms whose block touches it are split (the
            others have no clips and are listed in ``storms_outside_period``).

    Raises:
        UnknownStormError: a listed storm is not in the tracks (the message lists them all).
    """
    val = _resolve(settings.val_storms, tracks)
    test = _resolve(settings.test_storms, tracks)
    groups = storm_groups(tracks, margin)
    outside: list[str] = []
    if period is not None:
        lo, hi = (np.datetime64(pd.Timestamp(p), "ns") for p in period)
        kept = [g for g in groups if g.block_end >= lo and g.block_start <= hi]
        outside = [_storm_label(s, n) for g in groups if g not in kept for s, n in zip(g.storms, g.names)]
        groups = kept
    if val or test:
        _assign_explicit(groups, val, test)
    else:
        _assign_seeded(groups, settings.fractions, settings.seed)
    return SplitPlan(groups, settings.fractions, settings.seed, outside)


def assign_clip_splits(
    plan: SplitPlan, expected_times: Any
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_]]:
    """Split of each clip from its frame times.

    Args:
        expected_times: datetime64 [n, T] frame times of each clip (last frame last).

    Returns:
        split: object [n] split names (of the block holding the last frame);
        boundary: bool [n], True where the frames touch blocks of different splits (drop these).
    """
    codes = plan.split_codes(expected_times)
    if codes.size == 0:
        return np.array([], dtype=object), np.array([], dtype=bool)
    split = np.asarray(SPLITS, dtype=object)[codes[:, -1]]
    boundary = (codes != codes[:, -1:]).any(axis=1)
    return split, boundary
