"""kill -9 while a checkpoint is written and while the model is evaluated: the rerun resumes and ends with the
weights of an uninterrupted run, and its log holds one record per step (issue 11, "Also hold"; subprocesses,
slow). tests/training/test_training_distributed.py holds a kill between two steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.runs import log_records

RUNNER = """
import os, signal, sys
from transformers import TrainerCallback
import medicane_hf.training.trainer as trainer_module
from medicane_hf.training.run import main

mode, at = sys.argv[1], int(sys.argv[2])
callbacks = None
if mode == "write":  # every file of checkpoint-<at> written, the completeness marker not yet
    real_mark = trainer_module.mark_complete
    def mark(folder, step):
        if step == at:
            os.kill(os.getpid(), signal.SIGKILL)
        real_mark(folder, step)
    trainer_module.mark_complete = mark
elif mode == "eval":  # the first evaluation batch at step <at>, before that step's checkpoint
    class KillInEval(TrainerCallback):
        def on_prediction_step(self, args, state, control, **kwargs):
            if state.global_step == at:
                os.kill(os.getpid(), signal.SIGKILL)
    callbacks = [KillInEval()]
sys.exit(main(sys.argv[3], sys.argv[4:], callbacks=callbacks))
"""


def _flags(dataset_dir: Path, output_dir: Path) -> list[str]:
    return [
        "--dataset_dir", str(dataset_dir), "--output_dir", str(output_dir),
        "--max_steps", "8", "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "4",
        "--max_train_samples", "16", "--max_eval_samples", "8",
        "--eval_strategy", "steps", "--eval_steps", "4", "--save_strategy", "steps", "--save_steps", "2",
        "--logging_steps", "1", "--warmup_steps", "2", "--report_to", "none",
        "--dataloader_num_workers", "0", "--disable_tqdm", "true", "--seed", "7",
    ]  # fmt: skip


def _run(tmp_path: Path, mode: str, at: int, output_dir: Path, dataset_dir: Path) -> int:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(runner), mode, str(at), "specialization", *_flags(dataset_dir, output_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if mode == "none" and result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    return result.returncode


@pytest.mark.slow
def test_kills_while_saving_and_while_evaluating_then_resume_gives_the_same_weights(dataset_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(tmp_path, "none", 0, straight, dataset_dir)

    assert _run(tmp_path, "write", 4, killed, dataset_dir) == -9
    assert (killed / "checkpoint-4" / "model.safetensors").is_file()  # written, but never marked complete
    assert _run(tmp_path, "eval", 8, killed, dataset_dir) == -9  # resumed from checkpoint-2, killed in eval
    assert json.loads((killed / "effective_settings.json").read_text())["resumed_from"].endswith(
        "checkpoint-2"
    )
    assert _run(tmp_path, "none", 0, killed, dataset_dir) == 0
    assert json.loads((killed / "effective_settings.json").read_text())["resumed_from"].endswith(
        "checkpoint-6"
    )

    expected = load_file(str(straight / "final" / "model.safetensors"))
    resumed = load_file(str(killed / "final" / "model.safetensors"))
    assert expected.keys() == resumed.keys()
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)
    records = log_records(killed)
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))
    assert [r["step"] for r in records if "eval_loss" in r] == [4, 8]
    assert len([r for r in records if "test_loss" in r]) == 1
