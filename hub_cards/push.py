"""Publishing built datasets, adapters and results to the Hub through ``huggingface_hub``.

Every push is one Hub commit (all files or none), preceded by repo creation and a check that the
target repo holds nothing we did not write. Network failures are retried with exponential backoff;
since a commit is atomic, a failed attempt leaves no partial state and the retry starts over.
Tokens come from ``--token``, ``HF_TOKEN`` or the ``hf auth login`` token file and are never logged.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    HfApi,
    ModelCard,
    get_token,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import httpx as hf_httpx
from huggingface_hub.utils import validate_repo_id

from mmla.hub_cards.dataset_card import MMLA_TAG, dataset_card, scan_built_dataset
from mmla.hub_cards.model_card import eval_result_files, merge_results, model_card
from mmla.hub_cards.results import RESULTS_FILENAME, RunResults, load_results

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
HOUSEKEEPING = frozenset({".gitattributes"})
# Files of a training/eval folder that stay local: optimizer state, TensorBoard logs, per-sample predictions.
MODEL_IGNORE = (
    "README.md", "checkpoint-*", "checkpoint-*/*", "runs/*", "predictions/*", "optimizer.pt", "scheduler.pt",
    "rng_state*.pth", "*.lock", ".*", "*/.*", "MODEL_CARD.md", "leaderboard.*", "best/*", "merged/*",
    "training_args.bin",  # a pickle; training_args.json carries the same values
)  # fmt: skip


@dataclass
class PushResult:
    repo_id: str
    repo_type: str
    commit_url: str
    pr_url: str | None = None
    files: list[str] = field(default_factory=list)


def resolve_token(token: str | None = None) -> str:
    """The token to push with: the argument, else ``HF_TOKEN``, else the ``hf auth login`` token file."""
    token = token or get_token()
    if not token:
        raise RuntimeError(
            "no Hugging Face token found: run `hf auth login` or set the HF_TOKEN environment variable "
            "(a token with write access is needed to push)"
        )
    return token


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, RepositoryNotFoundError | RevisionNotFoundError | EntryNotFoundError):
        return False
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        return status is None or status in RETRY_STATUS
    return isinstance(err, hf_httpx.TransportError | ConnectionError | TimeoutError)


def with_retries(action: Callable[[], T], *, what: str, rerun: str, retries: int = 3, backoff: float = 2.0) -> T:
    """Run ``action``; on a transient network/server error retry up to ``retries`` times (backoff doubling)."""
    attempt = 0
    while True:
        try:
            return action()
        except Exception as err:
            if not _is_transient(err):
                raise
            attempt += 1
            if attempt > retries:
                raise RuntimeError(
                    f"{what} failed after {attempt} attempts ({type(err).__name__}: {_short(err)}). "
                    f"Nothing was committed (a Hub commit is all-or-nothing); rerun: {rerun}"
                ) from err
            delay = backoff * 2 ** (attempt - 1)
            logger.warning("%s failed (%s); retry %d/%d in %.1fs", what, type(err).__name__, attempt, retries, delay)
            time.sleep(delay)


def _short(err: BaseException) -> str:
    return str(err).splitlines()[0][:300] if str(err) else "no details"


@dataclass
class _Target:
    api: HfApi
    repo_id: str
    repo_type: str
    revision: str | None
    create_pr: bool
    retries: int
    backoff: float
    rerun: str

    def retry(self, action: Callable[[], T], what: str) -> T:
        return with_retries(action, what=what, rerun=self.rerun, retries=self.retries, backoff=self.backoff)

    def prepare(self, private: bool | None) -> list[str]:
        """Create the repo (and branch) if needed and list the files already there."""
        self.retry(
            lambda: self.api.create_repo(self.repo_id, repo_type=self.repo_type, private=private, exist_ok=True),
            f"creating {self.repo_type} repo {self.repo_id}",
        )
        if self.revision and not self.create_pr:
            self.retry(
                lambda: self.api.create_branch(
                    self.repo_id, branch=self.revision, repo_type=self.repo_type, exist_ok=True
                ),
                f"creating branch {self.revision!r} of {self.repo_id}",
            )
        return self.files()

    def files(self) -> list[str]:
        return self.retry(
            lambda: self.api.list_repo_files(self.repo_id, repo_type=self.repo_type, revision=self.revision),
            f"listing files of {self.repo_id}",
        )

    def read_text(self, filename: str) -> str | None:
        def _download() -> str | None:
            with tempfile.TemporaryDirectory() as cache:
                try:
                    path = self.api.hf_hub_download(
                        self.repo_id, filename, repo_type=self.repo_type, revision=self.revision, cache_dir=cache
                    )
                except RemoteEntryNotFoundError:  # not LocalEntryNotFoundError: that one means "unreachable"
                    return None
                return Path(path).read_text(encoding="utf-8")

        return self.retry(_download, f"reading {filename} of {self.repo_id}")

    def commit(self, operations: Sequence[CommitOperationAdd | CommitOperationDelete], message: str) -> PushResult:
        def _commit() -> PushResult:
            info = self.api.create_commit(
                self.repo_id,
                operations=list(_fresh(operations)),
                commit_message=message,
                repo_type=self.repo_type,
                revision=self.revision,
                create_pr=self.create_pr,
            )
            return PushResult(
                repo_id=self.repo_id,
                repo_type=self.repo_type,
                commit_url=str(info.commit_url),
                pr_url=info.pr_url,
                files=[op.path_in_repo for op in operations],
            )

        return self.retry(_commit, f"committing to {self.repo_type} repo {self.repo_id}")


def _fresh(operations: Iterable[CommitOperationAdd | CommitOperationDelete]):
    """New operation objects for each attempt: ``create_commit`` marks additions as used."""
    for op in operations:
        if isinstance(op, CommitOperationAdd):
            yield CommitOperationAdd(path_in_repo=op.path_in_repo, path_or_fileobj=op.path_or_fileobj)
        else:
            yield op


def _target(
    repo_id: str,
    repo_type: str,
    *,
    token: str | None,
    revision: str | None,
    create_pr: bool,
    endpoint: str | None,
    retries: int,
    backoff: float,
    rerun: str | None,
) -> _Target:
    validate_repo_id(repo_id)
    api = HfApi(endpoint=endpoint, token=resolve_token(token), library_name="mmla")
    return _Target(
        api=api,
        repo_id=repo_id,
        repo_type=repo_type,
        revision=revision,
        create_pr=create_pr,
        retries=retries,
        backoff=backoff,
        rerun=rerun or f"the same `mmla push {repo_type}` command",
    )


def _ensure_ours(target: _Target, existing: list[str], force: bool) -> None:
    """Refuse to write into a repo whose content was not written by mmla (unless ``force``).

    A repo is ours when it is empty (housekeeping files aside) or its card carries the ``mmla`` tag:
    every mmla commit includes the card, and commits are atomic.
    """
    others = [f for f in existing if f not in HOUSEKEEPING]
    if force or not others:
        return
    readme = target.read_text("README.md") if "README.md" in existing else None
    card_cls = DatasetCard if target.repo_type == "dataset" else ModelCard
    tags = (card_cls(readme, ignore_metadata_errors=True).data.get("tags") or []) if readme else []
    if MMLA_TAG in tags:
        return
    listing = ", ".join(others[:8]) + (f" and {len(others) - 8} more" if len(others) > 8 else "")
    raise RuntimeError(
        f"{target.repo_type} repo {target.repo_id} already holds content not written by mmla ({listing}); "
        "refusing to overwrite or mix with it. Push to a new repo id, or pass --force to commit into it anyway."
    )


def push_dataset(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    force: bool = False,
    commit_message: str | None = None,
    endpoint: str | None = None,
    retries: int = 3,
    backoff: float = 2.0,
    rerun: str | None = None,
) -> PushResult:
    """Push a folder built by ``mmla data build`` (Parquet shards + a freshly generated card) in one commit.

    Shards of the pushed configs that are on the Hub but no longer in the folder are deleted in the same
    commit, so a rebuilt dataset never mixes old and new shards under one ``<split>-*`` glob.
    """
    root = Path(folder)
    stats = scan_built_dataset(root)
    card = dataset_card(stats, repo_id=repo_id)
    target = _target(
        repo_id, "dataset", token=token, revision=revision, create_pr=create_pr, endpoint=endpoint,
        retries=retries, backoff=backoff, rerun=rerun,
    )  # fmt: skip
    local = sorted({f for c in stats.values() for s in c.splits.values() for f in s.files})
    patterns = [p for c in stats.values() for p in c.data_files.values()]
    existing = target.prepare(private)
    _ensure_ours(target, existing, force)
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in local
    ]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
    stale = [f for f in existing if f not in local and any(fnmatch.fnmatch(f, p) for p in patterns)]
    ops += [CommitOperationDelete(path_in_repo=f) for f in stale]
    message = commit_message or f"Upload {', '.join(stats)} with mmla ({len(local)} shard(s))"
    return target.commit(ops, message)


def _model_files(root: Path) -> list[str]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(rel, pat) for pat in MODEL_IGNORE):
            files.append(rel)
    return files


def push_model(
    model_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    results: Sequence[str | os.PathLike[str]] = (),
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    force: bool = False,
    commit_message: str | None = None,
    license: str | None = None,
    eval_results_yaml: bool = False,
    endpoint: str | None = None,
    retries: int = 3,
    backoff: float = 2.0,
    rerun: str | None = None,
) -> PushResult:
    """Push an adapter (or full model) folder with a generated model card, in one commit.

    The card's results come from ``model_dir/results.json`` (written by training) and any extra
    ``results`` run folders; TRL's own README is replaced by it.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; pass the output folder of `mmla train`")
    if not ((root / "adapter_config.json").is_file() or (root / "config.json").is_file()):
        raise ValueError(
            f"{root}: no adapter_config.json or config.json, so this is not a model folder. "
            "Pass the adapter folder written by `mmla train` (use `mmla push results` for results only)."
        )
    runs: list[RunResults] = [load_results(root)] if (root / RESULTS_FILENAME).is_file() else []
    runs += [load_results(r) for r in results]
    files = _model_files(root)
    if runs:
        card = model_card(runs, adapter_dir=root, repo_id=repo_id, license=license)
    else:
        card = _card_without_results(root, repo_id, license)
    target = _target(
        repo_id, "model", token=token, revision=revision, create_pr=create_pr, endpoint=endpoint,
        retries=retries, backoff=backoff, rerun=rerun,
    )  # fmt: skip
    existing = target.prepare(private)
    _ensure_ours(target, existing, force)
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in files
    ]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
    if eval_results_yaml:
        for run in runs:
            ops += [
                CommitOperationAdd(path_in_repo=p, path_or_fileobj=t.encode())
                for p, t in eval_result_files(run).items()
            ]
    return target.commit(ops, commit_message or f"Upload {root.name} with mmla")


def _card_without_results(root: Path, repo_id: str, license: str | None) -> ModelCard:
    from huggingface_hub import ModelCardData

    from mmla.hub_cards.model_card import training_details

    details = training_details(root)
    base = details.get("base_model")
    data = ModelCardData(
        base_model=base if base and "/" in base and not os.path.exists(base) else None,
        library_name="peft" if details.get("lora") else "transformers",
        license=license,
        tags=[MMLA_TAG, "multimodal-language-analysis"],
    )
    body = f"# {repo_id.split('/')[-1]}\n\nTrained with the `mmla` toolkit. No evaluation results were attached.\n"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def push_results(
    results: Sequence[str | os.PathLike[str]],
    repo_id: str,
    *,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    force: bool = False,
    allow_mixed: bool = False,
    commit_message: str | None = None,
    eval_results_yaml: bool = False,
    endpoint: str | None = None,
    retries: int = 3,
    backoff: float = 2.0,
    rerun: str | None = None,
) -> PushResult:
    """Update the model-index and results section of an existing model repo's README (weights untouched).

    Existing entries for the same task, split and metric are overwritten; other entries and the rest of
    the card are kept. A repo without a README is refused unless ``force`` (then a fresh card is written).
    """
    runs = [load_results(r) for r in results]
    if not runs:
        raise ValueError("no results given; pass one or more run folders written by `mmla eval`")
    new_card = model_card(runs, repo_id=repo_id, allow_mixed=allow_mixed)
    target = _target(
        repo_id, "model", token=token, revision=revision, create_pr=create_pr, endpoint=endpoint,
        retries=retries, backoff=backoff, rerun=rerun,
    )  # fmt: skip
    try:
        existing = target.files()
    except RepositoryNotFoundError:
        raise RuntimeError(
            f"model repo {repo_id} does not exist (or the token cannot see it); push the model first with "
            "`mmla push model DIR --repo-id ...`"
        ) from None
    readme = target.read_text("README.md") if "README.md" in existing else None
    if readme is None:
        if not force:
            raise RuntimeError(
                f"model repo {repo_id} has no README.md, so there is no model card to update; pass --force to "
                "write a new card with these results (the repo's other files stay untouched)"
            )
        card = new_card
    else:
        card = merge_results(ModelCard(readme), new_card)
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8"))
    ]
    if eval_results_yaml:
        for run in runs:
            ops += [
                CommitOperationAdd(path_in_repo=p, path_or_fileobj=t.encode())
                for p, t in eval_result_files(run).items()
            ]
    return target.commit(ops, commit_message or f"Update MMLA results ({', '.join(t for r in runs for t in r.tasks)})")
