"""Pushes through the real huggingface_hub client against a local fake Hub (tests/fake_hub.py).

``built`` holds corpora whose terms allow redistribution (MUStARD with clips, MELD text); ``restricted``
holds MIntRec (terms unclear) and MOSI (restricted), which need --private or an acknowledgement.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from datasets import load_dataset
from fake_hub import FakeHub, serve, serve_as_hub
from hub_testdata import build_dataset_folder, sample_results, variant, write_adapter, write_run
from huggingface_hub import DatasetCard, ModelCard

from mmla.eval.results import RunResults
from mmla.hub_cards.push import HubOptions, PublishRightsError, push_dataset, push_model, push_results

TOKEN = "hf_test_secret_token_123"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeHub:
    # The push functions also pass endpoint= to HfApi, which is enough for every call they make.
    with serve_as_hub(monkeypatch, tmp_path) as fake:
        yield fake


@pytest.fixture(scope="session")
def sample_run(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """What ``evaluate_tasks`` wrote for the sample release (one evaluation per session, see hub_testdata)."""
    return sample_results(sample_release, tmp_path_factory)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset_folder(tmp_path_factory.mktemp("built"), {"mustard": True, "meld": False})


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset_folder(tmp_path_factory.mktemp("restricted"), {"mintrec": True, "mosi": False})


def _push(kind, *args, hub: FakeHub, **kwargs):
    """``kind`` against the fake Hub; keyword arguments that are :class:`HubOptions` fields go into ``options``."""
    shared = {k: kwargs.pop(k) for k in [k for k in kwargs if k in HubOptions.__dataclass_fields__]}
    options = HubOptions(**{"token": TOKEN, "endpoint": hub.url, "backoff": 0.01, **shared})
    return kind(*args, options=options, **kwargs)


def _commit_lines(hub: FakeHub) -> list[tuple[str, str]]:
    (commit,) = hub.commit_requests()
    return [(line["key"], line["value"].get("path", line["value"].get("summary"))) for line in commit.ndjson()]


def test_push_dataset_requests_and_round_trip(hub: FakeHub, built: Path, tmp_path: Path) -> None:
    result = _push(push_dataset, built, "org/mmla-test", hub=hub, private=True)
    methods = [(r.method, r.path) for r in hub.requests if r.path != "/api/agent-harnesses"]
    assert methods[:5] == [
        ("POST", "/api/repos/create"),
        ("GET", "/api/datasets/org/mmla-test"),  # the branch head, sent back as parent_commit
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
    header = hub.commit_requests()[0].ndjson()[0]["value"]
    assert header["parentCommit"] == "0" * 40 and header["description"].startswith("mmla-push-id: ")
    shards = sorted(p for k, p in lines if k == "lfsFile")
    assert shards == sorted(
        f"{t}/{s}-00000-of-00001.parquet" for t in ("mustard", "meld") for s in ("train", "validation", "test")
    )
    assert ("file", "README.md") in lines
    assert result.commit_url.startswith(hub.url) and sorted(result.files) == sorted([*shards, "README.md"])
    # the pushed repo, checked out locally, is a dataset that `load_dataset` reads through its card
    files = hub.files("org/mmla-test", "dataset")
    for path, content in files.items():
        (tmp_path / "clone" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "clone" / path).write_bytes(content)
    card = DatasetCard.load(tmp_path / "clone" / "README.md")
    assert 'load_dataset("org/mmla-test", "meld")' in card.text
    assert sorted(card.data.license) == ["gpl-3.0", "mit"]
    assert load_dataset(str(tmp_path / "clone"), "mustard")["test"].features["label"].names == ["sincere", "sarcastic"]


def test_repush_deletes_stale_shards_only(hub: FakeHub, built: Path) -> None:
    _push(push_dataset, built, "org/ds", hub=hub)
    repo = hub.repos[("dataset", "org/ds")]
    repo.branches["main"]["meld/train-00001-of-00002.parquet"] = b"old shard"
    repo.branches["main"]["notes/extra.txt"] = b"kept"  # not a shard of a pushed config
    hub.requests.clear()
    _push(push_dataset, built, "org/ds", hub=hub)
    lines = _commit_lines(hub)
    assert ("deletedFile", "meld/train-00001-of-00002.parquet") in lines
    assert "notes/extra.txt" in hub.files("org/ds", "dataset")


def test_push_dataset_refuses_foreign_repo(hub: FakeHub, built: Path) -> None:
    hub.add_repo("org/theirs", "dataset", {"README.md": b"---\nlicense: mit\n---\n# Theirs\n", "data.csv": b"a,b\n"})
    with pytest.raises(RuntimeError, match=r"not written by mmla \(README\.md, data\.csv\).*--force"):
        _push(push_dataset, built, "org/theirs", hub=hub)
    assert not hub.commit_requests()
    _push(push_dataset, built, "org/theirs", hub=hub, force=True)
    assert "meld/test-00000-of-00001.parquet" in hub.files("org/theirs", "dataset")


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


def test_push_model(hub: FakeHub, sample_run: RunResults, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter", sample_run)
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
    acc = {r.metric_name: r.metric_value for r in card.data.eval_results}["ACC"]
    assert acc == sample_run.tasks["mintrec"].metrics["acc"]
    assert "TRL card" not in card.text and result.pr_url is None
    # a results-only folder is not a model
    with pytest.raises(ValueError, match="not a model folder"):
        _push(push_model, write_run(tmp_path / "run", sample_run), "me/x", hub=hub)


def test_push_model_as_pr_on_branch(hub: FakeHub, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter")
    hub.add_repo("me/m", "model", {"README.md": b"---\ntags: [mmla]\n---\n# ours\n", "old.bin": b"x"})
    result = _push(push_model, adapter, "me/m", hub=hub, create_pr=True)
    assert result.pr_url and result.pr_url.endswith("/discussions/1")
    assert sorted(hub.files("me/m")) == ["README.md", "old.bin"]  # main untouched
    assert "adapter_model.safetensors" in hub.files("me/m", branch="refs/pr/1")
    assert hub.commit_requests()[0].query == {"create_pr": ["1"]}
    _push(push_model, adapter, "me/m", hub=hub, revision="dev")
    assert hub.calls("POST", "/api/models/me/m/branch/dev")
    assert "adapter_config.json" in hub.files("me/m", branch="dev")


def test_push_results_updates_readme_only(hub: FakeHub, sample_run: RunResults, tmp_path: Path) -> None:
    readme = (
        "---\nlicense: apache-2.0\nmodel-index:\n- name: smol\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: MOSI, type: mmla/mosi, config: mosi, split: test}\n"
        "    metrics:\n    - {type: accuracy, value: 1.0, name: ACC}\n---\n# Smol\n\nOur own words.\n"
    )
    hub.add_repo("me/smol", "model", {"README.md": readme.encode(), "model.safetensors": b"weights"})
    results = variant(sample_run, tasks=["mosi", "mintrec"])
    run = write_run(tmp_path / "run", results)
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
    assert acc == {k: t.metrics["acc"] for k, t in results.tasks.items()}
    assert card.data.license == "apache-2.0" and "Our own words." in card.text
    assert f"value: {results.tasks['mosi'].metrics['acc']}".encode() in files[".eval_results/mosi.yaml"]
    # the commit carried the card inline (base64 "file" line), as a regular file
    commit = hub.commit_requests()[0].ndjson()
    inline = next(line["value"] for line in commit if line["value"].get("path") == "README.md")
    assert base64.b64decode(inline["content"]).decode() == files["README.md"].decode()


def test_push_results_errors(hub: FakeHub, sample_run: RunResults, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", variant(sample_run, tasks=["mosi"]))
    with pytest.raises(RuntimeError, match=r"does not exist.*mmla push model"):
        _push(push_results, [run], "me/missing", hub=hub)
    hub.add_repo("me/bare", "model", {"model.safetensors": b"w"})
    with pytest.raises(RuntimeError, match=r"no README\.md.*--force"):
        _push(push_results, [run], "me/bare", hub=hub)
    assert not hub.commit_requests()
    _push(push_results, [run], "me/bare", hub=hub, force=True)
    assert ModelCard(hub.files("me/bare")["README.md"].decode()).data.eval_results
    other = write_run(tmp_path / "val", variant(sample_run, tasks=["mintrec"], split="validation"))
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
            "mmla.cli",
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


# -- licenses ---------------------------------------------------------------------------------------------


def test_restricted_corpora_need_private_or_acknowledgement(hub: FakeHub, restricted: Path) -> None:
    with pytest.raises(PublishRightsError) as info:
        _push(push_dataset, restricted, "org/r", hub=hub)
    message = str(info.value)
    assert "\n" not in message
    for needle in (
        "MIntRec",
        "redistribution unclear",
        "https://github.com/thuiar/MIntRec",
        "MOSI",
        "other (cmu-mosi)",
        "redistribution restricted",
        "--private",
        "--i-have-the-right-to-share",
    ):
        assert needle in message  # fmt: skip
    assert not [r for r in hub.requests if r.path != "/api/agent-harnesses"]  # refused before any Hub call
    _push(push_dataset, restricted, "org/private", hub=hub, private=True)
    assert hub.repos[("dataset", "org/private")].private
    assert "mosi/test-00000-of-00001.parquet" in hub.files("org/private", "dataset")
    _push(push_dataset, restricted, "org/public", hub=hub, rights_acknowledged=True)
    assert not hub.repos[("dataset", "org/public")].private and hub.repos[("dataset", "org/public")].commits


def test_private_flag_does_not_cover_an_existing_public_repo(hub: FakeHub, restricted: Path) -> None:
    hub.add_repo("org/pub", "dataset")  # exists, public: create_repo(private=True, exist_ok=True) keeps it public
    with pytest.raises(PublishRightsError, match=r"already exists and is public.*nothing was pushed.*MOSI"):
        _push(push_dataset, restricted, "org/pub", hub=hub, private=True)
    assert not hub.commit_requests() and hub.files("org/pub", "dataset") == {}


# -- commits that must not land twice --------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["apply-drop", "apply-500"])
def test_commit_applied_but_response_lost_lands_once(hub: FakeHub, built: Path, failure: str) -> None:
    hub.fail_commits = [failure]
    result = _push(push_dataset, built, "org/ds", hub=hub)
    repo = hub.repos[("dataset", "org/ds")]
    assert len(hub.commit_requests()) == 1  # not repeated: the history showed it had landed
    assert len(repo.commits) == 1
    assert result.commit_url.endswith(f"/datasets/org/ds/commit/{repo.commits[0]['sha']}")
    assert hub.calls("GET", r"/api/datasets/org/ds/commits/main")


def test_commit_retried_only_when_not_landed(hub: FakeHub, built: Path) -> None:
    hub.fail_commits = ["drop", "503"]
    _push(push_dataset, built, "org/ds", hub=hub)
    requests = hub.commit_requests()
    assert len(requests) == 3 and len(hub.repos[("dataset", "org/ds")].commits) == 1
    parents = {r.ndjson()[0]["value"]["parentCommit"] for r in requests}
    assert parents == {"0" * 40}  # every attempt is based on the head read before the push


def test_concurrent_commit_fails_cleanly(hub: FakeHub, built: Path) -> None:
    hub.fail_commits = ["race"]
    with pytest.raises(RuntimeError, match=r"branch 'main' changed while pushing.*not committed.*rerun"):
        _push(push_dataset, built, "org/ds", hub=hub)
    repo = hub.repos[("dataset", "org/ds")]
    assert [c["summary"] for c in repo.commits] == ["a commit by someone else"]
    assert len(hub.commit_requests()) == 1


def test_pull_request_commit_is_not_repeated(hub: FakeHub, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter")
    hub.add_repo("me/m", "model")
    hub.fail_commits = ["apply-drop"]
    with pytest.raises(RuntimeError, match=r"pull request may have been opened anyway.*/me/m/discussions"):
        _push(push_model, adapter, "me/m", hub=hub, create_pr=True)
    assert len(hub.commit_requests()) == 1 and hub.repos[("model", "me/m")].prs == 1  # one PR, not two


# -- tokens -------------------------------------------------------------------------------------------------


def test_bad_token_is_one_line(hub: FakeHub, built: Path) -> None:
    hub.valid_tokens = {TOKEN}
    bad = "hf_revoked_token_456"
    with pytest.raises(RuntimeError) as info:
        _push(push_dataset, built, "org/ds", hub=hub, token=bad)
    message = str(info.value)
    assert "401" in message and "--token" in message and "hf auth login" in message and "HF_TOKEN" in message
    assert bad not in message and "\n" not in message
    tried = [(r.method, r.path) for r in hub.requests if r.authorization == f"Bearer {bad}"]
    assert tried and len(tried) == len(set(tried))  # nothing repeated: a 401 is not retried
    assert ("dataset", "org/ds") not in hub.repos


def test_cli_bad_token_in_subprocess(built: Path, tmp_path: Path) -> None:
    bad = "hf_expired_token_789"
    with serve() as fake:
        fake.valid_tokens = {TOKEN}
        env = {**os.environ, "HF_ENDPOINT": fake.url, "HF_TOKEN": bad, "HF_HOME": str(tmp_path / "hf_home"),
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}  # fmt: skip
        cmd = [sys.executable, "-m", "mmla.cli", "push", "dataset", str(built), "--repo-id", "org/cli"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmla push: error: creating dataset repo org/cli: the Hub rejected")
    assert "from HF_TOKEN" in lines[0] and "hf auth login" in lines[0]
    assert bad not in proc.stderr and "Traceback" not in proc.stderr


# -- what a model push leaves out ------------------------------------------------------------------------------


def test_push_model_ignores_nested_predictions_and_state(hub: FakeHub, sample_run: RunResults, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter", sample_run)
    step = adapter / "mmla_eval" / "step-10"
    (step / "predictions").mkdir(parents=True)
    (step / "predictions" / "mintrec.jsonl").write_text('{"id": "1", "text": "an utterance"}\n')
    write_run(step, variant(sample_run, method="sft", tasks=["mintrec"]))
    (step / ".mmla-output.json").write_text("{}")
    (adapter / "predictions").mkdir()
    (adapter / "predictions" / "mosi.jsonl").write_text("{}\n")
    (adapter / "sub" / "runs").mkdir(parents=True)
    (adapter / "sub" / "runs" / "events.out").write_text("tb")
    (adapter / "sub" / "training_args.bin").write_bytes(b"pickle")
    _push(push_model, adapter, "me/lora", hub=hub)
    files = sorted(hub.files("me/lora"))
    assert not [f for f in files if "predictions" in f or f.endswith((".jsonl", ".bin", ".out"))]
    assert "mmla_eval/step-10/results.json" in files and "mmla_eval/step-10/.mmla-output.json" not in files
    assert "checkpoint-1/optimizer.pt" not in files
