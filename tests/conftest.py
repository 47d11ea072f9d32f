"""Shared fixtures. `shared_dir` is the project's ../shared/data folder (real track files, reference outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Subprocesses (scripts, accelerate launch) import this checkout too, not another one an editable install names.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared/data folder; skips where it is absent (a user's clone), fails in CI."""
    if not SHARED_DATA.is_dir():
        message = f"{SHARED_DATA} is not there: real track files and reference outputs are only beside the project's own checkout"
        if os.environ.get("MEDICANE_REQUIRE_SHARED") == "1":
            pytest.fail(message + " (MEDICANE_REQUIRE_SHARED=1)")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for tiny models: on a small shared machine more threads fight each other
    (10x slower seen). Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dataset_dir() -> Path:
    """The embedded default dataset (synthetic basin, built once per machine in the cache)."""
    from medicane_hf.data.synthetic.default import ensure_default_dataset

    return Path(ensure_default_dataset())
