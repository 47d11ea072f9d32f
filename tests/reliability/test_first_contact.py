"""What a new user meets first: `--help` of the scripts and of build-dataset, the closing line (issue 11, "First
contact")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from medicane_hf.data.build import build_parser
from medicane_hf.tasks import TASKS
from medicane_hf.training.run import _closing_lines

REPO = Path(__file__).resolve().parents[2]

HELP_AND_IMPORTS = """
import sys
sys.argv = ["scripts/train_tracking.py", "--help"]
from medicane_hf.training import script_main
try:
    script_main("tracking")
except SystemExit:
    pass
heavy = [m for m in ("medicane_hf.training.run", "medicane_hf.training.trainer", "datasets", "medicane_hf.modeling_medicane")
         if m in sys.modules]
print("HEAVY", heavy)
"""


def test_script_help_opens_with_what_it_does_and_imports_only_the_parser():
    """`--help` took 13 s (it imported data, model and Trainer modules first) and opened with ~700 characters of
    usage, no description, no word of the YAML file or of the no-argument run."""
    result = subprocess.run(
        [sys.executable, "-c", HELP_AND_IMPORTS], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "HEAVY []" in text
    head = text[: text.index("model (medicane-hf):")]
    assert "usage: train_tracking.py [CONFIG.yaml] [--flag value ...]" in head
    assert "Train the tracking stage." in head and "Two ways to run it:" in head
    assert "outputs/tracking-tiny-default/" in head and "configs/tracking/<preset>.yaml" in head
    # this project's groups, then transformers'
    order = [text.index(f"{name} (medicane-hf):") for name in ("model", "data", "recipe")]
    assert order == sorted(order) and order[-1] < text.index("transformers TrainingArguments (and -h):")


def test_build_dataset_help_shows_every_default():
    """`--num-frames`, `--frame-interval`, `--fractions`, `--seed`, `--pretrain-stride`, `--compression` had none."""
    text = " ".join(build_parser().format_help().split())
    for words in (
        "frames per clip (default: 16)",
        "minutes between frames (default: 5)",
        "train,validation,test shares (default: 0.7,0.15,0.15)",
        "seed of the storm split and of storm-free days (default: 0)",
        "frames between pretraining windows (default: 4)",
        "frame store compression (default: none)",
        "fill up to N with the nearest frame (default: 0)",
    ):
        assert words in text, words
    assert "(default: None)" not in text and "(default: False)" not in text


def test_the_closing_line_counts_the_whole_run():
    """It said "done in 35 s" after 3 min 42 s: it timed the training loop only."""
    summary = {"evaluated_model": "best", "test_median_km": 12.5}
    text = _closing_lines(TASKS["tracking"], Path("out"), summary, seconds=222.4, trained=35.2)
    assert "tracking: done in 3 min 42 s (35 s training)" in text


def test_the_embedded_basin_shows_one_bar_not_one_per_episode(tmp_path, monkeypatch):
    """Building the embedded default drew one "synthetic frames" bar per episode: 8 bars stacked up."""
    import medicane_hf.data.synthetic.basin as basin_module
    import medicane_hf.data.synthetic.default as default_module

    shown: list[str] = []

    def recording(real):
        def bar(*args, **kwargs):
            if not kwargs.get("disable"):
                shown.append(kwargs.get("desc", ""))
            return real(*args, **kwargs)

        return bar

    real = basin_module.tqdm
    monkeypatch.setattr(basin_module, "tqdm", recording(real))
    monkeypatch.setattr(default_module, "tqdm", recording(real), raising=False)
    episodes = (("2023-10-01", 0.25), ("2023-10-08", 0.25), ("2023-10-15", 0.25))
    default_module.ensure_synthetic_dataset(
        "probe", preset="demo", seed=0, episodes=episodes, cache_dir=tmp_path, progress=True
    )
    assert shown == ["synthetic basin"]
