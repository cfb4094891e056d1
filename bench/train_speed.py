"""LoRA SFT speed through training/sft.py's own code path, against a plain PEFT loop in the same process.

* **toolkit**: ``training/sft.py``'s ``parse_args`` + ``build_trainer`` with a recipe's settings (default
  ``paper/sft/mintrec/qwen2-7b``: LoRA r 8 alpha 16 on all linear layers, dropout 0, lr 1e-4, cosine, bf16) and
  its automatic choices (attention: ``mmla_varlen`` padding-free batches where it runs; Liger where installed;
  gradient checkpointing by memory). Only two things are replaced: the weights are a random Qwen2-7B-shaped
  model (sft.py's ``MMLA_RANDOM_INIT=1`` mode, no download) and the rows are MMLA-shaped, pre-tokenized random
  ids with the prompt/answer lengths of the real training sets (``bench/mmla_train_lengths.json``), loss on the
  answer only (as the real rows). The batch size is ``--llm-batch`` (the recipe's 2 is far from what a GPU can
  take); ``--sft-args`` passes more options.
* **baseline**: a plain PEFT loop: LoRA r 8 on all linear layers, SDPA, AdamW, no TRL, dense rows of
  ``--baseline-len`` tokens (loss on every token, full logits), batch ``--baseline-batch``.

Both print real tokens/s, MFU = 6 * N * tokens/s / peak (N = all parameters, real tokens only; ``--peak-flops``,
default 989e12 = H100 SXM dense BF16) and the executed-FLOP utilisation (frozen base: forward + the input-gradient
backward, no weight gradients; LoRA's own forward/backward; attention of the real causal rows; the LM head only
where the loss reads it), and their ratio. The toolkit run also checks, in bf16 on the same model, that its
padding-free varlen loss and LoRA gradients equal padded SDPA's (loss within 1%, gradient cosine > 0.99).

``--profile`` runs ``--profile-steps`` more steps of each under ``torch.profiler`` and writes the top kernels
(name, share of CUDA time; CPU ops on a CPU run), kernel categories and the GPU busy fraction to ``--out``
(default ``$OUT``, else bench/results/profile) as ``profile_<run>.md`` and ``.json``.

    source bench/gpu_env.sh && python bench/train_speed.py --only llm --profile --json $OUT/train_speed.json
    python bench/train_speed.py --only llm --sft-args "--attn_implementation sdpa --gradient_checkpointing true"
    python bench/train_speed.py --tiny --profile     # CPU smoke test with tiny shapes (SDPA stand-in of varlen)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from profiling import StepProfiler, sync  # bench/ is on sys.path (the script's folder)

PEAK_BF16 = 989e12  # H100 SXM dense BF16
LENGTHS = Path(__file__).with_name("mmla_train_lengths.json")
DEFAULT_RECIPE = "paper/sft/mintrec/qwen2-7b"


# ----------------------------------------------------------------------------------------------- shapes and rows
def _qwen2_7b_config(tiny: bool) -> Any:
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)  # fmt: skip
    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                       rope_theta=1e6, tie_word_embeddings=False)  # fmt: skip


def mmla_lengths(n_rows: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n_rows`` (prompt, answer) token counts drawn from the real MMLA training rows."""
    rows = json.loads(LENGTHS.read_text())["rows"]
    rng = random.Random(seed)
    return [tuple(rows[rng.randrange(len(rows))]) for _ in range(n_rows)]  # type: ignore[misc]


def mmla_rows(lengths: list[tuple[int, int]], vocab: int, seed: int = 0) -> Any:
    """Pre-tokenized rows (random ids, never the pad id 0) with a completion mask over the answer."""
    from datasets import Dataset

    rng = random.Random(seed)
    ids = [[rng.randrange(10, vocab) for _ in range(p + a)] for p, a in lengths]
    return Dataset.from_dict({"input_ids": ids, "completion_mask": [[0] * p + [1] * a for p, a in lengths]})


# ----------------------------------------------------------------------------------------------- FLOPs
def flop_counts(cfg: Any, lora_r: int, lengths: list[int], scored_per_token: float) -> dict[str, float]:
    """Per real token: model FLOPs (6N) and executed FLOPs of a LoRA step on a frozen base.

    Executed = forward + input-gradient backward of every decoder linear layer (4 x its weights), LoRA's forward,
    input- and weight-gradient (3 x 2r(in+out) per LoRA layer), causal attention over the real rows (forward 4 x
    heads x head_dim x mean context, backward twice that) and the LM head (4 x V x h) at the fraction
    ``scored_per_token`` of tokens whose logits the loss reads. No recomputation (checkpointing is waste here).
    """
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    hd = getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads
    q, kv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    linear = layers * (h * q + 2 * h * kv + q * h + 3 * h * inter)
    lora_fwd = layers * 2 * lora_r * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + inter) + (inter + h))
    ctx = sum(n * (n + 1) / 2 for n in lengths) / max(1, sum(lengths))  # mean causal context of a token
    attn_fwd = layers * 4 * q * ctx
    head = 4 * cfg.vocab_size * h * scored_per_token
    n_total = (
        linear + cfg.vocab_size * h * (1 if cfg.tie_word_embeddings else 2) + layers * 2 * h + h
    )  # + norms (biases left out)
    return {
        "params": n_total,
        "model_flops_per_token": 6 * n_total,
        "executed_flops_per_token": 4 * linear + 3 * lora_fwd + 3 * attn_fwd + head,
    }


def _rates(tokens: float, seconds: float, flops: dict[str, float], peak: float) -> dict[str, float]:
    tps = tokens / seconds
    return {
        "tokens_per_s": round(tps, 1),
        "mfu_pct": round(100 * flops["model_flops_per_token"] * tps / peak, 2),
        "executed_util_pct": round(100 * flops["executed_flops_per_token"] * tps / peak, 2),
    }


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 1) if torch.cuda.is_available() else None


# ----------------------------------------------------------------------------------------------- toolkit run
class Windows:
    """Trainer callback: the timed window [warmup, warmup + timed] and then the profiled window."""

    def __init__(self, warmup: int, timed: int, profiler: StepProfiler | None, profile_steps: int) -> None:
        from transformers import TrainerCallback

        outer = self
        self.warmup, self.timed, self.profiler, self.profile_steps = warmup, timed, profiler, profile_steps
        self.t0 = self.t1 = 0.0
        self.tok0 = self.tok1 = 0

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
                step = state.global_step
                if step == outer.warmup:
                    sync()
                    outer.t0, outer.tok0 = time.perf_counter(), state.num_input_tokens_seen
                    if torch.cuda.is_available():
                        torch.cuda.reset_peak_memory_stats()
                elif step == outer.warmup + outer.timed:
                    sync()
                    outer.t1, outer.tok1 = time.perf_counter(), state.num_input_tokens_seen
                    outer.peak = _peak_gib()
                    if outer.profiler is not None:
                        outer.profiler.start()
                elif outer.profiler is not None and step == outer.warmup + outer.timed + outer.profile_steps:
                    outer.profiler.stop(outer.profile_steps)

        self.callback = _CB()
        self.peak: float | None = None


def check_varlen_equivalence(peft_model: Any, ds: Any, attn: str, n_rows: int = 16) -> dict[str, Any]:
    """Loss and LoRA gradients of padded SDPA vs the run's padding-free attention, same model and rows."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    base = peft_model.get_base_model()
    device = next(peft_model.parameters()).device
    rows = [
        {"input_ids": r["input_ids"], "labels": [t if m else -100 for t, m in zip(r["input_ids"], r["completion_mask"],
                                                                                 strict=True)]}
        for r in ds.select(range(min(n_rows, len(ds))))
    ]  # fmt: skip
    was_training = peft_model.training
    peft_model.train()
    out: dict[str, Any] = {}
    grads = {}
    for mode, impl, padding_free in (("padded_sdpa", "sdpa", False), ("padding_free", attn, True)):
        base.set_attn_implementation(impl)
        batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free)(rows)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items() if k != "seq_idx"}
        peft_model.zero_grad(set_to_none=True)
        loss = peft_model(**batch, use_cache=False).loss
        loss.backward()
        out[f"loss_{mode}"] = loss.detach().item()
        grads[mode] = {n: p.grad.float().flatten() for n, p in peft_model.named_parameters() if p.grad is not None}
    base.set_attn_implementation(attn)
    peft_model.zero_grad(set_to_none=True)
    peft_model.train(was_training)
    a, b = grads["padded_sdpa"], grads["padding_free"]
    cos = [float(torch.nn.functional.cosine_similarity(a[k], b[k], dim=0)) for k in a if a[k].abs().sum() > 0]
    rel = abs(out["loss_padding_free"] - out["loss_padded_sdpa"]) / abs(out["loss_padded_sdpa"])
    out.update(
        rel_loss_diff=rel,
        min_grad_cosine=min(cos) if cos else None,
        rows=len(rows),
        dtype=str(next(base.parameters()).dtype),
    )
    out["ok"] = rel <= 1e-2 and (not cos or min(cos) > 0.99)
    return out


def bench_toolkit(args: argparse.Namespace, cfg: Any, out_dir: Path, keep_lora_casts: bool = False) -> dict[str, Any]:
    """``keep_lora_casts``: the ablation of ``training/lora_casts.py`` (PEFT's input casts kept under autocast)."""
    import mmla.training.data as data_mod
    import mmla.training.lora_casts as lora_casts
    from mmla.loaders.tasks import resolve_tasks
    from mmla.training.attention import REFERENCE, is_varlen
    from mmla.training.config import get_recipe, parse_args
    from mmla.training.sft import RANDOM_INIT_ENV, build_trainer
    from mmla.training.testing import tiny_tokenizer

    cuda = torch.cuda.is_available()
    batch, steps = args.llm_batch, args.warmup + args.steps + (args.profile_steps if args.profile else 0)
    lengths = mmla_lengths(batch * (steps + 2), seed=0)
    ds = mmla_rows(lengths, cfg.vocab_size)
    recipe = get_recipe(args.recipe)
    tasks = resolve_tasks(recipe.get("tasks", "mintrec"))[:1]
    extra = shlex.split(args.sft_args or "")
    if not cuda and "--attn_implementation" not in extra:
        extra += ["--attn_implementation", REFERENCE]  # CPU smoke test of the GPU path: varlen's SDPA stand-in
    tmp = tempfile.mkdtemp(prefix="train-speed-")
    # training/sft.py's random-weights mode (MMLA_RANDOM_INIT=1): the model folder holds the config and a
    # tokenizer (its chat template, which sft.py checks for, and the pad id; the rows are pre-tokenized).
    model_dir = Path(tmp) / "qwen2-7b-shaped"
    cfg.save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    argv = [
        "--recipe", args.recipe, "--model_name_or_path", str(model_dir), "--output_dir", str(Path(tmp) / "out"),
        "--max_steps", str(steps), "--per_device_train_batch_size", str(batch),
        "--eval_metric_split", "none", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
        "--logging_steps", str(max(1, steps // 3)), "--disable_tqdm", "true",
        "--dataloader_num_workers", "2",
        # The synthetic rows are pre-tokenized; real rows are prompt/completion, for which TRL turns this on itself.
        "--completion_only_loss", "true",
        *extra,
    ]  # fmt: skip

    def fake_data(*a: Any, **k: Any) -> Any:
        return data_mod.TrainingData(train=ds, eval={}, tasks=tasks, train_counts={tasks[0].key: len(ds)})

    name = "toolkit_casts_kept" if keep_lora_casts else "toolkit"
    profiler = StepProfiler(name, out_dir, cuda) if args.profile else None
    windows = Windows(args.warmup, args.steps, profiler, args.profile_steps)
    with (
        _patched(os.environ, RANDOM_INIT_ENV, "1"),
        _patched(data_mod, "load_training_data", fake_data),
        _patched(lora_casts, "skip_lora_input_casts_under_autocast", lambda model: 0)
        if keep_lora_casts
        else contextlib.nullcontext(),
    ):
        mmla_args, sft_args, model_args = parse_args(argv)
        sft_args.include_num_input_tokens_seen = "non_padding"  # real tokens only (the CLI takes only true/false)
        trainer, _, _ = build_trainer(mmla_args, sft_args, model_args, argv)
    trainer.add_callback(windows.callback)
    trainer.train()
    dt, tokens = windows.t1 - windows.t0, windows.tok1 - windows.tok0
    speed = dict(trainer.mmla_speed)
    lora_r = trainer.model.peft_config["default"].r
    from trl.kernels.chunked_logprob import _use_triton

    per_row = [p + a for p, a in lengths]
    scored = sum(a for _, a in lengths) / sum(per_row) if _use_triton(trainer.model.device) else 1.0
    flops = flop_counts(cfg, lora_r, per_row, scored)
    res = {
        "run": "toolkit (training/sft.py)" + (", LoRA input casts kept (ablation)" if keep_lora_casts else ""),
        "recipe": args.recipe,
        "argv": argv[argv.index("--max_steps") :],
        "speed_settings": speed,
        "lora_r": lora_r,
        "lora_dropout": trainer.model.peft_config["default"].lora_dropout,
        "batch": batch,
        "mean_len": round(sum(per_row) / len(per_row), 1),
        "lm_head_positions": "answer tokens only" if scored < 1 else "all positions (CPU: TRL's chunked head)",
        "timed_steps": args.steps,
        "samples_per_s": round(args.steps * batch / dt, 2),
        **_rates(tokens, dt, flops, args.peak_flops),
        "params": int(flops["params"]),
        "peak_gib": windows.peak,
    }
    if is_varlen(speed["attn_implementation"]) and not speed["attn_implementation"].startswith("flash"):
        res["equivalence"] = check_varlen_equivalence(trainer.model, ds, speed["attn_implementation"])
    if profiler is not None and profiler.summary is not None:
        res["profile"] = {k: v for k, v in profiler.summary.items() if k != "top"}
    _release(trainer)
    del trainer
    _free()
    if cuda:
        res["allocated_after_release_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    return res


def _release(trainer: Any) -> None:
    """Drop the Trainer's and accelerate's references to the model and optimizer, so the baseline gets the GPU."""
    with contextlib.suppress(Exception):
        trainer.accelerator.free_memory()
    for name in ("model", "model_wrapped", "optimizer", "lr_scheduler", "train_dataset"):
        if hasattr(trainer, name):
            setattr(trainer, name, None)


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any):  # type: ignore[no-untyped-def]
    """``target.name = value`` (``target[name]`` for ``os.environ``) for the duration of the block."""
    env = target is os.environ
    old = target.get(name) if env else getattr(target, name)
    if env:
        target[name] = value
    else:
        setattr(target, name, value)
    try:
        yield
    finally:
        if env and old is None:
            target.pop(name, None)
        elif env:
            target[name] = old
        else:
            setattr(target, name, old)


# ----------------------------------------------------------------------------------------------- baseline
def bench_baseline(args: argparse.Namespace, cfg: Any, out_dir: Path) -> dict[str, Any]:
    """A plain PEFT loop: LoRA r 8 on all linear layers, SDPA, AdamW, dense rows, full logits, no TRL."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(
            cfg, dtype=torch.bfloat16 if cuda else torch.float32, attn_implementation="sdpa"
        )
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch, length = args.baseline_batch, args.baseline_len
    gen = torch.Generator(device=device).manual_seed(0)
    profiler = StepProfiler("baseline", out_dir, cuda) if args.profile else None
    total = args.warmup + args.steps + (args.profile_steps if args.profile else 0)
    t0 = t1 = 0.0
    peak = None
    for step in range(1, total + 1):
        ids = torch.randint(10, cfg.vocab_size, (batch, length), device=device, generator=gen)
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == args.warmup:
            sync()
            t0 = time.perf_counter()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
        elif step == args.warmup + args.steps:
            sync()
            t1 = time.perf_counter()
            peak = _peak_gib()
            if profiler is not None:
                profiler.start()
    if profiler is not None:
        profiler.stop(args.profile_steps)
    dt = t1 - t0
    flops = flop_counts(cfg, 8, [length] * batch, 1.0)
    res = {
        "run": "plain PEFT loop",
        "settings": f"LoRA r 8 all-linear, dropout 0, SDPA, AdamW, dense {length}-token rows, full logits, "
        f"no checkpointing",
        "batch": batch,
        "mean_len": length,
        "timed_steps": args.steps,
        "samples_per_s": round(args.steps * batch / dt, 2),
        **_rates(args.steps * batch * length, dt, flops, args.peak_flops),
        "params": int(flops["params"]),
        "peak_gib": peak,
    }
    if profiler is not None and profiler.summary is not None:
        res["profile"] = {k: v for k, v in profiler.summary.items() if k != "top"}
    del model, opt
    _free()
    return res


# ----------------------------------------------------------------------------------------------- video MLLM
def bench_video(tiny: bool, batch: int, steps: int, warmup: int, num_frames: int = 8) -> dict[str, Any]:
    """Qwen2-VL-7B-shaped model, 8-frame clips through VideoSFTCollator, SFTTrainer as sft.py builds it."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from trl import SFTConfig, SFTTrainer

    from mmla.eval.adapters import adapter_for
    from mmla.eval.prompts import build_messages, build_target
    from mmla.loaders.tasks import get_task
    from mmla.training.collators import VideoSFTCollator
    from mmla.training.sft import resolve_attn_implementation
    from mmla.training.testing import tiny_qwen2_vl

    cuda = torch.cuda.is_available()
    tmp = tempfile.mkdtemp()
    side = 56 if tiny else 448  # 448x448 = 256 merged tokens a frame pair (max_pixels of the recipe)
    proc_dir = tiny_qwen2_vl(Path(tmp) / "proc", max_pixels=side * side)  # the processor (tokenizer is tiny)
    processor = AutoProcessor.from_pretrained(proc_dir)
    if tiny:
        cfg = Qwen2VLConfig.from_pretrained(proc_dir)
    else:
        tiny_cfg = Qwen2VLConfig.from_pretrained(proc_dir)
        text = _qwen2_7b_config(False).to_dict()
        text["rope_scaling"] = {"type": "mrope", "mrope_section": [16, 24, 24]}
        vision = {"depth": 32, "embed_dim": 1280, "hidden_size": 3584, "num_heads": 16, "mlp_ratio": 4,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}  # fmt: skip
        token_ids = {k: getattr(tiny_cfg, k) for k in
                     ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}  # fmt: skip
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, **token_ids)
    attn = resolve_attn_implementation(None, text_only=False)
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = Qwen2VLForConditionalGeneration._from_config(
            cfg, dtype=torch.bfloat16 if cuda else torch.float32, attn_implementation=attn
        )
    n_params = sum(p.numel() for p in model.parameters())
    task = get_task("mintrec")
    n_rows = batch * (steps + 1)
    ds = Dataset.from_dict({
        "prompt": [build_messages(task, f"utterance number {i} of the benchmark", num_videos=1) for i in range(n_rows)],
        "completion": [[{"role": "assistant", "content": [{"type": "text", "text": build_target(task, i % 20)}]}]
                       for i in range(n_rows)],
    })  # fmt: skip

    class RandomClips(VideoSFTCollator):
        def _frames(self, row: dict[str, Any]) -> list[torch.Tensor]:
            return [torch.randint(0, 256, (num_frames, 3, side, side), dtype=torch.uint8)]

    collator = RandomClips(adapter_for(model, processor), num_frames=num_frames)
    windows = Windows(warmup, steps - warmup, None, 0)
    args = SFTConfig(
        output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-4,
        lr_scheduler_type="cosine", warmup_steps=0.1, bf16=cuda, gradient_checkpointing=False,
        logging_steps=max(1, steps // 2), report_to="none", save_strategy="no", disable_tqdm=True,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=2, remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
    )  # fmt: skip
    target = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=ds, data_collator=collator, processing_class=processor,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=target, task_type="CAUSAL_LM"),
        callbacks=[windows.callback],
    )  # fmt: skip
    trainer.train()
    dt = windows.t1 - windows.t0
    return {
        "run": "video SFTTrainer",
        "model": "Qwen2-VL-7B-shaped" if not tiny else "tiny Qwen2-VL",
        "params": n_params,
        "attn": attn,
        "batch": batch,
        "frames": f"{num_frames}x{side}x{side}",
        "samples_per_s": round((steps - warmup) * batch / dt, 2),
        "tokens_per_s": round((windows.tok1 - windows.tok0) / dt, 1),
        "peak_gib": windows.peak,
    }


# ----------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny shapes, few steps (CPU smoke test)")
    ap.add_argument("--only", choices=["llm", "video"], default=None)
    ap.add_argument("--recipe", default=DEFAULT_RECIPE, help="recipe of the toolkit run (paper/... or upstream/...)")
    ap.add_argument("--llm-batch", type=int, default=32, help="rows per step of the toolkit run")
    ap.add_argument("--sft-args", default="", help='more training/sft.py options, e.g. "--gradient_checkpointing true"')
    ap.add_argument("--baseline-batch", type=int, default=16)
    ap.add_argument("--baseline-len", type=int, default=256)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--ablate-lora-casts", action="store_true",
                    help="also run the toolkit with PEFT's LoRA input casts kept (training/lora_casts.py off)")  # fmt: skip
    ap.add_argument("--video-batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=25, help="timed steps (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--peak-flops", type=float, default=PEAK_BF16, help="peak dense FLOP/s of the GPU (H100: 989e12)")
    ap.add_argument("--profile", action="store_true", help="profile --profile-steps more steps of each LLM run")
    ap.add_argument("--profile-steps", type=int, default=3)
    ap.add_argument("--out", default=None, help="profile folder (default: $OUT, else bench/results/profile)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.tiny:
        args.steps, args.warmup, args.profile_steps = 3, 1, min(args.profile_steps, 2)
        args.llm_batch, args.baseline_batch, args.baseline_len, args.video_batch = 4, 4, 64, 2
    out_dir = Path(args.out or os.environ.get("OUT") or Path(__file__).parent / "results" / "profile")
    cfg = _qwen2_7b_config(args.tiny)
    results: list[dict[str, Any]] = []
    if args.only in (None, "llm"):
        results.append(bench_toolkit(args, cfg, out_dir))
        if args.ablate_lora_casts:
            results.append(bench_toolkit(args, cfg, out_dir, keep_lora_casts=True))
        if not args.no_baseline:
            results.append(bench_baseline(args, cfg, out_dir))
    if args.only in (None, "video"):
        results.append(bench_video(args.tiny, args.video_batch, args.warmup + args.steps, args.warmup))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    report: dict[str, Any] = {"device": device, "torch": torch.__version__, "peak_flops": args.peak_flops,
                              "results": results}  # fmt: skip
    llm = [r for r in results if "mfu_pct" in r]
    print(
        f"\nLoRA SFT speed on {device} ({args.steps} timed steps after {args.warmup} warm-up; peak {args.peak_flops:.3g})"
    )
    if llm:
        print("| run | batch x mean len | real tokens/s | samples/s | MFU % | executed-FLOP util % | peak GiB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for r in llm:
            print(f"| {r['run']} | {r['batch']} x {r['mean_len']} | {r['tokens_per_s']} | {r['samples_per_s']} "
                  f"| {r['mfu_pct']} | {r['executed_util_pct']} | {r['peak_gib']} |")  # fmt: skip
        base = [r for r in llm if r["run"] == "plain PEFT loop"]
        if base:
            ratio = llm[0]["tokens_per_s"] / base[0]["tokens_per_s"]
            report["toolkit_vs_baseline"] = round(ratio, 3)
            print(f"toolkit / plain loop (real tokens/s, = MFU ratio): {ratio:.3f}x")
        if args.ablate_lora_casts:
            ratio = llm[0]["tokens_per_s"] / llm[1]["tokens_per_s"]
            report["toolkit_vs_casts_kept"] = round(ratio, 3)
            print(f"toolkit / toolkit with LoRA input casts kept: {ratio:.3f}x")
        speed = llm[0].get("speed_settings")
        if speed:
            plan = speed.get("checkpointing_plan") or {}
            print(f"toolkit settings: attention {speed['attn_implementation']}, padding-free {speed['padding_free']}, "
                  f"sampling {speed['train_sampling_strategy']}, checkpointing {speed['gradient_checkpointing']}"
                  f" ({plan.get('reason', 'no GPU memory to plan with: TRL default')}), liger {speed['use_liger_kernel']}, "
                  f"LoRA dropout {speed['lora_dropout']}, LM head: {llm[0]['lm_head_positions']}, LoRA input casts "
                  f"{speed.get('lora_input_casts')}")  # fmt: skip
        eq = llm[0].get("equivalence")
        if eq:
            print(f"varlen vs padded SDPA ({eq['dtype']}, {eq['rows']} rows): loss {eq['loss_padding_free']:.5f} vs "
                  f"{eq['loss_padded_sdpa']:.5f} (rel {eq['rel_loss_diff']:.2e}), min LoRA grad cosine "
                  f"{eq['min_grad_cosine']}: {'OK' if eq['ok'] else 'MISMATCH'}")  # fmt: skip
        if args.profile:
            print(f"profiles: {out_dir}/profile_toolkit.md" + ("" if args.no_baseline else ", profile_baseline.md"))
    for r in results:
        if r["run"] == "video SFTTrainer":
            print(f"video: {r['model']} {r['frames']} batch {r['batch']}: {r['samples_per_s']} samples/s, "
                  f"peak {r['peak_gib']} GiB ({r['attn']})")  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
