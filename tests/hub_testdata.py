"""Small inputs for the hub_cards tests: a built dataset folder and results.json files (schema of architecture.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, Features, Value, Video

from mmla.loaders.files import mark_output_dir
from mmla.loaders.tasks import TASKS, get_task

SIZES = {"train": 4, "validation": 2, "test": 3}


def build_dataset_folder(out: Path, tasks: dict[str, bool]) -> Path:
    """``mmla data build`` layout: ``<task>/<split>-00000-of-00001.parquet``; ``tasks`` maps key -> with video."""
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
            (out / key).mkdir(parents=True, exist_ok=True)
            Dataset.from_dict(rows, features=Features(feats)).to_parquet(out / key / f"{split}-00000-of-00001.parquet")
    mark_output_dir(out, "mmla data build")
    return out


def results_dict(
    model: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
    *,
    method: str = "zero-shot",
    split: str = "test",
    tasks: dict[str, float] | None = None,
    n: int = 100,
    adapter: str | None = None,
    prompt_style: str = "upstream",
    label_set: str | None = None,
    parse_mode: str | None = None,
) -> dict[str, Any]:
    """A results.json body; ``tasks`` maps key -> ACC (the other metrics are derived, all distinct).

    ``label_set`` / ``parse_mode`` are left out of the file when None (results written before they existed).
    """
    tasks = tasks if tasks is not None else {"mintrec": 20.0, "mosi": 60.0}
    entries = {}
    for i, (key, acc) in enumerate(tasks.items()):
        t = TASKS[key]
        entries[key] = {
            "dataset": t.dataset,
            "dimension": t.dimension,
            "n": n + i,
            "num_unknown": 1,
            "num_multi": 0,
            "metrics": {"acc": acc, **{m: max(acc - k, 0.0) for k, m in enumerate(("wf1", "wp", "f1", "r", "p"), 1)}},
            "ci95": {"acc": [max(acc - 5, 0.0), min(acc + 5, 100.0)]},
        }
    total = sum(e["n"] for e in entries.values())
    overall = round(sum(e["metrics"]["acc"] * e["n"] for e in entries.values()) / total, 2)
    dims: dict[str, dict[str, Any]] = {}
    for e in entries.values():
        d = dims.setdefault(e["dimension"], {"correct": 0.0, "n": 0})
        d["correct"] += e["metrics"]["acc"] * e["n"]
        d["n"] += e["n"]
    return {
        "mmla_version": "0.1.0",
        "model": model,
        "adapter": adapter,
        "base_model": None,
        "method": method,
        "mode": "generate",
        "split": split,
        "data": "/tmp/release",
        "text_only": True,
        "prompt_style": prompt_style,
        **({"label_set": label_set} if label_set else {}),
        **({"parse_mode": parse_mode} if parse_mode else {}),
        "created": "2026-11-25T07:00:00Z",
        "tasks": entries,
        "dimensions": {k: {"acc": round(v["correct"] / v["n"], 2), "n": v["n"]} for k, v in dims.items()},
        "overall": {"acc": overall, "n": total},
    }


def write_results(folder: Path, **kwargs: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results_dict(**kwargs), indent=2), encoding="utf-8")
    return folder


def write_adapter(folder: Path, *, base: str = "HuggingFaceTB/SmolLM2-135M-Instruct", results: bool = True) -> Path:
    """An adapter folder as training writes it (weights are random bytes: nothing loads them here)."""
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
    if results:
        write_results(folder, method="sft", tasks={"mintrec": 70.0}, adapter=str(folder), model=base)
    return folder
