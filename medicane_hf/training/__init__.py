"""Training: specialization (MAE), detection and tracking through one Trainer (see docs/training.md).

- ``main(stage, argv)`` (in ``run``): the entry point of ``scripts/train_*.py`` (arguments, data, model, train,
  test, figures);
- ``medicane_hf.tasks.TASKS`` (re-exported here): the stage registry, read by every layer;
- ``trainer.MedicaneTrainer``: ``transformers.Trainer`` plus the recipe (layer decay, EMA, NaN stop,
  best model, complete checkpoints);
- ``arguments``, ``class_weights``, ``models``, ``optim``, ``callbacks``, ``checkpoints``, ``seeding``: the parts.

Imports are lazy so that ``import medicane_hf.training`` stays cheap.
"""

from __future__ import annotations

from medicane_hf._lazy import lazy_getattr

_LAZY = {
    "main": "medicane_hf.training.run",
    "TASKS": "medicane_hf.tasks",
    "TaskSpec": "medicane_hf.tasks",
    "MedicaneTrainer": "medicane_hf.training.trainer",
    "NonFiniteLossError": "medicane_hf.training.trainer",
}

__all__ = list(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
