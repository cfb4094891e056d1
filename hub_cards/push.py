"""Publishing built datasets, adapters and results to the Hub through ``huggingface_hub``.

Every push is one Hub commit (all files or none), preceded by repo creation and a check that the
target repo holds nothing we did not write. Reads and uploads are retried with exponential backoff on
network/server errors. The commit itself is retried only when that cannot duplicate it: it carries
``parent_commit=`` (the branch head read before the push), so a repeat after a lost response fails
with 412 instead of landing twice; before any repeat, the branch history is checked for this push's id
(in the commit description) and a commit that did land counts as success. Pull requests are not
retried (``parent_commit`` does not stop a second PR).

Tokens come from ``--token``, ``HF_TOKEN`` or the ``hf auth login`` token file and are never logged.
Hub errors reach the user as one line (``RuntimeError``) that says what to do.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils import httpx as hf_httpx

from mmla.hub_cards.dataset_card import MMLA_TAG, ConfigStats, dataset_card, scan_built_dataset
from mmla.hub_cards.model_card import eval_result_files, merge_results, model_card
from mmla.hub_cards.results import RESULTS_FILENAME, RunResults, check_repo_id, load_results

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
HOUSEKEEPING = frozenset({".gitattributes"})
PUSH_ID_PREFIX = "mmla-push-id: "
"""Commit description line that identifies one push, so a commit whose response was lost can be found."""
RIGHTS_FLAG = "--i-have-the-right-to-share"
# Files of a training/eval folder that stay local: optimizer state, TensorBoard logs, per-sample predictions
# (which hold the corpus' texts), pickles. Each pattern applies at any depth (see _model_files).
MODEL_IGNORE = (
    "README.md", "checkpoint-*", "runs/*", "predictions/*", "optimizer.pt", "scheduler.pt",
    "rng_state*.pth", "*.lock", ".*", "MODEL_CARD.md", "leaderboard.*", "best/*", "merged/*",
    "training_args.bin",  # a pickle; training_args.json carries the same values
)  # fmt: skip


class PublishRightsError(ValueError):
    """A dataset whose terms do not clearly allow redistribution, pushed to a public repo without consent."""


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


def _token_source(token: str | None) -> str:
    """Where the token came from, in words (never the token itself)."""
    if token:
        return "--token"
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(var):
            return var
    return "the token saved by `hf auth login`"


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None) if isinstance(err, HfHubHTTPError) else None


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, RepositoryNotFoundError | RevisionNotFoundError | EntryNotFoundError):
        return False
    if isinstance(err, HfHubHTTPError):
        status = _status(err)
        return status is None or status in RETRY_STATUS
    return isinstance(err, hf_httpx.TransportError | ConnectionError | TimeoutError)


def _short(err: BaseException) -> str:
    return str(err).strip().splitlines()[0][:300] if str(err).strip() else "no details"


def _auth_error(err: BaseException, what: str, token_source: str, repo: str) -> RuntimeError | None:
    """One line for a token the Hub refuses (401) or that may not write here (403); None otherwise."""
    status = _status(err)
    if status == 401:
        return RuntimeError(
            f"{what}: the Hub rejected the token from {token_source} (401 Unauthorized: invalid, expired or "
            "revoked). Run `hf auth login` with a token that has write access, or set HF_TOKEN to one"
        )
    if status == 403:
        return RuntimeError(
            f"{what}: the token from {token_source} may not write to {repo} (403 Forbidden). Use a token with "
            "write access to it (`hf auth login`, or HF_TOKEN), or check --repo-id"
        )
    return None


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    rerun: str,
    retries: int = 3,
    backoff: float = 2.0,
    token_source: str = "the environment",
    repo: str = "the repo",
) -> T:
    """Run ``action``; on a transient network/server error retry up to ``retries`` times (backoff doubling).

    Use it only for actions that are safe to repeat (reads, idempotent creates, uploads before the commit).
    """
    attempt = 0
    while True:
        try:
            return action()
        except Exception as err:
            auth = _auth_error(err, what, token_source, repo)
            if auth is not None:
                raise auth from None
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
    token_source: str
    head: str | None = None
    """Commit the push is based on (read before listing files); sent as ``parent_commit``."""

    def retry(self, action: Callable[[], T], what: str) -> T:
        return with_retries(
            action, what=what, rerun=self.rerun, retries=self.retries, backoff=self.backoff,
            token_source=self.token_source, repo=f"{self.repo_type} repo {self.repo_id}",
        )  # fmt: skip

    @property
    def branch(self) -> str:
        return self.revision or "main"

    def prepare(self, private: bool | None) -> list[str]:
        """Create the repo (and branch) if needed, read the branch head and list the files there."""
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
        self.head = self.read_head()
        return self.files()

    def info(self) -> Any:
        return self.retry(
            lambda: self.api.repo_info(self.repo_id, repo_type=self.repo_type, revision=self.revision),
            f"reading {self.repo_type} repo {self.repo_id}",
        )

    def read_head(self) -> str | None:
        return getattr(self.info(), "sha", None)

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

    def _commit_url(self, sha: str) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{self.api.endpoint}/{prefix}{self.repo_id}/commit/{sha}"

    def _landed(self, push_id: str) -> str | None:
        """The commit of this push on the branch, if it landed although its response was lost; else None.

        Raises when the branch moved for another reason (a concurrent commit): a retry would then fail
        with 412 anyway, and the user must look before pushing again.
        """
        if self.read_head() == self.head:
            return None
        commits = self.retry(
            lambda: self.api.list_repo_commits(self.repo_id, repo_type=self.repo_type, revision=self.revision),
            f"listing commits of {self.repo_id}",
        )
        for commit in commits:
            if commit.commit_id == self.head:
                break
            if push_id in f"{commit.title}\n{commit.message}":
                return commit.commit_id
        raise RuntimeError(
            f"{self.repo_type} repo {self.repo_id}: branch {self.branch!r} changed while pushing (another commit "
            f"landed after mmla read it at {str(self.head)[:8]}), so this push was not committed. Check the repo, "
            f"then rerun: {self.rerun}"
        )

    def commit(self, operations: Sequence[CommitOperationAdd | CommitOperationDelete], message: str) -> PushResult:
        """One commit with ``parent_commit=self.head``; repeated on transient errors only when it did not land."""
        push_id = uuid.uuid4().hex
        files = [op.path_in_repo for op in operations]
        what = f"committing to {self.repo_type} repo {self.repo_id}"
        attempt = 0
        while True:
            try:
                info = self.api.create_commit(
                    self.repo_id,
                    operations=list(_fresh(operations)),
                    commit_message=message,
                    commit_description=f"{PUSH_ID_PREFIX}{push_id}",
                    repo_type=self.repo_type,
                    revision=self.revision,
                    create_pr=self.create_pr,
                    parent_commit=self.head,
                )
                return PushResult(self.repo_id, self.repo_type, str(info.commit_url), info.pr_url, files)
            except Exception as err:
                auth = _auth_error(err, what, self.token_source, f"{self.repo_type} repo {self.repo_id}")
                if auth is not None:
                    raise auth from None
                status = _status(err)
                if status != 412 and not _is_transient(err):
                    raise
                if self.create_pr:
                    raise RuntimeError(
                        f"{what} failed ({type(err).__name__}: {_short(err)}); a pull request may have been opened "
                        f"anyway, so mmla does not repeat it. Check {self._discussions_url()} before you rerun: "
                        f"{self.rerun}"
                    ) from err
                if self.head is None:
                    raise RuntimeError(
                        f"{what} failed ({type(err).__name__}: {_short(err)}); the branch head could not be read, so "
                        f"mmla cannot tell whether the commit landed. Check the repo before you rerun: {self.rerun}"
                    ) from err
                landed = self._landed(push_id)
                if landed is not None:
                    logger.warning("%s: the response was lost, but the commit landed (%s)", what, landed[:8])
                    return PushResult(self.repo_id, self.repo_type, self._commit_url(landed), None, files)
                if status == 412:  # head unchanged now, but the Hub saw another one: someone is committing
                    raise RuntimeError(
                        f"{what} was refused (412: branch {self.branch!r} moved while pushing); nothing of this push "
                        f"was committed. Rerun: {self.rerun}"
                    ) from err
                attempt += 1
                if attempt > self.retries:
                    raise RuntimeError(
                        f"{what} failed after {attempt} attempts ({type(err).__name__}: {_short(err)}). "
                        f"Nothing was committed (branch {self.branch!r} is unchanged); rerun: {self.rerun}"
                    ) from err
                delay = self.backoff * 2 ** (attempt - 1)
                logger.warning("%s failed (%s); not committed; retry %d/%d in %.1fs", what, type(err).__name__,
                               attempt, self.retries, delay)  # fmt: skip
                time.sleep(delay)

    def _discussions_url(self) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{self.api.endpoint}/{prefix}{self.repo_id}/discussions"


def _fresh(operations: Iterable[CommitOperationAdd | CommitOperationDelete]):
    """New operation objects for each attempt: ``create_commit`` marks additions as used."""
    for op in operations:
        if isinstance(op, CommitOperationAdd):
            yield CommitOperationAdd(path_in_repo=op.path_in_repo, path_or_fileobj=op.path_or_fileobj)
        else:
            yield op


@dataclass(frozen=True)
class HubOptions:
    """Where and how a push commits: the options :func:`push_dataset`, :func:`push_model` and
    :func:`push_results` share (``mmla push``'s common flags)."""

    token: str | None = None
    revision: str | None = None
    """Branch to commit to (default ``main``)."""
    create_pr: bool = False
    force: bool = False
    """Commit into a repo that holds content mmla did not write."""
    commit_message: str | None = None
    endpoint: str | None = None
    retries: int = 3
    """Retries of a request that failed on the network or with a 5xx (never of a commit that may have landed)."""
    backoff: float = 2.0
    rerun: str | None = None
    """The command a message tells the user to repeat (default: the same ``mmla push`` command)."""


def _target(repo_id: str, repo_type: str, options: HubOptions) -> _Target:
    check_repo_id(repo_id)
    if options.retries < 0:
        raise ValueError(f"--retries must be 0 or more, got {options.retries}")
    api = HfApi(endpoint=options.endpoint, token=resolve_token(options.token), library_name="mmla")
    return _Target(
        api=api,
        repo_id=repo_id,
        repo_type=repo_type,
        revision=options.revision,
        create_pr=options.create_pr,
        retries=options.retries,
        backoff=options.backoff,
        rerun=options.rerun or f"the same `mmla push {repo_type}` command",
        token_source=_token_source(options.token),
    )


def _hub_errors(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn any Hub HTTP error that escapes a push into one line (the CLI prints it without a traceback)."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except HfHubHTTPError as err:
                raise RuntimeError(f"{what} failed ({_status(err) or 'HTTP error'}: {_short(err)})") from err

        return inner

    return wrap


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


def publish_concerns(stats: Mapping[str, ConfigStats]) -> list[str]:
    """Why each config of a built dataset may not be published openly (empty: nothing stands in the way).

    A corpus whose terms do not clearly grant redistribution (``license.redistribution`` is "unclear" or
    "restricted"), and clips embedded for a corpus whose video MMLA does not redistribute.
    """
    concerns = []
    for config in stats.values():
        task = config.task
        lic = task.license
        where = f"terms: {lic.url}" if lic.url else "no published terms"
        if lic.redistribution != "open":
            concerns.append(
                f"{task.dataset} (config {config.config_name}) is {lic.display}, redistribution {lic.redistribution}: "
                f"{lic.terms.rstrip('.')} ({where})"
            )
        videos = sum(s.num_videos or 0 for s in config.splits.values())
        if videos and not task.video.redistributable:
            concerns.append(
                f"{task.dataset} (config {config.config_name}) embeds {videos} video clip(s) that MMLA does not "
                f"redistribute ({where})"
            )
    return concerns


def _check_rights(concerns: list[str], *, private: bool | None, acknowledged: bool) -> None:
    if concerns and not (private or acknowledged):
        raise PublishRightsError(
            f"refusing to publish in a public repo: {'; '.join(concerns)}. Pass --private to push to a private "
            f"repo, or {RIGHTS_FLAG} if you may share it (its terms allow it or the owners agreed)"
        )


@_hub_errors("pushing the dataset")
def push_dataset(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool | None = None,
    rights_acknowledged: bool = False,
    options: HubOptions | None = None,
) -> PushResult:
    """Push a folder built by ``mmla data build`` (Parquet shards + a freshly generated card) in one commit.

    Shards of the pushed configs that are on the Hub but no longer in the folder are deleted in the same
    commit, so a rebuilt dataset never mixes old and new shards under one ``<split>-*`` glob. A corpus whose
    terms do not clearly allow redistribution is pushed only to a private repo or with
    ``rights_acknowledged`` (``--i-have-the-right-to-share``).
    """
    options = options or HubOptions()
    root = Path(folder)
    stats = scan_built_dataset(root)
    concerns = publish_concerns(stats)
    _check_rights(concerns, private=private, acknowledged=rights_acknowledged)
    card = dataset_card(stats, repo_id=repo_id)
    target = _target(repo_id, "dataset", options)
    local = sorted({f for c in stats.values() for s in c.splits.values() for f in s.files})
    patterns = [p for c in stats.values() for p in c.data_files.values()]
    existing = target.prepare(private)
    if concerns and not rights_acknowledged and not getattr(target.info(), "private", False):
        raise PublishRightsError(
            f"dataset repo {repo_id} already exists and is public (--private applies only to a new repo), so "
            f"nothing was pushed: {'; '.join(concerns)}. Make the repo private on the Hub, push to a new repo id, "
            f"or pass {RIGHTS_FLAG} if you may share it"
        )
    _ensure_ours(target, existing, options.force)
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in local
    ]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
    stale = [f for f in existing if f not in local and any(fnmatch.fnmatch(f, p) for p in patterns)]
    ops += [CommitOperationDelete(path_in_repo=f) for f in stale]
    message = options.commit_message or f"Upload {', '.join(stats)} with mmla ({len(local)} shard(s))"
    return target.commit(ops, message)


def model_ignore_patterns(patterns: Iterable[str] = MODEL_IGNORE) -> list[str]:
    """Each pattern at the top level and below any folder (``predictions/*`` also drops
    ``mmla_eval/step-10/predictions/mintrec.jsonl``), in ``filter_repo_objects``' fnmatch syntax."""
    return [q for p in patterns for q in (p, f"*/{p}")]


def _model_files(root: Path) -> list[str]:
    files = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    return list(filter_repo_objects(files, ignore_patterns=model_ignore_patterns()))


@_hub_errors("pushing the model")
def push_model(
    model_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    results: Sequence[str | os.PathLike[str]] = (),
    private: bool | None = None,
    license: str | None = None,
    eval_results_yaml: bool = False,
    options: HubOptions | None = None,
) -> PushResult:
    """Push an adapter (or full model) folder with a generated model card, in one commit.

    The card's results come from ``model_dir/results.json`` (written by training) and any extra
    ``results`` run folders; TRL's own README is replaced by it.
    """
    options = options or HubOptions()
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
    target = _target(repo_id, "model", options)
    existing = target.prepare(private)
    _ensure_ours(target, existing, options.force)
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(root / f)) for f in files
    ]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode("utf-8")))
    if eval_results_yaml:
        ops += _eval_result_ops(runs)
    return target.commit(ops, options.commit_message or f"Upload {root.name} with mmla")


def _eval_result_ops(runs: Sequence[RunResults]) -> list[CommitOperationAdd]:
    """The ``.eval_results/*.yaml`` files of the runs (``--eval-results-yaml``)."""
    return [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=t.encode())
        for run in runs
        for p, t in eval_result_files(run).items()
    ]


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


@_hub_errors("pushing the results")
def push_results(
    results: Sequence[str | os.PathLike[str]],
    repo_id: str,
    *,
    allow_mixed: bool = False,
    eval_results_yaml: bool = False,
    options: HubOptions | None = None,
) -> PushResult:
    """Update the model-index and results section of an existing model repo's README (weights untouched).

    Existing entries for the same task, split and metric are overwritten; other entries and the rest of
    the card are kept. A repo without a README is refused unless ``force`` (then a fresh card is written).
    """
    options = options or HubOptions()
    runs = [load_results(r) for r in results]
    if not runs:
        raise ValueError("no results given; pass one or more run folders written by `mmla eval`")
    new_card = model_card(runs, repo_id=repo_id, allow_mixed=allow_mixed)
    target = _target(repo_id, "model", options)
    try:
        target.head = target.read_head()
        existing = target.files()
    except RepositoryNotFoundError:
        raise RuntimeError(
            f"model repo {repo_id} does not exist (or the token cannot see it); push the model first with "
            "`mmla push model DIR --repo-id ...`"
        ) from None
    except RevisionNotFoundError:
        raise RuntimeError(
            f"model repo {repo_id} has no branch {options.revision!r}; check --revision (or leave it out for main)"
        ) from None
    readme = target.read_text("README.md") if "README.md" in existing else None
    if readme is None:
        if not options.force:
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
        ops += _eval_result_ops(runs)
    return target.commit(
        ops, options.commit_message or f"Update MMLA results ({', '.join(t for r in runs for t in r.tasks)})"
    )
