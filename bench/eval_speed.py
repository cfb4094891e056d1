"""Zero-shot evaluation speed: our runner (generate and rank) against the upstream one-at-a-time loop.

Text: a Qwen2-7B-shaped LLM (random bf16 weights from ``Qwen2Config``), MMLA-shaped prompts (the real
prompt of each task, synthetic utterances, mixed over the 12 tasks in proportion to their test sizes).
Token ids come from a deterministic word-level stand-in tokenizer (one id per word/punctuation mark),
so prompt lengths are realistic (~130-170 tokens) without downloading a tokenizer. Random weights
never emit EOS, so every generation runs the full ``max_new_tokens`` (a worst case for us).
Upstream: the MMLA repo's ``src/Zero-shot_Inference/LLM/infer.py`` loop, one sample at a time,
``generate`` with sampling and exactly 32 new tokens (min = max = 32).
MLLM: a Qwen2-VL-7B-shaped model, 8 frames per clip (decoded from generated mp4 files when a decoder
is available), generate mode; clips/s including decoding and preprocessing.

Prefill (``mmla.eval.packed``): the runner's runs use ``--packed-prefill`` (default ``auto``: packed prompts through
``varlen_attn`` with the batch's shared prefix once, where the kernel runs; ``--tiny``: ``on``, the SDPA stand-in),
and, in the same process, ``off`` (the padded path) as the baseline (``--skip-padded`` drops it). The bound: a
bare prefill-only forward of the same prompts in the same length-sorted batches (no cache, logits at each prompt's
last position, no generation, no tokenization timed), padded (``model(input_ids, attention_mask)``) and packed
without prefix sharing; ratios are to the faster of the two (``bound.best``) and to the padded one. Checks: the
packed attention function against the fp32 reference on segments with and without a shared prefix, rank scores of
64 prompts packed against padded next to the padded path's own batch-shape noise, and how often the packed and
padded runs gave the same answers.

Usage:
    python bench/eval_speed.py                 # GPU, full shapes (one H100: ~5 min)
    python bench/eval_speed.py --batch-size 1024 --skip-mllm --upstream-samples 0 --json $OUT/eval_speed_packed.json
    python bench/eval_speed.py --batch-size 1024 --skip-mllm --upstream-samples 0 --profile $OUT/prof  # + profiles
    python bench/eval_speed.py --tiny          # CPU smoke run with tiny shapes
Prints a compact table; writes the report to --json, else eval_speed.json in $OUT when set.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import random
import re
import sys
import tempfile
import time
import types
import zlib
from pathlib import Path

import torch
from shapes import QWEN2_7B, QWEN2VL_7B_VISION, QWEN2VL_TINY_VISION  # bench/ is on sys.path (the script's folder)

ROOT = Path(__file__).resolve().parents[1]


def _import_mmla() -> None:
    """Make ``mmla.*`` importable from a bare checkout (no install), and tolerate a missing ``evaluate``.

    The GPU image has neither ``datasets`` nor ``evaluate``; speed does not depend on them (the metric
    itself is scikit-learn), so minimal stand-ins keep the import of the metric module working.
    """
    try:
        import mmla.eval.runner  # noqa: F401

        return
    except ImportError:
        pass
    tmp = Path(tempfile.mkdtemp(prefix="mmla-src-")) / "mmla"
    tmp.mkdir()
    for sub, folder in (("eval", "eval"), ("loaders", "loaders")):
        (tmp / sub).symlink_to(ROOT / folder)
    sys.path.insert(0, str(tmp.parent))
    try:
        import evaluate  # noqa: F401
    except ImportError:
        stub = types.ModuleType("evaluate")
        stub.__spec__ = importlib.machinery.ModuleSpec("evaluate", None)
        stub.Metric = type("Metric", (), {})  # only subclassed by the metric module, never used here
        stub.MetricInfo = dict
        stub.utils = types.SimpleNamespace(
            file_utils=types.SimpleNamespace(add_start_docstrings=lambda *d: lambda f: f)
        )
        sys.modules["evaluate"] = stub


# ------------------------------------------------------------------------------ stand-in tokenizer
class WordTokenizer:
    """One id per word / punctuation mark (hashed), with ChatML special tokens: realistic lengths, no download."""

    specials = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    chat_template = "chatml"

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.pad_token_id, self.eos_token_id, self.padding_side = 0, 2, "left"
        self.pad_token, self.eos_token = "<|endoftext|>", "<|im_end|>"

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in re.findall(r"<\|\w+\|>|\w+|[^\w\s]|\n", text):
            ids.append(self.specials.get(piece, 100 + zlib.crc32(piece.encode()) % (self.vocab_size - 100)))
        return ids

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        for m in messages:
            text += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def __call__(self, texts, padding=False, padding_side="left", return_tensors=None, add_special_tokens=False):
        from transformers import BatchEncoding

        single = isinstance(texts, str)
        seqs = [self.encode(t) for t in ([texts] if single else texts)]
        if return_tensors is None:
            return {"input_ids": seqs[0] if single else seqs}
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.pad_token_id)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            sl = slice(n - len(s), n) if padding_side == "left" else slice(0, len(s))
            ids[i, sl], mask[i, sl] = torch.tensor(s), 1
        return BatchEncoding({"input_ids": ids, "attention_mask": mask})

    def batch_decode(self, ids, skip_special_tokens=True):
        return [" ".join(f"w{int(t)}" for t in row) for row in ids]


class Rows:
    """The slice of the ``datasets.Dataset`` interface the runner uses (the GPU image lacks ``datasets``)."""

    def __init__(self, table: dict[str, list]):
        self.table, self.column_names, self.features = table, list(table), {}

    def __len__(self) -> int:
        return len(self.table["id"])

    def select_columns(self, cols):
        return Rows({c: self.table[c] for c in cols})

    def to_dict(self) -> dict[str, list]:
        return self.table

    def __getitem__(self, i: int | str) -> dict | list:
        if isinstance(i, str):  # a column, as Dataset["id"]
            return self.table[i]
        return {k: v[i] for k, v in self.table.items()}


WORDS = ["i", "you", "we", "they", "the", "a", "it", "that", "this", "what", "well", "oh", "no", "yes", "really", "so", "just", "know", "think", "like", "right", "okay", "sorry", "thanks", "great", "fine", "love", "hate", "going", "want", "need", "tell", "said", "good", "bad", "time", "there", "here", "now", "never", "always", "maybe", "please", "help", "wait", "look", "come", "go", "see", "make", "do", "get"]  # fmt: skip


def mmla_rows(n: int, seed: int = 0) -> dict[str, Rows]:
    from mmla.loaders.tasks import TASKS

    rng = random.Random(seed)
    total = sum(t.splits["test"] for t in TASKS.values())
    out = {}
    for key, task in TASKS.items():
        k = max(1, round(n * task.splits["test"] / total))
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 30))) for _ in range(k)]
        out[key] = Rows({"id": [f"{key}-{i}" for i in range(k)], "text": texts,
                         "label": [rng.choice(task.labels) for _ in range(k)]})  # fmt: skip
    return out


# ------------------------------------------------------------------------------ models
QWEN2_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 128, "vocab_size": 4096, "max_position_embeddings": 4096}  # fmt: skip


def random_model(cls, config, device: str, dtype: torch.dtype):
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config)
    finally:
        torch.set_default_dtype(prev)
    return model.eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------ benches
def _prompt_batches(adapter, data: dict, batch_size: int) -> list:
    """The prompts as left-padded (ids, mask) CPU batches, longest first (the generate-mode runner's order)."""
    from mmla.eval.prompts import build_messages
    from mmla.loaders.tasks import get_task

    msgs = [build_messages(get_task(k), t) for k, r in data.items() for t in r.table["text"]]
    texts = sorted((adapter.prompt_text(m) for m in msgs), key=len, reverse=True)
    batches = []
    for i in range(0, len(texts), batch_size):
        enc = adapter.tokenizer(texts[i : i + batch_size], padding=True, padding_side="left", return_tensors="pt")
        batches.append((enc["input_ids"], enc["attention_mask"]))
    return batches


@torch.inference_mode()
def prefill_bound(model, batches: list, device: str, packed: str | None, reps: int = 2) -> dict:
    """Bare prefill-only forwards of every prompt (no cache, logits at each prompt's last position, no generation):
    ``packed`` None: ``model(input_ids, attention_mask)`` on the padded batches; else each batch packed in one row
    (no padding, no prefix sharing) through the attention function ``packed``. Best of ``reps`` timed passes."""
    from mmla.eval.packed import _attention, _plan, _to

    plans = [] if packed is None else [_plan(ids, mask, 0, None, share=False) for ids, mask in batches]

    def one_pass() -> None:
        for i, (ids, mask) in enumerate(batches):
            if packed is None:
                model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False, logits_to_keep=1)
                continue
            plan = plans[i]
            last = (plan.segments.cu_q[1:] - 1).long().to(device)
            with _attention(model, packed):
                model(input_ids=plan.tokens[None].to(device), position_ids=plan.positions[None].to(device),
                      use_cache=False, logits_to_keep=last, mmla_packed=_to(plan.segments, torch.device(device)))  # fmt: skip

    one_pass()  # warm-up
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        one_pass()
        sync(device)
        times.append(time.perf_counter() - t0)
    n = sum(ids.shape[0] for ids, _ in batches)
    real = sum(int(mask.sum()) for _, mask in batches)
    padded = sum(ids.numel() for ids, _ in batches)
    return {"samples_per_s": round(n / min(times), 2), "seconds": round(min(times), 3),
            "tokens_computed": real if packed else padded, "real_tokens": real}  # fmt: skip


@torch.inference_mode()
def check_kernel(device: str, dtype: torch.dtype) -> dict:
    """The packed attention function (the kernel where it runs) against the fp32 per-segment reference on segments
    with a shared prefix (more keys than queries: causal masking aligned bottom-right) and without."""
    from mmla.eval.packed import (
        KERNEL,
        REFERENCE,
        PackedSegments,
        kernel_attention_forward,
        reference_attention_forward,
    )

    kernel = device.startswith("cuda") and dtype in (torch.float16, torch.bfloat16)
    fn = kernel_attention_forward if kernel else reference_attention_forward
    g = torch.Generator().manual_seed(0)
    p, lens, hq, hkv, d = 24, [37, 5, 120, 1, 64], 28, 4, 128
    out = {"function": KERNEL if kernel else REFERENCE}
    for name, prefix in (("with_prefix", p), ("no_prefix", 0)):
        t = sum(lens)
        q = torch.randn(1, hq, t, d, generator=g)
        k, v = torch.randn(1, hkv, prefix + t, d, generator=g), torch.randn(1, hkv, prefix + t, d, generator=g)
        cu_q = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()], dtype=torch.int32)
        if prefix:
            idx = torch.cat([torch.cat([torch.arange(prefix), prefix + torch.arange(int(cu_q[i]), int(cu_q[i + 1]))])
                             for i in range(len(lens))])  # fmt: skip
            cu_k = torch.tensor([0, *(torch.tensor(lens) + prefix).cumsum(0).tolist()], dtype=torch.int32)
            seg = PackedSegments(cu_q, cu_k, max(lens), prefix + max(lens), idx)
        else:
            seg = PackedSegments(cu_q, cu_q, max(lens), max(lens), None)
        want, _ = reference_attention_forward(None, q, k, v, None, scaling=d**-0.5, mmla_packed=seg)
        dev_seg = PackedSegments(seg.cu_q.to(device), seg.cu_k.to(device), seg.max_q, seg.max_k,
                                 None if seg.index_k is None else seg.index_k.to(device))  # fmt: skip
        got, _ = fn(None, *(x.to(device, dtype) for x in (q, k, v)), None, scaling=d**-0.5, mmla_packed=dev_seg)
        out[f"max_abs_err_{name}"] = round(float((got.float().cpu() - want).abs().max()), 5)
    return out


@torch.inference_mode()
def check_agreement(adapter, batches: list, prefill, n: int = 64) -> dict:
    """Rank scores of ``n`` prompts (MIntRec's labels) packed against padded, next to the padded path's own noise
    floor (the same prompts in two halves: other batch shapes, other kernels)."""
    from transformers import BatchEncoding

    from mmla.eval.prompts import build_target
    from mmla.eval.scoring import candidate_token_ids, rank_scores
    from mmla.loaders.tasks import get_task

    task = get_task("mintrec")
    cands = candidate_token_ids(adapter, [build_target(task, lab) for lab in task.labels])
    ids, mask = batches[0][0][:n], batches[0][1][:n]
    n = ids.shape[0]
    keep = int(mask.sum(1).max())
    ids, mask = ids[:, ids.shape[1] - keep :], mask[:, mask.shape[1] - keep :]

    def enc(rows: slice) -> BatchEncoding:
        sub_mask = mask[rows]
        width = int(sub_mask.sum(1).max())
        return BatchEncoding({"input_ids": ids[rows, -width:], "attention_mask": sub_mask[:, -width:]})

    padded = rank_scores(adapter, enc(slice(None)), cands)
    halves = torch.cat([rank_scores(adapter, enc(slice(0, n // 2)), cands),
                        rank_scores(adapter, enc(slice(n // 2, None)), cands)])  # fmt: skip
    packed = rank_scores(adapter, enc(slice(None)), cands, prefill=prefill)
    return {"prompts": n, "max_abs_diff_packed_vs_padded": round(float((packed - padded).abs().max()), 4),
            "max_abs_diff_padded_noise_floor": round(float((halves - padded).abs().max()), 4),
            "argmax_agreement_packed": round(float((packed.argmax(1) == padded.argmax(1)).float().mean()), 3),
            "argmax_agreement_noise_floor": round(float((halves.argmax(1) == padded.argmax(1)).float().mean()), 3)}  # fmt: skip


def _timed_runs(adapter, data: dict, warm: dict, mode: str, args: argparse.Namespace, device: str,
                packed_prefill: str, profile: str | None = None) -> tuple[dict, dict]:  # fmt: skip
    """Warm-up, then a cold and a warm full pass of ``evaluate_tasks``; (figures, the warm pass's predictions).
    ``profile``: a folder for a third pass under ``torch.profiler`` (not timed)."""
    from mmla.eval.cache import read_predictions
    from mmla.eval.runner import evaluate_tasks

    with tempfile.TemporaryDirectory() as tmp:  # warm-up (module loads, small kernels)
        evaluate_tasks(adapter, list(warm), warm, "test", mode=mode, batch_size=args.batch_size, output_dir=tmp,
                       show_progress=False, n_bootstrap=0, packed_prefill=packed_prefill)  # fmt: skip
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def full_pass(tmp: str) -> dict:
        return evaluate_tasks(adapter, list(data), data, "test", mode=mode, batch_size=args.batch_size,
                              output_dir=tmp, show_progress=False, max_new_tokens=args.max_new_tokens,
                              n_bootstrap=0, packed_prefill=packed_prefill)  # fmt: skip

    runs, n = [], sum(len(r) for r in data.values())
    for _ in range(2):  # cold: first pass at full batch shapes (allocator growth, kernel choice); warm: steady
        with tempfile.TemporaryDirectory() as tmp:
            sync(device)
            t0 = time.perf_counter()
            out = full_pass(tmp)
            sync(device)
            runs.append(time.perf_counter() - t0)
            preds = {k: read_predictions(Path(tmp, "predictions", f"{k}.jsonl"), repair=False) for k in data}
        assert out["overall"]["n"] == n
    if profile:
        from profiling import StepProfiler

        prof = StepProfiler(f"eval_{mode}", Path(profile), device.startswith("cuda"))
        with tempfile.TemporaryDirectory() as tmp:
            prof.start()
            full_pass(tmp)
            prof.stop(1)
    dt = runs[1]
    fig = {"samples_per_s": round(n / dt, 2), "seconds": round(dt, 2), "cold_samples_per_s": round(n / runs[0], 2),
           "cold_seconds": round(runs[0], 2), "prefill": out["timing"]["prefill"]}  # fmt: skip
    if device.startswith("cuda"):
        fig["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return fig, preds


def _same_answers(a: dict, b: dict, mode: str) -> dict:
    """How often two runs gave the same answer (generate: the same text; rank: the same label, and the largest
    score difference)."""
    pairs = [(a[k][i], b[k][i]) for k in a for i in a[k]]
    out = {"same_pred": round(sum(x["pred"] == y["pred"] for x, y in pairs) / len(pairs), 4)}
    if mode == "generate":
        out["same_text"] = round(sum(x["raw"] == y["raw"] for x, y in pairs) / len(pairs), 4)
    else:
        out["max_abs_score_diff"] = round(max(abs(x["scores"][c] - y["scores"][c]) for x, y in pairs
                                              for c in x["scores"]), 4)  # fmt: skip
    return out


def bench_text(args: argparse.Namespace, device: str, dtype: torch.dtype) -> dict:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from mmla.eval.adapters import CausalLMAdapter
    from mmla.eval.packed import REFERENCE, _plan, resolve_prefill
    from mmla.eval.prompts import build_messages
    from mmla.loaders.tasks import get_task

    shape = QWEN2_TINY if args.tiny else QWEN2_7B
    cfg = Qwen2Config(**shape, attn_implementation="sdpa", pad_token_id=0, eos_token_id=2)
    model = random_model(Qwen2ForCausalLM, cfg, device, dtype)
    tok = WordTokenizer(cfg.vocab_size)
    adapter = CausalLMAdapter(model=model, processor=tok, model_id="random/Qwen2-7B-shaped")
    data = mmla_rows(args.samples)
    n = sum(len(r) for r in data.values())
    lengths = [
        len(tok.encode(adapter.prompt_text(build_messages(get_task(k), t))))
        for k, r in data.items()
        for t in r.table["text"]
    ]
    res = {"samples": n, "prompt_tokens_mean": round(sum(lengths) / n, 1), "prompt_tokens_max": max(lengths)}
    prefill = resolve_prefill(adapter, args.packed_prefill)
    res["packed_prefill"] = {"setting": args.packed_prefill, "prefill": prefill.describe(), "reason": prefill.reason}
    batches = _prompt_batches(adapter, data, args.batch_size)
    res["shared_prefix_tokens"] = [int(_plan(ids, mask, 0, None, share=True).prefix.numel()) for ids, mask in batches]
    # The bound: bare prefill-only forwards, padded (the runner's batches) and packed without prefix sharing.
    bound = {"padded": prefill_bound(model, batches, device, None)}
    if prefill.packed:
        bound["packed"] = prefill_bound(model, batches, device, prefill.kernel or REFERENCE)
    best = max(bound, key=lambda k: bound[k]["samples_per_s"])
    bound.update({"samples_per_s": bound[best]["samples_per_s"], "best": best})
    res["bound"] = bound
    res["kernel_check"] = check_kernel(device, dtype)
    if prefill.packed:
        res["agreement_check"] = check_agreement(adapter, batches, prefill)
    warm = {k: Rows({c: v[:4] for c, v in r.table.items()}) for k, r in list(data.items())[:2]}
    runs = [(args.packed_prefill, "")] + ([] if args.skip_padded or not prefill.packed else [("off", "padded")])
    for mode in args.modes:
        preds = {}
        for setting, key in runs:
            prof = args.profile if setting == args.packed_prefill else None
            fig, preds[setting] = _timed_runs(adapter, data, warm, mode, args, device, setting, prof)
            fig["x_bound"] = round(fig["samples_per_s"] / bound["samples_per_s"], 3)
            fig["x_padded_bound"] = round(fig["samples_per_s"] / bound["padded"]["samples_per_s"], 3)
            if key:
                res.setdefault(key, {})[mode] = fig
            else:
                res[mode] = fig
        if "off" in preds and args.packed_prefill != "off":
            res[mode]["x_padded_path"] = round(res[mode]["samples_per_s"] / res["padded"][mode]["samples_per_s"], 3)
            res[mode]["vs_padded_path"] = _same_answers(preds[args.packed_prefill], preds["off"], mode)
    # Upstream: one sample at a time, sampling, exactly 32 new tokens.
    if args.upstream_samples:
        res["upstream"] = upstream_loop(model, tok, adapter, data, args, device)
        for mode in args.modes:
            res[mode]["speedup_vs_upstream"] = round(res[mode]["samples_per_s"] / res["upstream"]["samples_per_s"], 1)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return res


def upstream_loop(model, tok, adapter, data: dict, args: argparse.Namespace, device: str) -> dict:
    """The upstream loop: one sample at a time, ``generate`` with sampling, exactly 32 new tokens."""
    from mmla.eval.prompts import build_messages
    from mmla.loaders.tasks import get_task

    prompts = [adapter.prompt_text(build_messages(get_task(k), t)) for k, r in data.items() for t in r.table["text"]]
    random.Random(1).shuffle(prompts)
    prompts = prompts[: args.upstream_samples + 1]
    times = []
    with torch.inference_mode():
        for i, p in enumerate(prompts):
            enc = tok([p], return_tensors="pt").to(device)
            sync(device)
            t0 = time.perf_counter()
            out_ids = model.generate(**enc, do_sample=True, max_new_tokens=32, min_new_tokens=32, pad_token_id=0)
            tok.batch_decode(out_ids[:, enc["input_ids"].shape[1] :])
            sync(device)
            if i:  # the first call is a warm-up
                times.append(time.perf_counter() - t0)
    return {"samples_per_s": round(len(times) / sum(times), 3), "samples_timed": len(times)}


def write_clips(folder: Path, n: int, seconds: float = 3.0, size: int = 336) -> list[str] | None:
    """Synthetic mp4 clips (PyAV), or None when no encoder is available."""
    try:
        import av
        import numpy as np
    except ImportError:
        return None
    paths = []
    for i in range(n):
        p = folder / f"clip{i}.mp4"
        with av.open(str(p), "w") as c:
            s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
            s.width = s.height = size
            s.pix_fmt = "yuv420p"
            for f in range(int(seconds * 25)):
                img = np.full((size, size, 3), (f * 7 + i * 40) % 255, dtype=np.uint8)
                for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        paths.append(str(p))
    return paths


def decode_frames(path: str, num_frames: int) -> torch.Tensor:
    """8 uniformly spaced frames (T, C, H, W) uint8: our loader (torchcodec) where installed, else PyAV."""
    try:
        from mmla.loaders.video import sample_frames

        return sample_frames(path, num_frames=num_frames)
    except ImportError:
        import av
        import numpy as np

        with av.open(path) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        idx = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
        return torch.from_numpy(np.stack([frames[i] for i in idx])).permute(0, 3, 1, 2).contiguous()


def bench_mllm(args: argparse.Namespace, device: str, dtype: torch.dtype) -> dict:
    try:
        import torchvision  # noqa: F401
        from transformers import (
            Qwen2VLConfig,
            Qwen2VLForConditionalGeneration,
            Qwen2VLImageProcessor,
            Qwen2VLProcessor,
            Qwen2VLVideoProcessor,
        )
    except ImportError as err:
        return {"skipped": f"needs torchvision for the Qwen2-VL video processor ({err})"}
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from mmla.eval.adapters import adapter_for
    from mmla.eval.prompts import build_messages, build_prompt
    from mmla.eval.scoring import generate_answers
    from mmla.loaders.tasks import TASKS, get_task

    text = QWEN2_TINY if args.tiny else QWEN2_7B
    prompt_words = {w for t in TASKS.values() for w in re.findall(r"\w+|[^\w\s]", build_prompt(t, " ".join(WORDS)))}
    vocab = {w: i + 8 for i, w in enumerate(sorted(prompt_words))}
    specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|video_pad|>",
        "<|image_pad|>",
        "<unk>",
    ]
    vocab.update({s: i for i, s in enumerate(specials)})
    wl = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    wl.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    chat = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}{% if c['type'] == 'video' %}"
            "<|vision_start|><|video_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
            "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")  # fmt: skip
    tok = PreTrainedTokenizerFast(
        tokenizer_object=wl, pad_token="<|endoftext|>", eos_token="<|im_end|>", unk_token="<unk>"
    )
    tok.add_special_tokens({"additional_special_tokens": specials[1:7]})
    pixels = {"min_pixels": 224 * 224, "max_pixels": 336 * 336}  # ~ LLaVA/Qwen2-VL eval settings for MMLA clips
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), video_processor=Qwen2VLVideoProcessor(**pixels),
                            tokenizer=tok, chat_template=chat)  # fmt: skip
    cfg = Qwen2VLConfig(
        text_config={**text, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24] if not args.tiny else [4, 2, 2]},
                     "pad_token_id": 0, "eos_token_id": 2},
        vision_config=QWEN2VL_TINY_VISION if args.tiny else QWEN2VL_7B_VISION,
        image_token_id=6, video_token_id=5, vision_start_token_id=3, vision_end_token_id=4,
    )  # fmt: skip
    model = random_model(Qwen2VLForConditionalGeneration, cfg, device, dtype)
    adapter = adapter_for(model, proc, model_id="random/Qwen2-VL-7B-shaped")
    res: dict = {"clips": args.clips, "frames_per_clip": args.frames}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_clips(Path(tmp), min(args.clips, 16))
        task = get_task("mintrec")
        rng = random.Random(0)
        msgs = [
            build_messages(task, " ".join(rng.choice(WORDS) for _ in range(12)), num_videos=1)
            for _ in range(args.clips)
        ]

        def frames(i: int) -> torch.Tensor:
            if paths is None:
                return torch.randint(0, 255, (args.frames, 3, 336, 336), dtype=torch.uint8)
            return decode_frames(paths[i % len(paths)], args.frames)

        res["decoded"] = "pyav/torchcodec" if paths else "no encoder: random frames (decoding not timed)"
        bs = args.mllm_batch_size
        for i in range(0, min(bs, args.clips), bs):  # warm-up
            b = list(range(i, min(i + bs, args.clips)))
            generate_answers(
                adapter, adapter.build_inputs([msgs[j] for j in b], [[frames(j)] for j in b]), max_new_tokens=4
            )
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        sync(device)
        t0 = time.perf_counter()
        t_prep = 0.0
        for i in range(0, args.clips, bs):
            b = list(range(i, min(i + bs, args.clips)))
            tp = time.perf_counter()
            inputs = adapter.build_inputs([msgs[j] for j in b], [[frames(j)] for j in b])
            t_prep += time.perf_counter() - tp
            generate_answers(adapter, inputs, max_new_tokens=args.max_new_tokens)
        sync(device)
        dt = time.perf_counter() - t0
    res.update({"clips_per_s": round(args.clips / dt, 2), "seconds": round(dt, 2), "decode_preprocess_s": round(t_prep, 2),
                "video_tokens_per_clip": int(inputs["video_grid_thw"][0].prod()) // 4})  # fmt: skip
    if device.startswith("cuda"):
        res["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny shapes on CPU (smoke test)")
    p.add_argument("--samples", type=int, default=None, help="text samples (default 2048; tiny 48)")
    p.add_argument("--batch-size", type=int, default=None, help="runner batch size (default 256; tiny 8)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--modes", default="generate,rank")
    p.add_argument("--packed-prefill", choices=("auto", "on", "off"), default=None,
                   help="the runner's prefill for the main runs (default auto; tiny: on, the SDPA stand-in)")  # fmt: skip
    p.add_argument("--skip-padded", action="store_true", help="no same-run baseline with --packed-prefill off")
    p.add_argument("--upstream-samples", type=int, default=None, help="samples timed for the upstream loop (0: skip)")
    p.add_argument("--clips", type=int, default=None, help="MLLM clips (default 64; tiny 4)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--mllm-batch-size", type=int, default=None)
    p.add_argument("--skip-mllm", action="store_true")
    p.add_argument("--profile", default=None, metavar="DIR",
                   help="profile one more warm pass of each mode (main setting) into DIR: top kernels, ranges")  # fmt: skip
    p.add_argument("--json", default=None, help="write the report here (default: $OUT/eval_speed.json if $OUT is set)")
    args = p.parse_args()
    args.modes = args.modes.split(",")
    t = args.tiny
    args.samples = args.samples or (48 if t else 2048)
    args.batch_size = args.batch_size or (8 if t else 256)
    args.upstream_samples = (2 if t else 12) if args.upstream_samples is None else args.upstream_samples
    args.packed_prefill = args.packed_prefill or ("on" if t else "auto")
    args.clips = args.clips or (4 if t else 64)
    args.mllm_batch_size = args.mllm_batch_size or (2 if t else 16)
    device = "cpu" if t or not torch.cuda.is_available() else "cuda"
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    _import_mmla()
    import transformers

    report = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "dtype": str(dtype),
              "torch": torch.__version__, "transformers": transformers.__version__, "tiny": t,
              "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}  # fmt: skip
    t0 = time.perf_counter()
    report["text"] = bench_text(args, device, dtype)
    if not args.skip_mllm:
        report["mllm"] = bench_mllm(args, device, dtype)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print_report(report, args)
    out = args.json or (str(Path(os.environ["OUT"], "eval_speed.json")) if os.environ.get("OUT") else None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2))
    return 0


def print_report(report: dict, args: argparse.Namespace) -> None:
    tx = report["text"]
    print(f"\n{report['device']} ({report['dtype']}, torch {report['torch']}, transformers {report['transformers']})")
    print(f"text: {tx['samples']} samples, prompt tokens mean {tx['prompt_tokens_mean']} max {tx['prompt_tokens_max']}; "
          f"shared prefix per batch {tx['shared_prefix_tokens']} tokens; {tx['packed_prefill']}")  # fmt: skip
    b = tx["bound"]
    print(f"bound (bare prefill-only forward, bs {args.batch_size}): padded {b['padded']['samples_per_s']}/s"
          + (f", packed {b['packed']['samples_per_s']}/s" if "packed" in b else "")
          + f"; ratios below are to the best ({b['best']}, {b['samples_per_s']}/s)")  # fmt: skip
    print("| run | samples/s warm | cold | x bound | x padded bound | x padded path | x upstream | peak GPU GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in (("", tx["packed_prefill"]["prefill"]), ("padded", "padded (--packed-prefill off)")):
        for mode in args.modes:
            r = tx[mode] if not key else tx.get(key, {}).get(mode)
            if r is None:
                continue
            print(f"| {mode}, {label} | {r['samples_per_s']} | {r['cold_samples_per_s']} | {r['x_bound']} | "
                  f"{r['x_padded_bound']} | {r.get('x_padded_path', '-')} | {r.get('speedup_vs_upstream', '-')} | "
                  f"{r.get('peak_gpu_gib', '-')} |")  # fmt: skip
    if "upstream" in tx:
        print(
            f"| upstream loop (1 at a time, sample, 32 tokens) | {tx['upstream']['samples_per_s']} | | | | | 1.0 | - |"
        )
    for mode in args.modes:
        if "vs_padded_path" in tx[mode]:
            print(f"{mode}: packed vs padded answers {tx[mode]['vs_padded_path']}")
    print(f"kernel check: {tx['kernel_check']}")
    if "agreement_check" in tx:
        print(f"rank agreement check: {tx['agreement_check']}")
    if "mllm" in report:
        m = report["mllm"]
        if "skipped" in m:
            print(f"mllm: skipped ({m['skipped']})")
        else:
            print(f"| Qwen2-VL-7B-shaped, {m['frames_per_clip']} frames, generate (bs {args.mllm_batch_size}) | "
                  f"{m['clips_per_s']} clips/s | - | {m.get('peak_gpu_gib', '-')} |")  # fmt: skip
            print(f"mllm: {m['video_tokens_per_clip']} video tokens/clip; decode+preprocess {m['decode_preprocess_s']} s "
                  f"of {m['seconds']} s; frames: {m['decoded']}")  # fmt: skip
    print(f"wall {report['wall_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
