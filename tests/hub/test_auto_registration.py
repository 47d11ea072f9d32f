"""A bare ``import medicane_hf`` is enough for every Auto class, and stays cheap (neither torch nor transformers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.hub.folders import save_heads

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOAD_EVERY_AUTO_CLASS = textwrap.dedent(
    """
    import json, sys
    import medicane_hf
    cheap = "torch" not in sys.modules and "transformers" not in sys.modules
    import numpy as np
    from transformers import (AutoConfig, AutoModel, AutoModelForKeypointDetection, AutoModelForPreTraining,
                              AutoModelForVideoClassification, AutoVideoProcessor)
    folders = json.loads(sys.argv[1])
    kinds = {}
    for name, folder in folders.items():
        # no trust_remote_code: the package's own classes, registered by `import medicane_hf`
        classes = [AutoConfig.from_pretrained(folder), AutoVideoProcessor.from_pretrained(folder)]
        for auto in (AutoModel, AutoModelForPreTraining, AutoModelForVideoClassification, AutoModelForKeypointDetection):
            classes.append(auto.from_pretrained(folder))
        kinds[name] = [f"{type(c).__module__}.{type(c).__name__}" for c in classes]
    print(json.dumps({"cheap": cheap, "kinds": kinds}))
    """
)


def test_bare_import_registers_every_auto_class(tmp_path: Path) -> None:
    """In a fresh process: `import medicane_hf` first (transformers' auto modules are hooked when they load)."""
    folders = save_heads(tmp_path)
    arguments = json.dumps({name: str(folder) for name, folder in folders.items() if name != "pretraining"})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run([sys.executable, "-c", LOAD_EVERY_AUTO_CLASS, arguments], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cheap"]
    for name, kinds in result["kinds"].items():
        assert kinds == EXPECTED, name
    assert not (tmp_path / "modules").exists() or not any(
        (tmp_path / "modules").rglob("modeling_medicane.py")
    )


def test_auto_classes_in_this_process(tmp_path: Path) -> None:
    """Here transformers was imported before or after the package, whichever the test run did first."""
    from transformers import AutoModelForKeypointDetection, AutoModelForVideoClassification
    from transformers.models.auto import modeling_auto

    from medicane_hf._auto import _LazyEntries

    assert isinstance(modeling_auto.MODEL_MAPPING._extra_content, _LazyEntries)
    folders = save_heads(tmp_path)
    assert type(AutoModelForVideoClassification.from_pretrained(folders["detection"])).__name__ == (
        "MedicaneVideoMAEForDetection"
    )
    assert type(AutoModelForKeypointDetection.from_pretrained(folders["tracking"])).__module__ == (
        "medicane_hf.modeling_medicane"
    )


EXPECTED = [
    "medicane_hf.configuration_medicane.MedicaneVideoMAEConfig",
    "medicane_hf.video_processing_medicane.MedicaneVideoProcessor",
    "medicane_hf.modeling_medicane.MedicaneVideoMAEModel",
    "medicane_hf.modeling_medicane.MedicaneVideoMAEForPreTraining",
    "medicane_hf.modeling_medicane.MedicaneVideoMAEForDetection",
    "medicane_hf.modeling_medicane.MedicaneVideoMAEForTracking",
]
