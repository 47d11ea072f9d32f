"""The data contract and the frames -> pixel_values path (medicane_hf/processing_medicane.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.data.datasets import ClipVideoDataset
from medicane_hf.data.frames import FrameStore
from medicane_hf.data.index import load_index
from medicane_hf.processing_medicane import (
    CONTRACT_FIELDS,
    ContractMismatchError,
    DataContract,
    check_contract,
    contract_differences,
    cut_tiles,
    frames_to_pixel_values,
    read_dataset_contract,
    to_pixel_values,
)

MEAN = (0.5, 0.2, 0.0)
STD = (0.25, 0.1, 1.0)


def contract(**changes) -> DataContract:
    """The tiny preset's input: 16 frames of 64 px, 3 channels, on a 384 x 128 grid of 64-px tiles."""
    base = DataContract(
        num_frames=16,
        frame_interval_minutes=5,
        image_size=64,
        num_channels=3,
        image_mean=MEAN,
        image_std=STD,
        grid={"width": 384, "height": 128},
        tiles={"tile_size": 64, "stride_x": 64, "stride_y": 64},
    )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------------------------- pixel values


def test_a_pixel_is_scaled_to_0_1_then_normalised_and_moves_to_channels_first() -> None:
    clip = np.zeros((16, 8, 10, 3), np.uint8)
    clip[3, 2, 5] = (128, 51, 255)  # frame 3, row 2, column 5
    out = to_pixel_values(clip, MEAN, STD)
    assert out.shape == (16, 3, 8, 10) and out.dtype == torch.float32
    # (128 / 255 - 0.5) / 0.25, (51 / 255 - 0.2) / 0.1, (255 / 255 - 0) / 1
    assert out[3, :, 2, 5].tolist() == pytest.approx([0.0078431, 0.0, 1.0], abs=1e-6)
    # a black pixel: -mean / std per channel
    assert out[0, :, 0, 0].tolist() == pytest.approx([-2.0, -2.0, 0.0])


def test_a_batch_numpy_or_torch_equals_its_clips_one_by_one() -> None:
    clips = np.random.default_rng(0).integers(0, 256, (2, 4, 6, 6, 3), dtype=np.uint8)
    batch = to_pixel_values(clips, MEAN, STD)
    assert batch.shape == (2, 4, 3, 6, 6)
    for i in range(2):
        assert torch.equal(batch[i], to_pixel_values(clips[i], MEAN, STD))
    assert torch.equal(to_pixel_values(torch.from_numpy(clips), MEAN, STD), batch)
    # a flipped (negative-stride) view works as its copy does
    assert torch.equal(
        to_pixel_values(clips[0, ::-1], MEAN, STD), to_pixel_values(clips[0, ::-1].copy(), MEAN, STD)
    )


def test_the_transform_runs_in_0_1_units_on_each_clip_before_normalisation() -> None:
    clips = np.full((2, 4, 2, 2, 3), 51, np.uint8)  # 0.2 in 0..1 units
    seen = []

    def brighten(video: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(video.shape))
        return video + 0.1

    out = to_pixel_values(clips, MEAN, STD, transform=brighten)
    assert seen == [(4, 3, 2, 2), (4, 3, 2, 2)]  # one [T, C, H, W] clip at a time
    assert out[:, :, 1].unique().tolist() == pytest.approx([(0.2 + 0.1 - 0.2) / 0.1])


@pytest.mark.parametrize(
    ("clips", "mean", "std", "message"),
    [
        (np.zeros((16, 8, 8, 3), np.uint8), (0.5, 0.5), (1.0, 1.0), "2/2 values for a 3-channel clip"),
        (np.zeros((16, 8, 8, 3), np.float32), MEAN, STD, "expected uint8 pixels"),
        (np.zeros((8, 8, 3), np.uint8), MEAN, STD, r"expected a clip \[T, H, W, C\] or a batch"),
    ],
)
def test_pixel_values_refuse_what_is_not_a_uint8_clip_of_the_statistics_channels(
    clips, mean, std, message
) -> None:
    with pytest.raises(ValueError, match=message):
        to_pixel_values(clips, mean, std)


# ---------------------------------------------------------------------------------------------- tiles


def test_tiles_are_the_windows_at_their_offsets() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 128, 384, 3), dtype=np.uint8)
    tiles = cut_tiles(frames, [(0, 0), (320, 64)], 64)
    assert tiles.shape == (2, 2, 64, 64, 3) and tiles.dtype == np.uint8
    assert np.array_equal(tiles[1], frames[:, 64:128, 320:384])
    assert torch.equal(cut_tiles(torch.from_numpy(frames), [(320, 64)], 64)[0], torch.from_numpy(tiles[1]))
    with pytest.raises(
        ValueError, match=r"tile \(x0=330, y0=0\) of 64 px is not inside the 384 x 128 px frames"
    ):
        cut_tiles(frames, [(0, 0), (330, 0)], 64)


def test_full_frames_give_the_pixel_values_the_training_datasets_give(dataset_dir: Path) -> None:
    data = read_dataset_contract(dataset_dir)
    store = FrameStore.open(dataset_dir / "store")
    split = load_index(dataset_dir)["validation"]
    dataset = ClipVideoDataset(split, store, data.normalization, tile_size=data.image_size)
    row = 5
    frames = np.stack([store.read_frame(int(i)) for i in split[row]["frame_indices"]])  # [T, H, W, C]
    pixel_values, offsets = frames_to_pixel_values(frames, data)
    assert pixel_values.shape == (len(offsets), 16, 3, data.image_size, data.image_size)
    assert offsets == data.tile_offsets(store.width, store.height)
    tile = offsets.index((split[row]["x0"], split[row]["y0"]))
    # bit for bit: inference on full frames and training on the store's windows see the same input
    assert torch.equal(pixel_values[tile], dataset[row]["pixel_values"])


def test_frames_that_do_not_fit_the_contract_are_refused_with_every_difference() -> None:
    frames = np.zeros((8, 100, 384, 1), np.uint8)
    with pytest.raises(ContractMismatchError) as caught:
        frames_to_pixel_values(frames, contract())
    assert str(caught.value) == (
        "frames [8, 100, 384, 1] [T, H, W, C] do not fit the model: 8 frames instead of 16; "
        "1 channels instead of 3; 384 x 100 px frames instead of the grid's 384 x 128 px"
    )


# ---------------------------------------------------------------------------------------------- the contract


def test_a_config_records_the_contract_it_was_built_with() -> None:
    data = contract(class_names=("background", "medicane", "neighbouring"))
    config = MedicaneVideoMAEConfig.from_preset("tiny", **data.shape_settings(), **data.config_settings())
    assert DataContract.from_config(config) == data
    assert config.id2label == {0: "background", 1: "medicane", 2: "neighbouring"}


def test_a_model_with_another_clip_shape_is_refused_naming_every_field() -> None:
    config = MedicaneVideoMAEConfig.from_preset("tiny")  # 16 frames of 64 px, 3 channels
    check_contract(config, contract(), "models/tiny")  # the same shape: accepted
    with pytest.raises(ContractMismatchError) as caught:
        check_contract(
            config,
            contract(num_frames=8, image_size=32, num_channels=1, image_mean=(0.5,), image_std=(1.0,)),
            "models/tiny",
        )
    message = str(caught.value)
    assert message.startswith("models/tiny expects 16 frames (5 min apart) of 64x64 px with 3 channels")
    assert (
        "(num_frames: model 16, dataset 8; image_size: model 64, dataset 32; num_channels: model 3, dataset 1)"
        in message
    )


def test_every_input_field_that_differs_is_listed() -> None:
    model = DataContract.from_config(
        MedicaneVideoMAEConfig.from_preset("tiny")
    )  # neutral 0.5 / 0.25, no grid
    data = contract(frame_interval_minutes=15)
    assert contract_differences(model, data) == []  # the clip shape agrees
    assert contract_differences(model, data, CONTRACT_FIELDS) == [
        "frame_interval_minutes: model 5, dataset 15",
        "image_mean: model [0.5, 0.5, 0.5], dataset [0.5, 0.2, 0.0]",
        "image_std: model [0.25, 0.25, 0.25], dataset [0.25, 0.1, 1.0]",
        "grid: model None, dataset {'width': 384, 'height': 128}",
        "tiles: model None, dataset {'tile_size': 64, 'stride_x': 64, 'stride_y': 64}",
    ]


def test_statistics_must_have_one_value_per_channel() -> None:
    with pytest.raises(ValueError, match="image_std has 2 values but num_channels=3"):
        contract(image_std=(0.1, 0.2))


def test_the_contract_and_processing_import_without_training_or_model_code() -> None:
    # inference (issue 12) imports this module: it must not pull in the trainer or the model classes
    code = (
        "import sys, medicane_hf.processing_medicane; "
        "print(sorted(m for m in sys.modules if m.startswith(('medicane_hf.training', 'medicane_hf.modeling'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
