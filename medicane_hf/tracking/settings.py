"""Every number of predict-track in one place: the detection threshold, the merge, the linking gates, scoring.

The defaults suit Medicanes: they travel 5-40 km/h (the synthetic basin draws 5-40 km/h too), so a gate of
80 km/h, plus 50 km for the error of two centres, leaves room for a model's mistakes; a gap of up to 3 missing hours is bridged (a clip lost to a
missing frame, a tile that falls below the threshold for an hour); a track shorter than 6 hours is dropped (the
shortest synthetic Medicane lives 24 h; a false alarm rarely persists for 6). Two detections of the same hour
closer than 150 km are one storm seen by overlapping tiles (two Medicanes are never that close). A prediction
matches a true position within 100 km (about a Medicane's radius; the old system's centre errors were 12-17 km).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["TrackingSettings"]


@dataclass(frozen=True)
class TrackingSettings:
    """The settings of one predict-track run (what ``summary.json["settings"]`` records).

    Attributes:
        threshold: Medicane probability (calibrated) from which a tile counts as a detection; None: the
            detector's own decision (its saved ``detection_threshold``, else the most probable class).
        merge_radius_km: detections of one hour closer than this (every pair of a group, complete linkage) are
            one storm; the most confident of them gives the storm's centre.
        max_speed_kmh: a track extends to a detection only if it lies within ``max_speed_kmh`` x hours since the
            track's last point + ``position_error_km``.
        position_error_km: what the centres' own error adds to the distance a storm seems to move (two centres
            each off by a few tens of km can be 2x that apart on a storm that stood still).
        max_gap_hours: missing hours a track may bridge (0: every hour must have a detection).
        min_duration_hours: tracks spanning less (last minus first time) are dropped.
        match_radius_km: scoring: a predicted point matches a true position within this distance.
    """

    threshold: float | None = None
    merge_radius_km: float = 150.0
    max_speed_kmh: float = 80.0
    position_error_km: float = 50.0
    max_gap_hours: int = 3
    min_duration_hours: float = 6.0
    match_radius_km: float = 100.0

    def __post_init__(self) -> None:
        problems = []
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            problems.append(f"--threshold must be a probability in [0, 1], got {self.threshold}")
        for name in ("merge_radius_km", "max_speed_kmh", "match_radius_km"):
            if not getattr(self, name) > 0:
                problems.append(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.position_error_km < 0:
            problems.append(f"--position-error-km must be >= 0, got {self.position_error_km}")
        if self.max_gap_hours < 0 or self.min_duration_hours < 0:
            problems.append(
                f"--max-gap-hours and --min-duration-hours must be >= 0, got {self.max_gap_hours} and "
                f"{self.min_duration_hours}"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        return asdict(self)
