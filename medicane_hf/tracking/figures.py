"""The basin map (PNG) and the animation (GIF; MP4 too when ffmpeg is on the machine) of a predict-track run.

The map is `medicane_hf.evaluation.plots.plot_tracks_on_map` (the grid's lat/lon lines; true tracks as coloured
lines, predicted ones dashed black) over a land/sea background from the synthetic basin's coastline
(`medicane_hf.data.synthetic.geography.pixel_land_fraction`: a crude Mediterranean in lon/lat that needs no
download, so it fits any grid over the region). The animation draws, on the frame at each processed hour (read
from the packed store), every detection (a small cross; the storm's kept detection a circle of the tracker's
90 % radius when it has a spread) and each track up to that hour, with Pillow (one draw call per mark; a
matplotlib figure per hour would take ten times longer over a month of hours).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from medicane_hf.data.frames import FrameStore
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.synthetic.geography import pixel_land_fraction
from medicane_hf.evaluation.calibration import radius_for_share
from medicane_hf.evaluation.plots import plot_tracks_on_map

__all__ = ["GIF_FILE", "MAP_FILE", "MP4_FILE", "draw_animation", "draw_map"]

MAP_FILE, GIF_FILE, MP4_FILE = "map.png", "animation.gif", "animation.mp4"
_SEA, _LAND = np.array([0.62, 0.74, 0.85]), np.array([0.86, 0.82, 0.72])
_COLOURS = [(255, 215, 0), (0, 255, 255), (255, 105, 180), (127, 255, 0), (255, 140, 0), (186, 85, 211)]
_MIN_WIDTH = 768  # small grids are scaled up so the marks stay readable


def draw_map(points: pd.DataFrame, truth: pd.DataFrame | None, grid: SeviriGrid, path: Path) -> Path:
    """The predicted track points (and the true tracks, when given) on the basin; returns `path`.

    Args:
        points: predicted track points (`tables.track_points`): ``storm_id``, ``time``, ``lon``, ``lat``.
        truth: true track points (``read_tracks``' layout) in the processed period, or None.
    """
    land = pixel_land_fraction(grid)[..., None]
    background = (1 - land) * _SEA + land * _LAND
    if truth is not None and len(truth):
        return plot_tracks_on_map(truth, grid, path, background=background, predicted=points)
    return plot_tracks_on_map(points, grid, path, background=background)


def _frames(store: FrameStore, hours: pd.DatetimeIndex, scale: int) -> list[Image.Image]:
    indices = store.index_of(hours.to_numpy())
    images = []
    for index in indices:
        frame = (
            store.read_frame(int(index)) if index >= 0 else np.zeros((store.height, store.width, 3), np.uint8)
        )
        image = Image.fromarray(frame[..., :3] if frame.shape[-1] >= 3 else np.repeat(frame, 3, axis=-1))
        images.append(image.resize((store.width * scale, store.height * scale), Image.NEAREST))
    return images


def draw_animation(
    store_dir: Path,
    hours: pd.DatetimeIndex,
    detections: pd.DataFrame,
    folder: Path,
    *,
    seconds_per_hour: float = 0.4,
) -> list[Path]:
    """``animation.gif`` (and ``animation.mp4`` when ffmpeg is there) in `folder`: one picture per processed hour.

    Args:
        store_dir: the packed frames (``FrameStore``).
        hours: the processed hours, sorted.
        detections: ``detections.csv``'s table (``time``, ``x``, ``y`` grid px, ``kept``, ``spread_px``,
            ``track_id``); the tracks are its kept rows with a track id.
    Returns:
        the files written.
    """
    store = FrameStore.open(store_dir)
    scale = max(1, int(np.ceil(_MIN_WIDTH / store.width)))
    images = _frames(store, hours, scale)
    times = pd.to_datetime(detections["time"])
    on_track = detections["kept"].to_numpy(bool) & (detections["track_id"].astype(str) != "").to_numpy()
    points, point_times = detections[on_track], times[on_track]
    colours = {
        track: _COLOURS[k % len(_COLOURS)] for k, track in enumerate(sorted(points["track_id"].unique()))
    }
    by_hour = dict(list(detections.groupby(times)))
    for hour, image in zip(hours, images):
        draw = ImageDraw.Draw(image)
        for track, rows in points[point_times <= hour].groupby("track_id"):
            xy = [((x + 0.5) * scale, (y + 0.5) * scale) for x, y in zip(rows["x"], rows["y"])]
            if len(xy) > 1:
                draw.line(xy, fill=colours[track], width=2)
        for _, row in by_hour.get(hour, pd.DataFrame()).iterrows():
            cx, cy = (row["x"] + 0.5) * scale, (row["y"] + 0.5) * scale
            if row["kept"]:
                radius = max(4.0, float(radius_for_share(row["spread_px"], 0.9)) * scale) if np.isfinite(
                    row["spread_px"]) else 6.0  # fmt: skip
                draw.ellipse(
                    (cx - radius, cy - radius, cx + radius, cy + radius), outline=(255, 0, 0), width=2
                )
            else:
                draw.line((cx - 4, cy - 4, cx + 4, cy + 4), fill=(255, 255, 255), width=1)
                draw.line((cx - 4, cy + 4, cx + 4, cy - 4), fill=(255, 255, 255), width=1)
        draw.text((6, 4), f"{hour:%Y-%m-%d %H:%M} UTC", fill=(255, 255, 255))
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / GIF_FILE]
    duration = int(seconds_per_hour * 1000)
    images[0].save(written[0], save_all=True, append_images=images[1:], duration=duration, loop=0)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is not None:
        with tempfile.TemporaryDirectory() as scratch:
            for k, image in enumerate(images):
                image.save(Path(scratch) / f"{k:06d}.png")
            mp4 = folder / MP4_FILE
            subprocess.run(
                [ffmpeg, "-loglevel", "error", "-y", "-framerate", f"{1 / seconds_per_hour:g}", "-i",
                 str(Path(scratch) / "%06d.png"), "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p",
                 str(mp4)],
                check=True,
            )  # fmt: skip
            written.append(mp4)
    return written
