"""Clip read throughput and disk size: packed FrameStore (raw and zlib) against per-clip tile PNGs.

The old system wrote one folder of 16 tile PNGs per (tile, clip) and decoded all 16 for every sample.
The store decodes each full frame once and cuts clips out of it. This script measures, on realistic
1290 x 420 x 3 smooth imagery, how many 16-frame 224 x 224 clips per second each layout delivers as a
float32 tensor ``[T, C, H, W]`` in 0..1 (read + convert, one process), and how much disk each takes.

Run from the repository root::

    .venv/bin/python benchmarks/bench_store.py [--frames 100] [--clips 200] [--repeats 3]

Files are freshly written, so reads come from the page cache for every layout (a fair comparison of
decode cost; cold-disk reads favour the smaller layouts further).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks._results import write_section  # noqa: E402
from medicane_hf.data.frames import FrameStore, scan_frames  # noqa: E402
from medicane_hf.data.sources import PngFolderSource  # noqa: E402

WIDTH, HEIGHT, CHANNELS = 1290, 420, 3
TILE = 224
TILE_X = (0, 213, 426, 639, 852, 1065)
TILE_Y = (0, 196)
CLIP_FRAMES = 16
T0 = pd.Timestamp("2023-09-05 00:00")


def smooth_field(rng: np.random.Generator, scale: float) -> np.ndarray:
    """Gaussian-filtered white noise ``[H, W]`` (correlation length ~``scale`` px), zero mean, unit std."""
    noise = rng.standard_normal((HEIGHT, WIDTH))
    ky = np.fft.fftfreq(HEIGHT)[:, None]
    kx = np.fft.rfftfreq(WIDTH)[None, :]
    field = np.fft.irfft2(np.fft.rfft2(noise) * np.exp(-(kx**2 + ky**2) * scale**2), s=(HEIGHT, WIDTH))
    return (field - field.mean()) / field.std()


def render_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` uint8 ``[H, W, 3]`` Airmass-like frames: large smooth structures drifting slowly, fine
    texture and ~1 grey level of sensor noise, so PNG does not compress them unrealistically well."""
    rng = np.random.default_rng(seed)
    large = [smooth_field(rng, 40.0) for _ in range(CHANNELS)]
    frames = []
    for k in tqdm(range(n), desc="rendering frames", unit="frame"):
        channels = []
        for c in range(CHANNELS):
            drifted = np.roll(large[c], shift=(k // 4, k // 2), axis=(0, 1))
            value = 0.7 * drifted + 0.3 * smooth_field(rng, 8.0) + 0.02 * rng.standard_normal((HEIGHT, WIDTH))
            channels.append(np.clip(128 + 45 * value, 0, 255))
        frames.append(np.stack(channels, axis=-1).astype(np.uint8))
    return frames


def write_frames(frames: list[np.ndarray], root: Path) -> None:
    for k, pixels in enumerate(tqdm(frames, desc="writing frame PNGs", unit="frame")):
        time_k = T0 + pd.Timedelta(minutes=5 * k)
        folder = root / f"{time_k:%Y%m%d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"airmass_rgb_{time_k:%Y%m%d_%H%M}.png")


def sample_clips(n_frames: int, n_clips: int, seed: int = 1) -> list[tuple[list[int], int, int]]:
    """Random (frame indices, y0, x0): 16 consecutive frames on one of the default 12 tiles."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n_clips):
        start = int(rng.integers(0, n_frames - CLIP_FRAMES + 1))
        clips.append(
            (list(range(start, start + CLIP_FRAMES)), int(rng.choice(TILE_Y)), int(rng.choice(TILE_X)))
        )
    return clips


def write_tile_pngs(frames: list[np.ndarray], clips, root: Path) -> list[list[Path]]:
    """The old layout: one folder of 16 tile PNGs per clip."""
    folders = []
    for c, (indices, y0, x0) in enumerate(tqdm(clips, desc="writing tile PNGs (old layout)", unit="clip")):
        folder = root / f"clip_{c:04d}_x{x0}_y{y0}"
        folder.mkdir(parents=True)
        paths = []
        for t, i in enumerate(indices):
            path = folder / f"img_{t + 1:05d}.png"
            Image.fromarray(frames[i][y0 : y0 + TILE, x0 : x0 + TILE]).save(path)
            paths.append(path)
        folders.append(paths)
    return folders


def to_tensor(clip: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, C]`` -> float32 ``[T, C, H, W]`` in 0..1, as the datasets hand to the model."""
    return torch.from_numpy(clip).permute(0, 3, 1, 2).float().div_(255.0)


def clips_per_second(read_one: Callable[[int], torch.Tensor], n_clips: int, repeats: int) -> float:
    """Best-of-``repeats`` rate over all clips, after one warm-up pass over a few clips."""
    for c in range(min(5, n_clips)):
        read_one(c)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for c in range(n_clips):
            tensor = read_one(c)
        rates.append(n_clips / (time.perf_counter() - start))
        assert tensor.shape == (CLIP_FRAMES, CHANNELS, TILE, TILE)
    return max(rates)


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def run(n_frames: int, n_clips: int, repeats: int) -> str:
    torch.set_num_threads(1)  # as in a DataLoader worker, which is where clips are read
    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        tmp_path = Path(tmp)
        frames = render_frames(n_frames)
        write_frames(frames, tmp_path / "frames")
        scan = scan_frames(tmp_path / "frames", expected_size=(WIDTH, HEIGHT))
        clips = sample_clips(n_frames, n_clips)
        tile_paths = write_tile_pngs(frames, clips, tmp_path / "tiles")

        stores, pack_rates = {}, {}
        for name, compression in (("raw", None), ("zlib", "zlib")):
            start = time.perf_counter()
            stores[name] = FrameStore.pack(
                PngFolderSource(scan.frames), tmp_path / f"store_{name}", compression=compression
            )
            pack_rates[name] = n_frames / (time.perf_counter() - start)

        # Correctness before speed: every layout must deliver the same pixels.
        for c in (0, n_clips - 1):
            indices, y0, x0 = clips[c]
            expected = np.stack([frames[i][y0 : y0 + TILE, x0 : x0 + TILE] for i in indices])
            for store in stores.values():
                assert np.array_equal(store.read_clip(indices, y0, x0, TILE, TILE), expected)

        def read_tiles(c: int) -> torch.Tensor:
            return to_tensor(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in tile_paths[c]]))

        def store_reader(store: FrameStore) -> Callable[[int], torch.Tensor]:
            def read(c: int) -> torch.Tensor:
                indices, y0, x0 = clips[c]
                return to_tensor(store.read_clip(indices, y0, x0, TILE, TILE))

            return read

        rates = {"tile PNGs (old)": clips_per_second(read_tiles, n_clips, repeats)}
        for name, store in stores.items():
            rates[f"store, {name}"] = clips_per_second(store_reader(store), n_clips, repeats)

        png_bytes = folder_bytes(tmp_path / "frames")
        tile_bytes = folder_bytes(tmp_path / "tiles")
        # The old layout writes 16 tile PNGs per (tile, hour): per frame, 12 tiles x 16 / 12 frames an hour.
        tile_bytes_per_frame = tile_bytes / n_clips * len(TILE_X) * len(TILE_Y) / 12
        sizes = {
            "source frame PNGs": png_bytes,
            "store, raw": stores["raw"].meta["stored_bytes"],
            "store, zlib": stores["zlib"].meta["stored_bytes"],
            "tile PNGs (old), one clip per tile per hour": tile_bytes_per_frame * n_frames,
        }
        return report(n_frames, n_clips, repeats, rates, pack_rates, sizes, png_bytes)


def report(n_frames, n_clips, repeats, rates, pack_rates, sizes, png_bytes) -> str:
    base = rates["tile PNGs (old)"]
    lines = [
        "## store: clip reads, packed FrameStore vs per-clip tile PNGs",
        "",
        f"`benchmarks/bench_store.py`: {n_frames} synthetic smooth frames of {WIDTH} x {HEIGHT} x {CHANNELS}, "
        f"{n_clips} random clips of {CLIP_FRAMES} x {TILE} x {TILE} on the default 12 tiles, read + converted "
        f"to float32 `[T, C, H, W]` in one process with one torch thread (as a DataLoader worker), best of {repeats} passes, files in the page cache.",
        "",
        "| layout | clips/s | ms/clip | vs tile PNGs |",
        "|---|---:|---:|---:|",
    ]
    for name, rate in rates.items():
        lines.append(f"| {name} | {rate:.1f} | {1000 / rate:.1f} | {rate / base:.1f}x |")
    lines += ["", "| layout | disk | vs source PNGs |", "|---|---:|---:|"]
    for name, size in sizes.items():
        lines.append(f"| {name} | {size / 2**20:.1f} MiB | {size / png_bytes:.2f}x |")
    load = os.getloadavg()[0]
    lines += [
        "",
        f"Packing (decode once, one thread): raw {pack_rates['raw']:.1f} frames/s, "
        f"zlib {pack_rates['zlib']:.1f} frames/s.",
        f"Load average when the timings ended: {load:.1f} on {os.cpu_count()} cores (other jobs slow every "
        "layout alike; compare the ratios).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="number of synthetic frames")
    parser.add_argument("--clips", type=int, default=200, help="number of random clips to read")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over all clips (best is kept)")
    args = parser.parse_args()
    markdown = run(args.frames, args.clips, args.repeats)
    print(markdown)
    print(f"written to {write_section('store', markdown)}")


if __name__ == "__main__":
    main()
