"""``predict-track --follow`` against a folder that receives frames over time, and a restart after a kill: the
same files as the batch run."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.tracking.command import main
from medicane_hf.tracking.tables import read_detections
from tests.tracking.hours import END, HOURS, START
from tests.tracking.hours import run_argv as argv

pytestmark = pytest.mark.slow

FLAGS = ("--threshold", "0", "--min-duration-hours", "2")  # as the batch run (conftest.batch_run)


def period_frames(dataset_dir: Path) -> list[Path]:
    """The frames the hours START..END need (from 75 minutes before START), in time order."""
    first = pd.Timestamp(START) - pd.Timedelta(minutes=75)
    paths = sorted((dataset_dir / "source" / "frames").rglob("airmass_rgb_20231017_*.png"))
    times = [pd.Timestamp(datetime.strptime(p.name, "airmass_rgb_%Y%m%d_%H%M.png")) for p in paths]
    return [p for p, t in zip(paths, times) if first <= t <= pd.Timestamp(END)]


def copy_in(paths: list[Path], folder: Path, pause: float) -> None:
    """What a receiving station does: each frame written under a temporary name, then renamed into place."""
    for path in paths:
        temporary = folder / f".{path.name}.part"
        shutil.copy(path, temporary)
        os.replace(temporary, folder / path.name)
        time.sleep(pause)


def same_files(a: Path, b: Path) -> None:
    """The files of two runs agree: every table cell (floats to 1e-6: batches of other sizes), and the summary
    but for where the frames and their grid were and how long it took."""
    for name in ("hours.csv", "tracks.csv"):
        left, right = pd.read_csv(a / name), pd.read_csv(b / name)
        pd.testing.assert_frame_equal(left, right, check_exact=False, atol=1e-6)
    left, right = read_detections(a / "detections.csv"), read_detections(b / "detections.csv")
    pd.testing.assert_frame_equal(left, right, check_exact=False, atol=1e-6)
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (a, b)]
    for summary in summaries:
        for key in ("frames", "grid", "timing"):
            summary.pop(key)
    assert_close(summaries[0], summaries[1])


def assert_close(left, right) -> None:
    """Equal JSON values, floats to a relative 1e-6 (what one forward batch size or another changes is below)."""
    if isinstance(left, dict):
        assert left.keys() == right.keys()
        for key in left:
            assert_close(left[key], right[key])
    elif isinstance(left, list):
        assert len(left) == len(right)
        for a, b in zip(left, right):
            assert_close(a, b)
    elif isinstance(left, float):
        assert right == pytest.approx(left, rel=1e-6)
    else:
        assert left == right


def test_follow_on_a_folder_receiving_frames_gives_the_batch_files(
    batch_run, tiny_models, dataset_dir, tmp_path
) -> None:
    frames = tmp_path / "incoming"
    frames.mkdir()
    sender = threading.Thread(target=copy_in, args=(period_frames(dataset_dir), frames, 0.02))
    sender.start()
    tracks = str(dataset_dir / "source" / "tracks.csv")
    out = tmp_path / "live"
    more = ("--tracks", tracks, *FLAGS, "--follow", "--poll-seconds", "0.2", "--idle-exit-seconds", "20")
    assert main(argv(tiny_models, frames, out, *more)) == 0
    sender.join()
    assert list(pd.read_csv(out / "hours.csv", parse_dates=["time"])["time"]) == HOURS
    same_files(batch_run, out)
    assert (out / "map.png").is_file()


def test_a_restart_resumes_without_redoing_hours(
    batch_run, tiny_models, dataset_dir, tmp_path, capsys
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    copy_in(period_frames(dataset_dir), frames, 0.0)
    tracks = str(dataset_dir / "source" / "tracks.csv")
    out = tmp_path / "live"
    common = ("--tracks", tracks, *FLAGS, "--follow", "--poll-seconds", "0.1")
    first = argv(tiny_models, frames, out, *common)
    first[first.index("--end") + 1] = "2023-10-17 15:00"  # stopped after three hours
    assert main(first) == 0
    assert len(pd.read_csv(out / "hours.csv")) == 3
    # killed while writing hour 16:00: its detection is in detections.csv, but hours.csv does not list it
    detections = pd.read_csv(out / "detections.csv")
    half = detections.iloc[[0]].assign(time="2023-10-17 16:00:00", detection_id="2023101716-r0c0")
    pd.concat([detections, half]).to_csv(out / "detections.csv", index=False)
    capsys.readouterr()
    assert main(argv(tiny_models, frames, out, *common)) == 0
    printed = capsys.readouterr().out
    assert "resuming after 2023-10-17 15:00:00 (3 hours done)" in printed
    same_files(batch_run, out)
    assert np.array_equal(pd.read_csv(out / "hours.csv")["tiles"], [12] * len(HOURS))
