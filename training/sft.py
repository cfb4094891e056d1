"""LoRA SFT (one task) and instruction tuning (several tasks) on MMLA, in the style of TRL's ``sft.py``.

```bash
accelerate launch --config_file training/recipes/accelerate/single_gpu.yaml training/sft.py \
    --recipe paper/sft/mintrec/qwen2-0.5b --data /path/to/release --output_dir runs/mintrec-qwen2-0.5b
accelerate launch training/sft.py --config my_run.yaml --learning_rate 2e-4        # CLI overrides the file
mmla train --recipe paper/it/qwen2-7b --data ./mmla --output_dir runs/it               # same main, in-process
```

Arguments are ``TrlParser`` over (:class:`~mmla.training.config.MMLAArguments`, ``SFTConfig``,
``ModelConfig``); ``--recipe`` picks the paper's hyperparameters from ``recipes/paper.yaml`` as defaults.
Outputs in ``output_dir``: the selected adapter (safetensors; the best by validation ACC when selection
is on, also kept in ``best/``), ``training_args.json`` (+ TRL's ``training_args.bin``), ``run_config.json``,
``validation_curve.json``/``.png``, ``results.json`` (the ``mmla eval`` format) and, with ``--merge``,
``merged/``. Evaluate later with ``mmla eval --model <base> --adapter <output_dir>``.
"""

from __future__ import annotations

import dataclasses
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


def resolve_attn_implementation(requested: str | None) -> str:
    """FlashAttention-2 where ``flash_attn`` and a GPU are there (as the paper), else SDPA."""
    if requested:
        return requested
    return "flash_attention_2" if _cuda_with(("flash_attn",)) else "sdpa"


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


def _explicit(argv: Sequence[str], name: str) -> bool:
    flag = f"--{name}"
    return any(a == flag or a.startswith(flag + "=") for a in argv)


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
    """Load model + data and assemble the ``SFTTrainer``; returns ``(trainer, adapter, accuracy_callback)``."""
    from peft import PeftModel
    from transformers import set_seed
    from trl import SFTTrainer, get_peft_config

    from mmla.eval.adapters import load_model, lora_targets_for
    from mmla.loaders.tasks import resolve_tasks
    from mmla.training.callbacks import MMLAAccuracyCallback
    from mmla.training.data import load_training_data

    set_seed(sft_args.seed)
    specs = resolve_tasks(mmla_args.tasks)  # task typos fail here, with a did-you-mean
    attn = resolve_attn_implementation(model_args.attn_implementation)
    adapter = load_model(
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
    text_only = (not adapter.is_multimodal) if mmla_args.text_only is None else mmla_args.text_only
    if not text_only and not adapter.is_multimodal:
        raise ValueError(f"{adapter.model_id} is a text-only model; pass --text_only true")
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
            max_pixels=mmla_args.max_pixels,
        )  # fmt: skip
    elif attn.startswith("flash_attention") and not _explicit(argv, "padding_free"):
        # Padding-free batches (position_ids, no pad tokens) need a varlen attention kernel: only with FA2/3.
        sft_args.padding_free = True
    if text_only and _cuda_with(("liger_kernel",)) and not _explicit(argv, "use_liger_kernel"):
        # Liger's fused RMSNorm/SwiGLU/RoPE kernels: 32.9% -> 38.9% MFU on a Qwen2-7B LoRA run (docs/benchmarks.md).
        sft_args.use_liger_kernel = True
    if text_only and not sft_args.padding_free and not _explicit(argv, "train_sampling_strategy"):
        # Without a varlen kernel, batch rows of similar length: MMLA rows are ragged (100-220 tokens). (Text rows
        # only: video rows are tokenized by the collator, so the sampler has no lengths to group by.)
        sft_args.train_sampling_strategy = "group_by_length"
    if sft_args.padding_free and not sft_args.packing:
        sft_args.max_length = None  # MMLA prompts are short; TRL cannot truncate padding-free rows itself

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
        acc_cb = MMLAAccuracyCallback(
            tasks=[t.key for t in data.tasks],
            data=mmla_args.data,
            processing_class=adapter.processor,
            output_dir=sft_args.output_dir,
            split=eval_split,
            mode=mmla_args.eval_mode,
            batch_size=sft_args.per_device_eval_batch_size,
            limit=mmla_args.eval_limit if mmla_args.eval_limit is not None else mmla_args.limit_eval,
            text_only=text_only,
            prompt_style=mmla_args.prompt_style,
            method="it" if len(data.tasks) > 1 else "sft",
            video_kwargs={"fps": mmla_args.fps} if mmla_args.fps else {"num_frames": mmla_args.num_frames},
        )
        callbacks.append(acc_cb)

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
    trainer.mmla_tasks = [t.key for t in data.tasks]  # for the final report
    return trainer, adapter, acc_cb


def _load_best(model: Any, best_dir: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = load_file(str(best_dir / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, state)
    missing = [k for k in getattr(result, "unexpected_keys", []) or []]
    if missing:
        raise RuntimeError(f"best adapter in {best_dir} does not match the model: {missing[:3]}")


def finalize(trainer: Any, adapter: Any, acc_cb: Any, mmla_args: Any, sft_args: Any, model_args: Any) -> dict | None:
    """Save the selected adapter, the JSON args, results.json and (``--merge``) the merged model."""
    from mmla.loaders.files import write_json_atomic

    out = Path(sft_args.output_dir)
    model = trainer.model
    if acc_cb is not None and acc_cb.best is not None and acc_cb.best_dir.is_dir():
        _load_best(model, acc_cb.best_dir)
        logger.info("selected step %d (validation ACC %.2f)", acc_cb.best["step"], acc_cb.best["acc"])
    trainer.save_model(str(out))
    if not trainer.is_world_process_zero():
        return None
    write_json_atomic(out / "training_args.json", json.loads(sft_args.to_json_string()))
    write_json_atomic(
        out / "run_config.json",
        {
            "mmla": dataclasses.asdict(mmla_args),
            "model": {k: v for k, v in dataclasses.asdict(model_args).items() if k != "config"},
            "selected": acc_cb.best if acc_cb else None,
            "tasks": trainer.mmla_tasks,
        },
    )
    results = None
    if acc_cb is not None and acc_cb.best is not None:
        final_split = mmla_args.final_eval_split or acc_cb.split
        if final_split == acc_cb.split:
            results = json.loads((acc_cb.best_dir / "results.json").read_text())
        else:
            acc_cb.split = final_split
            results = acc_cb.score(model, trainer.state.global_step)
        results.update(
            {
                "method": "it" if len(trainer.mmla_tasks) > 1 else "sft",
                "model": adapter.model_id,
                "base_model": adapter.model_id,
                "adapter": str(out),
                "selected_step": acc_cb.best["step"],
            }
        )
        write_json_atomic(out / "results.json", results)
        logger.info("final %s ACC %.2f -> %s", results.get("split"), results["overall"]["acc"], out / "results.json")
    if mmla_args.merge:
        merged = model.merge_and_unload()
        tmp = out / ".merged.tmp"
        merged.save_pretrained(tmp)
        adapter.processor.save_pretrained(tmp)
        from mmla.training.callbacks import replace_dir_atomic

        replace_dir_atomic(tmp, out / "merged")
    return results


def run(argv: Sequence[str] | None = None) -> dict | None:
    """Parse ``argv``, train, select, save and report; returns the final results dict (main process)."""
    from mmla.training.config import parse_args

    argv = list(sys.argv[1:] if argv is None else argv)
    mmla_args, sft_args, model_args = parse_args(argv)
    resume = _checkpoint_to_resume(mmla_args, sft_args)
    trainer, adapter, acc_cb = build_trainer(mmla_args, sft_args, model_args, argv)
    trainer.train(resume_from_checkpoint=resume)
    results = finalize(trainer, adapter, acc_cb, mmla_args, sft_args, model_args)
    if hasattr(trainer, "end"):
        trainer.end()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(argv)
    except (ValueError, KeyError, FileNotFoundError) as err:
        # A user error (recipe, task, data, checkpoint): one clear line; MMLA_DEBUG=1 shows the traceback.
        if os.environ.get("MMLA_DEBUG"):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"training/sft.py: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
