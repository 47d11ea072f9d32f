"""medicane-hf: find and track Medicanes in Meteosat SEVIRI Airmass RGB video with VideoMAE models."""

from __future__ import annotations

from medicane_hf import _auto
from medicane_hf._lazy import lazy_getattr

__version__ = "0.1.0"

# Heavy imports (torch, transformers) only when a model class is asked for.
_LAZY = {
    "MedicaneVideoMAEConfig": "medicane_hf.configuration_medicane",
    "MedicaneVideoMAEModel": "medicane_hf.modeling_medicane",
    "MedicaneVideoMAEForPreTraining": "medicane_hf.modeling_medicane",
    "MedicaneVideoMAEForDetection": "medicane_hf.modeling_medicane",
    "MedicaneVideoMAEForTracking": "medicane_hf.modeling_medicane",
    "MedicaneVideoProcessor": "medicane_hf.video_processing_medicane",
    "SeviriGrid": "medicane_hf.data.geo",
}

__all__ = ["__version__", *_LAZY]

__getattr__ = lazy_getattr(__name__, _LAZY)

# transformers' Auto classes (AutoConfig, AutoModel, ..., AutoVideoProcessor) know this package's models from here
# on, without importing transformers now: the classes are registered when an Auto class first asks for one.
_auto.install()
