"""Restarting a run in its own output folder: every record stays true (issue 11, items 1, 2 and 7).

Each test copies one finished 4-step detection run (`finished_detection`, ~4 s) and reruns it as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from medicane_hf.tasks import TASKS
from medicane_hf.training.arguments import parse_stage_arguments
from medicane_hf.training.optim import scaled_learning_rate
from medicane_hf.training.run import main
from tests.runs import copy_run, log_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _test_records(output_dir: Path) -> list[dict]:
    return [r for r in log_records(output_dir) if "test_loss" in r]


def test_changed_arguments_do_not_resume_the_old_run(finished_detection, tmp_path, capfd):
    """Item 1: another model and learning rate in the folder of an unfinished run: refused, with what differs and
    the ways on; nothing in the folder changes (the records would claim values the resumed run never used)."""
    out, flags = copy_run(finished_detection, tmp_path / "run")
    arguments_before = (out / "training_arguments.yaml").read_bytes()
    log_before = (out / "log.jsonl").read_bytes()
    other_model = str(finished_detection[0] / "best")
    changed = [*flags, "--max_steps", "6", "--learning_rate", "0.01", "--model_name_or_path", other_model]
    capfd.readouterr()
    assert main("detection", changed) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "checkpoint-4" in err and "other arguments" in err
    assert "learning_rate: checkpoint 0.0005, now 0.01" in err
    assert f"model_name_or_path: checkpoint None, now {other_model}" in err
    assert "--output_dir" in err  # start over elsewhere
    assert str(out / "checkpoint-4" / "training_arguments.yaml") in err  # or resume as it was
    assert (out / "training_arguments.yaml").read_bytes() == arguments_before
    assert (out / "log.jsonl").read_bytes() == log_before
    assert not (out / "checkpoint-6").exists()


def test_a_longer_run_with_the_same_arguments_still_resumes(finished_detection, tmp_path):
    """What item 1 must keep: the same arguments and a longer schedule continue from the newest checkpoint."""
    out, flags = copy_run(finished_detection, tmp_path / "run")
    assert main("detection", [*flags, "--max_steps", "6"]) == 0
    settings = json.loads((out / "effective_settings.json").read_text())
    assert settings["resumed_from"].endswith("checkpoint-4")
    assert [r["step"] for r in log_records(out) if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_rerunning_a_finished_run_trains_nothing_and_says_where_its_results_are(
    finished_detection, tmp_path, capfd
):
    """Item 2: the same command again: it says the run is finished and where; the log gets no second test."""
    out, flags = copy_run(finished_detection, tmp_path / "run")
    log_before = (out / "log.jsonl").read_bytes()
    capfd.readouterr()
    assert main("detection", flags) == 0
    text = " ".join(capfd.readouterr().out.split())
    assert "already finished" in text and str((out / "test_metrics.json").resolve()) in text
    assert (out / "log.jsonl").read_bytes() == log_before
    assert len(_test_records(out)) == 1


def test_the_saved_arguments_rerun_with_the_learning_rate_the_run_used(finished_detection):
    """training_arguments.yaml says "rerun with: train_<stage>.py THIS_FILE": with --scale_lr it held the scaled
    rate, which a rerun scaled again (0.0005 x 2/256 became 3.9e-6, then 3e-8)."""
    out, _ = finished_detection
    settings = json.loads((out / "effective_settings.json").read_text())
    again = parse_stage_arguments(TASKS["detection"], [str(out / "training_arguments.yaml")])
    assert again.recipe.scale_lr
    rerun_rate = scaled_learning_rate(again.training.learning_rate, settings["total_train_batch_size"])
    assert rerun_rate == pytest.approx(settings["learning_rate"])
    assert yaml.safe_load((out / "training_arguments.yaml").read_text())["learning_rate"] == 0.0005


def test_a_corrupt_newest_checkpoint_is_skipped_by_name(finished_detection, tmp_path, capfd):
    """Item 7: a truncated model.safetensors in checkpoint-4 no longer blocks every restart: checkpoint-2 is used,
    checkpoint-4 is named with the reason and moved aside (kept, out of Trainer's way)."""
    out, flags = copy_run(finished_detection, tmp_path / "run")
    weights = out / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    capfd.readouterr()
    assert main("detection", [*flags, "--max_steps", "6"]) == 0
    err = " ".join(capfd.readouterr().err.split())
    assert "checkpoint-4" in err and "model.safetensors" in err and "truncated" in err
    settings = json.loads((out / "effective_settings.json").read_text())
    assert settings["resumed_from"].endswith("checkpoint-2")
    assert (out / "corrupt-checkpoint-4" / "model.safetensors").is_file()
    # steps 3 and 4 were trained again from checkpoint-2: the log keeps one record of each
    assert [r["step"] for r in log_records(out) if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_checkpoint_verification_names_the_bad_file(finished_detection, tmp_path):
    """A checkpoint is checked before resuming: every file the marker lists, at its recorded size, readable."""
    from medicane_hf.training.checkpoints import checkpoint_problem

    out, _ = copy_run(finished_detection, tmp_path / "run")
    good = out / "checkpoint-2"
    assert checkpoint_problem(good) is None
    optimizer = out / "checkpoint-4" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:1000])
    assert "optimizer.pt" in checkpoint_problem(out / "checkpoint-4")
    (good / "trainer_state.json").write_text("{not json")
    assert "trainer_state.json" in checkpoint_problem(good)


def test_a_run_killed_after_its_last_records_resumes_without_duplicates(finished_detection, tmp_path):
    """Kill -9 after step 4 was logged and tested but before checkpoint-4 was saved: the rerun resumes from
    checkpoint-2 and the log keeps one record per step and one test evaluation."""
    import shutil

    out, flags = copy_run(finished_detection, tmp_path / "run")
    for name in ("checkpoint-4", "final"):
        shutil.rmtree(out / name)
    (out / "test_metrics.json").unlink()
    assert main("detection", flags) == 0
    assert json.loads((out / "effective_settings.json").read_text())["resumed_from"].endswith("checkpoint-2")
    records = log_records(out)
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in records if "eval_loss" in r] == [2, 4]
    assert len(_test_records(out)) == 1


def test_another_total_batch_is_a_difference_too(finished_detection, tmp_path, capfd):
    """The same arguments on another number of processes give another total batch (and, with --scale_lr, another
    learning rate) that the resumed optimizer and scheduler would not take. Simulated by the checkpoint's record
    of a 2-process run."""
    from medicane_hf.training.checkpoints import COMPLETE_MARKER

    out, flags = copy_run(finished_detection, tmp_path / "run")
    record = out / "checkpoint-4" / "effective_settings.json"
    settings = json.loads(record.read_text())
    settings.update(total_train_batch_size=4, learning_rate=settings["learning_rate"] * 2)
    record.write_text(json.dumps(settings))
    # as written by that run: the marker's recorded size too (else the check skips the checkpoint as changed)
    marker = json.loads((out / "checkpoint-4" / COMPLETE_MARKER).read_text())
    marker["sizes"]["effective_settings.json"] = record.stat().st_size
    (out / "checkpoint-4" / COMPLETE_MARKER).write_text(json.dumps(marker))
    capfd.readouterr()
    assert main("detection", [*flags, "--max_steps", "6"]) == 2
    err = " ".join(capfd.readouterr().err.split())
    assert "total_train_batch_size (derived" in err and "checkpoint 4, now 2" in err


def test_a_fresh_start_keeps_an_earlier_attempts_log_aside(tmp_path):
    """No checkpoint to continue (the earlier attempt stopped before its first): its records would mix with the new
    run's in one log and one set of curves."""
    from medicane_hf.training.resume import ResumeDecision, apply_decision

    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    apply_decision(ResumeDecision(), tmp_path)
    assert not (tmp_path / "log.jsonl").exists()
    assert (tmp_path / "log.earlier-1.jsonl").read_text() == '{"step": 1, "loss": 9.0}\n'
