"""Omni evaluation speed with and without audio: a Qwen2.5-Omni-7B-shaped thinker on 8-frame clips.

One process, one model (random bf16 weights), the same 128 samples (real MIntRec validation text, each
pointing at one of 16 generated 1280x720 H.264 + AAC clips), scored through the toolkit's real eval path
(:func:`mmla.eval.runner.evaluate_tasks`, the function behind ``mmla eval``) twice:
``--modalities text,video`` and ``--modalities text,video,audio``. Clips/s INCLUDE decoding (frames through
:mod:`mmla.loaders.video`, the AAC track through :mod:`mmla.loaders.audio`) and the processor (video
processor, Whisper features, tokens), as a user's run does; the data split is loaded once beforehand, so
dataset building is not timed. Each configuration gets one warm-up batch first (kernel selection, the audio
tower's first call). Where the time goes is recorded per run: frame decoding, audio decoding, Whisper
feature extraction, the video processor, the rest of input building, and the model (generate / rank).

Model shapes (``OMNI_7B``): transformers 5.24's ``Qwen2_5Omni*Config`` defaults, whose docstrings are written
for the checkpoint ``Qwen/Qwen2.5-Omni-7B`` (text: Qwen2.5-7B decoder, 28 layers, hidden 3584, 28/4 heads,
vocab 152,064, M-RoPE sections [16, 24, 24], untied head; audio: Whisper-large-style encoder, 32 layers,
d_model 1280, 20 heads, FFN 5120, 128 mel bins, n_window 100; vision: 32 layers, 16 heads, MLP 3420,
out 3584, window 112, full attention at [7, 15, 23, 31]) except the vision tower's width: 1280 (the released
``config.json``'s ``vision_config.hidden_size``/``embed_dim``; the class default 3584 is its output width).
Check: the built thinker has 8,931,813,888 parameters, the ``total_parameters`` that the released
checkpoint's ``model.safetensors.index.json`` states for the thinker (quoted in public notes on a
Qwen2.5-Omni-7B fine-tune). The run records the count it built.

Processor (assembled offline, no Hub): the SmolLM2-135M-Instruct tokenizer (the embedded GGUF, 49,152 tokens)
with Qwen2.5-Omni's named multimodal tokens added and the Omni placeholders' ChatML template
(:data:`mmla.training.testing.OMNI_CHAT_TEMPLATE`); ``WhisperFeatureExtractor(feature_size=128,
chunk_length=300)`` as in the released ``preprocessor_config.json`` (128 mel bins, 300 s window: the
processor pads every clip's features to it); the Qwen2-VL video processor at 224^2-336^2 pixels per frame,
bench/eval_speed.py's setting (576 video tokens per 8-frame clip), so that the video-only figure compares
with the Qwen2-VL-7B rows of docs/benchmarks.md. ``run --audio-window 30`` swaps in Whisper's own 30 s window
(``--also-window 30`` times it as a third configuration).

Usage:
    python bench/omni_speed.py prepare --assets .omni/assets          # here: clips, data, processor (< 12 MiB)
    python bench/omni_speed.py run --assets .omni/assets --json OUT.json   # one GPU
    python bench/omni_speed.py prepare --assets /tmp/oa --tiny && \\
        python bench/omni_speed.py run --assets /tmp/oa --tiny --json /tmp/oa.json   # CPU smoke run
On the lent GPU machine: ``source bench/gpu_env.sh && export LD_LIBRARY_PATH=/tmp/site/av.libs:$LD_LIBRARY_PATH``
first (torchcodec 0.13 and PyAV's FFmpeg libraries). The JSON is rewritten after every timed run, so a run
stopped at its time limit keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "omni_speed_assets.json"
TASK = "mintrec"
SPLIT = "validation"

OMNI_7B = {
    "text": {"vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 32768,
             "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}},
    "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "out_hidden_size": 3584,
               "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
               "fullatt_block_indexes": [7, 15, 23, 31], "in_channels": 3},
    "audio": {"num_mel_bins": 128, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120,
              "d_model": 1280, "max_source_positions": 1500, "n_window": 100, "output_dim": 3584},
}  # fmt: skip
OMNI_7B_THINKER_PARAMS = 8_931_813_888
OMNI_TINY = {
    "text": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": 4096, "tie_word_embeddings": False,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}},
    "vision": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
               "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
               "fullatt_block_indexes": [0], "in_channels": 3},
    "audio": {"num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
              "d_model": 32, "n_window": 100, "output_dim": 64},
}  # fmt: skip
VIDEO_PIXELS = {"shortest_edge": 224 * 224, "longest_edge": 336 * 336}
"""bench/eval_speed.py's frame size (min/max pixels): 576 video tokens per 8 frames at 1280x720."""
AUDIO_WINDOW_S = 300
"""Qwen2.5-Omni-7B's preprocessor_config.json: chunk_length 300 (n_samples 4,800,000 at 16 kHz)."""
CLIP = {"width": 1280, "height": 720, "fps": 25, "audio_rate": 44100, "audio_layout": "stereo",
        "video_codec": "libx264 (preset veryfast, crf 30, yuv420p)", "audio_codec": "aac"}  # fmt: skip
CLIP_TINY = {**CLIP, "width": 160, "height": 90, "fps": 10}


def _mmla_importable() -> None:
    """``mmla.*`` from this checkout when the package is not installed (bench/gpu_env.sh links it too)."""
    try:
        import mmla.eval.runner  # noqa: F401
    except ImportError:
        ns = Path(tempfile.mkdtemp(prefix="mmla-ns-")) / "mmla"
        ns.mkdir()
        for sub in ("loaders", "eval", "training", "hub_cards"):
            (ns / sub).symlink_to(ROOT / sub)
        sys.path.insert(0, str(ns.parent))


# ------------------------------------------------------------------------------------------------ prepare
def _processor(window_s: int) -> Any:
    """Qwen2_5OmniProcessor from local parts: SmolLM2 tokenizer + Omni tokens, Whisper features, Qwen2-VL video."""
    from transformers import (
        AutoTokenizer,
        Qwen2_5OmniProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    from mmla.eval.adapters import resolve_model
    from mmla.training.testing import OMNI_CHAT_TEMPLATE, omni_tokenizer_from

    folder, gguf = resolve_model(None)
    tok = omni_tokenizer_from(AutoTokenizer.from_pretrained(folder, gguf_file=gguf), padding_side="left")
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(size=VIDEO_PIXELS),
        video_processor=Qwen2VLVideoProcessor(size=VIDEO_PIXELS, cap_pixels_per_frame=False),
        feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=window_s),
        tokenizer=tok,
        chat_template=OMNI_CHAT_TEMPLATE,
    )


def write_clip(path: Path, seconds: float, seed: int, spec: dict) -> dict:
    """An H.264 + AAC mp4: a moving colour gradient with a moving box, and a voiced harmonic tone with noise
    (stereo, 44.1 kHz: what TV-show corpora carry, so the audio path resamples and mixes down as for them)."""
    import av
    import numpy as np

    w, h, fps, rate = spec["width"], spec["height"], spec["fps"], spec["audio_rate"]
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    box = max(8, w // 6)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "30"}
        aus = out.add_stream("aac", rate=rate)
        aus.layout = spec["audio_layout"]
        for i in range(round(seconds * fps)):
            img = np.empty((h, w, 3), np.uint8)
            for c in range(3):
                img[..., c] = (base[c] + xx * (c + 1) // 4 + yy // 3 + i * 5 * (c + 1)) % 256
            x0 = (i * 23) % (w - box)
            img[h // 4 : h // 4 + box, x0 : x0 + box] = 255 - img[h // 4 : h // 4 + box, x0 : x0 + box]
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode())
        n = int(seconds * rate)
        t = np.arange(n) / rate
        f0 = 110 + 25 * (seed % 7)
        voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        wave = (0.15 * voice + 0.02 * rng.standard_normal(n)).astype(np.float32)
        stereo = np.stack([wave, np.roll(wave, 50)])
        for s in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, s : s + 1024]), format="fltp",
                                               layout=spec["audio_layout"])  # fmt: skip
            frame.sample_rate, frame.pts = rate, s
            out.mux(aus.encode(frame))
        out.mux(aus.encode())
    os.replace(tmp, path)
    return {"file": path.name, "seconds": seconds, "bytes": path.stat().st_size}


def prepare(args: argparse.Namespace) -> int:
    """Clips, the JSONL split and the processor into ``--assets`` (a folder of ours, or a new one)."""
    out, shared = Path(args.assets), Path(args.shared)
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise SystemExit(f"{out} exists and is not an omni_speed assets folder; pass a new or empty folder")
        shutil.rmtree(out)
    source = shared / TASK / f"{SPLIT}.jsonl"
    if not source.is_file():
        raise SystemExit(f"{source} not found: pass --shared <folder of the real MMLA text> (../shared/data)")
    rows_in = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    n_rows = args.rows or (8 if args.tiny else 128)
    n_clips = args.clips or (4 if args.tiny else 16)
    spec = CLIP_TINY if args.tiny else CLIP
    data = out / "data" / TASK
    (data / "clips").mkdir(parents=True)
    clips = [write_clip(data / "clips" / f"clip{k}.mp4", 3.0 + (k % 3) * 0.5, k, spec) for k in range(n_clips)]
    with open(data / f"{SPLIT}.jsonl", "w", encoding="utf-8") as fh:
        for i, row in enumerate(rows_in[:n_rows]):
            fh.write(json.dumps({"id": row["id"], "text": row["text"], "label": row["label"],
                                 "video": f"clips/clip{i % n_clips}.mp4"}, ensure_ascii=False) + "\n")  # fmt: skip
    _processor(AUDIO_WINDOW_S).save_pretrained(out / "processor")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = {"tiny": args.tiny, "task": TASK, "split": SPLIT, "rows": min(n_rows, len(rows_in)),
                "text_source": f"../shared/data/{TASK}/{SPLIT}.jsonl (first rows, real text and labels)",
                "clip_spec": spec, "clips": clips, "audio_window_s": AUDIO_WINDOW_S, "video_pixels": VIDEO_PIXELS,
                "bytes": size}  # fmt: skip
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"assets in {out}: {size / 2**20:.2f} MiB ({n_clips} clips, {manifest['rows']} rows)")
    return 0


# ------------------------------------------------------------------------------------------------ run
class Phases:
    """Seconds spent in each part of scoring, from wrappers around the toolkit's own functions."""

    def __init__(self, sync: Any):
        self.sync = sync
        self.reset()

    def reset(self) -> None:
        self.seconds: dict[str, float] = {}
        self.tokens = {"prompt": 0, "video": 0, "audio": 0, "clips": 0}

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + dt

    def timed(self, name: str, fn: Any, *, sync: bool = False) -> Any:
        def wrapped(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                out = fn(*a, **k)
                if sync:
                    self.sync()
                return out
            finally:
                self.add(name, time.perf_counter() - t0)

        return wrapped


def _time_calls(obj: Any, name: str, phases: Phases) -> None:
    """Time ``obj(...)`` (a processor part: called through its type's ``__call__``) under ``name``."""
    cls = type(obj)
    orig = cls.__call__

    def __call__(self: Any, *a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            phases.add(name, time.perf_counter() - t0)

    obj.__class__ = type(f"Timed{cls.__name__}", (cls,), {"__call__": __call__})


def instrument(adapter: Any, phases: Phases) -> list[str]:
    """Wrap the toolkit's decoding, input building and model calls; returns the hooks it could not find (a
    renamed function leaves its phase out of the breakdown, never the run)."""
    import mmla.eval.batching as batching
    import mmla.eval.scoring as scoring

    missing = []
    for mod, name, phase, sync in ((batching, "_frames", "decode_frames", False),
                                   (batching, "_audio", "decode_audio", False),
                                   (scoring, "generate_answers", "model", True), (scoring, "rank_scores", "model", True)):  # fmt: skip
        if callable(getattr(mod, name, None)):
            setattr(mod, name, phases.timed(phase, getattr(mod, name), sync=sync))
        else:
            missing.append(f"{mod.__name__}.{name}")
    proc = adapter.processor
    video_id, audio_id = proc.video_token_id, proc.audio_token_id
    build = adapter.build_inputs

    def build_inputs(messages: Any, videos: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        out = build(messages, videos, **kw)
        phases.add("build_inputs", time.perf_counter() - t0)
        ids = out["input_ids"]
        phases.tokens["prompt"] += int(out["attention_mask"].sum())
        phases.tokens["video"] += int((ids == video_id).sum())
        phases.tokens["audio"] += int((ids == audio_id).sum())
        phases.tokens["clips"] += len(messages)
        return out

    adapter.build_inputs = build_inputs
    _time_calls(proc.video_processor, "video_processor", phases)
    return missing


def _feature_extractor(window_s: int) -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, chunk_length=window_s)


def build_model(assets: Path, tiny: bool, device: str) -> tuple[Any, dict]:
    import torch
    from transformers import AutoProcessor, Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from mmla.eval.adapters import adapter_for

    t0 = time.perf_counter()
    proc = AutoProcessor.from_pretrained(assets / "processor")
    tok = proc.tokenizer
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in
           (("audio", "<|AUDIO|>"), ("image", "<|IMAGE|>"), ("video", "<|VIDEO|>"), ("audio_bos", "<|audio_bos|>"),
            ("audio_eos", "<|audio_eos|>"), ("vision_bos", "<|vision_bos|>"))}  # fmt: skip
    shape = OMNI_TINY if tiny else OMNI_7B
    text = {**shape["text"], "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    if tiny:
        text["vocab_size"] = len(tok)
    dtype = torch.float32 if tiny else torch.bfloat16
    cfg = Qwen2_5OmniThinkerConfig(
        text_config=text, vision_config=shape["vision"], audio_config=shape["audio"], audio_token_index=ids["audio"],
        image_token_index=ids["image"], video_token_index=ids["video"], audio_start_token_id=ids["audio_bos"],
        audio_end_token_id=ids["audio_eos"], vision_start_token_id=ids["vision_bos"], tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2_5OmniThinkerForConditionalGeneration(cfg).eval()
    finally:
        torch.set_default_dtype(prev)
    params = sum(p.numel() for p in model.parameters())
    adapter = adapter_for(model, proc, model_id="random/Qwen2.5-Omni-7B-thinker-shaped")
    info = {"class": type(model).__name__, "adapter": type(adapter).__name__, "params": params,
            "params_match_release": params == OMNI_7B_THINKER_PARAMS if not tiny else None,
            "dtype": str(dtype).removeprefix("torch."), "device": device,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "built_s": round(time.perf_counter() - t0, 1), "shapes": shape}  # fmt: skip
    return adapter, info


def _environment(device: str) -> dict:
    import torch
    import transformers

    env = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}  # fmt: skip
    for mod in ("torchcodec", "datasets", "numpy"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as err:  # recorded, not fatal
            env[mod] = f"unavailable ({type(err).__name__})"
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return env


def run(args: argparse.Namespace) -> int:
    import torch

    from mmla.eval.checks import load_eval_data
    from mmla.eval.runner import evaluate_tasks
    from mmla.loaders.tasks import get_task

    t_start = time.perf_counter()
    assets = Path(args.assets)
    manifest = json.loads((assets / MANIFEST).read_text(encoding="utf-8"))
    if manifest["tiny"] != args.tiny:
        raise SystemExit(f"{assets} was prepared {'with' if manifest['tiny'] else 'without'} --tiny; prepare it again")
    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; use --tiny for the CPU smoke run")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    report: dict[str, Any] = {
        "bench": "bench/omni_speed.py", "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "environment": _environment(device), "assets": {k: v for k, v in manifest.items() if k != "clips"},
        "clips": manifest["clips"], "runs": [],
    }  # fmt: skip
    out_json = Path(args.json) if args.json else None

    def save() -> None:
        if out_json is not None:
            out_json.parent.mkdir(parents=True, exist_ok=True)
            tmp = out_json.with_name(out_json.name + ".part")
            tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, out_json)

    task = get_task(TASK)
    data = str(assets / "data")
    loaded = load_eval_data([task], data, SPLIT, text_only=False)  # once: dataset building is not timed
    limit = min(args.limit or len(loaded[TASK]), len(loaded[TASK]))
    report["data"] = {"task": TASK, "split": SPLIT, "rows": len(loaded[TASK]), "timed_samples": limit,
                      "loaded_s": round(time.perf_counter() - t_start, 1)}  # fmt: skip
    adapter, report["model"] = build_model(assets, args.tiny, device)
    phases = Phases(sync)
    report["phases_not_timed"] = instrument(adapter, phases)
    window = args.audio_window or manifest["audio_window_s"]
    windows = {window: _feature_extractor(window)}
    configs = [("video", "text,video", None), ("audio", "text,video,audio", window)]
    for w in args.also_window or []:
        windows.setdefault(w, _feature_extractor(w))
        configs.append((f"audio_window{w}s", "text,video,audio", w))
    for fe in windows.values():
        _time_calls(fe, "whisper_features", phases)
    report["settings"] = {"mode": args.mode, "batch_size": args.batch_size, "num_frames": args.num_frames,
                          "max_new_tokens": args.max_new_tokens if args.mode == "generate" else None,
                          "warmup_samples": args.warmup, "rounds": args.rounds,
                          "configs": [{"name": n, "modalities": m, "audio_window_s": w} for n, m, w in configs]}  # fmt: skip
    save()
    work = Path(tempfile.mkdtemp(prefix="omni_speed-"))

    def one(name: str, modalities: str, window: int | None, n: int, tag: str) -> dict:
        if window is not None:
            adapter.processor.feature_extractor = windows[window]
        sub = {k: v.select(range(n)) for k, v in loaded.items()}
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        phases.reset()
        t0 = time.perf_counter()
        res = evaluate_tasks(
            adapter, TASK, data, SPLIT, mode=args.mode, batch_size=args.batch_size, output_dir=work / tag,
            num_frames=args.num_frames, max_new_tokens=args.max_new_tokens, modalities=modalities, loaded=sub,
            show_progress=False, model_name="random-qwen2.5-omni-7b-shaped",
        )  # fmt: skip
        wall = time.perf_counter() - t0
        spent = dict(phases.seconds)
        spent["input_building_other"] = (
            spent.get("build_inputs", 0.0) - spent.get("whisper_features", 0.0) - spent.get("video_processor", 0.0)
        )
        clips = max(1, phases.tokens["clips"])
        return {
            "config": name, "modalities": modalities.split(","), "audio_window_s": window, "samples": n,
            "wall_s": round(wall, 2), "clips_per_s": round(n / wall, 3),
            "runner_timing": res.timing, "recorded_modalities": list(res.modalities or ()),
            "phases_s": {k: round(v, 2) for k, v in sorted(spent.items())},
            "tokens_per_clip": {k: round(v / clips, 1) for k, v in phases.tokens.items() if k != "clips"},
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
        }  # fmt: skip

    if device == "cuda":
        report["model"]["weights_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    for name, modalities, window in configs:  # warm-up: kernels, the audio tower's first call, allocator growth
        report.setdefault("warmup", []).append(one(name, modalities, window, min(args.warmup, limit), f"warm-{name}"))
        save()
    for r in range(args.rounds):
        order = configs if r % 2 == 0 else configs[::-1]
        for name, modalities, window in order:
            elapsed = time.perf_counter() - t_start
            if args.time_budget and elapsed > args.time_budget:
                report["runs"].append({"config": name, "round": r, "skipped": f"time budget {args.time_budget} s "
                                       f"reached ({elapsed:.0f} s)"})  # fmt: skip
                continue
            rec = one(name, modalities, window, limit, f"{name}-r{r}")
            rec["round"] = r
            report["runs"].append(rec)
            print(json.dumps({k: rec[k] for k in ("config", "samples", "wall_s", "clips_per_s", "peak_gpu_gib")}))
            save()
    report["summary"] = summarize(report["runs"])
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    save()
    shutil.rmtree(work, ignore_errors=True)
    print(table(report))
    return 0


def summarize(runs: list[dict]) -> dict:
    by: dict[str, list[dict]] = {}
    for rec in runs:
        if "clips_per_s" in rec:
            by.setdefault(rec["config"], []).append(rec)
    out: dict[str, Any] = {}
    for name, recs in by.items():
        out[name] = {"clips_per_s": round(sum(r["clips_per_s"] for r in recs) / len(recs), 3),
                     "runs": len(recs), "peak_gpu_gib": max((r["peak_gpu_gib"] or 0) for r in recs) or None}  # fmt: skip
    if "video" in out:
        for name in out:
            if name != "video":
                out[name]["ratio_to_video_only"] = round(out[name]["clips_per_s"] / out["video"]["clips_per_s"], 3)
    return out


def table(report: dict) -> str:
    lines = ["| config | modalities | clips/s | x video-only | peak GPU GiB | decode frames s | decode audio s | "
             "whisper s | video proc s | model s | tokens/clip (video, audio) |", "|---|---|---:|---:|---:|---:|---:|"
             "---:|---:|---:|---|"]  # fmt: skip
    summary = report.get("summary", {})
    for rec in report["runs"]:
        if "clips_per_s" not in rec:
            lines.append(f"| {rec['config']} | skipped: {rec['skipped']} |")
            continue
        p, t = rec["phases_s"], rec["tokens_per_clip"]
        ratio = summary.get(rec["config"], {}).get("ratio_to_video_only", 1.0 if rec["config"] == "video" else None)
        lines.append(
            f"| {rec['config']} | {','.join(rec['modalities'])} | {rec['clips_per_s']:.2f} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {rec['peak_gpu_gib'] if rec['peak_gpu_gib'] else '-'} | "
            f"{p.get('decode_frames', 0):.1f} | {p.get('decode_audio', 0):.1f} | {p.get('whisper_features', 0):.1f} | "
            f"{p.get('video_processor', 0):.1f} | {p.get('model', 0):.1f} | {t['video']:.0f}, {t['audio']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write clips, the JSONL split and the processor into --assets")
    p.add_argument("--assets", required=True)
    p.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"), help="real MMLA text (../shared/data)")
    p.add_argument("--rows", type=int, default=None, help="samples (default 128; --tiny 8)")
    p.add_argument("--clips", type=int, default=None, help="distinct clips reused over the rows (default 16; --tiny 4)")
    p.add_argument("--tiny", action="store_true", help="160x90 clips, 8 rows: for the CPU smoke run")
    p.set_defaults(func=prepare)
    r = sub.add_parser("run", help="time both configurations in this process")
    r.add_argument("--assets", required=True)
    r.add_argument("--json", default=None, help="write the report here (rewritten after every run)")
    r.add_argument("--tiny", action="store_true", help="tiny random thinker on the CPU (smoke run)")
    r.add_argument(
        "--mode", choices=("generate", "rank"), default="generate", help="mmla eval's mode (default generate)"
    )
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--num-frames", type=int, default=8)
    r.add_argument(
        "--max-new-tokens", type=int, default=16, help="mmla eval's default; random weights never stop early"
    )
    r.add_argument("--limit", type=int, default=None, help="timed samples per configuration (default: all rows)")
    r.add_argument("--warmup", type=int, default=16, help="samples of the warm-up run per configuration")
    r.add_argument("--rounds", type=int, default=1, help="timed passes per configuration (order alternates)")
    r.add_argument("--audio-window", type=int, default=None, help="Whisper window in s (default: as prepared, 300)")
    r.add_argument("--also-window", type=int, action="append", help="also time audio with this window (s), e.g. 30")
    r.add_argument("--time-budget", type=float, default=200.0, help="skip timed runs that would start after this (s)")
    r.set_defaults(func=run)
    args = parser.parse_args(argv)
    if args.cmd == "run" and args.tiny:
        args.batch_size = min(args.batch_size, 4)
        args.warmup = min(args.warmup, 4)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _mmla_importable()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
