"""Inputs for the hub_cards tests: a built dataset folder, and results that ``evaluate_tasks`` really wrote.

:func:`evaluate_sample` runs the runner once per session (tiny random Llama, rank mode, all 12 tasks of the
synthetic sample release); tests take it through a session fixture (``sample_run``, see :func:`sample_results`)
and derive a variant with :func:`variant` (``dataclasses.replace``) only where they need a value the real run
does not have.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, Video

from mmla.eval.results import DataSource, RunResults
from mmla.loaders.build import save_config
from mmla.loaders.files import mark_output_dir
from mmla.loaders.tasks import MMLA_HUB_REPO, get_task

SIZES = {"train": 4, "validation": 2, "test": 3}


def build_dataset_folder(out: Path, tasks: dict[str, bool]) -> Path:
    """``mmla data build`` layout and metadata (written by its ``save_config``); ``tasks`` maps key -> with video."""
    for key, video in tasks.items():
        t = get_task(key)
        feats: dict[str, Any] = {
            "id": Value("string"),
            "text": Value("string"),
            "label": ClassLabel(names=list(t.labels)),
            "dataset": Value("string"),
            "task": Value("string"),
        }
        if video:
            feats["video"] = Video()
        splits = DatasetDict()
        for split, n in SIZES.items():
            rows: dict[str, list[Any]] = {
                "id": [f"{key}-{split}-{i}" for i in range(n)],
                "text": [f"utterance {i}" for i in range(n)],
                "label": [i % t.num_labels for i in range(n)],
                "dataset": [t.dataset] * n,
                "task": [key] * n,
            }
            if video:  # first row has no clip: counted as missing in the card
                rows["video"] = [None] + [{"bytes": b"\x00\x00fake-mp4", "path": f"{i}.mp4"} for i in range(1, n)]
            splits[split] = Dataset.from_dict(rows, features=Features(feats))
        save_config(out, t, key, splits, embed=video)
    mark_output_dir(out, "mmla data build")
    return out


MODEL = "mmla-tests/tiny-llama"
"""The model name the sample run records (a tiny random Llama; no Hub id)."""
BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
_RUNS: dict[Path, Path] = {}
"""Sample release -> the folder its run was written to (one evaluation per session and worker)."""


def evaluate_sample(release: Path, out: Path) -> Path:
    """``evaluate_tasks`` on the sample release into ``out`` (all 12 tasks, test split, rank mode, text only),
    once per release and session; returns the run folder."""
    if release not in _RUNS:
        from mmla.eval.adapters import adapter_for
        from mmla.eval.runner import evaluate_tasks
        from mmla.training.testing import tiny_llama, tiny_tokenizer

        tok = tiny_tokenizer()
        adapter = adapter_for(tiny_llama(len(tok), seed=1), tok)
        evaluate_tasks(adapter, "all", str(release), "test", mode="rank", batch_size=32, output_dir=out,
                       text_only=True, show_progress=False, model_name=MODEL, n_bootstrap=200)  # fmt: skip
        _RUNS[release] = out
    return _RUNS[release]


def sample_results(release: Path, tmp_path_factory: Any) -> RunResults:
    """The results :func:`evaluate_sample` wrote, read back with ``load_results`` (for a session fixture)."""
    from mmla.eval.results import load_results

    if release not in _RUNS:
        evaluate_sample(release, tmp_path_factory.mktemp("sample-run"))
    return load_results(_RUNS[release])


def variant(
    run: RunResults,
    *,
    tasks: Iterable[str] | None = None,
    correct: Mapping[str, int] | None = None,
    **changes: Any,
) -> RunResults:
    """``run`` with ``changes`` (``dataclasses.replace``); ``tasks`` keeps only those tasks; ``correct`` sets a
    task's count of correct answers (its ACC follows; the other metrics are left as they were)."""
    entries = {k: run.tasks[k] for k in tasks} if tasks is not None else dict(run.tasks)
    for key, count in (correct or {}).items():
        t = entries[key]
        entries[key] = dataclasses.replace(t, correct=count, metrics={**t.metrics, "acc": round(100 * count / t.n, 2)})
    return dataclasses.replace(run, tasks=entries, path=None, **changes)


def official(run: RunResults, revision: str = "c0ffee" * 6 + "c0fe", **changes: Any) -> RunResults:
    """``run`` as if its data had been a verified fetch of the Hub release at ``revision``."""
    return variant(run, data_source=DataSource("official", repo=MMLA_HUB_REPO, revision=revision), **changes)


def write_run(folder: Path, run: RunResults) -> Path:
    """``run`` written as ``folder/results.json``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    run.write(folder)
    return folder


def write_adapter(folder: Path, run: RunResults | None = None, *, base: str = BASE) -> Path:
    """An adapter folder as training writes it (weights are random bytes: nothing loads them here), with the
    SFT results of ``run``'s mintrec task when given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": base, "peft_type": "LORA", "r": 8, "lora_alpha": 16,
                    "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}),
        encoding="utf-8",
    )  # fmt: skip
    (folder / "training_args.json").write_text(
        json.dumps({"learning_rate": 1e-4, "num_train_epochs": 8, "per_device_train_batch_size": 2,
                    "warmup_ratio": 0.1, "lr_scheduler_type": "cosine", "bf16": True, "output_dir": "/secret/x"}),
        encoding="utf-8",
    )  # fmt: skip
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 4)
    (folder / "README.md").write_text("---\nlibrary_name: transformers\ntags: [trl, sft]\n---\n# TRL card\n")
    (folder / "checkpoint-1").mkdir(exist_ok=True)
    (folder / "checkpoint-1" / "optimizer.pt").write_bytes(b"state")
    if run is not None:
        write_run(
            folder, variant(run, tasks=["mintrec"], method="sft", adapter=str(folder), model=base, base_model=base)
        )
    return folder
