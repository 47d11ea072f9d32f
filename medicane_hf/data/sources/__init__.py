"""Frame sources: where the store's frames come from (PNG folders now; Zarr / NetCDF later, one module each).

base.py  FrameSource (times, locations, frame format, read a frame as uint8 [H, W, C]), FrameReadError
png.py   PngFolderSource: one image file per time; every PIL call of the data layer
"""

from medicane_hf.data.sources.base import FrameFormat, FrameReadError, FrameSource
from medicane_hf.data.sources.png import PngFolderSource

__all__ = ["FrameFormat", "FrameReadError", "FrameSource", "PngFolderSource"]
