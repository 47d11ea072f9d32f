"""Resume after kill -9, and one process vs two DDP processes on CPU (subprocesses; slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medicane_hf.training.callbacks import LOG_FILE
from medicane_hf.training.checkpoints import COMPLETE_MARKER, is_complete

REPO = Path(__file__).resolve().parents[2]

RUNNER = """
import os, signal, sys
from transformers import TrainerCallback
from medicane_hf.training.run import main

class KillAt(TrainerCallback):
    def __init__(self, step):
        self.step = step
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no atexit: as a killed job
        return control

kill_at = int(sys.argv[1])
sys.exit(main(sys.argv[2], sys.argv[3:], callbacks=[KillAt(kill_at)] if kill_at else None))
"""


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def flags(dataset_dir: Path, output_dir: Path, batch: int = 2) -> list[str]:
    return [
        "--dataset_dir", str(dataset_dir),
        "--output_dir", str(output_dir),
        "--max_steps", "8",
        "--per_device_train_batch_size", str(batch),
        "--per_device_eval_batch_size", "4",
        "--max_train_samples", "16",
        "--max_eval_samples", "9",
        "--eval_strategy", "steps", "--eval_steps", "4",
        "--save_strategy", "steps", "--save_steps", "2",
        "--logging_steps", "1",
        "--warmup_steps", "2",
        "--report_to", "none",
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
        "--seed", "7",
    ]  # fmt: skip


def run_stage(tmp_path: Path, kill_at: int, stage: str, args: list[str]) -> int:
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    result = subprocess.run(
        [sys.executable, str(runner), str(kill_at), stage, *args],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if kill_at == 0 and result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    return result.returncode


@pytest.mark.slow
def test_kill_minus_9_mid_epoch_then_resume_gives_the_same_weights(dataset_dir, tmp_path):
    # Specialization: random masks and random tiles, so the RNG state must resume exactly too.
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_stage(tmp_path, 0, "specialization", flags(dataset_dir, straight))

    assert (
        run_stage(tmp_path, 5, "specialization", flags(dataset_dir, killed)) == -9
    )  # step 5 of 8: mid-epoch
    assert is_complete(killed / "checkpoint-4") and not (killed / "final").exists()
    # A checkpoint the kill interrupted while it was being written must be skipped.
    shutil.copytree(killed / "checkpoint-4", killed / "checkpoint-6")
    (killed / "checkpoint-6" / COMPLETE_MARKER).unlink()
    (killed / "checkpoint-6" / "optimizer.pt").unlink()

    run_stage(tmp_path, 0, "specialization", flags(dataset_dir, killed))
    assert json.loads((killed / "effective_settings.json").read_text())["resumed_from"].endswith(
        "checkpoint-4"
    )
    expected = load_file(str(straight / "final" / "model.safetensors"))
    resumed = load_file(str(killed / "final" / "model.safetensors"))
    assert expected.keys() == resumed.keys()
    for key in expected:
        torch.testing.assert_close(resumed[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)


def losses(output_dir: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (output_dir / LOG_FILE).read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


@pytest.mark.slow
@pytest.mark.multiprocess
def test_one_process_and_two_ddp_processes_follow_the_same_loss_curve(dataset_dir, tmp_path):
    # Detection without drop path: the forward pass has no randomness, so only the data split differs.
    # Attention pooling: the recipe's heat-map head adds a centre loss averaged over the Medicane rows of each
    # process's batch, so 1 and 2 processes weigh it differently (see `centre_loss`); the plumbing under test
    # (data split, gradient averaging, evaluation gather) is the same for every head.
    extra = [
        "--drop_path_rate",
        "0",
        "--class_weights",
        "none",
        "--config_overrides",
        "detection_pooling=attention",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    run_stage(tmp_path, 0, "detection", flags(dataset_dir, one, batch=4) + extra)
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "accelerate_configs" / "cpu_ddp.yaml"),
        str(REPO / "scripts" / "train_classification.py"),
        *flags(dataset_dir, two, batch=2), *extra,
    ]  # fmt: skip
    result = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    settings = json.loads((two / "effective_settings.json").read_text())
    assert settings["world_size"] == 2 and settings["total_train_batch_size"] == 4
    a, b = losses(one), losses(two)
    assert sorted(a) == sorted(b) == list(range(1, 9))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=2e-3, abs=1e-4), step
    # Distributed evaluation counts every clip once (no padding duplicates): 9 clips on 2 processes.
    test = json.loads((two / "test_metrics.json").read_text())
    assert test["test_num_samples"] == 9
