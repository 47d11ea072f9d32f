"""Fixtures of the reliability probes (docs/RELIABILITY.md): short runs on the embedded default dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from medicane_hf.training.run import main
from tests.runs import quick_flags


@pytest.fixture(scope="module")
def finished_detection(
    dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None
) -> tuple[Path, list[str]]:
    """A finished 4-step detection run (checkpoints 2 and 4, test metrics) and the flags it ran with.

    Tests copy it (`copy_run`) before changing anything in it."""
    output_dir = tmp_path_factory.mktemp("finished") / "run"
    flags = quick_flags(dataset_dir, output_dir)
    assert main("detection", flags) == 0
    return output_dir, flags
