"""Measurements of what a synthetic basin gives away: how unique the eye's colour is in its tile.

On the old presets the eye is blended towards one fixed colour (``eye_k``) that nothing else
in the scene has, so a per-pixel colour test finds the centre in every tile; the realistic
preset colours the eye like the clear air around the storm. :func:`eye_colour_uniqueness`
puts a number on that, from the renderer (no files needed), for docs/synthetic.md and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from medicane_hf.data.clips import TileLayout
from medicane_hf.data.synthetic.rendering import FrameRenderer, VortexStates, clear_eye_opacity

__all__ = ["EyeColourStats", "eye_colour_uniqueness"]


@dataclass(frozen=True)
class EyeColourStats:
    """How unique the colour of eye pixels is inside their tile.

    Distances are in uint8 counts, the largest channel difference (L-infinity) between a pixel's
    RGB and the nearest colour among the tile's non-eye pixels; 0 = the exact triple occurs.

    Attributes:
        frames: storm-frames measured (hourly frames of Medicanes whose eye shows, opacity >= 0.5).
        eye_nearest: per eye pixel (drawn eye weight >= ``min_weight``), the distance to the nearest
            colour outside that eye in the same tile.
        other_nearest: the same for a fixed sample of the tile's other pixels (each against the
            other non-eye pixels but itself): what sensor noise and the scene's gradients give any
            pixel, to compare with.
    """

    frames: int
    eye_nearest: np.ndarray
    other_nearest: np.ndarray

    @property
    def eye_pixels(self) -> int:
        """Eye pixels measured."""
        return int(self.eye_nearest.size)

    def eye_unique_share(self, tolerance: int = 0) -> float:
        """Share of eye pixels with no colour within ``tolerance`` counts elsewhere in the tile."""
        return float(np.mean(self.eye_nearest > tolerance)) if self.eye_nearest.size else float("nan")

    def other_unique_share(self, tolerance: int = 0) -> float:
        """The same share for the sampled non-eye pixels."""
        return float(np.mean(self.other_nearest > tolerance)) if self.other_nearest.size else float("nan")

    @staticmethod
    def combine(parts: list[EyeColourStats]) -> EyeColourStats:
        """The stats of several basins together."""
        return EyeColourStats(
            frames=sum(p.frames for p in parts),
            eye_nearest=np.concatenate([p.eye_nearest for p in parts] or [np.zeros(0, np.int64)]),
            other_nearest=np.concatenate([p.other_nearest for p in parts] or [np.zeros(0, np.int64)]),
        )


def _tile_containing(
    layout: TileLayout, width: int, height: int, x: float, y: float
) -> tuple[int, int] | None:
    """(x0, y0) of the first tile (row-major) holding pixel (x, y), None if none does."""
    px, py = int(round(x)), int(round(y))
    for x0, y0 in layout.offsets(width, height):
        if x0 <= px < x0 + layout.tile_size and y0 <= py < y0 + layout.tile_size:
            return x0, y0
    return None


def _eye_weight(
    renderer: FrameRenderer, s: VortexStates, k: int, opacity: float, x0: int, y0: int, size: int
) -> np.ndarray:
    """The drawn eye's blend weight ``[size, size]`` over the tile at (x0, y0): opacity / (1 + (r / eye)^4)."""
    dx, dy = float(s.dx_km[k]), float(s.dy_km[k])
    eye_km = max(s.plan.eye_radius_km, renderer.config.min_eye_px * min(dx, dy))
    xs = np.arange(x0, x0 + size, dtype=np.float64)
    ys = np.arange(y0, y0 + size, dtype=np.float64)
    east = (xs[None, :] - s.x[k]) * dx
    north = (ys[:, None] - s.y[k]) * dy  # sign irrelevant: only the distance counts
    r = np.sqrt(east * east + north * north)
    return opacity / (1.0 + (r / eye_km) ** 4)


def _nearest(colours: np.ndarray, pool: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """For each colour ``[n, 3]``: L-infinity distance (counts) to the nearest of ``pool`` ``[m, 3]``.

    ``exclude[j]`` is an index of ``pool`` that colour ``j`` must not be matched with (itself).
    """
    out = np.empty(len(colours), dtype=np.int64)
    for start in range(0, len(colours), 256):  # 256 x 4096 x 3 int16: a few MB at a time
        chunk = colours[start : start + 256]
        distance = np.abs(chunk[:, None, :] - pool[None]).max(axis=2)
        if exclude is not None:
            distance[np.arange(len(chunk)), exclude[start : start + 256]] = np.iinfo(distance.dtype).max
        out[start : start + 256] = distance.min(axis=1)
    return out


def eye_colour_uniqueness(
    renderer: FrameRenderer,
    n_frames: int,
    *,
    min_weight: float = 0.5,
    in_window_only: bool = True,
    other_sample: int = 256,
) -> EyeColourStats:
    """How far the colour of each eye pixel is from every other colour in its tile (:class:`EyeColourStats`).

    Frames: every hour of every Medicane (inside its window when ``in_window_only``) whose eye
    opacity is at least ``min_weight`` (the opacity of an old-preset eye follows its intensity;
    with realism it is the drawn one, so filled eyes and eyeless storms are skipped), rendered
    clean (no sensor fault). The tile is the one of the preset's layout that holds the centre.

    Args:
        renderer: the basin's renderer.
        n_frames: frame times in the basin (frames past the end are skipped).
        min_weight: eye pixels are those where the drawn eye's blend weight is at least this.
        in_window_only: only hours inside the Medicane window (the labelled positives).
        other_sample: non-eye pixels per frame measured for the comparison (evenly spaced, so the
            figure does not depend on a random draw).
    """
    config, grid = renderer.config, renderer.grid
    layout = TileLayout(tile_size=config.tile_size, stride_x=config.stride_x, stride_y=config.stride_y)
    per_hour = 60 // config.frame_minutes
    frames = 0
    eye_parts: list[np.ndarray] = []
    other_parts: list[np.ndarray] = []
    for s in renderer.medicanes:
        plan = s.plan
        opacities = s.eye_opacity if s.eye_opacity is not None else clear_eye_opacity(s.intensity, config)
        for k in range(0, len(s), per_hour):
            i = s.first + k
            if not 0 <= i < n_frames or opacities[k] < min_weight:
                continue
            time = plan.start + pd.Timedelta(minutes=round(float(s.t_h[k]) * 60))
            if in_window_only and not plan.window_start <= time <= plan.window_end:
                continue
            tile = _tile_containing(layout, grid.width, grid.height, s.x[k], s.y[k])
            if tile is None:
                continue
            x0, y0 = tile
            size = layout.tile_size
            eye = (_eye_weight(renderer, s, k, float(opacities[k]), x0, y0, size) >= min_weight).ravel()
            if not eye.any():
                continue
            pixels = renderer.render(i)[y0 : y0 + size, x0 : x0 + size].reshape(-1, 3).astype(np.int16)
            others = pixels[~eye]
            frames += 1
            eye_parts.append(_nearest(pixels[eye], others))
            picks = np.linspace(0, len(others) - 1, min(other_sample, len(others))).round().astype(np.int64)
            other_parts.append(_nearest(others[picks], others, exclude=picks))
    empty = np.zeros(0, dtype=np.int64)
    return EyeColourStats(
        frames=frames,
        eye_nearest=np.concatenate(eye_parts) if eye_parts else empty,
        other_nearest=np.concatenate(other_parts) if other_parts else empty,
    )
