"""Training: specialization (MAE), detection and tracking through one Trainer (see docs/training.md).

- ``main(stage, argv)`` (in ``run``): the entry point of ``scripts/train_*.py`` (arguments, data, model, train,
  test, figures);
- ``medicane_hf.tasks.TASKS`` (re-exported here): the stage registry, read by every layer;
- ``trainer.MedicaneTrainer``: ``transformers.Trainer`` plus the recipe (layer decay, EMA, NaN stop,
  best model, complete checkpoints);
- ``arguments``, ``class_weights``, ``models``, ``adapters``, ``optim``, ``callbacks``, ``checkpoints``, ``seeding``:
  the parts.

Imports are lazy so that ``import medicane_hf.training`` stays cheap; ``script_main`` answers ``--help`` with
the argument module alone.
"""

from __future__ import annotations

import sys

from medicane_hf._lazy import lazy_getattr


def script_main(stage: str, argv: list[str] | None = None) -> int:
    """The entry point of ``scripts/train_<stage>.py``; returns the exit code.

    ``-h`` / ``--help`` is answered by the argument parser alone, before the data, model and Trainer modules
    are imported (about half the time: torch and TrainingArguments remain); anything else runs ``run.main``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        from medicane_hf.tasks import get_task
        from medicane_hf.training.arguments import parse_stage_arguments

        parse_stage_arguments(get_task(stage), argv)  # prints the help and exits
        return 0
    from medicane_hf.training.run import main

    return main(stage, argv)


_LAZY = {
    "main": "medicane_hf.training.run",
    "TASKS": "medicane_hf.tasks",
    "TaskSpec": "medicane_hf.tasks",
    "MedicaneTrainer": "medicane_hf.training.trainer",
    "NonFiniteLossError": "medicane_hf.training.trainer",
}

__all__ = [*_LAZY, "script_main"]

__getattr__ = lazy_getattr(__name__, _LAZY)
