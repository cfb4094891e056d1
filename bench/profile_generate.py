"""Where the time of generate-mode evaluation goes (GPU): input building, prefill, each decoding step; the same
batch with the packed prefill of mmla.eval.packed (with and without the shared prefix) and its generate.

python bench/profile_generate.py [--batch-size 1024] [--tiny]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_speed as es


def timed(fn, device: str, reps: int = 2) -> float:
    fn()
    es.sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    es.sync(device)
    return (time.perf_counter() - t0) / reps


def packed_rows(adapter, inputs, real: int, device: str) -> list[str]:
    """The same batch with the packed prefill (mmla.eval.packed): its forward, the cache rearrangement, generate."""
    from mmla.eval.packed import _plan, _run, packed_generate, resolve_prefill

    prefill = resolve_prefill(adapter, "on")
    n = inputs["input_ids"].shape[0]
    rows = []
    for share in (False, True):
        plan = _plan(inputs["input_ids"], inputs["attention_mask"], 1, None, share)
        pf = type(prefill)(**{**prefill.__dict__, "share_prefix": share})
        t = timed(lambda plan=plan, pf=pf: _run(adapter, plan, pf, keep=1), device)
        computed = int(plan.tokens.numel() + plan.prefix.numel())
        rows.append(f"{pf.describe()} prefill + padded cache, prefix {plan.prefix.numel()} tokens shared: {t:.3f} s "
                    f"({computed} tokens computed of {real} = {100 * computed / real:.1f}%; "
                    f"{2 * 7.6e9 * computed / t / 1e12:.0f} TFLOP/s)")  # fmt: skip
    for new in (1, 16):
        t = timed(lambda new=new: packed_generate(adapter, inputs, prefill, max_new_tokens=new), device, 1)
        rows.append(f"generate {new:2d} tokens, packed prefill: {t:.3f} s ({n / t:.1f} samples/s)")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument(
        "--runner", type=int, default=0, help="also profile evaluate_tasks over this many samples (cProfile)"
    )
    args = ap.parse_args()
    es._import_mmla()
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mmla.eval.adapters import CausalLMAdapter
    from mmla.eval.prompts import build_messages
    from mmla.loaders.tasks import get_task

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    shape = es.QWEN2_TINY if args.tiny else es.QWEN2_7B
    cfg = Qwen2Config(**shape, attn_implementation="sdpa", pad_token_id=0, eos_token_id=2)
    model = es.random_model(Qwen2ForCausalLM, cfg, device, dtype)
    tok = es.WordTokenizer(cfg.vocab_size)
    adapter = CausalLMAdapter(model=model, processor=tok, model_id="random/Qwen2-7B-shaped")
    data = es.mmla_rows(args.batch_size)
    msgs = [build_messages(get_task(k), t) for k, r in data.items() for t in r.table["text"]]
    # The runner's order: longest prompts first, so a batch holds prompts of similar length.
    msgs = sorted(msgs, key=lambda m: -len(adapter.prompt_text(m)))[: args.batch_size]
    n = len(msgs)
    t_build = timed(lambda: adapter.build_inputs(msgs, padding_side="left"), "cpu", 1)
    inputs = adapter.build_inputs(msgs, padding_side="left").to(device)
    L = inputs["input_ids"].shape[1]
    real = int(inputs["attention_mask"].sum())
    rows = [
        f"batch {n}, padded length {L}, real tokens {real} ({100 * real / (n * L):.1f}% of the padded batch)",
        f"build_inputs (chat template + tokenizer, CPU): {t_build:.3f} s",
    ]
    with torch.inference_mode():
        t_pre = timed(lambda: model(**inputs, logits_to_keep=1), device)
        rows.append(f"prefill forward: {t_pre:.3f} s = {2 * 7.6e9 * real / t_pre / 1e12:.0f} TFLOP/s on real tokens")
        for new in (1, 4, 16):
            kw = dict(do_sample=False, max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
            t = timed(lambda kw=kw: model.generate(**inputs, **kw), device, 1)
            rows.append(f"generate {new:2d} tokens: {t:.3f} s ({n / t:.1f} samples/s)")
        rows.extend(packed_rows(adapter, inputs, real, device))
        kw = dict(do_sample=False, max_new_tokens=16, min_new_tokens=16, pad_token_id=0, cache_implementation="static")
        try:
            t = timed(lambda: model.generate(**inputs, **kw), device, 1)
            rows.append(f"generate 16 tokens, static cache: {t:.3f} s ({n / t:.1f} samples/s)")
        except Exception as err:
            rows.append(f"static cache failed: {type(err).__name__}: {str(err)[:200]}")
    print("\n".join(rows))
    if args.runner:
        import cProfile
        import pstats
        import tempfile

        from mmla.eval.runner import evaluate_tasks

        big = es.mmla_rows(args.runner)
        for rep in range(2):  # the first run warms the allocator for these shapes
            with tempfile.TemporaryDirectory() as tmp:
                prof = cProfile.Profile()
                es.sync(device)
                t0 = time.perf_counter()
                prof.enable()
                out = evaluate_tasks(adapter, list(big), big, "test", mode="generate", batch_size=args.batch_size,
                                     output_dir=tmp, show_progress=False, n_bootstrap=0)  # fmt: skip
                es.sync(device)
                prof.disable()
                dt = time.perf_counter() - t0
            print(f"runner run {rep}: {out['overall']['n']} samples in {dt:.2f} s = {out['overall']['n'] / dt:.1f}/s")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(22)


if __name__ == "__main__":
    main()
