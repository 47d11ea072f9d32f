"""Frame discovery (scan_frames) and the packed FrameStore, on small PNGs made in tmp_path."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medicane_hf.data.frames import (
    DEFAULT_FRAME_PATTERN,
    FrameSizeError,
    FrameStore,
    FrameStoreError,
    IncompleteStoreError,
    pattern_to_regex,
    scan_frames,
)
from medicane_hf.data.sources import PngFolderSource
from medicane_hf.data.sources import png as png_module

WIDTH, HEIGHT = 40, 24
T0 = pd.Timestamp("2023-09-05 10:00")
STEP = pd.Timedelta(minutes=5)


def smooth_image(seed: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Smooth uint8 ``[H, W, 3]`` field (sums of low-frequency waves), nothing black."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 2 * np.pi)
        channels.append(128 + 90 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    return np.clip(np.stack(channels, -1), 1, 255).astype(np.uint8)


def noisy_image(seed: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (height, width, 3), dtype=np.uint8)


def save_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def frame_name(time: pd.Timestamp) -> str:
    return f"airmass_rgb_{time:%Y%m%d_%H%M}.png"


def make_archive(root: Path, n: int, image=noisy_image) -> dict[pd.Timestamp, np.ndarray]:
    """``n`` consecutive 5-min frames spread over one sub-folder per hour; returns time -> pixels."""
    pixels = {}
    for k in range(n):
        time = T0 + k * STEP
        pixels[time] = image(k)
        save_png(root / f"{time:%Y%m%d}" / f"{time:%H}" / frame_name(time), pixels[time])
    return pixels


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, dict[pd.Timestamp, np.ndarray]]:
    pixels = make_archive(tmp_path / "frames", 18)
    return tmp_path / "frames", pixels


# --------------------------------------------------------------------------------------- scan_frames


def test_scan_parses_times_across_subfolders_and_ignores_other_files(archive) -> None:
    root, pixels = archive
    (root / "notes.txt").write_text("not a frame")
    save_png(root / "thumbs" / "airmass_rgb_2023.png", noisy_image(99))
    scan = scan_frames(root, progress=False)
    assert scan.frames["time"].tolist() == sorted(pixels)
    assert scan.frames["path"].map(lambda p: Path(p).name).tolist() == [frame_name(t) for t in sorted(pixels)]
    assert len(scan.ignored) == 2
    assert len(scan.gaps) == len(scan.duplicates) == len(scan.unreadable) == 0


def test_custom_pattern_with_folders_and_repeated_directives(tmp_path: Path) -> None:
    for time in (T0, T0 + STEP):
        save_png(tmp_path / f"{time:%Y}" / f"{time:%j}" / f"IR_{time:%Y-%m-%dT%H%M}.png", noisy_image(1))
    save_png(tmp_path / "2022" / f"{T0:%j}" / f"IR_{T0:%Y-%m-%dT%H%M}.png", noisy_image(2))  # year disagrees
    scan = scan_frames(tmp_path, pattern="%Y/%j/IR_%Y-%m-%dT%H%M.png", progress=False)
    assert scan.frames["time"].tolist() == [T0, T0 + STEP]
    assert len(scan.ignored) == 1


def test_pattern_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="%Q"):
        pattern_to_regex("frame_%Y%Q.png")
    with pytest.raises(ValueError, match="no year"):
        pattern_to_regex("frame_%m%d.png")
    assert pattern_to_regex(DEFAULT_FRAME_PATTERN).fullmatch("airmass_rgb_20230905_1000.png")


def test_scan_reports_gaps_duplicates_unreadable_wrong_size_and_black(tmp_path: Path) -> None:
    root = tmp_path / "frames"
    times = [T0 + k * STEP for k in range(12) if k not in (3, 4, 5, 9)]  # gaps: 3 slots and 1 slot
    for k, time in enumerate(times):
        save_png(root / "a" / frame_name(time), noisy_image(k))
    duplicate = save_png(root / "b" / frame_name(times[0]), noisy_image(50))
    corrupt = root / "a" / frame_name(times[1])
    corrupt.write_bytes(b"\x89PNG not really")
    wrong = save_png(root / "a" / frame_name(times[2]), noisy_image(7, height=HEIGHT + 2))
    black = save_png(root / "a" / frame_name(times[3]), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    impossible = save_png(root / "a" / "airmass_rgb_20231345_1000.png", noisy_image(8))

    scan = scan_frames(root, expected_size=(WIDTH, HEIGHT), check_content=True, progress=False)

    assert len(scan.frames) == len(times)  # problem frames keep their time slot
    assert scan.gaps.to_dict("records") == [
        {"start": T0 + 3 * STEP, "end": T0 + 5 * STEP, "missing_frames": 3},
        {"start": T0 + 9 * STEP, "end": T0 + 9 * STEP, "missing_frames": 1},
    ]
    assert scan.n_missing == 4
    assert scan.duplicates[["path", "kept_path"]].values.tolist() == [
        [str(duplicate), str(root / "a" / frame_name(times[0]))]
    ]
    assert sorted(scan.unreadable["path"]) == sorted([str(corrupt), str(impossible)])
    assert scan.wrong_size.to_dict("records") == [
        {"time": times[2], "path": str(wrong), "width": WIDTH, "height": HEIGHT + 2}
    ]
    assert scan.black["path"].tolist() == [str(black)]
    assert len(scan.exclude("wrong_size", "unreadable")) == len(times) - 2

    text = scan.summary()
    assert "gaps: 2 (4 missing frames" in text
    assert "duplicates: 1" in text and "unreadable: 2" in text
    assert "wrong size: 1" in text and "black: 1" in text


def test_scan_without_content_check_does_not_flag_black(tmp_path: Path) -> None:
    save_png(tmp_path / frame_name(T0), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    scan = scan_frames(tmp_path, progress=False)
    assert len(scan.black) == 0
    assert "black: not checked" in scan.summary()


# --------------------------------------------------------------------------------------- FrameStore


def pack(frames: pd.DataFrame, out: Path, compression: str | None, **kwargs) -> FrameStore:
    kwargs.setdefault("chunk_shape", (8, 16))  # several chunks per 40 x 24 frame, with padded edges
    return FrameStore.pack(PngFolderSource(frames), out, compression=compression, progress=False, **kwargs)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_read_clip_equals_source_pixels(archive, tmp_path: Path, compression) -> None:
    root, pixels = archive
    frames = scan_frames(root, progress=False).frames
    store = pack(frames, tmp_path / "store", compression)
    assert (len(store), store.height, store.width, store.channels) == (18, HEIGHT, WIDTH, 3)
    assert store.times.dtype == np.dtype("datetime64[ns]") and store.valid.all()
    source = np.stack([pixels[t] for t in sorted(pixels)])
    indices = [3, 0, 17, 17]  # any order, repeats allowed (a filled frame repeats its neighbour)
    for y0, x0, h, w in [
        (0, 0, HEIGHT, WIDTH),
        (5, 9, 11, 20),
        (HEIGHT - 7, WIDTH - 13, 7, 13),
        (8, 16, 8, 16),
    ]:
        clip = store.read_clip(indices, y0, x0, h, w)
        assert clip.dtype == np.uint8 and clip.shape == (4, h, w, 3)
        np.testing.assert_array_equal(clip, source[indices, y0 : y0 + h, x0 : x0 + w])
    np.testing.assert_array_equal(store.read_frame(6), source[6])


def test_compressed_store_not_larger_than_pngs(tmp_path: Path) -> None:
    frames_dir = tmp_path / "frames"
    make_archive(frames_dir, 8, image=lambda k: smooth_image(k, height=96, width=160))
    frames = scan_frames(frames_dir, progress=False).frames
    png_bytes = sum(Path(p).stat().st_size for p in frames["path"])
    store = FrameStore.pack(PngFolderSource(frames), tmp_path / "store", compression="zlib", progress=False)
    assert store.meta["source_bytes"] == png_bytes
    data_bytes = (store.path / "chunks.bin").stat().st_size + (
        store.path / "chunk_offsets.npy"
    ).stat().st_size
    assert store.meta["stored_bytes"] == data_bytes
    assert data_bytes <= png_bytes, f"zlib store {data_bytes} B > PNGs {png_bytes} B"


def test_index_of_gives_minus_one_for_absent_times(archive, tmp_path: Path) -> None:
    root, _ = archive
    store = pack(scan_frames(root, progress=False).frames, tmp_path / "store", None)
    query = [
        T0 + 2 * STEP,
        T0 - STEP,
        T0 + 2 * STEP + pd.Timedelta(minutes=1),
        T0 + 17 * STEP,
        T0 + 18 * STEP,
    ]
    assert store.index_of(query).tolist() == [2, -1, -1, 17, -1]
    assert int(store.index_of(T0 + 4 * STEP)) == 4
    assert int(store.index_of(pd.Timestamp(T0 + 4 * STEP, tz="UTC"))) == 4


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_black_and_unreadable_frames_keep_their_slot_but_are_invalid(tmp_path: Path, compression) -> None:
    root = tmp_path / "frames"
    pixels = make_archive(root, 5)
    save_png(root / "x" / frame_name(T0 + 5 * STEP), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    (root / "x" / frame_name(T0 + 6 * STEP)).write_bytes(b"garbage")
    save_png(root / "x" / frame_name(T0 + 7 * STEP), noisy_image(7))
    store = pack(scan_frames(root, progress=False).frames, tmp_path / "store", compression)
    assert store.valid.tolist() == [True] * 5 + [False, False, True]
    assert store.invalid_reasons[5] == "black"
    assert store.invalid_reasons[6].startswith("unreadable")
    assert json.loads((store.path / "store.json").read_text())["invalid"]["6"]["path"].endswith(
        frame_name(T0 + 6 * STEP)
    )
    assert not store.read_frame(6).any()
    np.testing.assert_array_equal(store.read_frame(4), pixels[T0 + 4 * STEP])
    np.testing.assert_array_equal(store.read_frame(7), noisy_image(7))


REAL_DECODE = png_module.decode_image


class SimulatedCrash(Exception):
    pass


def counting_decoder(monkeypatch, crash_after: int | None = None) -> list[str]:
    """Count calls to the PNG source's decode function; optionally crash after ``crash_after`` frames."""
    calls: list[str] = []
    real = REAL_DECODE

    def decode(path: str) -> np.ndarray:
        if crash_after is not None and len(calls) >= crash_after:
            raise SimulatedCrash(path)
        calls.append(path)
        return real(path)

    monkeypatch.setattr(png_module, "decode_image", decode)
    return calls


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_interrupted_pack_resumes_with_only_the_remaining_frames(
    archive, tmp_path: Path, monkeypatch, compression
) -> None:
    root, _ = archive
    frames = scan_frames(root, progress=False).frames
    reference = pack(frames, tmp_path / "reference", compression)

    out = tmp_path / "store"
    counting_decoder(monkeypatch, crash_after=7)
    with pytest.raises(SimulatedCrash):
        pack(frames, out, compression, flush_every=1000)  # the flush on the way out must keep 7 frames
    with pytest.raises(IncompleteStoreError, match="7 of 18.*rerun"):
        FrameStore.open(out)
    if compression == "zlib":
        with open(out / "chunks.bin", "ab") as handle:  # bytes a hard kill left after the last flush
            handle.write(b"\x00" * 100_000)  # more than the remaining frames will write

    calls = counting_decoder(monkeypatch)
    store = pack(frames, out, compression)
    assert len(calls) == 18 - 7
    assert sorted(calls) == sorted(frames["path"].iloc[7:])
    np.testing.assert_array_equal(store.times, reference.times)
    np.testing.assert_array_equal(store.valid, reference.valid)
    for i in range(len(store)):
        np.testing.assert_array_equal(store.read_frame(i), reference.read_frame(i))
    data = "frames.u8" if compression is None else "chunks.bin"
    assert (out / data).read_bytes() == (tmp_path / "reference" / data).read_bytes()
    assert not (out / "progress.json").exists()


def test_repack_same_frames_is_a_no_op_and_other_frames_are_refused(
    archive, tmp_path: Path, monkeypatch
) -> None:
    root, _ = archive
    frames = scan_frames(root, progress=False).frames
    out = tmp_path / "store"
    pack(frames, out, "zlib")
    before = (out / "store.json").read_bytes()

    calls = counting_decoder(monkeypatch)
    again = pack(frames, out, "zlib")
    assert calls == [] and len(again) == 18
    assert (out / "store.json").read_bytes() == before

    with pytest.raises(FrameStoreError, match="different frame list"):
        pack(frames.iloc[:-1], out, "zlib")
    with pytest.raises(FrameStoreError, match="compression='zlib'"):
        pack(frames, out, None)
    assert (out / "store.json").read_bytes() == before

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FrameStoreError, match="not empty"):
        pack(frames, foreign, None)


def test_frame_of_another_size_is_an_error_naming_the_file(archive, tmp_path: Path) -> None:
    root, _ = archive
    odd = save_png(root / "late" / frame_name(T0 + 20 * STEP), noisy_image(3, width=WIDTH + 1))
    frames = scan_frames(root, progress=False).frames
    with pytest.raises(FrameSizeError, match=odd.name):
        pack(frames, tmp_path / "store", None)
    first = frames["path"].iloc[0]
    with pytest.raises(FrameSizeError, match=Path(first).name):
        pack(frames, tmp_path / "store2", None, expected_size=(WIDTH + 5, HEIGHT))


def test_bad_frames_table_and_bad_reads_are_clear_errors(archive, tmp_path: Path) -> None:
    root, _ = archive
    frames = scan_frames(root, progress=False).frames
    with pytest.raises(ValueError, match="duplicate time"):
        pack(pd.concat([frames, frames.iloc[:1]]), tmp_path / "dup", None)
    with pytest.raises(ValueError, match="'zstd' is not supported"):
        pack(frames, tmp_path / "z", "zstd")
    store = pack(frames, tmp_path / "store", None)
    with pytest.raises(IndexError, match="-1"):
        store.read_clip([0, -1], 0, 0, 4, 4)
    with pytest.raises(ValueError, match="not inside"):
        store.read_clip([0], 20, 0, 8, 8)
    with pytest.raises(FrameStoreError, match="not a frame store"):
        FrameStore.open(tmp_path)


def _read_in_child(args: tuple[FrameStore, list[int]]) -> np.ndarray:
    store, indices = args
    return store.read_clip(indices, 2, 3, 16, 30)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_store_pickles_cheaply_and_reads_in_other_processes(archive, tmp_path: Path, compression) -> None:
    root, _ = archive
    store = pack(scan_frames(root, progress=False).frames, tmp_path / "store", compression)
    expected = [store.read_clip(ix, 2, 3, 16, 30) for ix in ([0, 1, 2], [15, 16, 17])]  # maps opened pre-fork
    blob = pickle.dumps(store)
    assert len(blob) < 1000
    copy = pickle.loads(blob)
    np.testing.assert_array_equal(copy.read_clip([0, 1, 2], 2, 3, 16, 30), expected[0])
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_read_in_child, [(store, [0, 1, 2]), (store, [15, 16, 17])])
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_threaded_pack_equals_serial_pack(archive, tmp_path: Path) -> None:
    root, _ = archive
    frames = scan_frames(root, progress=False).frames
    serial = pack(frames, tmp_path / "serial", "zlib")
    threaded = pack(frames, tmp_path / "threaded", "zlib", num_workers=3)
    assert (serial.path / "chunks.bin").read_bytes() == (threaded.path / "chunks.bin").read_bytes()
