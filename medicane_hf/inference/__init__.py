"""Batch inference: a trained detection or tracking model on a build-dataset split or a folder of frames.

One job per module:

- ``inputs``: what is predicted (a split of a build-dataset folder, or frames packed with ``--no-tracks``) and
  the check of the model's data contract against it;
- ``loading``: the stage's model from a folder or Hub id, or one clear line saying why not;
- ``predict``: the distributed loop (Accelerate, ``gather_for_metrics``, every clip exactly once, in order);
- ``outputs``: the run folder (table, arrays, log; staged, never overwriting results unasked);
- ``metrics``: the stage's metrics and figures when the input has labels;
- ``command``: ``main(stage, argv)``, behind ``scripts/infer_classification.py`` and ``scripts/infer_tracking.py``.

What differs between stages (table columns, figures, the contract fields checked) is the stage's
``medicane_hf.tasks.InferenceSpec``. Imports are lazy so that ``import medicane_hf.inference`` stays cheap.
"""

from __future__ import annotations

from medicane_hf._lazy import lazy_getattr

_LAZY = {
    "main": "medicane_hf.inference.command",
    "run": "medicane_hf.inference.command",
    "build_parser": "medicane_hf.inference.command",
    "parse_arguments": "medicane_hf.inference.command",
    "InferenceInput": "medicane_hf.inference.inputs",
    "InputError": "medicane_hf.inference.inputs",
    "dataset_input": "medicane_hf.inference.inputs",
    "build_frames_dataset": "medicane_hf.inference.inputs",
    "ModelFolderError": "medicane_hf.inference.loading",
    "load_model": "medicane_hf.inference.loading",
    "Predictions": "medicane_hf.inference.predict",
    "predict": "medicane_hf.inference.predict",
    "ResultsExistError": "medicane_hf.inference.outputs",
}

__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
