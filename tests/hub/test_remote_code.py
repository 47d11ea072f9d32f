"""A saved folder loads with torch and transformers alone: its own code (``trust_remote_code``), every Auto class.

The loading runs in a subprocess where importing ``medicane_hf`` or ``timm`` raises (``None`` in `sys.modules`), and must give the same outputs,
bit for bit, as the package's classes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from medicane_hf.modeling_medicane import AUTO_MAP
from tests.hub.folders import HEADS, clips, package_outputs, save_heads, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Loads every folder through its Auto class and AutoModel (the encoder) with the folder's code only.
BLOCKED_LOADER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    # None in sys.modules: `import timm` raises ModuleNotFoundError and find_spec says "not installed"
    for blocked in ("medicane_hf", "timm"):
        sys.modules[blocked] = None
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[3])  # tests/hub: the output helpers, which import nothing of the package here
    from remote_outputs import outputs

    folders, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    video = np.load(out / "video.npy")
    results, kinds = {}, {}
    for name, (folder, auto_name) in folders.items():
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=True)
        processor = transformers.AutoVideoProcessor.from_pretrained(folder, trust_remote_code=True)
        pixel_values = processor(video)["pixel_values"]
        model = getattr(transformers, auto_name).from_pretrained(folder, trust_remote_code=True)
        encoder = transformers.AutoModel.from_pretrained(folder, trust_remote_code=True)
        results[name] = outputs(model, name, pixel_values)
        results[name + "/encoder"] = outputs(encoder, "encoder", pixel_values)
        results[name + "/pixel_values"] = {"pixel_values": pixel_values}
        kinds[name] = [type(config).__module__, type(processor).__module__, type(model).__module__]
    assert not any(sys.modules.get(m) is not None for m in sys.modules if m.split(".")[0] in {"medicane_hf", "timm"})
    torch.save(results, out / "results.pt")
    (out / "kinds.json").write_text(json.dumps(kinds))
    """
)


def test_saved_folder_lists_its_code_and_every_auto_class(tmp_path: Path) -> None:
    folder = save_heads(tmp_path)["detection"]
    names = {p.name for p in folder.iterdir()}
    code = {
        "modeling_medicane.py",
        "configuration_medicane.py",
        "masking.py",
        "video_processing_medicane.py",
        "pixels.py",
    }
    assert code <= names
    assert {"config.json", "model.safetensors", "video_preprocessor_config.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP
    assert set(AUTO_MAP) == {"AutoConfig", "AutoModel", "AutoModelForPreTraining",
                             "AutoModelForVideoClassification", "AutoModelForKeypointDetection"}  # fmt: skip
    processor = json.loads((folder / "video_preprocessor_config.json").read_text())
    assert processor["auto_map"] == {"AutoVideoProcessor": "video_processing_medicane.MedicaneVideoProcessor"}
    assert processor["image_mean"] == [0.3, 0.4, 0.5] and processor["num_frames"] == 16
    # the copied code imports nothing but the standard library, numpy, torch, transformers and itself
    from transformers.dynamic_module_utils import get_imports

    for name in code:
        third_party = set(get_imports(folder / name)) - set(sys.stdlib_module_names)
        assert third_party <= {"numpy", "torch", "transformers"}, name


def test_folders_load_without_the_package_and_give_the_same_outputs(tmp_path: Path) -> None:
    import numpy as np

    folders = save_heads(tmp_path / "models")
    video = clips(tiny_config())
    out = tmp_path / "out"
    out.mkdir()
    np.save(out / "video.npy", video)
    expected = package_outputs(folders, video)
    arguments = json.dumps({name: [str(folder), HEADS[name][1]] for name, folder in folders.items()})
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = ""  # nothing of this checkout on the path: only the folder's own code
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_LOADER, arguments, str(out), str(Path(__file__).parent)],
        env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    kinds = json.loads((out / "kinds.json").read_text())
    for name, modules in kinds.items():
        assert all(m.startswith("transformers_modules.") for m in modules), (name, modules)
    results = torch.load(out / "results.pt", weights_only=True)
    from medicane_hf.pixels import to_pixel_values

    config = tiny_config()
    for name in folders:
        assert torch.equal(
            results[f"{name}/pixel_values"]["pixel_values"],
            to_pixel_values(video, config.image_mean, config.image_std),
        )
        for key in (name, f"{name}/encoder"):
            assert results[key].keys() == expected[key].keys()
            for field, value in expected[key].items():
                assert torch.equal(results[key][field], value), (key, field)
