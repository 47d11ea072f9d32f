"""A clean error stays visible under `accelerate launch` (issue 11, item 11; subprocesses, slow).

accelerate's single-process launcher raises CalledProcessError after a script exits non-zero, and prints that
traceback below the script's message (unless given -q); its multi-process launcher (torchrun) closes with a
summary of the failed processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _launch(tmp_path: Path, config: str, *launcher_flags: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "accelerate.commands.launch", *launcher_flags,
        "--config_file", str(REPO / "accelerate_configs" / config),
        str(REPO / "scripts" / "train_classification.py"),
        "--max_steps", "0", "--output_dir", str(tmp_path / "run"),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_one_process_points_back_at_the_error_above_accelerates_traceback(tmp_path):
    result = _launch(tmp_path, "cpu.yaml")
    assert result.returncode != 0
    err = result.stderr
    message = err.index("--max_steps 0: trains nothing")
    pointer = err.index("(The ArgumentValueError above stopped the run.")
    assert message < pointer < err.index("CalledProcessError: Command")
    quiet = _launch(tmp_path, "cpu.yaml", "-q")
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert "--max_steps 0: trains nothing" in quiet.stderr


@pytest.mark.slow
@pytest.mark.multiprocess
def test_several_processes_name_the_error_as_the_root_cause(tmp_path):
    """Without the error file torchrun's summary said "error_file: <N/A>", the message lost above it."""
    result = _launch(tmp_path, "cpu_ddp.yaml")
    assert result.returncode != 0
    summary = result.stderr[result.stderr.rindex("Root Cause") :]
    assert "--max_steps 0: trains nothing" in summary
