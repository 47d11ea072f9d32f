"""The frame-source interface: what the store packs from.

A source is a time-indexed sequence of frames: which times exist (sorted, unique), where each frame comes
from (for provenance and the store's identity check), its format without decoding, and one frame
decoded as uint8 ``[H, W, C]``. A folder of PNG files is the first implementation
(`medicane_hf.data.sources.png`); a Zarr or NetCDF archive (many times per file) is a new module that
implements this class, and the store does not change.

Problems of an archive (gaps, duplicates, unreadable, wrong-size or black frames) are described by a
`medicane_hf.data.frames.FrameScan`, which a source's scan returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class FrameReadError(Exception):
    """One frame of a source cannot be decoded; the store keeps its slot, marked invalid, with this reason."""


@dataclass(frozen=True)
class FrameFormat:
    """Size and bands of a source's frames, read without decoding pixels.

    Attributes:
        width, height: pixels.
        channels: bands per pixel (3 for image files: `PngFolderSource` delivers RGB and counts a frame of
            another mode as invalid).
        mode: the source's own name for the band layout ("RGB" for images), kept in the store's metadata.
        reference: where the format was read (the first readable frame), for error messages.
    """

    width: int
    height: int
    channels: int
    mode: str
    reference: str


class FrameSource(ABC):
    """Frames at sorted, unique times; subclasses read them from wherever they live."""

    @property
    @abstractmethod
    def times(self) -> np.ndarray:
        """``datetime64[ns]`` ``[N]``, sorted, unique (UTC, naive)."""

    @property
    @abstractmethod
    def locations(self) -> list[str]:
        """``[N]`` where each frame comes from (a file path, or ``file.nc#time`` style for many per file)."""

    def __len__(self) -> int:
        return len(self.times)

    @abstractmethod
    def frame_format(self) -> FrameFormat:
        """The format of the first readable frame; raises `FrameReadError` when no frame can be read."""

    @abstractmethod
    def read_frame(self, index: int, channels: int) -> np.ndarray:
        """Frame ``index`` as uint8 ``[H, W, channels]`` (bands converted to ``channels`` if they differ).

        Raises `FrameReadError` for a frame that cannot be decoded. Called from worker threads: it must not
        share mutable state between calls.
        """

    def content_keys(self) -> list[str]:
        """``[N]`` what identifies each frame's content (a hash, or size + modification time); the store
        fingerprints them with the times and names, so a changed frame is never taken for the packed one.
        The default, all empty, identifies frames by time and name only."""
        return [""] * len(self)

    def size_bytes(self) -> int:
        """Bytes the source occupies on disk (0 when unknown); recorded beside the store's own size."""
        return 0
