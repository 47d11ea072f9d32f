"""Frames stored as one image file per time (PNG in practice): the first `FrameSource`.

Every use of PIL in the data layer is here: header reads (size and mode, lazy), full decodes, and the
header/extrema inspection that `medicane_hf.data.frames.scan_frames` reports problems with.

Airmass RGB frames are RGB. A file of another mode (grayscale, palette, 16-bit, CMYK, ...) is not one: it
is named and counted like an unreadable file (the scan lists it, the store keeps its slot invalid), never
converted, since converting a grayscale image copies one band into three and passes it as valid. An RGBA
file whose alpha is opaque everywhere is its RGB bands; one with a transparent pixel is invalid.
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
# The modes a frame may have; every frame is delivered as RGB (RGBA only with an opaque alpha).
FRAME_MODES = ("RGB", "RGBA")
FRAME_CHANNELS = 3
_MODE_WORDS = {
    "1": "black and white",
    "L": "grayscale",
    "LA": "grayscale with alpha",
    "La": "grayscale with alpha",
    "P": "palette",
    "PA": "palette with alpha",
    "I": "32-bit integer grayscale",
    "I;16": "16-bit grayscale",
    "I;16B": "16-bit grayscale",
    "I;16L": "16-bit grayscale",
    "F": "32-bit float grayscale",
    "CMYK": "print colours",
    "YCbCr": "YCbCr",
    "LAB": "L*a*b*",
    "HSV": "HSV",
}


class NotRgbError(ValueError):
    """An image file of another mode than RGB (or RGBA with an opaque alpha)."""


def mode_problem(mode: str) -> str | None:
    """Why an image of PIL `mode` is not a frame (None for RGB and RGBA, whose alpha is checked on decode)."""
    if mode in FRAME_MODES:
        return None
    words = _MODE_WORDS.get(mode)
    return f"not RGB: mode {mode}" + (f" ({words})" if words else "") + "; Airmass RGB frames are RGB"


def _transparency_problem(alpha: np.ndarray) -> str | None:
    transparent = int(np.count_nonzero(alpha < 255))
    if transparent == 0:
        return None
    return f"not RGB: RGBA with {transparent} transparent pixel(s) of {alpha.size} (alpha down to {int(alpha.min())})"


def read_header(path: str) -> tuple[tuple[int, int], str] | None:
    """(size (width, height) in pixels, PIL mode) from the header, or None when unreadable."""
    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except IMAGE_ERRORS:
        return None


def decode_image(path: str) -> np.ndarray:
    """Decode one frame file to uint8 ``[H, W, 3]``.

    Raises PIL's errors when unreadable, and `NotRgbError` for another mode than RGB or for an RGBA image with
    a transparent pixel (its alpha is dropped when opaque).
    """
    with Image.open(path) as image:
        problem = mode_problem(image.mode)
        if problem is not None:
            raise NotRgbError(problem)
        pixels = np.asarray(image, dtype=np.uint8)
    if pixels.shape[-1] == 4:
        problem = _transparency_problem(pixels[..., 3])
        if problem is not None:
            raise NotRgbError(problem)
        pixels = pixels[..., :FRAME_CHANNELS]
    return np.ascontiguousarray(pixels)


def inspect_image(
    path: str, check_content: bool, black_max_value: int
) -> tuple[tuple[int, int] | None, bool, str | None]:
    """(size, is_black, error) for one file; reads only the header unless ``check_content``.

    ``error`` also says when the file is not an RGB image (`mode_problem`; with ``check_content``, an RGBA image
    with a transparent pixel). A frame is black when no colour band exceeds ``black_max_value``.
    """
    try:
        with Image.open(path) as image:
            size = image.size
            problem = mode_problem(image.mode)
            if problem is not None:
                return size, False, problem
            if not check_content:
                return size, False, None
            image.load()
            extrema = image.getextrema()
    except IMAGE_ERRORS as err:
        return None, False, f"{type(err).__name__}: {err}"
    # (min, max) per band: R, G, B (and A for RGBA, whose minimum must be opaque)
    colour = extrema[:FRAME_CHANNELS]
    if len(extrema) > FRAME_CHANNELS and extrema[FRAME_CHANNELS][0] < 255:
        return (
            size,
            False,
            f"not RGB: RGBA with transparent pixels (alpha down to {extrema[FRAME_CHANNELS][0]})",
        )
    return size, all(high <= black_max_value for _, high in colour), None


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
        """Size of the first readable RGB (or RGBA) file; frames are always delivered as 3-band RGB."""
        first_problem = None
        for path in self._paths:
            header = read_header(path)
            if header is None:
                continue
            (width, height), mode = header
            problem = mode_problem(mode)
            if problem is None:
                return FrameFormat(int(width), int(height), FRAME_CHANNELS, "RGB", path)
            first_problem = first_problem or f"{path}: {problem}"
        why = f"; e.g. {first_problem}" if first_problem else f" (first: {self._paths[0]})"
        raise FrameReadError(f"none of the {len(self._paths)} frames is a readable RGB image{why}")

    def read_frame(self, index: int, channels: int) -> np.ndarray:
        if channels != FRAME_CHANNELS:
            raise ValueError(f"image frames are RGB ({FRAME_CHANNELS} channels); {channels} were asked for")
        path = self._paths[index]
        try:
            return decode_image(path)
        except NotRgbError as err:
            raise FrameReadError(str(err)) from err
        except IMAGE_ERRORS as err:
            raise FrameReadError(f"unreadable: {type(err).__name__}: {err}") from err

    def content_keys(self) -> list[str]:
        if self._content_keys is None:  # computed once: sha256 reads every file
            self._content_keys = [file_content_key(p, self.content) for p in self._paths]
        return self._content_keys

    def size_bytes(self) -> int:
        return int(sum(os.path.getsize(p) for p in self._paths if os.path.exists(p)))
