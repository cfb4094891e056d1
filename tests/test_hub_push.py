"""Pushes through the real huggingface_hub client against a local fake Hub (tests/fake_hub.py)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from datasets import load_dataset
from fake_hub import FakeHub, serve
from hub_testdata import build_dataset_folder, write_adapter, write_results
from huggingface_hub import DatasetCard, ModelCard

from mmla.hub_cards.push import push_dataset, push_model, push_results

TOKEN = "hf_test_secret_token_123"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    with serve() as fake:
        # What HF_ENDPOINT sets at import time (both, or hf_hub_download's URLs keep the default host);
        # the push functions also pass endpoint= to HfApi, which is enough for every call they make.
        monkeypatch.setattr(hf_constants, "ENDPOINT", fake.url)
        monkeypatch.setattr(
            hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(hf_constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"))
        monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
        yield fake


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset_folder(tmp_path_factory.mktemp("built"), {"mintrec": True, "mosi": False})


def _push(kind, *args, hub: FakeHub, **kwargs):
    kwargs.setdefault("token", TOKEN)
    return kind(*args, endpoint=hub.url, backoff=0.01, **kwargs)


def _commit_lines(hub: FakeHub) -> list[tuple[str, str]]:
    (commit,) = hub.commit_requests()
    return [(line["key"], line["value"].get("path", line["value"].get("summary"))) for line in commit.ndjson()]


def test_push_dataset_requests_and_round_trip(hub: FakeHub, built: Path, tmp_path: Path) -> None:
    result = _push(push_dataset, built, "org/mmla-test", hub=hub, private=True)
    methods = [(r.method, r.path) for r in hub.requests if r.path != "/api/agent-harnesses"]
    assert methods[:4] == [
        ("POST", "/api/repos/create"),
        ("GET", "/api/datasets/org/mmla-test/tree/main"),
        ("POST", "/api/validate-yaml"),
        ("POST", "/api/datasets/org/mmla-test/preupload/main"),
    ]
    assert ("POST", "/datasets/org/mmla-test.git/info/lfs/objects/batch") in methods
    assert methods[-1] == ("POST", "/api/datasets/org/mmla-test/commit/main")
    create = hub.calls("POST", "/api/repos/create")[0].json()
    assert create["type"] == "dataset" and create["visibility"] == "private"
    assert hub.repos[("dataset", "org/mmla-test")].private
    assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.requests if r.path.startswith("/api/repos"))
    lines = _commit_lines(hub)
    assert lines[0][0] == "header"
    shards = sorted(p for k, p in lines if k == "lfsFile")
    assert shards == sorted(
        f"{t}/{s}-00000-of-00001.parquet" for t in ("mintrec", "mosi") for s in ("train", "validation", "test")
    )
    assert ("file", "README.md") in lines
    assert result.commit_url.startswith(hub.url) and sorted(result.files) == sorted([*shards, "README.md"])
    # the pushed repo, checked out locally, is a dataset that `load_dataset` reads through its card
    files = hub.files("org/mmla-test", "dataset")
    for path, content in files.items():
        (tmp_path / "clone" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "clone" / path).write_bytes(content)
    card = DatasetCard.load(tmp_path / "clone" / "README.md")
    assert 'load_dataset("org/mmla-test", "mosi")' in card.text
    assert load_dataset(str(tmp_path / "clone"), "mosi")["test"].features["label"].names == ["positive", "negative"]


def test_repush_deletes_stale_shards_only(hub: FakeHub, built: Path) -> None:
    _push(push_dataset, built, "org/ds", hub=hub)
    repo = hub.repos[("dataset", "org/ds")]
    repo.branches["main"]["mosi/train-00001-of-00002.parquet"] = b"old shard"
    repo.branches["main"]["notes/extra.txt"] = b"kept"  # not a shard of a pushed config
    hub.requests.clear()
    _push(push_dataset, built, "org/ds", hub=hub)
    lines = _commit_lines(hub)
    assert ("deletedFile", "mosi/train-00001-of-00002.parquet") in lines
    assert "notes/extra.txt" in hub.files("org/ds", "dataset")


def test_push_dataset_refuses_foreign_repo(hub: FakeHub, built: Path) -> None:
    hub.add_repo("org/theirs", "dataset", {"README.md": b"---\nlicense: mit\n---\n# Theirs\n", "data.csv": b"a,b\n"})
    with pytest.raises(RuntimeError, match=r"not written by mmla \(README\.md, data\.csv\).*--force"):
        _push(push_dataset, built, "org/theirs", hub=hub)
    assert not hub.commit_requests()
    _push(push_dataset, built, "org/theirs", hub=hub, force=True)
    assert "mosi/test-00000-of-00001.parquet" in hub.files("org/theirs", "dataset")


def test_missing_token(hub: FakeHub, built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(RuntimeError, match=r"hf auth login.*HF_TOKEN"):
        _push(push_dataset, built, "org/ds", hub=hub, token=None)
    assert not [r for r in hub.requests if r.path != "/api/agent-harnesses"]
    # the token file written by `hf auth login` is picked up
    (tmp_path / "no-token").write_text("hf_from_file")
    _push(push_dataset, built, "org/ds", hub=hub, token=None)
    assert hub.calls("POST", "/commit/")[0].authorization == "Bearer hf_from_file"


@pytest.mark.parametrize("failure", ["500", "drop"])
def test_commit_failure_is_retried(hub: FakeHub, built: Path, failure: str) -> None:
    hub.fail_commits = [failure]
    _push(push_dataset, built, "org/ds", hub=hub)
    assert len(hub.commit_requests()) == 2
    assert len(hub.repos[("dataset", "org/ds")].commits) == 1


def test_commit_always_failing_gives_clear_error(hub: FakeHub, built: Path) -> None:
    hub.fail_commits = ["503"] * 10
    with pytest.raises(RuntimeError, match=r"failed after 3 attempts.*Nothing was committed.*rerun: mmla push dataset"):
        _push(push_dataset, built, "org/ds", hub=hub, retries=2, rerun="mmla push dataset out --repo-id org/ds")
    assert len(hub.commit_requests()) == 3
    assert hub.repos[("dataset", "org/ds")].commits == []
    assert hub.files("org/ds", "dataset") == {}


def test_push_model(hub: FakeHub, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter")
    result = _push(push_model, adapter, "me/smol-lora", hub=hub)
    files = hub.files("me/smol-lora")
    assert sorted(files) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "results.json",
        "training_args.json",
    ]
    assert files["adapter_model.safetensors"] == (adapter / "adapter_model.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}["ACC"] == 70.0
    assert "TRL card" not in card.text and result.pr_url is None
    # a results-only folder is not a model
    with pytest.raises(ValueError, match="not a model folder"):
        _push(push_model, write_results(tmp_path / "run"), "me/x", hub=hub)


def test_push_model_as_pr_on_branch(hub: FakeHub, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter", results=False)
    hub.add_repo("me/m", "model", {"README.md": b"---\ntags: [mmla]\n---\n# ours\n", "old.bin": b"x"})
    result = _push(push_model, adapter, "me/m", hub=hub, create_pr=True)
    assert result.pr_url and result.pr_url.endswith("/discussions/1")
    assert sorted(hub.files("me/m")) == ["README.md", "old.bin"]  # main untouched
    assert "adapter_model.safetensors" in hub.files("me/m", branch="refs/pr/1")
    assert hub.commit_requests()[0].query == {"create_pr": ["1"]}
    _push(push_model, adapter, "me/m", hub=hub, revision="dev")
    assert hub.calls("POST", "/api/models/me/m/branch/dev")
    assert "adapter_config.json" in hub.files("me/m", branch="dev")


def test_push_results_updates_readme_only(hub: FakeHub, tmp_path: Path) -> None:
    readme = (
        "---\nlicense: apache-2.0\nmodel-index:\n- name: smol\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: MOSI, type: mmla/mosi, config: mosi, split: test}\n"
        "    metrics:\n    - {type: accuracy, value: 1.0, name: ACC}\n---\n# Smol\n\nOur own words.\n"
    )
    hub.add_repo("me/smol", "model", {"README.md": readme.encode(), "model.safetensors": b"weights"})
    run = write_results(tmp_path / "run", tasks={"mosi": 66.0, "mintrec": 22.0})
    _push(push_results, [run], "me/smol", hub=hub, eval_results_yaml=True)
    lines = _commit_lines(hub)
    assert sorted(p for k, p in lines if k != "header") == [
        ".eval_results/mintrec.yaml",
        ".eval_results/mosi.yaml",
        "README.md",
    ]
    files = hub.files("me/smol")
    assert files["model.safetensors"] == b"weights"
    card = ModelCard(files["README.md"].decode())
    acc = {r.dataset_config: r.metric_value for r in card.data.eval_results if r.metric_name == "ACC"}
    assert acc == {"mosi": 66.0, "mintrec": 22.0}
    assert card.data.license == "apache-2.0" and "Our own words." in card.text
    assert b"value: 66.0" in files[".eval_results/mosi.yaml"]
    # the commit carried the card inline (base64 "file" line), as a regular file
    commit = hub.commit_requests()[0].ndjson()
    inline = next(line["value"] for line in commit if line["value"].get("path") == "README.md")
    assert base64.b64decode(inline["content"]).decode() == files["README.md"].decode()


def test_push_results_errors(hub: FakeHub, tmp_path: Path) -> None:
    run = write_results(tmp_path / "run", tasks={"mosi": 66.0})
    with pytest.raises(RuntimeError, match=r"does not exist.*mmla push model"):
        _push(push_results, [run], "me/missing", hub=hub)
    hub.add_repo("me/bare", "model", {"model.safetensors": b"w"})
    with pytest.raises(RuntimeError, match=r"no README\.md.*--force"):
        _push(push_results, [run], "me/bare", hub=hub)
    assert not hub.commit_requests()
    _push(push_results, [run], "me/bare", hub=hub, force=True)
    assert ModelCard(hub.files("me/bare")["README.md"].decode()).data.eval_results
    other = write_results(tmp_path / "val", tasks={"mintrec": 1.0}, split="validation")
    hub.requests.clear()
    with pytest.raises(ValueError, match="different splits"):
        _push(push_results, [run, other], "me/bare", hub=hub)
    assert not hub.requests


def test_cli_push_in_subprocess(built: Path, tmp_path: Path) -> None:
    """The console command with HF_ENDPOINT/HF_TOKEN from the environment, as a user runs it."""
    with serve() as fake:
        env = {
            **os.environ,
            "HF_ENDPOINT": fake.url,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        cmd = [
            sys.executable,
            "-m",
            "mmla.eval.cli",
            "push",
            "dataset",
            str(built),
            "--repo-id",
            "org/cli",
            "--revision",
            "v1",
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "pushed 7 file(s) to dataset repo org/cli" in proc.stdout
        assert TOKEN not in proc.stdout + proc.stderr
        assert "README.md" in fake.files("org/cli", "dataset", branch="v1")
        fake.add_repo("org/foreign", "dataset", {"train.csv": b"x"})
        proc = subprocess.run(
            [*cmd[:7], "org/foreign", "--token", TOKEN], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1 and "mmla push: error: dataset repo org/foreign already holds" in proc.stderr
        assert TOKEN not in proc.stdout + proc.stderr
