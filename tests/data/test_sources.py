"""Frame sources: the store packs from any `FrameSource`, not only from image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.frames import FrameStore
from medicane_hf.data.sources import FrameFormat, FrameReadError, FrameSource, PngFolderSource

PACKAGE = Path(__file__).resolve().parents[2] / "medicane_hf"


class ArraySource(FrameSource):
    """Frames held in memory (what a Zarr / NetCDF reader would hand over); frame `broken` cannot be read."""

    def __init__(self, frames: np.ndarray, start: str, broken: int | None = None) -> None:
        self.frames = frames  # [N, H, W, C] uint8
        self.broken = broken
        self._times = pd.date_range(start, periods=len(frames), freq="5min").to_numpy(dtype="datetime64[ns]")

    @property
    def times(self) -> np.ndarray:
        return self._times

    @property
    def locations(self) -> list[str]:
        return [f"memory.nc#t={i}" for i in range(len(self.frames))]

    def frame_format(self) -> FrameFormat:
        _, height, width, channels = self.frames.shape
        return FrameFormat(width, height, channels, "bands", self.locations[0])

    def read_frame(self, index: int, channels: int) -> np.ndarray:
        if index == self.broken:
            raise FrameReadError("unreadable: a hole in the archive")
        return self.frames[index, :, :, :channels]


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_the_store_packs_from_a_source_that_is_not_files(tmp_path: Path, compression: str | None) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(1, 256, size=(5, 20, 30, 2), dtype=np.uint8)
    store = FrameStore.pack(
        ArraySource(frames, "2023-10-01 00:00", broken=3),
        tmp_path / "store",
        compression=compression,
        progress=False,
    )
    assert (len(store), store.height, store.width, store.channels) == (5, 20, 30, 2)
    assert store.valid.tolist() == [True, True, True, False, True]
    for i in (0, 1, 2, 4):
        np.testing.assert_array_equal(store.read_frame(i), frames[i])
    assert not store.read_frame(3).any()
    np.testing.assert_array_equal(store.read_clip([0, 4], 5, 7, 10, 12), frames[[0, 4], 5:15, 7:19])
    provenance = pd.read_csv(store.path / "frames.csv")
    assert provenance["path"].tolist()[3] == "memory.nc#t=3"


def test_png_source_validates_its_table() -> None:
    with pytest.raises(ValueError, match="frames table is empty"):
        PngFolderSource(pd.DataFrame({"time": [], "path": []}))
    table = pd.DataFrame({"time": ["2023-10-01 00:05", "2023-10-01 00:00"], "path": ["b.png", "a.png"]})
    source = PngFolderSource(table)
    assert source.locations == ["a.png", "b.png"]  # sorted by time
    assert source.times[0] == np.datetime64("2023-10-01T00:00", "ns")


def test_the_data_layer_reads_images_with_pil_in_one_module() -> None:
    """A new source format is a new module under data/sources/, not an edit of the store or the scan."""
    readers = sorted(
        p.relative_to(PACKAGE).as_posix()
        for p in (PACKAGE / "data").rglob("*.py")
        if "from PIL import" in p.read_text()
        and "synthetic" not in p.parts  # the synthetic basin writes PNGs
    )
    assert readers == ["data/sources/png.py"]
