"""Two real processes (DDP on CPU) predict every clip of an odd-sized split exactly once, with the 1-process
metrics: the padding a distributed sampler adds to even out the last batch is never counted (slow)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "infer_classification.py"


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_predict_every_clip_once_with_the_one_process_metrics(
    models, dataset_dir, tmp_path
) -> None:
    # 13 clips, 4 per batch and process: 2 processes x 2 steps = 16 slots, so 3 are padding
    flags = ["--model_name_or_path", str(models["detection"]), "--dataset_dir", str(dataset_dir), "--split", "test",
             "--max_clips", "13", "--batch_size", "4", "--num_workers", "1", "--save_logits", "--no_progress"]  # fmt: skip
    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run(
        [sys.executable, str(SCRIPT), *flags, "--output_dir", str(one)],
        env=env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--main_process_port", str(free_port()), str(SCRIPT), *flags, "--output_dir", str(two)]  # fmt: skip
    double = subprocess.run(launch, env=env(), capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]

    start = json.loads((two / "log.jsonl").read_text().splitlines()[0])
    assert start["processes"] == 2 and start["clips"] == 13
    a, b = pd.read_parquet(one / "predictions.parquet"), pd.read_parquet(two / "predictions.parquet")
    assert len(b) == 13 and b["clip_id"].is_unique and b["clip_id"].tolist() == a["clip_id"].tolist()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5)
    np.testing.assert_allclose(np.load(two / "logits.npy"), np.load(one / "logits.npy"), rtol=1e-5, atol=1e-6)
    ma, mb = (json.loads((folder / "metrics.json").read_text()) for folder in (one, two))
    assert mb["num_samples"] == mb["num_clips"] == 13
    assert ma.keys() == mb.keys()
    for key, value in ma.items():
        assert mb[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value), key
    # one array file per run: no per-rank or per-batch shard left
    assert sorted(p.name for p in two.iterdir() if p.suffix == ".npy") == ["logits.npy"]
    assert not [p.name for p in two.iterdir() if p.name.startswith(".")]
    # one closing summary, from the main process only
    assert double.stdout.count("detection inference: 13 clips") == 1 and "2 process(es)" in double.stdout
