"""Trainer callbacks: the JSON-lines log and the weight-decay schedule."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from medicane_hf.training.optim import set_weight_decay

LOG_FILE = "log.jsonl"


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


class JsonlLogCallback(TrainerCallback):
    """Append every Trainer log record (train loss, lr, evaluations) to `<output_dir>/log.jsonl`.

    Each line is one JSON object with `step` (optimizer steps), `epoch` and the logged values;
    evaluation records carry `eval_*` (validation) or `test_*` keys. Written by the main process only.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs
    ):  # noqa: D102
        if not state.is_world_process_zero or not logs:
            return control
        record = {"step": state.global_step, "epoch": state.epoch}
        record.update({k: _finite_or_none(v) for k, v in logs.items() if isinstance(v, (int, float, str))})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        return control


class WeightDecayScheduleCallback(TrainerCallback):
    """Cosine weight decay from `start` to `end` over the run, set on the decayed groups before each step."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):  # noqa: D102
        if optimizer is not None:
            set_weight_decay(optimizer.param_groups, self.start, self.end, state.global_step, state.max_steps)
        return control

    def on_log(self, args, state, control, logs=None, optimizer=None, **kwargs):  # noqa: D102
        # The value in use, beside Trainer's learning rate in the same record.
        if logs is not None and "loss" in logs and optimizer is not None:
            decayed = [g["weight_decay"] for g in optimizer.param_groups if g.get("base_weight_decay", 0) > 0]
            if decayed:
                logs["weight_decay"] = decayed[0]
        return control
