"""Arguments of ``training/sft.py`` and the recipe table.

A run is ``TrlParser`` over (:class:`MMLAArguments`, ``SFTConfig``, ``ModelConfig``), as in TRL's
``examples/scripts/sft.py``. ``--recipe paper/sft/mintrec/qwen2-0.5b`` selects a row of
``recipes/paper.yaml`` whose values become the parser's *defaults*; a ``--config`` file and the command
line then override them (recipe < config file < command line).

Two recipe tables, because the paper's tables and the upstream scripts disagree for LLMs (SPEC.md, "Methods"):
``paper/...`` (``recipes/paper.yaml``, the paper's Tables 5-8) and ``upstream/...`` (``recipes/upstream.yaml``,
``src/Finetune/LLM/{SFT,IT}/scripts``). :func:`recipe_source` says where a recipe's values come from.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).parent / "recipes"
RECIPE_TABLES = {"paper": RECIPES_DIR / "paper.yaml", "upstream": RECIPES_DIR / "upstream.yaml"}
"""Recipe namespaces (``<namespace>/...``) -> table file."""


@dataclass
class MMLAArguments:
    """What to train on; the rest of a run is ``SFTConfig`` and ``ModelConfig``."""

    tasks: str = field(
        default="mintrec",
        metadata={"help": "One task key = SFT; several (comma-separated), a dimension or 'all' = instruction tuning."},
    )
    data: str | None = field(
        default=None,
        metadata={"help": "Release folder, folder built by `mmla data build`, or Hub repo id (None: the Hub release)."},
    )
    recipe: str | None = field(
        default=None,
        metadata={"help": "Row of the recipe table, e.g. paper/sft/mintrec/qwen2-0.5b or paper/it/qwen2-7b."},
    )
    text_only: bool | None = field(
        default=None, metadata={"help": "Ignore videos (LLMs). Default: True unless the model is multimodal."}
    )
    prompt_style: str = field(
        default="upstream_sft",
        metadata={"help": "Prompt style of mmla.eval.prompts (upstream_sft: the upstream fine-tuning files' prompt)."},
    )
    modalities: str | None = field(
        default=None,
        metadata={
            "help": "What the model is shown, a comma-separated subset of text,video,audio that it supports "
            "(default: all it supports; video MLLMs: text,video; Omni: text,video,audio); recorded in the results."
        },
    )
    allow_silent: bool = field(
        default=False,
        metadata={"help": "With audio: feed silence for clips without an audio track (counted in the results)."},
    )
    num_frames: int | None = field(default=8, metadata={"help": "Frames sampled per clip (MLLMs)."})
    fps: float | None = field(default=None, metadata={"help": "Sample frames at this rate instead of num_frames."})
    max_pixels: int | None = field(default=None, metadata={"help": "Resize frames to at most this many pixels."})
    # Instruction-tuning mixture.
    max_per_task: int | None = field(default=None, metadata={"help": "IT: cap each task's training rows."})
    min_per_task: int | None = field(default=None, metadata={"help": "IT: up-sample small tasks to this many rows."})
    mix_temperature: float | None = field(
        default=None,
        metadata={"help": "IT: resample task i with probability ∝ n_i^(1/T) (T=1: proportional, larger: flatter)."},
    )
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside model_name_or_path to load."})
    # Model selection by validation accuracy.
    eval_metric_split: str | None = field(
        default="validation", metadata={"help": "Split scored by mmla.eval at each evaluation ('none' disables)."}
    )
    eval_mode: str = field(default="generate", metadata={"help": "mmla.eval mode for selection: generate | rank."})
    eval_limit: int | None = field(default=None, metadata={"help": "Score at most this many rows per task."})
    final_eval_split: str | None = field(
        default=None, metadata={"help": "Split of the final report (default: eval_metric_split)."}
    )
    limit_train: int | None = field(default=None, metadata={"help": "Smoke runs: at most N training rows per task."})
    limit_eval: int | None = field(default=None, metadata={"help": "Smoke runs: at most N eval rows per task."})
    resume: bool = field(default=False, metadata={"help": "Resume from the last checkpoint in output_dir."})
    merge: bool = field(default=False, metadata={"help": "Also save the LoRA merged into the base model (merged/)."})


def _deep_update(base: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(base)
    out.update(extra or {})
    return out


@functools.cache
def _load_table(namespace: str) -> dict[str, Any]:
    path = RECIPE_TABLES[namespace]
    with open(path) as fh:
        table = yaml.safe_load(fh)
    for key in ("source", "sources", "common", "families", "methods", "models"):
        if key not in table:
            raise ValueError(f"{path}: the recipe table lacks its {key!r} section")
    return table


def recipe_names(namespace: str | None = "paper") -> list[str]:
    """Every recipe a table defines (SFT for each task x model, IT for each model); ``None``: every table's."""
    if namespace is None:
        return [name for ns in RECIPE_TABLES for name in recipe_names(ns)]
    from mmla.loaders.tasks import TASKS

    table = _load_table(namespace)
    names = []
    for model in table["models"]:
        names.extend(f"{namespace}/sft/{task}/{model}" for task in TASKS)
        names.append(f"{namespace}/it/{model}")
    return names


def _parse_name(name: str) -> tuple[dict[str, Any], str, str | None, str] | None:
    """(table, method, task, model) of a valid recipe name, else None."""
    namespace, _, rest = name.partition("/")
    parts = rest.split("/")
    valid = namespace in RECIPE_TABLES and (
        (len(parts) == 3 and parts[0] == "sft") or (len(parts) == 2 and parts[0] == "it")
    )
    if not valid:
        return None
    table = _load_table(namespace)
    method, model = parts[0], parts[-1]
    task = parts[1] if method == "sft" else None
    from mmla.loaders.tasks import TASKS

    if model not in table["models"] or (task is not None and task not in TASKS):
        return None
    return table, method, task, model


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, recipe_names(None), n=3, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    tables = ", ".join(f"{ns}/ ({path.name})" for ns, path in RECIPE_TABLES.items())
    return ValueError(
        f"unknown recipe {name!r}; recipes are named <table>/sft/<task>/<model> or <table>/it/<model>, "
        f"tables: {tables} in {RECIPES_DIR}.{hint}"
    )


def get_recipe(name: str) -> dict[str, Any]:
    """Resolve a recipe name to its argument values; unknown names raise with the closest matches."""
    parsed = _parse_name(name)
    if parsed is None:
        raise _unknown(name)
    table, method, task, model = parsed
    spec = table["models"][model]
    family = spec["family"]
    if family not in table["methods"][method]:
        raise ValueError(f"recipe table has no {method} hyperparameters for family {family!r}")
    out = _deep_update(table["common"], table["families"].get(family, {}).get("common"))
    out = _deep_update(out, table["methods"][method][family])
    out = _deep_update(out, spec.get("args"))
    key = f"sft/{task}/{model}" if task else f"it/{model}"
    out = _deep_update(out, (table.get("overrides") or {}).get(key))
    out["tasks"] = task if task else "all"
    return out


def recipe_source(name: str) -> str:
    """Where a recipe's values come from: its table's source and the method/family (and override) it uses."""
    parsed = _parse_name(name)
    if parsed is None:
        raise _unknown(name)
    table, method, task, model = parsed
    family = table["models"][model]["family"]
    text = f"{table['source']}; {table['sources'][f'{method}/{family}']}"
    key = f"sft/{task}/{model}" if task else f"it/{model}"
    if key in (table.get("overrides") or {}):
        text += f"; per-dataset values for {key} from the same source"
    return text


def make_parser():
    """The TrlParser of ``training/sft.py``."""
    from trl import ModelConfig, SFTConfig, TrlParser

    # No abbreviations: `--learning_rat 0.1` must be an error, not a silent `--learning_rate 0.1`.
    return TrlParser((MMLAArguments, SFTConfig, ModelConfig), allow_abbrev=False)


def _peek(argv: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _bf16_available() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def parse_args(argv: Sequence[str] | None = None):
    """Parse ``argv`` into ``(MMLAArguments, SFTConfig, ModelConfig)`` with recipe < config < CLI precedence."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    recipe = _peek(argv, "--recipe")
    config_path = _peek(argv, "--config")
    if recipe is None and config_path is not None:
        path = Path(config_path)
        if not path.is_file():
            raise FileNotFoundError(f"--config {config_path}: no such file")
        recipe = (yaml.safe_load(path.read_text()) or {}).get("recipe")
    # BF16 where the hardware has it (the paper trains in BF16); TRL's default (True) fails on CPU. The weights
    # follow it (--dtype auto: bfloat16 with --bf16, else float32): TRL's ModelConfig defaults to float32, which
    # loaded a 7B base in fp32 (twice the memory) and made autocast cast every frozen weight at every step.
    parser.set_defaults_with_config(bf16=_bf16_available(), dtype="auto")
    if recipe:
        unknown = parser.set_defaults_with_config(**get_recipe(recipe))
        if unknown:
            raise ValueError(f"recipe {recipe!r} sets unknown arguments: {unknown[::2]}")
    mmla_args, sft_args, model_args = parser.parse_args_and_config(argv)
    from mmla.eval.prompts import normalize_style

    mmla_args.prompt_style = normalize_style(mmla_args.prompt_style)  # a typo fails here, not mid-way through data
    if mmla_args.modalities is not None:  # and here, before the model loads
        from mmla.eval.arguments import check_modalities

        mmla_args.modalities = check_modalities(mmla_args.modalities, mmla_args.text_only,
                                                text_only_option="--text_only true")  # fmt: skip
    return mmla_args, sft_args, model_args


def training_modalities(adapter: Any, mmla_args: MMLAArguments) -> tuple[str, ...]:
    """What training shows the model: ``--modalities`` (checked against the family, as ``mmla eval`` does), or
    without it text for LLMs and ``--text_only true``, else all the family takes (video MLLMs: text, video)."""
    from mmla.eval.runner import resolve_modalities

    if mmla_args.modalities is not None:
        return resolve_modalities(adapter, mmla_args.modalities)
    text_only = (not adapter.is_multimodal) if mmla_args.text_only is None else mmla_args.text_only
    if not text_only and not adapter.is_multimodal:
        raise ValueError(f"{adapter.model_id} is a text-only model; pass --text_only true")
    return resolve_modalities(adapter, None, text_only)
