"""LoRA SFT speed through the user code path (TRL SFTTrainer as built by mmla.training), on one GPU.

* LLM: a Qwen2-7B-shaped model (random bf16 weights), LoRA r 8 on all linear layers, on MMLA-shaped
  ragged rows (prompt/answer lengths of the real training sets: bench/mmla_train_lengths.json). Reports
  real (non-pad) tokens/s, samples/s, MFU = 6 * N * tokens/s / 989 TFLOP/s (N = all parameters) and peak
  memory. Padding-free batches when FlashAttention-2 is importable (as training/sft.py does).
* MLLM: a Qwen2-VL-7B-shaped model with 8-frame clips through mmla.training.collators.VideoSFTCollator
  (samples/s, peak memory).

    python bench/train_speed.py                 # H100, both models
    python bench/train_speed.py --tiny          # CPU smoke test with tiny shapes
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import torch

PEAK_BF16 = 989e12  # H100 SXM dense BF16
LENGTHS = Path(__file__).with_name("mmla_train_lengths.json")


class Timer:
    """Trainer callback: wall time and real tokens between the end of the warm-up steps and the last step."""

    def __init__(self, warmup: int) -> None:
        from transformers import TrainerCallback

        outer = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                if state.global_step == outer.warmup:
                    outer.t0, outer.tok0 = time.perf_counter(), state.num_input_tokens_seen
                    if torch.cuda.is_available():
                        torch.cuda.reset_peak_memory_stats()
                outer.t1, outer.tok1, outer.steps = time.perf_counter(), state.num_input_tokens_seen, state.global_step

        self.warmup, self.callback = warmup, _CB()
        self.t0 = self.t1 = 0.0
        self.tok0 = self.tok1 = self.steps = 0


def _qwen2_7b_config(tiny: bool) -> Any:
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)  # fmt: skip
    return Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                       num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                       rope_theta=1e6, tie_word_embeddings=False)  # fmt: skip


def _attn() -> str:
    from mmla.training.sft import resolve_attn_implementation

    return resolve_attn_implementation(None)


def _args(out: str, batch: int, steps: int, device_bf16: bool, **kw: Any) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-4,
        lr_scheduler_type="cosine", warmup_steps=0.1, bf16=device_bf16, gradient_checkpointing=False,
        logging_steps=max(1, steps // 2), report_to="none", save_strategy="no", disable_tqdm=True,
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=2, **kw,
    )  # fmt: skip


def bench_llm(tiny: bool, batch: int, steps: int, warmup: int, liger: bool = False) -> dict[str, Any]:
    import tempfile

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import SFTTrainer

    cuda = torch.cuda.is_available()
    cfg = _qwen2_7b_config(tiny)
    attn = _attn()
    cfg._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if cuda else torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    lengths = json.loads(LENGTHS.read_text())["rows"]
    rng = random.Random(0)
    n_rows = batch * (steps + 1)
    picks = [lengths[rng.randrange(len(lengths))] for _ in range(n_rows)]
    rows = {"input_ids": [], "completion_mask": []}
    for p, a in picks:
        rows["input_ids"].append([rng.randrange(10, cfg.vocab_size) for _ in range(p + a)])
        rows["completion_mask"].append([0] * p + [1] * a)
    ds = Dataset.from_dict(rows)
    from mmla.training.testing import tiny_tokenizer

    tok: PreTrainedTokenizerFast = tiny_tokenizer()  # only its pad id is used (rows are pre-tokenized)
    padding_free = attn.startswith("flash_attention")
    timer = Timer(warmup)
    trainer = SFTTrainer(
        model=model,
        args=_args(
            tempfile.mkdtemp(),
            batch,
            steps,
            cuda,
            padding_free=padding_free,
            max_length=None,
            train_sampling_strategy="random" if padding_free else "group_by_length",  # as training/sft.py
            use_liger_kernel=liger,
        ),
        train_dataset=ds,
        processing_class=tok,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=[timer.callback],
    )
    trainer.train()
    dt = timer.t1 - timer.t0
    tokens = timer.tok1 - timer.tok0
    measured = timer.steps - warmup
    tps = tokens / dt
    return {
        "model": "Qwen2-7B-shaped" if not tiny else "tiny Qwen2",
        "params": n_params,
        "attn": attn
        + (" + padding-free" if padding_free else " + length-grouped batches")
        + (" + liger" if liger else ""),
        "batch": batch,
        "mean_len": round(sum(p + a for p, a in picks) / len(picks), 1),
        "tokens_per_s": round(tps, 1),
        "samples_per_s": round(measured * batch / dt, 2),
        "mfu_pct": round(100 * 6 * n_params * tps / PEAK_BF16, 2),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None,
    }


def bench_video(tiny: bool, batch: int, steps: int, warmup: int, num_frames: int = 8) -> dict[str, Any]:
    import tempfile

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from trl import SFTTrainer

    from mmla.eval.adapters import adapter_for
    from mmla.eval.prompts import build_messages, build_target
    from mmla.loaders.tasks import get_task
    from mmla.training.collators import VideoSFTCollator
    from mmla.training.testing import tiny_qwen2_vl

    cuda = torch.cuda.is_available()
    tmp = tempfile.mkdtemp()
    side = 56 if tiny else 448  # 448x448 = 256 merged tokens a frame pair (max_pixels of the recipe)
    proc_dir = tiny_qwen2_vl(Path(tmp) / "proc", max_pixels=side * side)  # the processor (tokenizer is tiny)
    from transformers import AutoProcessor

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
    attn = "flash_attention_2" if _attn().startswith("flash") else "sdpa"
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
    timer = Timer(warmup)
    args = _args(tmp, batch, steps, cuda, remove_unused_columns=False,
                 dataset_kwargs={"skip_prepare_dataset": True})  # fmt: skip
    target = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=ds, data_collator=collator, processing_class=processor,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=target, task_type="CAUSAL_LM"),
        callbacks=[timer.callback],
    )  # fmt: skip
    trainer.train()
    dt = timer.t1 - timer.t0
    measured = timer.steps - warmup
    return {
        "model": "Qwen2-VL-7B-shaped" if not tiny else "tiny Qwen2-VL",
        "params": n_params,
        "attn": attn,
        "batch": batch,
        "frames": f"{num_frames}x{side}x{side}",
        "samples_per_s": round(measured * batch / dt, 2),
        "tokens_per_s": round((timer.tok1 - timer.tok0) / dt, 1),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny shapes (CPU smoke test)")
    ap.add_argument("--only", choices=["llm", "video"], default=None)
    ap.add_argument("--llm-batch", type=int, default=32)
    ap.add_argument(
        "--liger", action="store_true", help="Liger layer kernels (RMSNorm, SwiGLU, RoPE) via use_liger_kernel"
    )
    ap.add_argument("--video-batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    steps, warmup = (4, 1) if args.tiny else (args.steps, args.warmup)
    out = []
    if args.only in (None, "llm"):
        out.append(bench_llm(args.tiny, args.llm_batch if not args.tiny else 4, steps, warmup, args.liger))
    if args.only in (None, "video"):
        out.append(bench_video(args.tiny, args.video_batch if not args.tiny else 2, steps, warmup))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\nLoRA SFT speed on {device} (SFTTrainer, {steps - warmup} timed steps after {warmup} warm-up)")
    print(f"| model | params | attention | batch | tokens/s | samples/s | MFU % | peak GB |\n|{'---|' * 8}")
    for r in out:
        print(f"| {r['model']} | {r['params'] / 1e9:.2f}B | {r['attn']} | {r['batch']} | {r['tokens_per_s']} "
              f"| {r['samples_per_s']} | {r.get('mfu_pct', '-')} | {r['peak_gb']} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "results": out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
