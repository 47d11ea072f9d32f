"""The saved video processor is the one path from frames to pixel_values (`to_pixel_values`), and `DropPath` draws
what timm's did."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medicane_hf.modeling_medicane import DropPath
from medicane_hf.processing_medicane import DataContract, frames_to_pixel_values, to_pixel_values
from medicane_hf.video_processing_medicane import MedicaneVideoProcessor
from tests.hub.folders import clips, tiny_config


def test_processor_equals_to_pixel_values_and_frames_path() -> None:
    config = tiny_config(
        grid={"width": 128, "height": 64}, tiles={"tile_size": 64, "stride_x": 64, "stride_y": 64}
    )
    processor = MedicaneVideoProcessor.from_model_config(config)
    video = clips(config, batch=3)
    expected = to_pixel_values(video, config.image_mean, config.image_std)
    for given in (video, list(video), torch.from_numpy(video)):
        assert torch.equal(processor(given)["pixel_values"], expected)
    assert torch.equal(processor(video[0])["pixel_values"], expected[:1])  # one clip -> a batch of one
    assert isinstance(processor(video, return_tensors="np")["pixel_values"], np.ndarray)
    # full frames cut into tiles by the data contract, then the processor: the same as frames_to_pixel_values
    frames = np.random.default_rng(1).integers(0, 256, (16, 64, 128, 3), dtype=np.uint8)
    tiles, offsets = frames_to_pixel_values(frames, DataContract.from_config(config))
    assert offsets == [(0, 0), (64, 0)]
    cut = np.stack([frames[:, y : y + 64, x : x + 64] for x, y in offsets])
    assert torch.equal(processor(cut)["pixel_values"], tiles)


def test_processor_refuses_another_shape_in_one_line() -> None:
    processor = MedicaneVideoProcessor.from_model_config(tiny_config())
    with pytest.raises(ValueError) as caught:
        processor(np.zeros((8, 64, 60, 3), dtype=np.uint8))
    message = str(caught.value)
    assert "\n" not in message and "frames 8 instead of 16" in message and "width 60 instead of 64" in message
    with pytest.raises(ValueError, match="uint8"):
        processor(np.zeros((16, 64, 64, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="takes no options"):
        processor(np.zeros((16, 64, 64, 3), dtype=np.uint8), do_resize=True)


def test_drop_path_draws_what_timm_drew() -> None:
    timm_layers = pytest.importorskip("timm.layers")
    x = torch.randn(64, 5, 8)
    ours, theirs = DropPath(0.3).train(), timm_layers.DropPath(0.3).train()
    torch.manual_seed(7)
    a = ours(x)
    torch.manual_seed(7)
    b = theirs(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(ours.eval()(x), x) and repr(ours) == repr(theirs)
