"""Pushing: exactly which files a push uploads (HfApi's network calls patched, HF_HUB_OFFLINE=1), that those files
alone load to the same outputs, the training scripts' --push_to_hub, and the one-line refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS

from medicane_hf.hub import push
from tests.hub.folders import clips, package_outputs, save_heads, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FOLDER_FILES = {"config.json", "model.safetensors", "modeling_medicane.py", "configuration_medicane.py", "masking.py",
                "pixels.py", "video_processing_medicane.py", "video_preprocessor_config.json"}  # fmt: skip


class FakeHub:
    """HfApi's network calls, recorded: repos created, branches, the README front matter the Hub would check, and
    the files of each upload_folder commit (chosen by upload_folder's own local step)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.repos, self.branches, self.commits, self.validated = [], [], [], []

        def create_repo(api, repo_id, **kwargs):
            self.repos.append((repo_id, kwargs.get("private")))
            return type("RepoUrl", (), {"repo_id": repo_id})()

        def create_branch(api, repo_id, branch, **kwargs):
            self.branches.append((repo_id, branch))

        def upload_folder(
            api, *, repo_id, folder_path, revision=None, ignore_patterns=None, allow_patterns=None, **kwargs
        ):
            # upload_folder's own choice of files (its local step), then the commit it would make, recorded
            operations = api._prepare_upload_folder_additions(
                folder_path, "", allow_patterns=allow_patterns,
                ignore_patterns=[*(ignore_patterns or []), *DEFAULT_IGNORE_PATTERNS], repo_type="model",
            )  # fmt: skip
            files = {}
            for op in operations:
                assert isinstance(op, CommitOperationAdd)
                source = op.path_or_fileobj
                files[op.path_in_repo] = (
                    Path(source).read_bytes() if isinstance(source, (str, Path)) else source
                )
            self.commits.append({"repo_id": repo_id, "revision": revision, "files": files})
            return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()

        def validate_yaml(api, content, **kwargs):  # the Hub checks a README's front matter before the commit
            self.validated.append(content)

        monkeypatch.setattr(HfApi, "_validate_yaml", validate_yaml)
        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_branch", create_branch)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


def test_push_uploads_the_model_folder_and_it_loads_to_the_same_outputs(monkeypatch, tmp_path: Path) -> None:
    hub = FakeHub(monkeypatch)
    folder = save_heads(tmp_path / "models")["detection"]
    from medicane_hf.hub.cards import write_folder_card

    (folder / "metrics.json").write_text(json.dumps({"test_csi": 0.5}))
    write_folder_card(folder, "trained by a test")
    (folder / ".hidden").write_text("x")
    (folder / "checkpoint-3").mkdir()
    (folder / "checkpoint-3" / "optimizer.pt").write_text("x")
    assert push.main([str(folder), "--repo", "org/medicane-detector", "--private", "--revision", "v1"]) == 0
    assert hub.repos == [("org/medicane-detector", True)] and hub.branches == [
        ("org/medicane-detector", "v1")
    ]
    (commit,) = hub.commits
    assert commit["revision"] == "v1"
    assert set(commit["files"]) == FOLDER_FILES | {"README.md", "metrics.json"}
    assert 'model_id = "org/medicane-detector"' in commit["files"]["README.md"].decode()
    assert len(hub.validated) == 1 and "model-index" in hub.validated[0]
    # the uploaded files alone make the model
    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    for name, content in commit["files"].items():
        (downloaded / name).write_bytes(content)
    video = clips(tiny_config())
    before = package_outputs({"detection": folder}, video)
    after = package_outputs({"detection": downloaded}, video)
    for key, values in before.items():
        for field, value in values.items():
            assert torch.equal(after[key][field], value), (key, field)


def test_push_refusals_are_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    hub = FakeHub(monkeypatch)
    folder = save_heads(tmp_path / "models")["tracking"]
    capsys.readouterr()  # the saving's progress bars
    assert push.main([str(folder)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    not_model = tmp_path / "notes"
    not_model.mkdir()
    (not_model / "a.txt").write_text("x")
    for bad in (not_model, tmp_path / "absent"):
        assert push.main([str(bad), "--repo", "org/x"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and str(bad) in error
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "videomae"}))
    assert push.main([str(other), "--repo", "org/x"]) == 2
    assert "not a medicane-hf model" in capsys.readouterr().err
    assert hub.commits == [] and hub.repos == []
