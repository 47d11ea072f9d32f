"""Push a saved model folder to the Hub: ``medicane-hf push DIR --repo ORG/NAME [--private] [--revision R]``.

`push_model_folder` checks that the folder is a model folder of this package (``config.json`` of model type
``medicane_videomae`` and its weights), points the card's snippet at the repo (`cards.set_model_id`), then
``HfApi.create_repo`` (``exist_ok``), ``create_branch`` for a revision, and one ``upload_folder`` commit of the
folder's files (`files_to_push`: code, weights, video processor, card, metrics; never hidden files or checkpoints).
The training scripts' ``--push_to_hub --hub_model_id ORG/NAME [--hub_private_repo]`` call it with the run's chosen
model folder once the run is finished (the Trainer itself pushes nothing).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path
from typing import Any

from medicane_hf.hub.cards import CARD_NAME, set_model_id

MODEL_TYPE = "medicane_videomae"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
IGNORE_PATTERNS = [
    ".*",
    "**/.*",
    "checkpoint-*",
    "checkpoint-*/**",
    "*.tmp",
    "__pycache__/**",
    "**/__pycache__/**",
]


class PushError(ValueError):
    """A push that cannot be made: no repo id, or a folder that is not a model folder (one line)."""


def check_model_folder(folder: str | Path) -> Path:
    """`folder` as a Path when it is a model folder of this package; else `PushError` saying why."""
    path = Path(folder)
    if not path.is_dir():
        raise PushError(f"{path} is not a folder")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise PushError(
            f"{path} is not a model folder: no config.json (a save_pretrained folder, e.g. a run's best/)"
        )
    try:
        model_type = json.loads(config_path.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as error:
        raise PushError(f"{config_path} is not a model config: {error}") from None
    if model_type != MODEL_TYPE:
        raise PushError(
            f"{config_path} is of model type {model_type!r}, not a medicane-hf model ({MODEL_TYPE!r})"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise PushError(f"{path} is not a model folder: no weights ({' or '.join(WEIGHT_FILES)})")
    return path


def files_to_push(folder: str | Path) -> list[str]:
    """The folder's files that a push uploads (paths relative to it, sorted): all but `IGNORE_PATTERNS`."""
    root = Path(folder)
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if not any(fnmatch.fnmatch(relative, pattern) for pattern in IGNORE_PATTERNS):
            files.append(relative)
    return files


def push_model_folder(
    folder: str | Path,
    repo_id: str | None,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> Any:
    """Upload `folder` (a model folder) to the Hub model repo `repo_id`; returns ``upload_folder``'s commit info.

    Raises:
        PushError: no repo id, or `folder` is not a model folder of this package.
    """
    from huggingface_hub import HfApi

    if not repo_id or not repo_id.strip():
        raise PushError(
            "no repo id to push to: pass --repo ORG/NAME (medicane-hf push) or --hub_model_id ORG/NAME"
        )
    path = check_model_folder(folder)
    if (path / CARD_NAME).is_file():
        set_model_id(path / CARD_NAME, repo_id)
    api = HfApi(token=token)
    repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(repo, "repo_id", repo_id)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=path,
        repo_type="model",
        revision=revision,
        commit_message=commit_message or f"Upload {path.name} with medicane-hf",
        ignore_patterns=IGNORE_PATTERNS,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medicane-hf push",
        description="Push a model folder (a run's best/ or final/, a convert output) to a Hub model repo: code, "
        "weights, video processor, card and metrics.",
    )
    parser.add_argument("folder", type=Path, help="the model folder (save_pretrained)")
    parser.add_argument("--repo", default=None, help="the Hub model repo, ORG/NAME (created when absent)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", default=None, help="the branch to push to (created when absent)")
    parser.add_argument("--commit_message", default=None, help="the commit message")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``medicane-hf push``: 0 pushed, 2 refused (one line on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        info = push_model_folder(
            args.folder,
            args.repo,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
        )
    except PushError as error:
        print(f"medicane-hf push: {error}", file=sys.stderr)
        return 2
    print(f"pushed {args.folder} to {getattr(info, 'commit_url', None) or args.repo}")
    return 0
