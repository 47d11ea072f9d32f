"""The README's commands and Python snippets, run or at least parsed by their real parsers.

- ```bash blocks: `make X` needs a Makefile target; `medicane-hf synth` and `build-dataset` on its output run for
  real in a temporary folder (synth with --days 1 instead of the README's 6: the same command, a shorter
  basin); every `medicane-hf ...` line parses through its command's own parser (placeholders such as
  /archive/airmass or vit_g_hybrid_pt_1200e.pth cannot run); every `accelerate launch ... scripts/...` line
  parses through accelerate's launcher parser, its script and files exist, and the script's arguments parse
  through the training parser (nothing trains), or an inference script's through its own parser (nothing is
  predicted), to the output folder and start model its comment names.
- ```python blocks run unchanged in a folder holding a tiny model wherever they call `from_pretrained`.
- Every `--flag` the README names is a flag of one of these parsers; every repository path it names exists.

A README line of another kind fails the test: add how to check it here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from medicane_hf.cli import SUBCOMMANDS, command_parser
from medicane_hf.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PROSE = re.sub(r"^```.*?^```", "", README, flags=re.MULTILINE | re.DOTALL)  # the text outside fenced blocks


def fenced_blocks(language: str) -> list[str]:
    """The bodies of the README's ```language fenced blocks, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)


def command_lines() -> list[tuple[list[str], str]]:
    """(tokens, trailing comment) of every command of the bash blocks; continuation lines joined."""
    commands = []
    for block in fenced_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            command, _, comment = line.partition("#")
            if command.strip():
                commands.append((shlex.split(command), comment.strip()))
    return commands


def commands_of(kind: tuple[str, ...]) -> list[tuple[list[str], str]]:
    return [(tokens, comment) for tokens, comment in command_lines() if tuple(tokens[: len(kind)]) == kind]


KINDS = (("make",), ("medicane-hf",), ("accelerate", "launch"))


def test_every_readme_command_is_of_a_kind_this_test_checks() -> None:
    commands = command_lines()
    assert len(commands) >= 9  # the README's guide, not an empty parse
    others = [
        " ".join(tokens) for tokens, _ in commands if not any(tuple(tokens[: len(k)]) == k for k in KINDS)
    ]
    assert others == [], f"README commands no test checks: {others}"


def test_make_targets_exist() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    named = {tokens[1] for tokens, _ in commands_of(("make",))} | set(re.findall(r"`make ([\w-]+)`", PROSE))
    assert {"demo", "test"} <= named
    assert named - targets == set()


def test_the_command_name_is_the_installed_entry_point() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["medicane-hf"] == "medicane_hf.cli:main"


def test_every_medicane_hf_line_parses_with_its_command_parser() -> None:
    lines = commands_of(("medicane-hf",))
    assert {tokens[1] for tokens, _ in lines} == set(SUBCOMMANDS)  # the README shows every command
    for tokens, _ in lines:
        parser = command_parser(tokens[1])
        parser.allow_abbrev = False  # the README spells every flag out
        try:
            parser.parse_args(tokens[2:])
        except SystemExit:
            # argparse exits on an unknown flag, a bad value or a missing required flag (its message is above)
            pytest.fail(f"README line does not parse: {' '.join(tokens)}")


def test_synth_and_build_dataset_run_as_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth = [tokens for tokens, _ in commands_of(("medicane-hf", "synth"))]
    build = [tokens for tokens, _ in commands_of(("medicane-hf", "build-dataset"))]
    runnable = [tokens for tokens in build if not any(token.startswith("/") for token in tokens)]
    assert len(synth) == 1 and len(runnable) == 1
    argv = synth[0][1:]
    argv[argv.index("--days") + 1] = "1"  # a one-day basin: the same command, ~5 s instead of ~30 s
    monkeypatch.chdir(tmp_path)  # the README's relative paths (data/synth, data/synth-ds) land here
    assert cli_main([*argv, "--quiet"]) == 0
    assert (tmp_path / "data/synth/tracks.csv").is_file() and (tmp_path / "data/synth/preview.png").is_file()
    assert cli_main(runnable[0][1:] + ["--no-progress"]) == 0
    out = tmp_path / runnable[0][runnable[0].index("--out") + 1]
    assert (out / "dataset_info.json").is_file() and (out / "normalization.json").is_file()


def _parsed_folders(
    script: Path, argv: list[str], use_cpu: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """(output folder, model folder or "") a training or inference script's arguments parse to."""
    from medicane_hf.inference.command import parse_arguments
    from medicane_hf.tasks import TASKS
    from medicane_hf.training.arguments import parse_stage_arguments

    inference = [t for t in TASKS.values() if t.inference is not None and t.inference.script == script.name]
    if inference:
        args = parse_arguments(inference[0], argv)
        return str(args.output_dir), args.model_name_or_path
    task = next(t for t in TASKS.values() if t.script == script.name)
    if use_cpu:
        # what `accelerate launch` tells the processes of a use_cpu config (the small.yaml files ask for bf16,
        # which TrainingArguments checks against the machine)
        monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    args = parse_stage_arguments(task, argv)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    return args.training.output_dir, args.model.model_name_or_path


def test_accelerate_lines_parse_to_the_folders_their_comments_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.commands.launch import launch_command_parser

    from medicane_hf.tasks import TASKS

    monkeypatch.chdir(REPO)  # script and config paths are relative to the checkout
    scripts = set()
    for tokens, comment in commands_of(("accelerate", "launch")):
        launcher = [token for token in tokens[2:] if token != "..."]  # "...": the launcher options, elided
        launch = launch_command_parser().parse_args(launcher)
        if launch.config_file is not None:
            assert Path(launch.config_file).is_file(), launch.config_file
            use_cpu = yaml.safe_load(Path(launch.config_file).read_text()).get("use_cpu", False)
        else:
            use_cpu = True  # options elided: check the line as the CPU launcher would run it
        script = Path(launch.training_script)
        assert script.is_file(), script
        scripts.add(script.name)
        for path in launch.training_script_args:
            if path.endswith((".yaml", ".yml")):
                assert Path(path).is_file(), path
        output_dir, model = _parsed_folders(script, list(launch.training_script_args), use_cpu, monkeypatch)
        writes = re.search(r"-> (\S+)", comment)
        assert writes and output_dir == writes.group(1), (comment, output_dir)
        starts = re.search(r"from (\S+)", comment)
        assert model == (starts.group(1) if starts else None), comment
    # every stage's script is shown, training and inference
    shown = {task.script for task in TASKS.values()}
    shown |= {task.inference.script for task in TASKS.values() if task.inference is not None}
    assert scripts == shown


def _known_flags() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    from medicane_hf.inference.command import build_parser
    from medicane_hf.tasks import TASKS
    from medicane_hf.training.arguments import make_parser

    parsers = [command_parser(name) for name in SUBCOMMANDS] + [make_parser(), launch_command_parser()]
    parsers += [build_parser(task) for task in TASKS.values() if task.inference is not None]
    return {flag for parser in parsers for action in parser._actions for flag in action.option_strings}


def test_every_flag_the_readme_names_exists() -> None:
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", README))
    assert "--max-missing-frames" in named  # prose and commands both count
    assert named - _known_flags() == set()


def _tracked_top_level() -> set[str]:
    """Top-level files and folders of the repository (not outputs/ or data/ a run left in the checkout)."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:  # an exported tree without git: what is there
        return {path.name for path in REPO.iterdir()}
    return {line.split("/")[0] for line in listed.stdout.splitlines()}


def test_every_repository_path_the_readme_names_exists() -> None:
    links = re.findall(r"\]\(([^)#:]+)\)", README)  # relative markdown links (no URL scheme)
    top = _tracked_top_level()
    quoted = [
        token
        for token in re.findall(r"`([^`\s]+)`", PROSE)
        if "/" in token and token.split("/")[0] in top and not re.search(r"[<>|]", token)
    ]
    assert "docs/training.md" in links and "accelerate_configs/*.yaml" in quoted
    missing = [path for path in links + quoted if not list(REPO.glob(path.rstrip("/")))]
    assert missing == []


def test_python_snippets_run_unchanged(tmp_path: Path) -> None:
    import medicane_hf
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.data.geo import SeviriGrid
    from medicane_hf.processing_medicane import DataContract

    snippets = fenced_blocks("python")
    assert snippets
    # a tiny model (64-px tiles of the demo grid) wherever a snippet loads one: the classes do not care about size
    contract = DataContract(
        num_frames=16,
        frame_interval_minutes=5,
        image_size=64,
        num_channels=3,
        image_mean=(0.49, 0.48, 0.4),
        image_std=(0.2, 0.15, 0.24),
        grid=SeviriGrid(width=384, height=128).to_dict(),
        tiles={"tile_size": 64, "stride_x": 64, "stride_y": 64},
    )
    config = MedicaneVideoMAEConfig.from_preset(
        "tiny", **contract.shape_settings(), **contract.config_settings()
    )
    loads = re.findall(r"(\w+)\.from_pretrained\(\"([^\"]+)\"\)", "\n".join(snippets))
    assert ("MedicaneVideoMAEForDetection", "outputs/detection-small/best") in loads
    for class_name, folder in loads:
        getattr(medicane_hf, class_name)(config).save_pretrained(tmp_path / folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    printed = {}
    for snippet in snippets:
        result = subprocess.run(
            [sys.executable, "-c", snippet],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        printed[snippet] = result.stdout
    # the package snippet prints the data contract the folder's config holds
    (contract_out,) = [out for snippet, out in printed.items() if "model.config.id2label" in snippet]
    assert "{0: 'background', 1: 'medicane'}" in contract_out and "[0.49, 0.48, 0.4]" in contract_out
    assert "'width': 384" in contract_out
    # the Sharing snippet (transformers alone, the folder's own code) prints one clip's two probabilities
    (shared_out,) = [out for snippet, out in printed.items() if "trust_remote_code=True" in snippet]
    probabilities = json.loads(shared_out.strip().splitlines()[-1])
    assert len(probabilities) == 1 and abs(sum(probabilities[0]) - 1) < 1e-5
