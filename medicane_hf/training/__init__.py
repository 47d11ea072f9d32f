"""Training: specialization (MAE), detection and tracking through one Trainer (see docs/training.md).

- ``main(stage, argv)`` (in ``run``): the entry point of ``scripts/train_*.py`` (arguments, data, model, train,
  test, figures);
- ``tasks.TASKS``: what differs between the stages, declared once each;
- ``trainer.MedicaneTrainer``: ``transformers.Trainer`` plus the recipe (layer decay, EMA, NaN stop,
  best model, complete checkpoints);
- ``arguments``, ``models``, ``optim``, ``callbacks``, ``checkpoints``, ``seeding``: the parts.

Imports are lazy so that ``import medicane_hf.training`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "main": "medicane_hf.training.run",
    "TASKS": "medicane_hf.training.tasks",
    "TaskSpec": "medicane_hf.training.tasks",
    "MedicaneTrainer": "medicane_hf.training.trainer",
    "NonFiniteLossError": "medicane_hf.training.trainer",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medicane_hf.training' has no attribute {name!r}")
