"""Frames stored as one image file per time (PNG in practice): the first `FrameSource`.

Every use of PIL in the data layer is here: header reads (size and mode, lazy), full decodes, and the
header/extrema inspection that `medicane_hf.data.frames.scan_frames` reports problems with.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image

from medicane_hf.data.sources.base import FrameFormat, FrameReadError, FrameSource

# Errors PIL raises for a file that is not a readable image (UnidentifiedImageError is an OSError).
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
# PIL modes kept as they are; anything else (palette, CMYK, 16-bit, ...) is converted to RGB.
MODE_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}
_CHANNEL_MODES = {channels: mode for mode, channels in MODE_CHANNELS.items()}


def read_header(path: str) -> tuple[tuple[int, int], str] | None:
    """(size (width, height) in pixels, PIL mode) from the header, or None when unreadable."""
    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except IMAGE_ERRORS:
        return None


def decode_image(path: str, mode: str) -> np.ndarray:
    """Decode one image file to uint8 ``[H, W, C]`` in PIL ``mode``. Raises PIL's errors when unreadable."""
    with Image.open(path) as image:
        if image.mode != mode:
            image = image.convert(mode)
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1)


def inspect_image(
    path: str, check_content: bool, black_max_value: int
) -> tuple[tuple[int, int] | None, bool, str | None]:
    """(size, is_black, error) for one file; reads only the header unless ``check_content``.

    A frame is black when no band exceeds ``black_max_value``.
    """
    try:
        with Image.open(path) as image:
            size = image.size
            if not check_content:
                return size, False, None
            image.load()
            extrema = image.getextrema()
    except IMAGE_ERRORS as err:
        return None, False, f"{type(err).__name__}: {err}"
    # getextrema gives (min, max) for one band, a tuple of them for several.
    bands = extrema if isinstance(extrema[0], tuple) else (extrema,)
    return size, all(high <= black_max_value for _, high in bands), None


def _prepare_frames(frames: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Validate a ``[time, path]`` table; return sorted times (int64 ns) and paths."""
    missing = {"time", "path"} - set(frames.columns)
    if missing:
        raise ValueError(f"frames table needs columns 'time' and 'path'; missing {sorted(missing)}")
    if len(frames) == 0:
        raise ValueError("frames table is empty: nothing to pack")
    times = pd.to_datetime(frames["time"])
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise ValueError(f"frames table row {row}: time is missing (path {frames['path'].iloc[row]})")
    order = np.argsort(times.to_numpy(), kind="stable")
    times_ns = times.to_numpy(dtype="datetime64[ns]")[order].astype(np.int64)
    paths = [str(p) for p in frames["path"].to_numpy()[order]]
    dup = np.flatnonzero(np.diff(times_ns) == 0)
    if len(dup):
        i = int(dup[0])
        raise ValueError(
            f"frames table has {len(dup)} duplicate time(s), e.g. {pd.Timestamp(times_ns[i])}: "
            f"{paths[i]} and {paths[i + 1]} (scan_frames drops duplicates)"
        )
    return times_ns, paths


ContentIdentity = Literal["stat", "sha256"]


def file_content_key(path: str, identity: ContentIdentity) -> str:
    """``size:mtime_ns`` of a file (``stat``: no read), or ``sha256:<hex>`` of its bytes; ``missing`` if absent."""
    try:
        if identity == "sha256":
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            return f"sha256:{digest.hexdigest()}"
        info = os.stat(path)
        return f"{info.st_size}:{info.st_mtime_ns}"
    except OSError:
        return "missing"


class PngFolderSource(FrameSource):
    """One image file per time, from a ``[time, path]`` table (``scan_frames(...).frames``).

    ``content``: how a frame's content is identified for the store's reuse check: ``stat`` (size and
    modification time, no read) or ``sha256`` (every byte; what ``--check-content`` asks for, and what
    survives copying the archive).

    Raises ValueError for a table without those columns, empty, with a missing time or a duplicate time.
    """

    def __init__(self, frames: pd.DataFrame, content: ContentIdentity = "stat") -> None:
        times_ns, self._paths = _prepare_frames(frames)
        self._times = times_ns.astype("datetime64[ns]")
        if content not in ("stat", "sha256"):
            raise ValueError(f"content must be 'stat' or 'sha256', got {content!r}")
        self.content = content
        self._content_keys: list[str] | None = None

    @classmethod
    def from_paths(
        cls, times: Sequence[object], paths: Sequence[str], content: ContentIdentity = "stat"
    ) -> PngFolderSource:
        """The source of parallel lists of times and file paths."""
        return cls(pd.DataFrame({"time": list(times), "path": [str(p) for p in paths]}), content)

    @property
    def times(self) -> np.ndarray:
        return self._times

    @property
    def locations(self) -> list[str]:
        return self._paths

    def frame_format(self) -> FrameFormat:
        """Size and mode of the first readable file; modes other than L / RGB / RGBA are read as RGB."""
        for path in self._paths:
            header = read_header(path)
            if header is not None:
                (width, height), mode = header
                mode = mode if mode in MODE_CHANNELS else "RGB"
                return FrameFormat(int(width), int(height), MODE_CHANNELS[mode], mode, path)
        raise FrameReadError(f"none of the {len(self._paths)} frames can be read (first: {self._paths[0]})")

    def read_frame(self, index: int, channels: int) -> np.ndarray:
        path = self._paths[index]
        try:
            return decode_image(path, _CHANNEL_MODES[channels])
        except IMAGE_ERRORS as err:
            raise FrameReadError(f"unreadable: {type(err).__name__}: {err}") from err

    def content_keys(self) -> list[str]:
        if self._content_keys is None:  # computed once: sha256 reads every file
            self._content_keys = [file_content_key(p, self.content) for p in self._paths]
        return self._content_keys

    def size_bytes(self) -> int:
        return int(sum(os.path.getsize(p) for p in self._paths if os.path.exists(p)))
