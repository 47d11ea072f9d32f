"""What a conversion did to every key: `KeyNote`, `ConversionReport` (written as ``conversion_report.json``),
and `ConversionError`, the one error a checkpoint that cannot be converted raises."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_NAME = "conversion_report.json"


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file and the keys concerned."""


@dataclass
class KeyNote:
    """One source key that was not mapped (or one model key that was newly initialised), and why."""

    key: str
    reason: str


@dataclass
class ConversionReport:
    """What happened to every key; written as ``conversion_report.json`` beside the converted model."""

    source: str
    source_format: str  # "videomae_v2" | "transformers"
    sha256: dict[str, str]  # file name -> hex digest of each weights file read
    task: str
    model_class: str
    mapped: dict[str, str] = field(default_factory=dict)  # model key -> source key
    dropped: list[KeyNote] = field(default_factory=list)
    newly_initialized: list[KeyNote] = field(default_factory=list)
    # top-level checkpoint entries that are not weights (optimizer, epoch, args, ...)
    ignored_entries: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    output_dir: str | None = None

    @property
    def mapped_count(self) -> int:
        return len(self.mapped)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mapped_count"] = self.mapped_count
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def summary(self) -> str:
        """A few lines for a person: what was converted into what, what was dropped or is new."""
        lines = [
            f"Converted {self.source} ({self.source_format}) -> {self.model_class} (task: {self.task})",
            f"  mapped: {self.mapped_count} tensors",
            f"  dropped: {len(self.dropped)} source keys",
        ]
        lines += [f"    - {note.key}: {note.reason}" for note in _collapse_notes(self.dropped)]
        lines.append(f"  newly initialised: {len(self.newly_initialized)} model keys")
        lines += [f"    - {note.key}: {note.reason}" for note in _collapse_notes(self.newly_initialized)]
        if self.ignored_entries:
            lines.append(
                f"  checkpoint entries that are not weights (ignored): {', '.join(self.ignored_entries)}"
            )
        lines += [f"  note: {note}" for note in self.notes]
        if self.output_dir:
            lines.append(f"  written to {self.output_dir} (report: {REPORT_NAME})")
        return "\n".join(lines)


def _collapse_notes(notes: list[KeyNote]) -> list[KeyNote]:
    """One line per reason: ``decoder.* (270 keys)`` rather than every key of a giant's decoder."""
    groups: dict[str, list[str]] = {}
    for note in notes:
        groups.setdefault(note.reason, []).append(note.key)
    collapsed = []
    for reason, keys in groups.items():
        if len(keys) <= 2:
            collapsed += [KeyNote(key, reason) for key in keys]
            continue
        parts = [key.split(".") for key in keys]
        common = []
        for level in zip(*parts):
            if len(set(level)) > 1:
                break
            common.append(level[0])
        collapsed.append(KeyNote(".".join([*common, "*"]) + f" ({len(keys)} keys)", reason))
    return collapsed
