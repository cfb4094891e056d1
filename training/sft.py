"""LoRA SFT (one task) and instruction tuning (several tasks) on MMLA, in the style of TRL's ``sft.py``.

```bash
accelerate launch -q --config_file training/recipes/accelerate/single_gpu.yaml training/sft.py \
    --recipe paper/sft/mintrec/qwen2-0.5b --data /path/to/release --output_dir runs/mintrec-qwen2-0.5b
accelerate launch -q training/sft.py --config my_run.yaml --learning_rate 2e-4    # CLI overrides the file
mmla train --recipe paper/it/qwen2-7b --data ./mmla --output_dir runs/it           # same main, in-process
mmla train --accelerate ddp --num-processes 4 --recipe ...                         # accelerate, one-line errors
torchrun --nproc_per_node 2 training/sft.py ... --use_cpu true                     # CPU processes (gloo)
```

Arguments are ``TrlParser`` over (:class:`~mmla.training.config.MMLAArguments`, ``SFTConfig``,
``ModelConfig``); ``--recipe`` picks a recipe table's hyperparameters as defaults; a ``--config`` YAML and
the command line override them, and automatic choices (attention, padding-free batches, Liger, length grouping,
gradient checkpointing, selection settings) apply only to fields neither of them set. Options are spelled out in
full.

Speed defaults (recorded under ``speed`` in ``run_config.json``): text models on a CUDA GPU train on padding-free
batches through torch's ``varlen_attn`` (``--attn_implementation mmla_varlen``, :mod:`mmla.training.attention`;
no length grouping then); TRL's fused LM head computes logits only at answer positions; gradient checkpointing
is off where the activations fit in the free GPU memory (:func:`choose_checkpointing`).

Selection: at each evaluation every process scores its share of the validation split
(:class:`~mmla.training.callbacks.MMLAAccuracyCallback`); ``eval_mmla_acc`` is the Trainer's
``metric_for_best_model`` and ``load_best_model_at_end`` loads the best checkpoint at the end.

Outputs in ``output_dir`` (claimed before the model loads and marked as an ``mmla train`` output): the
selected adapter (safetensors), ``checkpoint-*``, ``training_args.json`` (+ TRL's ``training_args.bin``),
``run_config.json`` (with the selected step), ``validation_curve.json``/``.png``, ``mmla_eval/step-*``,
``results.json`` (the ``mmla eval`` format) and, with ``--merge``, ``merged/``. Evaluate later with
``mmla eval --model <base> --adapter <output_dir>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("mmla.training")


def _cuda_with(modules: Sequence[str]) -> bool:
    """True on a CUDA machine where every optional speed-up package in ``modules`` is importable."""
    import torch

    return torch.cuda.is_available() and all(importlib.util.find_spec(m) is not None for m in modules)


def resolve_attn_implementation(requested: str | None, *, text_only: bool = True) -> str:
    """The attention of a run: the user's, else padding-free FlashAttention-2 wherever it runs, else SDPA.

    Text models on a CUDA GPU whose torch has ``varlen_attn`` (>= 2.10, sm80+) get
    :data:`mmla.training.attention.VARLEN` (no flash-attn wheel needed); otherwise FlashAttention-2 where the
    ``flash_attn`` package is installed (as the paper), else SDPA. The varlen names are registered with
    transformers here, so ``--attn_implementation mmla_varlen`` (or ``mmla_varlen_reference``, the SDPA stand-in
    that runs anywhere) loads like a built-in one.
    """
    from mmla.training.attention import REFERENCE, VARLEN, register_varlen_attention, varlen_unavailable_reason

    if requested == VARLEN and (reason := varlen_unavailable_reason()):
        raise ValueError(
            f"--attn_implementation {VARLEN}: {reason}; pass --attn_implementation {REFERENCE} (its SDPA stand-in, "
            "any device) or sdpa"
        )
    if requested in (VARLEN, REFERENCE):
        return register_varlen_attention(reference=requested == REFERENCE)
    if requested:
        return requested
    if text_only and varlen_unavailable_reason() is None:
        return register_varlen_attention()
    return "flash_attention_2" if _cuda_with(("flash_attn",)) else "sdpa"


def _is_multimodal(model_id: str | None, gguf_file: str | None) -> bool:
    """Whether the model's config names a multimodal family (read before loading; unknown: False)."""
    from transformers import PretrainedConfig

    from mmla.eval.adapters import adapter_class, resolve_model

    try:
        path, gguf = resolve_model(model_id, gguf_file)
        model_type = PretrainedConfig.get_config_dict(path, gguf_file=gguf)[0].get("model_type")
    except Exception:  # load_model reports a bad model with its own message
        return False
    return adapter_class(model_type).is_multimodal


def _settle_attn_implementation(model: Any, attn: str, *, automatic: bool, multimodal: bool) -> str:
    """An automatic varlen choice the loaded model cannot use (a multimodal model, fp32 weights, sliding windows)
    falls back to FlashAttention-2 (``flash_attn`` installed) or SDPA; a requested one is an error."""
    from mmla.training.attention import REFERENCE, VARLEN, config_unsupported_reason, varlen_unavailable_reason

    if not automatic and attn in (VARLEN, REFERENCE):
        reason = "a vision tower" if multimodal else config_unsupported_reason(model.config)
        if reason:
            raise ValueError(
                f"--attn_implementation {attn} supports text models with full causal attention, and this model "
                f"uses {reason}; pass --attn_implementation sdpa"
            )
    if not automatic or attn != VARLEN:
        return attn
    param = next(model.parameters(), None)
    reason = (
        ("a multimodal model (vision towers call attention their own way)" if multimodal else None)
        or varlen_unavailable_reason(param.dtype if param is not None else None)
        or config_unsupported_reason(model.config)
    )
    if reason is None:
        return attn
    fallback = "flash_attention_2" if _cuda_with(("flash_attn",)) else "sdpa"
    logger.warning("attention: %s, not %s (%s)", fallback, VARLEN, reason)
    model.set_attn_implementation(fallback)
    return fallback


def _drop_gguf_quantizer(model: Any) -> None:
    """GGUF weights are dequantized at load time; only a stale quantizer marker remains, which the Trainer
    reads as "quantized, not trainable". Clear it so the (full-precision) weights can carry a LoRA."""
    quantizer = getattr(model, "hf_quantizer", None)
    method = str(getattr(getattr(quantizer, "quantization_config", None), "quant_method", "")).lower()
    if quantizer is not None and "gguf" in method:
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config


def _has_chat_template(processor: Any) -> bool:
    tok = getattr(processor, "tokenizer", processor)
    return bool(getattr(processor, "chat_template", None) or getattr(tok, "chat_template", None))


RANDOM_INIT_ENV = "MMLA_RANDOM_INIT"
"""Benchmarks only (``bench/zero3_lora.py``): with ``MMLA_RANDOM_INIT=1``, ``--model_name_or_path`` is a folder of
config.json + processor files (no weights) and the model is built from the config with random weights."""


def _random_init_model(
    model_id: str, *, dtype: Any = None, attn_implementation: str | None = None, video_kwargs: Any = None, **_: Any
) -> Any:
    """``load_model``'s stand-in under ``MMLA_RANDOM_INIT=1``: ``from_config``, random weights, the family adapter.

    Under DeepSpeed ZeRO-3 (``zero3_init_flag``: an active ``HfDeepSpeedConfig``) transformers builds the model in
    ``deepspeed.zero.Init``: each process holds only its shard, so a 72B shape never materialises on one device.
    Otherwise it is built on this process's device.
    """
    import contextlib

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer
    from transformers.integrations import is_deepspeed_zero3_enabled

    from mmla.eval.adapters import _default_device, _resolve_dtype, adapter_class, adapter_for

    config = AutoConfig.from_pretrained(model_id)
    multimodal = adapter_class(config.model_type).is_multimodal
    device = _default_device()
    kwargs: dict[str, Any] = {"dtype": _resolve_dtype(dtype, device)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    logger.warning("%s=1: %s is built from its config with random weights (benchmarks only)", RANDOM_INIT_ENV, model_id)
    with contextlib.nullcontext() if is_deepspeed_zero3_enabled() else torch.device(device):
        model = (AutoModelForImageTextToText if multimodal else AutoModelForCausalLM).from_config(config, **kwargs)
    processor = (AutoProcessor if multimodal else AutoTokenizer).from_pretrained(model_id)
    return adapter_for(model.eval(), processor, model_id=model_id, video_kwargs=dict(video_kwargs or {}))


OUTPUT_KIND = "mmla train"
"""Marker kind of a training ``output_dir`` (``mmla.loaders.files.claim_output_dir``)."""


def _normalize_argv(argv: Sequence[str]) -> list[str]:
    """``--config=FILE`` -> ``--config FILE`` (TRL's parser only reads the separate form)."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("--config="):
            out += ["--config", arg.split("=", 1)[1]]
        else:
            out.append(arg)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _option_dests(parser: Any) -> dict[str, str]:
    """Every option string of the parser (``--lr_x``, ``--lr-x``, ``--no_x``) -> the field it sets."""
    return {opt: action.dest for opt, action in parser._option_string_actions.items()}


def check_argv(argv: Sequence[str], parser: Any) -> None:
    """Refuse options that are not spelled out in full.

    argparse would take a unique prefix (``--learning_rat 0.1`` sets ``learning_rate``): a typo then silently
    sets another option. Every ``--name`` must be an option of the parser, exactly.
    """
    known = set(_option_dests(parser)) | {"--config"}
    for arg in argv:
        if arg in ("-", "--") or not arg.startswith("-") or _is_number(arg):
            continue
        flag = arg.split("=", 1)[0]
        if flag in known:
            continue
        longs = sorted(k for k in known if k.startswith("--"))
        prefixed = [k for k in longs if k.startswith(flag)]
        close = prefixed[:3] or difflib.get_close_matches(flag, longs, n=3, cutoff=0.75)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ValueError(f"unknown option {flag}{hint}; options must be spelled out in full")


def read_config(path: str, parser: Any | None = None) -> dict[str, Any]:
    """The ``--config`` YAML as a mapping, or a one-line error naming the file and line.

    Checked before TRL reads it: invalid YAML, a top level that is not ``name: value`` pairs, and (with
    ``parser``) names that are no argument.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--config {path}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"--config {path}: not UTF-8 text (byte {err.start}); pass a YAML file") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(
            f"--config {where}: not valid YAML ({problem}); write one `argument: value` per line"
        ) from None
    if config is None:
        raise ValueError(f"--config {path}: the file is empty; write one `argument: value` per line")
    if not isinstance(config, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        kind = "a list" if isinstance(config, list) else f"a {type(config).__name__}"
        raise ValueError(
            f"--config {path}:{line}: the top level is {kind}, not a mapping; write one `argument: value` per line "
            "(e.g. `learning_rate: 1.0e-4`)"
        )
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if node is not None else {}
    dests = set(_option_dests(parser).values()) if parser is not None else None
    for key in config:
        if not isinstance(key, str):
            raise ValueError(f"--config {path}:{lines.get(key, '?')}: argument names are text, got {key!r}")
        if dests is not None and key != "env" and key not in dests:
            close = difflib.get_close_matches(key, sorted(dests), n=3, cutoff=0.75)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ValueError(f"--config {path}:{lines.get(key, '?')}: unknown argument {key!r}{hint}")
    return config


def explicit_options(argv: Sequence[str], parser: Any | None = None) -> set[str]:
    """Fields the user set: on the command line or in the ``--config`` YAML (recipe values do not count).

    Automatic choices (attention, padding-free batches, Liger, length grouping, gradient checkpointing,
    best-checkpoint selection) apply only to fields outside this set, so they never override the user.
    """
    if parser is None:
        from mmla.training.config import make_parser

        parser = make_parser()
    dests = _option_dests(parser)
    argv = _normalize_argv(argv)
    out = {dests[a.split("=", 1)[0]] for a in argv if a.startswith("--") and a.split("=", 1)[0] in dests}
    for i, arg in enumerate(argv[:-1]):
        if arg == "--config":
            out |= {k for k in read_config(argv[i + 1], parser) if k != "env"}
    return out


def claim_output(sft_args: Any, mmla_args: Any, model_args: Any) -> Path:
    """Check ``--output_dir`` before the model loads, then mark it as a training output.

    Every process checks (read only); after a barrier the main process creates and marks the folder, so no
    process sees it half-written. Refused: a file, a folder of user files, one holding the data or the model,
    a read-only one (:func:`mmla.loaders.files.claim_output_dir`). An earlier training output is continued.
    """
    from mmla.loaders.files import claim_output_dir, mark_output_dir, output_kind

    protected = [p for p in (mmla_args.data, model_args.model_name_or_path) if p and Path(p).expanduser().exists()]
    path = Path(sft_args.output_dir).expanduser()
    legacy = path.is_dir() and output_kind(path) is None and any(path.glob("checkpoint-*/trainer_state.json"))
    if legacy and not mmla_args.resume:
        raise ValueError(
            f"--output_dir {sft_args.output_dir} holds checkpoints of a run; pass --resume to continue it or "
            "choose another --output_dir"
        )
    if legacy:  # a run of a version without output markers: --resume says it is a training run; adopt it
        out = path.resolve()
        if not os.access(out, os.W_OK | os.X_OK):
            raise ValueError(f"--output_dir {sft_args.output_dir} is not writable. Choose a folder you can write to")
    else:
        out = claim_output_dir(path, OUTPUT_KIND, resume=True, protected=protected, option="--output_dir")
    _ = sft_args.device  # sets up the process group under a launcher
    state = getattr(sft_args, "distributed_state", None)
    if state is not None and state.num_processes > 1:
        state.wait_for_everyone()
    if sft_args.process_index == 0:
        out.mkdir(parents=True, exist_ok=True)
        if output_kind(out) != OUTPUT_KIND:
            mark_output_dir(out, OUTPUT_KIND)
    return out


def _checkpoint_to_resume(mmla_args: Any, sft_args: Any) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    out = sft_args.output_dir
    if sft_args.resume_from_checkpoint:
        return sft_args.resume_from_checkpoint
    last = get_last_checkpoint(out) if os.path.isdir(out) else None
    if mmla_args.resume:
        if last is None:
            raise FileNotFoundError(f"--resume: no checkpoint-* folder in {out}; start a run there first")
        logger.info("resuming from %s", last)
        return last
    if last is not None:
        raise ValueError(
            f"{out} already holds checkpoints of a run ({os.path.basename(last)}); pass --resume to continue it "
            "or choose another --output_dir"
        )
    return None


def build_trainer(mmla_args: Any, sft_args: Any, model_args: Any, argv: Sequence[str] = ()) -> tuple[Any, Any, Any]:
    """Load model + data and assemble the ``SFTTrainer``; returns ``(trainer, adapter, accuracy_callback)``.

    ``argv`` tells which fields the user set (command line or ``--config``): automatic choices leave those alone.
    """
    from peft import PeftModel
    from transformers import set_seed
    from trl import SFTTrainer, get_peft_config

    from mmla.eval.adapters import load_model, lora_targets_for
    from mmla.eval.arguments import EvalArguments
    from mmla.loaders.tasks import resolve_tasks
    from mmla.training.attention import is_varlen, varlen_unavailable_reason
    from mmla.training.callbacks import MMLAAccuracyCallback
    from mmla.training.config import training_modalities
    from mmla.training.data import load_training_data
    from mmla.training.lora_casts import skip_lora_input_casts_under_autocast

    set_seed(sft_args.seed)
    explicit = explicit_options(argv)
    specs = resolve_tasks(mmla_args.tasks)  # task typos fail here, with a did-you-mean
    # The model's config is read first only where it decides the choice (an automatic pick on a varlen GPU).
    decided = bool(mmla_args.text_only or model_args.attn_implementation or varlen_unavailable_reason())
    attn = resolve_attn_implementation(
        model_args.attn_implementation,
        text_only=decided or not _is_multimodal(model_args.model_name_or_path, mmla_args.gguf_file),
    )
    adapter = (_random_init_model if os.environ.get(RANDOM_INIT_ENV) == "1" else load_model)(
        model_args.model_name_or_path,
        gguf_file=mmla_args.gguf_file,
        dtype=model_args.dtype if model_args.dtype not in (None, "auto") else ("bfloat16" if sft_args.bf16 else None),
        trust_remote_code=bool(sft_args.trust_remote_code or getattr(model_args, "trust_remote_code", False)),
        attn_implementation=attn,
        video_kwargs={"fps": mmla_args.fps} if mmla_args.fps else {"num_frames": mmla_args.num_frames},
    )
    _drop_gguf_quantizer(adapter.model)
    if isinstance(adapter.model, PeftModel):
        raise ValueError("pass the base model to train a new LoRA adapter, not a PEFT model")
    if not _has_chat_template(adapter.processor) and not sft_args.chat_template_path:
        raise ValueError(
            f"model {adapter.model_id!r} has no chat template, so its prompt cannot match zero-shot evaluation; "
            "use an instruct/chat checkpoint or pass --chat_template_path <template.jinja>"
        )
    attn = _settle_attn_implementation(
        adapter.model, attn, automatic=not model_args.attn_implementation, multimodal=adapter.is_multimodal
    )
    shows = training_modalities(adapter, mmla_args)  # one-line error for a modality the family does not take
    text_only = shows == ("text",)
    adapter.model.train()

    eval_split = None if str(mmla_args.eval_metric_split).lower() in ("none", "") else mmla_args.eval_metric_split
    data = load_training_data(
        [t.key for t in specs],
        mmla_args.data,
        text_only=text_only,
        style=mmla_args.prompt_style,
        eval_split=eval_split,
        max_per_task=mmla_args.max_per_task,
        min_per_task=mmla_args.min_per_task,
        temperature=mmla_args.mix_temperature,
        limit_train=mmla_args.limit_train,
        limit_eval=mmla_args.limit_eval,
        seed=sft_args.seed,
    )

    # LoRA on the LM's linear layers (vision tower frozen).
    model_args.use_peft = True
    if not model_args.lora_target_modules:
        # The family's LM linear layers (eval adapter's lora_target_modules); a vision tower stays frozen.
        model_args.lora_target_modules = lora_targets_for(adapter.model.config)
    peft_config = get_peft_config(model_args)

    collator = None
    if not text_only:
        from mmla.training.collators import VideoSFTCollator

        sft_args.remove_unused_columns = False
        sft_args.dataset_kwargs = {**(sft_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
        sft_args.padding_free = False
        collator = VideoSFTCollator(
            adapter, num_frames=None if mmla_args.fps else mmla_args.num_frames, fps=mmla_args.fps,
            max_pixels=mmla_args.max_pixels, modalities=shows, allow_silent=mmla_args.allow_silent,
        )  # fmt: skip
    elif is_varlen(attn) and not explicit & {"padding_free", "max_length"}:
        # Padding-free batches (position_ids + cu_seq_lens, no pad tokens) need a varlen attention function:
        # torch's varlen_attn (mmla_varlen), its SDPA stand-in, or FlashAttention.
        sft_args.padding_free = True
    if text_only and _cuda_with(("liger_kernel",)) and "use_liger_kernel" not in explicit:
        # Liger's fused RMSNorm/SwiGLU/RoPE kernels: 32.9% -> 38.9% MFU on a Qwen2-7B LoRA run (docs/benchmarks.md).
        sft_args.use_liger_kernel = True
    if text_only and not sft_args.padding_free and "train_sampling_strategy" not in explicit:
        # Without a varlen kernel, batch rows of similar length: MMLA rows are ragged (100-220 tokens). (Text rows
        # only: video rows are tokenized by the collator, so the sampler has no lengths to group by.)
        sft_args.train_sampling_strategy = "group_by_length"
    if sft_args.padding_free and not sft_args.packing:
        sft_args.max_length = None  # MMLA prompts are short; TRL cannot truncate padding-free rows itself
    plan = None
    if text_only and not explicit & {"gradient_checkpointing", "activation_checkpointing"}:
        plan = choose_checkpointing(sft_args, model_args, adapter.model, data.train, adapter.processor)

    eval_dataset = None
    if data.eval and sft_args.eval_strategy != "no":
        from datasets import concatenate_datasets

        # One eval set (not a dict): a dict makes the Trainer evaluate, and call callbacks, once per task.
        eval_dataset = concatenate_datasets(list(data.eval.values()))
    elif sft_args.eval_strategy != "no":
        logger.warning("no validation data: evaluation and best-checkpoint selection are off")
        sft_args.eval_strategy = "no"

    callbacks = []
    acc_cb = None
    if eval_split is not None and sft_args.eval_strategy != "no":
        eval_args = EvalArguments(
            tasks=",".join(t.key for t in data.tasks),
            data=mmla_args.data,
            split=eval_split,
            mode=mmla_args.eval_mode,
            batch_size=sft_args.per_device_eval_batch_size,
            limit=mmla_args.eval_limit if mmla_args.eval_limit is not None else mmla_args.limit_eval,
            text_only=text_only,
            prompt_style=mmla_args.prompt_style,
            modalities=",".join(shows),
            allow_silent=mmla_args.allow_silent and "audio" in shows,
            **({"fps": mmla_args.fps} if mmla_args.fps else {"num_frames": mmla_args.num_frames}),
        )
        method = "it" if len(data.tasks) > 1 else "sft"
        acc_cb = MMLAAccuracyCallback(eval_args, adapter.processor, sft_args.output_dir, method)
        callbacks.append(acc_cb)
        configure_selection(sft_args, explicit)

    trainer = SFTTrainer(
        model=adapter.model,
        args=sft_args,
        train_dataset=data.train,
        eval_dataset=eval_dataset,
        processing_class=adapter.processor,
        data_collator=collator,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    # Under mixed precision, PEFT's fp32 casts of LoRA inputs are undone by autocast (training/lora_casts.py).
    # DeepSpeed/FSDP cast the adapter with the model, so there is nothing to skip; without autocast, neither.
    autocast = (sft_args.bf16 or sft_args.fp16) and not (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled)
    skipped_casts = skip_lora_input_casts_under_autocast(trainer.model) if autocast else 0
    trainer.mmla_tasks = [t.key for t in data.tasks]  # for the final report
    trainer.mmla_modalities = list(shows)  # what the model was shown (run_config.json; results.json has it too)
    trainer.mmla_speed = {  # what the automatic choices gave (run_config.json)
        "attn_implementation": attn,
        "padding_free": bool(sft_args.padding_free),
        "train_sampling_strategy": str(sft_args.train_sampling_strategy),
        "gradient_checkpointing": bool(sft_args.gradient_checkpointing),
        "checkpointing_plan": plan.as_dict() if plan is not None else None,
        "use_liger_kernel": bool(sft_args.use_liger_kernel),
        "lora_dropout": model_args.lora_dropout,
        "weights_dtype": str(next(adapter.model.parameters()).dtype).removeprefix("torch."),
        "lora_input_casts": f"skipped under autocast ({skipped_casts} layers)" if skipped_casts else "kept",
    }
    if acc_cb is not None:
        acc_cb.trainer = trainer  # generation on the unwrapped (ZeRO-3: gathered) model; metrics via trainer.log
    if mmla_args.merge and trainer.is_deepspeed_enabled:
        stage = getattr(getattr(trainer.accelerator.state, "deepspeed_plugin", None), "zero_stage", None)
        if stage == 3:
            raise ValueError(
                "--merge needs the full weights in one process, which ZeRO-3 shards; train without --merge, then "
                "merge the saved adapter on one device (PeftModel.from_pretrained(...).merge_and_unload())"
            )
    return trainer, adapter, acc_cb


def gpu_free_bytes(sft_args: Any) -> int | None:
    """Free memory of this process's GPU with the model loaded; ``None`` where an estimate cannot decide (no
    CUDA, or DeepSpeed/FSDP, which place the weights only when the Trainer starts)."""
    import torch

    if not torch.cuda.is_available() or sft_args.deepspeed or sft_args.fsdp:
        return None
    device = sft_args.device if sft_args.device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return int(torch.cuda.mem_get_info(device)[0])


def row_token_lengths(rows: Any, processor: Any) -> list[int]:
    """Tokens of every training row (prompt + completion through the chat template, as TRL tokenizes them)."""
    if "input_ids" in rows.column_names:
        return [len(ids) for ids in rows["input_ids"]]
    tok = getattr(processor, "tokenizer", processor)
    texts = [
        tok.apply_chat_template(p + c, tokenize=False) for p, c in zip(rows["prompt"], rows["completion"], strict=True)
    ]
    return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]


def choose_checkpointing(sft_args: Any, model_args: Any, model: Any, rows: Any, processor: Any) -> Any:
    """Gradient checkpointing off where a micro-batch's activations fit in the free GPU memory, else on.

    Called only for fields the user did not set. Where nothing can be measured (CPU, DeepSpeed, FSDP), TRL's
    default (on) stays. Returns the :class:`~mmla.training.attention.CheckpointingPlan`, or ``None``.
    """
    from mmla.training.attention import batch_tokens_bound, plan_checkpointing

    free = gpu_free_bytes(sft_args)
    if free is None or not len(rows):
        return None
    lengths = row_token_lengths(rows, processor)
    if sft_args.max_length and not sft_args.padding_free:
        lengths = [min(n, sft_args.max_length) for n in lengths]
    tokens = batch_tokens_bound(lengths, sft_args.per_device_train_batch_size, padding_free=sft_args.padding_free)
    param = next(model.parameters())
    plan = plan_checkpointing(
        model.config,
        batch_tokens=tokens,
        free_bytes=free,
        dtype_bytes=2 if sft_args.bf16 or sft_args.fp16 else param.element_size(),
        lora_dropout=model_args.lora_dropout or 0.0,
    )
    sft_args.activation_checkpointing = sft_args.gradient_checkpointing = plan.checkpointing
    logger.info("gradient checkpointing %s: %s", "on" if plan.checkpointing else "off", plan.reason)
    return plan


def configure_selection(sft_args: Any, explicit: set[str]) -> None:
    """Best checkpoint by validation ACC through the Trainer: ``metric_for_best_model="eval_mmla_acc"``,
    ``load_best_model_at_end``, and a checkpoint at every evaluation, for each field the user did not set.

    The Trainer then keeps the best checkpoint (``save_total_limit`` never deletes it), records it in
    ``trainer_state.json`` (so ``--resume`` continues the selection) and loads it at the end, in every process.
    Where the user's own save settings leave evaluations without a checkpoint (``--save_strategy no``), the
    last step is kept, with a warning; with ``--load_best_model_at_end true`` set too, that is an error.
    """
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy

    from mmla.training.callbacks import METRIC

    if "metric_for_best_model" not in explicit:
        sft_args.metric_for_best_model = METRIC
        if "greater_is_better" not in explicit:
            sft_args.greater_is_better = True
    user_load_best = "load_best_model_at_end" in explicit
    if user_load_best and not sft_args.load_best_model_at_end:
        return
    if sft_args.save_strategy == SaveStrategy.BEST:
        sft_args.load_best_model_at_end = True
        return
    eval_strategy = IntervalStrategy(sft_args.eval_strategy)
    steps = eval_strategy == IntervalStrategy.STEPS
    if "save_strategy" not in explicit:
        sft_args.save_strategy = SaveStrategy(eval_strategy.value)
    if steps and "save_steps" not in explicit:
        sft_args.save_steps = sft_args.eval_steps
    save = SaveStrategy(sft_args.save_strategy)
    ok = save.value == eval_strategy.value and (not steps or sft_args.eval_steps % sft_args.save_steps == 0)
    if ok:
        sft_args.load_best_model_at_end = True
        return
    given = f"--save_strategy {save.value}" + (f" --save_steps {sft_args.save_steps}" if save == "steps" else "")
    need = f"--eval_strategy {eval_strategy.value}" + (f" --eval_steps {sft_args.eval_steps}" if steps else "")
    if user_load_best:
        raise ValueError(
            f"--load_best_model_at_end needs a checkpoint at every evaluation ({need}), but {given} was set; "
            "drop it, or pass --save_strategy best"
        )
    logger.warning(
        "%s keeps no checkpoint at every evaluation (%s): the final adapter is the last step's, not the best "
        "by validation ACC (drop %s or pass --save_strategy best to select)", given, need, given.split()[0],
    )  # fmt: skip


def selected_checkpoint(trainer: Any, acc_cb: Any) -> dict[str, Any]:
    """The step whose weights the run saves: the Trainer's best checkpoint, else the last step."""
    state, args = trainer.state, trainer.args
    accs = {p["step"]: p["acc"] for p in (acc_cb.curve if acc_cb is not None else [])}
    if args.load_best_model_at_end and state.best_model_checkpoint:
        step = state.best_global_step or int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])
        return {
            "step": step,
            "rule": f"best {args.metric_for_best_model}",
            "metric": state.best_metric,
            "acc": accs.get(step),
            "checkpoint": Path(state.best_model_checkpoint).name,
        }
    if args.load_best_model_at_end:
        logger.warning("no checkpoint was recorded as best; the final adapter is the last step's")
    return {"step": state.global_step, "rule": "last step", "metric": None, "acc": accs.get(state.global_step)}


def finalize(trainer: Any, adapter: Any, acc_cb: Any, mmla_args: Any, sft_args: Any, model_args: Any) -> dict | None:
    """Save the selected adapter, the JSON args, results.json and (``--merge``) the merged model.

    Collective: every process calls it (saving under ZeRO-3 and scoring another split are collective);
    the main process writes and returns the results, the others return None.
    """
    import copy

    from mmla.loaders.files import make_temp_dir, replace_dir_atomic, write_json_atomic
    from mmla.training.callbacks import EVAL_DIR

    out = Path(sft_args.output_dir)
    model = trainer.model
    selected = selected_checkpoint(trainer, acc_cb)
    rank, world = trainer.args.process_index, trainer.args.world_size
    logger.info(
        "process %d/%d: selected step %d (%s%s)", rank, world, selected["step"], selected["rule"],
        "" if selected["acc"] is None else f", validation ACC {selected['acc']:.2f}",
    )  # fmt: skip
    trainer.save_model(str(out))
    results = None
    if acc_cb is not None:
        step = selected["step"]
        final_split = mmla_args.final_eval_split or acc_cb.split
        if final_split == acc_cb.split and step in acc_cb.results:
            results = copy.deepcopy(acc_cb.results[step])
        else:
            # Another split, a last step that was not evaluated, or a resumed run whose best step was scored
            # before the restart (its cached predictions are reused). Every process takes part.
            where = (
                acc_cb.eval_dir(step) if final_split == acc_cb.split else out / EVAL_DIR / f"{final_split}-step-{step}"
            )
            results = acc_cb.score(model, step, args=trainer.args, output_dir=where, split=final_split)
    if not trainer.is_world_process_zero():
        return None
    write_json_atomic(out / "training_args.json", json.loads(sft_args.to_json_string()))
    write_json_atomic(
        out / "run_config.json",
        {
            "mmla": dataclasses.asdict(mmla_args),
            "model": {k: v for k, v in dataclasses.asdict(model_args).items() if k != "config"},
            "selected": selected,
            "num_processes": world,
            "tasks": trainer.mmla_tasks,
            "modalities": getattr(trainer, "mmla_modalities", None),
            "speed": getattr(trainer, "mmla_speed", None),
        },
    )
    if results is not None:
        results.update(
            {
                "method": "it" if len(trainer.mmla_tasks) > 1 else "sft",
                "model": adapter.model_id,
                "base_model": adapter.model_id,
                "adapter": str(out),
                "selected_step": selected["step"],
            }
        )
        write_json_atomic(out / "results.json", results)
        logger.info("final %s ACC %.2f -> %s", results.get("split"), results["overall"]["acc"], out / "results.json")
    if mmla_args.merge:
        merged = model.merge_and_unload()
        tmp = make_temp_dir(out, ".merged.tmp-")
        merged.save_pretrained(tmp)
        adapter.processor.save_pretrained(tmp)
        replace_dir_atomic(tmp, out / "merged")
    return results


def run(argv: Sequence[str] | None = None) -> dict | None:
    """Parse ``argv``, train, select, save and report; returns the final results dict (main process)."""
    from mmla.training.config import make_parser, parse_args

    argv = _normalize_argv(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    check_argv(argv, parser)
    for i, arg in enumerate(argv[:-1]):
        if arg == "--config":
            read_config(argv[i + 1], parser)  # one-line errors before TRL reads it
    mmla_args, sft_args, model_args = parse_args(argv)
    claim_output(sft_args, mmla_args, model_args)
    resume = _checkpoint_to_resume(mmla_args, sft_args)
    trainer, adapter, acc_cb = build_trainer(mmla_args, sft_args, model_args, argv)
    trainer.train(resume_from_checkpoint=resume)
    logger.info(
        "process %d/%d: trained to step %d (epoch %.2f)",
        trainer.args.process_index, trainer.args.world_size, trainer.state.global_step, trainer.state.epoch or 0.0,
    )  # fmt: skip
    results = finalize(trainer, adapter, acc_cb, mmla_args, sft_args, model_args)
    if hasattr(trainer, "end"):
        trainer.end()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except (ValueError, KeyError, FileNotFoundError) as err:
        # A user error (recipe, task, data, checkpoint, output folder): one clear line; MMLA_DEBUG=1 shows
        # the traceback.
        if os.environ.get("MMLA_DEBUG"):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"training/sft.py: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
