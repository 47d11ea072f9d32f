"""What inference predicts: a split's clips in index order, frames packed without tracks, the contract check."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medicane_hf.data.dataset_arrays import dataset_targets
from medicane_hf.data.datasets import load_clip_datasets
from medicane_hf.data.frames import FrameStore
from medicane_hf.data.index import UNLABELLED_SPLIT, load_index
from medicane_hf.inference.inputs import (
    CLIP_COLUMNS,
    InputError,
    build_frames_dataset,
    contract_problems,
    dataset_input,
    frames_contract,
)
from medicane_hf.processing_medicane import (
    INPUT_FIELDS,
    DataContract,
    frames_to_pixel_values,
    read_dataset_contract,
)
from medicane_hf.tasks import TASKS

OTHER_STATS = {"image_mean": [0.3, 0.4, 0.5], "image_std": [0.1, 0.2, 0.3]}


def test_a_split_in_index_order_normalised_with_the_given_statistics(dataset_dir: Path) -> None:
    source = dataset_input(TASKS["detection"], dataset_dir, None, OTHER_STATS)
    test = load_index(dataset_dir)["test"].to_pandas()
    assert source.split == "test" and source.labelled and len(source.dataset) == len(test)
    assert list(source.clips.columns[: len(CLIP_COLUMNS)]) == list(CLIP_COLUMNS)
    assert source.clips["clip_id"].tolist() == test["clip_id"].tolist()
    row = 7
    item = source.dataset[row]
    store = FrameStore.open(dataset_dir / "store")
    raw = store.read_clip(test["frame_indices"][row], int(test["y0"][row]), int(test["x0"][row]), 64, 64)
    expected = (
        raw.transpose(0, 3, 1, 2) / 255.0 - np.array(OTHER_STATS["image_mean"])[:, None, None]
    ) / np.array(OTHER_STATS["image_std"])[:, None, None]
    np.testing.assert_allclose(item["pixel_values"].numpy(), expected, rtol=1e-5, atol=1e-5)
    assert int(item["labels"]) == int(test["label"][row])


def test_tracking_predicts_the_clips_with_a_target_and_knows_the_train_mean(dataset_dir: Path) -> None:
    source = dataset_input(TASKS["tracking"], dataset_dir, "validation", OTHER_STATS)
    validation = load_index(dataset_dir)["validation"].to_pandas()
    with_target = validation[validation["has_target"]]
    assert source.clips["clip_id"].tolist() == with_target["clip_id"].tolist()
    train = load_clip_datasets(dataset_dir, "tracking", ("train",), train_max_shift=0, train_rot90=False)[
        "train"
    ]
    np.testing.assert_allclose(source.baseline_xy, dataset_targets(train).mean(axis=0))


def test_max_clips_spreads_over_the_split(dataset_dir: Path) -> None:
    source = dataset_input(TASKS["detection"], dataset_dir, "test", OTHER_STATS, max_clips=5)
    test = load_index(dataset_dir)["test"].to_pandas()
    rows = np.linspace(0, len(test) - 1, 5).round().astype(int)
    assert (
        len(source.dataset) == 5 and source.clips["clip_id"].tolist() == test["clip_id"].iloc[rows].tolist()
    )


@pytest.mark.parametrize("split", ["nope", "pretrain"])
def test_a_split_that_cannot_be_predicted(dataset_dir: Path, split: str) -> None:
    with pytest.raises(
        InputError, match=f"has no split '{split}' to predict on; its splits: train, validation, test"
    ):
        dataset_input(TASKS["detection"], dataset_dir, split, OTHER_STATS)


def test_not_a_build_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a build-dataset folder"):
        dataset_input(TASKS["detection"], tmp_path, None, OTHER_STATS)


@pytest.fixture(scope="module")
def frames(dataset_dir: Path) -> Path:
    return dataset_dir / "source" / "frames"


def test_frames_are_packed_once_and_every_tile_of_every_clip_is_indexed(
    frames, dataset_dir, tmp_path
) -> None:
    model = read_dataset_contract(dataset_dir)
    expected, grid_source = frames_contract(frames, model)
    assert grid_source.endswith("grid.json")  # synth writes one beside the frames
    period = {"start": "2023-10-02 10:00", "end": "2023-10-02 11:00"}
    info = build_frames_dataset(frames, tmp_path / "packed", expected, **period, progress=False)
    assert info["store"]["action"] == "packed" and info["labelled"] is False
    again = build_frames_dataset(frames, tmp_path / "packed", expected, **period, progress=False)
    assert again["store"]["action"] == "reused"
    source = dataset_input(TASKS["tracking"], tmp_path / "packed", None, model.normalization)
    assert source.split == UNLABELLED_SPLIT and not source.labelled and len(source.dataset) == 2 * 12
    assert "labels" not in source.dataset[0]
    # the store path gives the pixels of the one frames -> pixel_values path of processing_medicane
    end = source.clips["end_time"].iloc[12]
    times = [end - np.timedelta64(5 * k, "m") for k in range(15, -1, -1)]
    paths = [frames / t.strftime("%Y/%m/%d/airmass_rgb_%Y%m%d_%H%M.png") for t in times]
    clip = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    pixel_values, offsets = frames_to_pixel_values(clip, model)
    assert offsets == [tuple(o) for o in source.clips[["x0", "y0"]].to_numpy()[12:]]
    for k in (0, 5, 11):
        assert source.dataset[12 + k]["pixel_values"].equal(pixel_values[k])


def test_a_period_without_a_whole_clip(frames, dataset_dir, tmp_path) -> None:
    expected, _ = frames_contract(frames, read_dataset_contract(dataset_dir))
    # the embedded default's frames stop between episodes: 2023-10-03 is a gap
    with pytest.raises(FileNotFoundError, match="no frame matching .* from 2023-10-03"):
        build_frames_dataset(
            frames, tmp_path / "p", expected, start="2023-10-03 12:00", end="2023-10-03 13:00"
        )


def test_every_difference_of_the_contract_is_listed(dataset_dir: Path) -> None:
    data = read_dataset_contract(dataset_dir)
    model = dataclasses.replace(
        data,
        num_frames=8,
        image_size=32,
        grid={**data.grid, "width": 1290},
        tiles={**data.tiles, "tile_size": 32},
        image_mean=(0.1, 0.1, 0.1),
    )
    differences, notes = contract_problems(model, data, INPUT_FIELDS)
    assert [d.split(":")[0] for d in differences] == ["num_frames", "image_size", "grid", "tiles"]
    assert differences[0] == "num_frames: model 8, dataset 16"
    assert any(
        "normalised with the model's statistics" in n for n in notes
    )  # not an error: the model's are used
    assert contract_problems(data, data, INPUT_FIELDS) == ([], [])


def test_a_field_the_model_does_not_record_is_not_checked_but_said(dataset_dir: Path) -> None:
    data = read_dataset_contract(dataset_dir)
    model = dataclasses.replace(data, grid=None)
    differences, notes = contract_problems(model, data, INPUT_FIELDS)
    assert differences == [] and notes == ["the model records no grid: the input's is used unchecked"]


def test_a_grid_file_beside_the_frames_is_the_frames_contract(tmp_path: Path, dataset_dir: Path) -> None:
    (tmp_path / "frames").mkdir()
    grid = json.loads((dataset_dir / "source" / "grid.json").read_text())
    grid["tiles"]["stride_x"] = 32
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    model = read_dataset_contract(dataset_dir)
    expected, source = frames_contract(tmp_path / "frames", model)
    assert source == str(tmp_path / "grid.json")
    assert contract_problems(model, expected, INPUT_FIELDS)[0] == [
        f"tiles: model {model.tiles}, dataset {expected.tiles}"
    ]
    assert isinstance(expected, DataContract) and expected.image_mean == model.image_mean
