"""What a run writes and reads (issue 11, "Also hold"): a full disk keeps the last complete state; weights are
safetensors; nothing unpickles code; the paths an index records are never followed."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from medicane_hf.data.build import main as build_main
from medicane_hf.data.datasets import load_clip_datasets
from medicane_hf.training.checkpoints import is_complete
from medicane_hf.training.run import main
from tests.reliability.test_build_inputs import _archive, _build
from tests.runs import log_records, quick_flags

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]
# what transformers' Trainer itself writes with torch.save: training state, not weights
TRAINER_STATE_FILES = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "scaler.pt"}


def test_a_full_disk_while_saving_keeps_the_last_checkpoint_and_resumes(
    dataset_dir, tmp_path, monkeypatch, capfd
):
    """The optimizer state of checkpoint-4 cannot be written (no space): a one-paragraph error naming
    checkpoint-2, which stays complete; once there is space again the same command resumes from it."""
    import transformers.trainer

    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        if "checkpoint-4" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    out = tmp_path / "run"
    flags = quick_flags(dataset_dir, out)
    monkeypatch.setattr(transformers.trainer.torch, "save", full_disk)
    capfd.readouterr()
    assert main("detection", flags) == 1
    err = " ".join(capfd.readouterr().err.split())
    assert "DiskFullError: no space left while writing" in err and "checkpoint-2" in err
    assert "Traceback" not in err
    assert is_complete(out / "checkpoint-2") and not is_complete(out / "checkpoint-4")
    monkeypatch.setattr(transformers.trainer.torch, "save", real_save)
    assert main("detection", flags) == 0
    assert json.loads((out / "effective_settings.json").read_text())["resumed_from"].endswith("checkpoint-2")
    assert [r["step"] for r in log_records(out) if "loss" in r] == [1, 2, 3, 4]


def test_weights_are_written_as_safetensors_only(dataset_dir, tmp_path):
    """EMA weights went to ema_state.pt (a pickle); now every weight file is safetensors, and a resumed run
    with EMA reads them back."""
    out = tmp_path / "run"
    flags = [*quick_flags(dataset_dir, out), "--model_ema", "true", "--model_ema_decay", "0.5"]
    assert main("detection", flags) == 0
    pickles = [
        p for p in out.rglob("*") if p.suffix in (".pt", ".pth", ".bin") and p.name not in TRAINER_STATE_FILES
    ]
    assert pickles == []
    assert (out / "checkpoint-4" / "ema_model.safetensors").is_file()
    assert main("detection", [*flags, "--max_steps", "6"]) == 0  # resumes from checkpoint-4 with its EMA


def test_every_torch_load_is_weights_only():
    """Source audit: each torch.load in the package passes weights_only=True, except the converter's
    documented opt-in for one's own old files (--allow-unsafe-pickle, off by default)."""
    calls = []
    for path in sorted((REPO / "medicane_hf").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            # a call, not a message quoting one (an f-string line that shows the user how to inspect a file)
            if re.search(r"\btorch\.load\(", line) and not re.match(r"\s*f?[\"']", line):
                calls.append((path.relative_to(REPO).as_posix(), number, line))
    assert calls
    unsafe = [c for c in calls if "weights_only=True" not in c[2]]
    assert [(p, "weights_only=False" in line) for p, _, line in unsafe] == [
        ("medicane_hf/convert/loading.py", True)
    ]
    source = (REPO / "medicane_hf/convert/loading.py").read_text()
    assert (
        'if allow_unsafe_pickle:\n            return torch.load(path, map_location="cpu", weights_only=False)'
        in source
    )


def test_the_paths_an_index_records_are_never_followed(tmp_path):
    """dataset_info.json and the store's frames.csv record where the frames came from; loading a dataset reads
    only the files inside its folder, by their fixed names, so an index pointing elsewhere changes nothing."""
    frames, tracks = _archive(tmp_path)
    out = tmp_path / "out"
    assert build_main(_build(frames, tracks, out)) == 0
    before = load_clip_datasets(out, "detection", ("train",), train_max_shift=0)["train"][0]["pixel_values"]
    outside = "../../../../etc/passwd"
    info = json.loads((out / "dataset_info.json").read_text())
    info["out_dir"] = outside
    info["inputs"] = {"frames_dir": outside, "tracks": outside}
    (out / "dataset_info.json").write_text(json.dumps(info))
    listed = pd.read_csv(out / "store" / "frames.csv")
    listed["path"] = outside
    listed.to_csv(out / "store" / "frames.csv", index=False)
    for path in frames.iterdir():
        path.unlink()  # the source frames are gone too: nothing outside the folder is needed
    after = load_clip_datasets(out, "detection", ("train",), train_max_shift=0)["train"][0]["pixel_values"]
    assert torch.equal(before, after)
