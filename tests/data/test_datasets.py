"""torch datasets and transforms over a small hand-made build-dataset folder."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medicane_hf.data.build import build_dataset
from medicane_hf.data.datasets import (
    ClipVideoDataset,
    DetectionDataset,
    PretrainingDataset,
    TrackingDataset,
    balanced_oversampling,
    load_clip_datasets,
    rotate_point,
)
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import load_index
from medicane_hf.data.splits import SplitSettings
from medicane_hf.data.tracks import write_tracks
from medicane_hf.data.transforms import BrightnessJitter, MultiScaleCrop
from medicane_hf.processing_medicane import clip_to_tensor, read_dataset_contract

GRID = SeviriGrid(width=192, height=128)
START = pd.Timestamp("2022-01-10 00:00")
HOURS = 30


def frame_pixels(i: int) -> np.ndarray:
    """Frame ``i`` of the hand-made archive: R = (x + y + i) mod 256, G = x mod 256, B = 100."""
    y, x = np.mgrid[0 : GRID.height, 0 : GRID.width]
    return np.stack([(x + y + i) % 256, x % 256, np.full_like(x, 100)], axis=-1).astype(np.uint8)


def write_archive(root: Path) -> tuple[Path, Path]:
    """30 h of 5-min frames (192 x 128, 64-px tiles) and three storms, each in its own time block."""
    frames = root / "frames"
    frames.mkdir(parents=True)
    times = pd.date_range(START, START + pd.Timedelta(hours=HOURS), freq="5min")
    for i, t in enumerate(times):
        Image.fromarray(frame_pixels(i)).save(frames / f"airmass_rgb_{t:%Y%m%d_%H%M}.png", compress_level=1)
    (root / "grid.json").write_text(
        json.dumps({"grid": GRID.to_dict(), "tiles": {"tile_size": 64, "stride_x": 64, "stride_y": 64}})
    )
    rows = []
    for k, (first, x, y) in enumerate([(3, 20.0, 20.0), (12, 100.0, 30.0), (21, 150.0, 90.0)]):
        lon, lat = GRID.pixel_to_lonlat(np.array([x, x + 10.0]), np.array([y, y + 5.0]))
        for h in range(5):
            frac = h / 4
            rows.append(
                {
                    "storm_id": f"s{k}",
                    "name": f"Storm{k}",
                    "time": START + pd.Timedelta(hours=first + h),
                    "lat": lat[0] + frac * (lat[1] - lat[0]),
                    "lon": lon[0] + frac * (lon[1] - lon[0]),
                    "window_start": START + pd.Timedelta(hours=first),
                    "window_end": START + pd.Timedelta(hours=first + 4),
                    "source": "test",
                }
            )
    tracks = root / "tracks.csv"
    write_tracks(pd.DataFrame(rows), tracks)
    return frames, tracks


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    frames, tracks = write_archive(root)
    out = root / "built"
    split = SplitSettings(val_storms=["Storm1"], test_storms=["Storm2"])
    build_dataset(frames, tracks, out, split_settings=split, progress=False)
    return out


def _expected_input(dataset_dir: Path, frame_indices, x0: int, y0: int) -> torch.Tensor:
    stats = json.loads((dataset_dir / "normalization.json").read_text())
    clip = np.stack([frame_pixels(int(i))[y0 : y0 + 64, x0 : x0 + 64] for i in frame_indices])
    mean = np.asarray(stats["image_mean"], np.float32)
    std = np.asarray(stats["image_std"], np.float32)
    return torch.from_numpy(
        ((clip / np.float32(255.0) - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
    )


def test_contract_describes_the_data(dataset_dir: Path) -> None:
    contract = read_dataset_contract(dataset_dir)
    assert contract.image_size == 64 and contract.num_frames == 16 and contract.num_channels == 3
    assert contract.frame_interval_minutes == 5
    assert contract.class_names == ("background", "medicane")
    assert contract.grid["width"] == 192 and contract.tiles["stride_x"] == 64
    # blue is 100 everywhere: its mean is exact and its (zero) std is replaced by 1
    assert contract.image_mean[2] == pytest.approx(100 / 255)
    assert contract.image_std[2] == 1.0


def test_detection_items_are_normalised_clips_with_int_labels(dataset_dir: Path) -> None:
    data = load_clip_datasets(dataset_dir, "detection", balance_train_classes=False)
    assert set(data) == {"train", "validation", "test"}
    index = load_index(dataset_dir)
    for name, ds in data.items():
        assert isinstance(ds, DetectionDataset) and len(ds) == len(index[name]) > 0
    val = data["validation"]
    labels = np.asarray(index["validation"]["label"])
    i = int(np.flatnonzero(labels == 1)[0])
    item = val[i]
    assert item["pixel_values"].shape == (16, 3, 64, 64) and item["pixel_values"].dtype == torch.float32
    assert item["labels"].dtype == torch.int64 and item["labels"].shape == () and int(item["labels"]) == 1
    row = index["validation"][i]
    expected = _expected_input(dataset_dir, row["frame_indices"], row["x0"], row["y0"])
    torch.testing.assert_close(item["pixel_values"], expected, rtol=0, atol=1e-5)


def test_tracking_dataset_keeps_only_clips_with_a_target(dataset_dir: Path) -> None:
    data = load_clip_datasets(dataset_dir, "tracking", splits=("validation",))
    ds = data["validation"]
    assert isinstance(ds, TrackingDataset)
    index = load_index(dataset_dir)["validation"].to_pandas()
    with_target = index[index["has_target"]]
    assert len(ds) == len(with_target) > 0
    item = ds[0]
    assert item["labels"].dtype == torch.float32 and item["labels"].shape == (2,)
    assert item["labels"].tolist() == pytest.approx(
        [with_target["target_x"].iloc[0], with_target["target_y"].iloc[0]]
    )
    assert 0 <= item["labels"][0] < 64 and 0 <= item["labels"][1] < 64


def test_detection_train_split_is_oversampled_to_balanced_classes(dataset_dir: Path) -> None:
    data = load_clip_datasets(dataset_dir, "detection", splits=("train", "validation"))
    index = load_index(dataset_dir)
    labels = np.asarray(index["train"]["label"])
    counts = np.bincount(labels, minlength=2)
    assert 0 < counts[1] < counts[0]  # the archive is imbalanced, like real data
    train = data["train"]
    assert len(train) == 2 * counts[0]
    drawn = np.asarray([int(train[i]["labels"]) for i in range(len(train))])
    assert np.bincount(drawn, minlength=2).tolist() == [counts[0], counts[0]]
    assert len(data["validation"]) == len(index["validation"])  # evaluation is never resampled


def test_balanced_oversampling_repeats_every_row_of_a_rare_class() -> None:
    labels = np.array([0] * 10 + [1] * 3)
    rows = balanced_oversampling(labels, seed=1)
    assert np.bincount(labels[rows]).tolist() == [10, 10]
    assert np.bincount(rows, minlength=13)[10:].min() == 3  # 10 = 3 x 3 + 1: each positive at least 3 times
    assert np.array_equal(rows, balanced_oversampling(labels, seed=1))


def test_tracking_translation_moves_the_target_with_the_window(dataset_dir: Path) -> None:
    index = load_index(dataset_dir)["train"]
    norm = read_dataset_contract(dataset_dir).normalization
    plain = TrackingDataset(index, dataset_dir / "store", norm, tile_size=64)
    moved = TrackingDataset(index, dataset_dir / "store", norm, tile_size=64, max_shift=16, shift_margin=8)
    assert len(moved) == len(plain) > 0
    rows = index.select(np.flatnonzero(np.asarray(index["has_target"])))
    torch.manual_seed(0)
    shifts = set()
    for _ in range(40):
        for i in range(len(moved)):
            item = moved[i]
            dx, dy = (plain.targets[i] - item["labels"].numpy()).round().astype(int).tolist()
            assert abs(dx) <= 16 and abs(dy) <= 16
            assert item["labels"].min() >= 8 and item["labels"].max() <= 64 - 8  # storm well inside the tile
            x0, y0 = rows[i]["x0"] + dx, rows[i]["y0"] + dy
            assert 0 <= x0 <= GRID.width - 64 and 0 <= y0 <= GRID.height - 64
            # the pixels are those of the moved window: the target still points at the same place
            expected = _expected_input(dataset_dir, rows[i]["frame_indices"], x0, y0)
            torch.testing.assert_close(item["pixel_values"], expected, rtol=0, atol=1e-5)
            shifts.add((dx, dy))
    assert len(shifts) > 10
    torch.testing.assert_close(plain[0]["labels"], torch.from_numpy(plain.targets[0]))
    # the train split of load_clip_datasets moves, validation and test never do
    data = load_clip_datasets(dataset_dir, "tracking", splits=("train", "validation"))
    assert data["train"].max_shift == 16 and data["validation"].max_shift == 0
    with pytest.raises(ValueError, match="shift_margin"):
        TrackingDataset(index, dataset_dir / "store", norm, tile_size=64, shift_margin=32)


def test_pretraining_dataset_draws_tiles_and_crops(dataset_dir: Path) -> None:
    data = load_clip_datasets(dataset_dir, "specialization")
    train = data["train"]
    assert isinstance(train, PretrainingDataset) and isinstance(data["validation"], ClipVideoDataset)
    assert len(train) == len(load_index(dataset_dir)["pretrain"]) > 0
    assert train[0]["pixel_values"].shape == (16, 3, 64, 64) and "labels" not in train[0]
    index = load_index(dataset_dir)["pretrain"]
    norm = read_dataset_contract(dataset_dir).normalization
    # no crop, tile from the layout: the item equals one of the 6 tiles of that window
    ds = PretrainingDataset(index, dataset_dir / "store", norm, 64, tiles=[(0, 0), (64, 0), (128, 64)])
    candidates = {
        (x0, y0): _expected_input(dataset_dir, index[3]["frame_indices"], x0, y0)
        for x0, y0 in [(0, 0), (64, 0), (128, 64)]
    }
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        got = ds[3]["pixel_values"]
        matches = [
            offset for offset, expected in candidates.items() if torch.allclose(got, expected, atol=1e-5)
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 3
    # any position: reproducible with a seeded generator
    a = PretrainingDataset(index, dataset_dir / "store", norm, 64, generator=torch.Generator().manual_seed(5))
    b = PretrainingDataset(index, dataset_dir / "store", norm, 64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[1]["pixel_values"], b[1]["pixel_values"])


def test_datasets_pickle_and_load_in_workers(dataset_dir: Path) -> None:
    ds = load_clip_datasets(dataset_dir, "detection", splits=("train",))["train"]
    clone = pickle.loads(pickle.dumps(ds))
    torch.manual_seed(0)  # train tiles move at random: the same seed gives the same move
    expected = ds[2]["pixel_values"]
    torch.manual_seed(0)
    torch.testing.assert_close(clone[2]["pixel_values"], expected)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    batch = next(iter(loader))
    assert batch["pixel_values"].shape == (4, 16, 3, 64, 64) and batch["labels"].shape == (4,)


def test_unknown_task_is_an_error(dataset_dir: Path) -> None:
    with pytest.raises(ValueError, match="task must be one of"):
        load_clip_datasets(dataset_dir, "segmentation")


# ---- transforms ---------------------------------------------------------------------------


def test_multi_scale_crop_keeps_the_size_and_never_flips() -> None:
    video = clip_to_tensor(np.random.default_rng(0).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8))
    crop = MultiScaleCrop(64, generator=torch.Generator().manual_seed(0))
    sizes = set()
    for _ in range(20):
        out = crop(video)
        assert out.shape == video.shape
        sizes.add(round(float((out - video).abs().mean()), 3))
    assert len(sizes) > 1  # some crops differ from the input
    # scale 1 on a square tile is the identity: no flip, no shift
    identity = MultiScaleCrop(64, scales=(1.0,))
    assert torch.equal(identity(video), video)


def test_brightness_jitter_is_bounded() -> None:
    video = torch.full((16, 3, 4, 4), 0.5)
    out = BrightnessJitter(0.05, generator=torch.Generator().manual_seed(1))(video)
    delta = (out - video).unique()
    assert len(delta) == 1 and abs(float(delta)) <= 0.05


@pytest.mark.parametrize("margin", [8, 2])
def test_detection_translation_never_changes_a_label(dataset_dir: Path, margin: int) -> None:
    index = load_index(dataset_dir)["train"]
    norm = read_dataset_contract(dataset_dir).normalization
    moved = DetectionDataset(
        index, dataset_dir / "store", norm, tile_size=64, max_shift=16, shift_margin=margin
    )
    table = index.to_pandas()
    with_target = table[table["has_target"]]
    centres = {
        t: np.stack([g["x0"] + g["target_x"], g["y0"] + g["target_y"]], axis=1)
        for t, g in with_target.groupby("end_time")
    }
    assert (table["label"] == 1).any() and (table["label"] == 0).any()
    torch.manual_seed(0)
    moved_kinds = {"medicane": 0, "background": 0}
    for _ in range(20):
        for i, row in enumerate(table.itertuples()):
            dx, dy = moved._draw_shift(i)
            assert abs(dx) <= 16 and abs(dy) <= 16
            x0, y0 = row.x0 + dx, row.y0 + dy
            assert 0 <= x0 <= GRID.width - 64 and 0 <= y0 <= GRID.height - 64
            if row.label == 1 and row.has_target:
                # the storm stays at least `margin` px inside the moved tile: still a Medicane clip
                cx, cy = row.x0 + row.target_x, row.y0 + row.target_y
                inside_x = x0 + margin <= cx <= x0 + 64 - margin
                assert inside_x and y0 + margin <= cy <= y0 + 64 - margin, (row.clip_id, dx, dy)
                moved_kinds["medicane"] += (dx, dy) != (0, 0)
            elif row.label == 0 and row.n_positive_frames == 0:
                # no storm centre of that hour comes within 8 px of the moved tile, whatever the margin
                # (a storm just outside may have been inside for 6 frames): still background
                for cx, cy in centres.get(row.end_time, np.zeros((0, 2))):
                    near_x = x0 - 8 <= cx <= x0 + 64 + 8
                    near_y = y0 - 8 <= cy <= y0 + 64 + 8
                    assert not (near_x and near_y), (row.clip_id, dx, dy, cx, cy)
                moved_kinds["background"] += (dx, dy) != (0, 0)
            else:  # a storm crossing the tile edge: any move could change the label
                assert (dx, dy) == (0, 0), row.clip_id
    assert moved_kinds["medicane"] > 20 and moved_kinds["background"] > 100, moved_kinds
    # the item is the moved window's pixels with the row's own label
    i = int(np.flatnonzero(table["label"].to_numpy() == 1)[0])
    torch.manual_seed(5)
    dx, dy = moved._draw_shift(i)
    torch.manual_seed(5)
    item = moved[i]
    row = index[i]
    assert int(item["labels"]) == 1
    expected = _expected_input(dataset_dir, row["frame_indices"], row["x0"] + dx, row["y0"] + dy)
    torch.testing.assert_close(item["pixel_values"], expected, rtol=0, atol=1e-5)
    # load_clip_datasets moves the train split only (by a quarter tile unless told), never evaluation
    data = load_clip_datasets(dataset_dir, "detection", splits=("train", "validation"))
    assert data["train"].dataset.max_shift == 16 and data["validation"].max_shift == 0
    still = load_clip_datasets(dataset_dir, "detection", splits=("train",), train_max_shift=0)["train"]
    assert still.dataset.max_shift == 0
    with pytest.raises(ValueError, match="shift_margin"):
        DetectionDataset(index, dataset_dir / "store", norm, tile_size=64, max_shift=4, shift_margin=40)


def test_detection_items_carry_the_moved_tiles_grid_offset(dataset_dir: Path) -> None:
    index = load_index(dataset_dir)["train"]
    norm = read_dataset_contract(dataset_dir).normalization
    moved = DetectionDataset(index, dataset_dir / "store", norm, tile_size=64, max_shift=16, shift_margin=8)
    x0, y0 = np.asarray(index["x0"]), np.asarray(index["y0"])
    shifted = 0
    for i in range(len(moved)):
        torch.manual_seed(i)
        dx, dy = moved._draw_shift(i)
        torch.manual_seed(i)  # the same draw: the item's pixels and offset move together
        offset = moved[i]["tile_offset"]
        assert offset.dtype == torch.float32 and offset.shape == (2,)
        assert offset.tolist() == [x0[i] + dx, y0[i] + dy]
        shifted += (dx, dy) != (0, 0)
    assert shifted > 10
    # unmoved splits: the row's own tile; the plain clips give it only when asked (inference), not for MAE
    still = load_clip_datasets(dataset_dir, "detection", splits=("validation",))["validation"]
    rows = load_index(dataset_dir)["validation"]
    assert still[3]["tile_offset"].tolist() == [rows["x0"][3], rows["y0"][3]]
    assert "tile_offset" not in ClipVideoDataset(rows, dataset_dir / "store", norm, tile_size=64)[3]
    clips = ClipVideoDataset(rows, dataset_dir / "store", norm, tile_size=64, with_tile_offset=True)
    assert clips[3]["tile_offset"].tolist() == [rows["x0"][3], rows["y0"][3]]
    # the predict loop's rows keep it
    from medicane_hf.inference.predict import RowDataset

    assert RowDataset(clips)[3]["tile_offset"].tolist() == [rows["x0"][3], rows["y0"][3]]


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5])
def test_rotate_point_follows_torch_rot90(turns: int) -> None:
    tile = torch.zeros(1, 64, 64)
    tile[0, 10, 50] = 1.0  # row y=10, column x=50
    turned = torch.rot90(tile, turns, dims=(-2, -1))
    y, x = divmod(int(turned.argmax()), 64)
    assert rotate_point((50.0, 10.0), turns, 64) == (x, y)


def test_tracking_quarter_turns_turn_the_target_with_the_tile(dataset_dir: Path) -> None:
    index = load_index(dataset_dir)["train"]
    norm = read_dataset_contract(dataset_dir).normalization
    turning = TrackingDataset(index, dataset_dir / "store", norm, tile_size=64, max_shift=16, rot90=True)
    rows = index.select(np.flatnonzero(np.asarray(index["has_target"])))
    seen_turns = set()
    for seed in range(12):
        i = seed % len(turning)
        torch.manual_seed(seed)
        item = turning[i]
        torch.manual_seed(seed)  # the same draws, in the same order: shift, then turns
        dx, dy = turning._draw_shift(i)
        turns = int(torch.randint(4, (1,)).item())
        seen_turns.add(turns)
        window = _expected_input(
            dataset_dir, rows[i]["frame_indices"], rows[i]["x0"] + dx, rows[i]["y0"] + dy
        )
        torch.testing.assert_close(
            item["pixel_values"], torch.rot90(window, turns, dims=(-2, -1)), rtol=0, atol=1e-5
        )
        target = rotate_point(turning.targets[i] - np.array([dx, dy]), turns, 64)
        assert item["labels"].tolist() == pytest.approx(list(target))
    assert len(seen_turns) >= 3
    # load_clip_datasets turns the train split only, unless told not to
    data = load_clip_datasets(dataset_dir, "tracking", splits=("train", "validation"))
    assert data["train"].rot90 and not data["validation"].rot90
    assert not load_clip_datasets(dataset_dir, "tracking", splits=("train",), train_rot90=False)[
        "train"
    ].rot90


def test_grouping_background_centres_by_time_matches_a_mask_per_time() -> None:
    from medicane_hf.data.datasets import _group_rows_by_time

    rng = np.random.default_rng(0)
    times = np.datetime64("2022-01-10T00:00") + rng.integers(0, 30, 500).astype("timedelta64[h]")
    keep = rng.random(500) < 0.3
    values = rng.random((500, 2))
    grouped = _group_rows_by_time(values, times, keep)
    expected = {t: values[keep & (times == t)] for t in np.unique(times[keep])}
    assert grouped.keys() == expected.keys() and len(expected) > 20
    for t, rows in expected.items():
        assert np.array_equal(grouped[t], rows)
