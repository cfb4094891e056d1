"""ZeRO-3 LoRA at the largest size: a Qwen2-VL-72B-shaped model across the GPUs of one host (issue 12, item 4).

LoRA is trained through the real code path: ``training/sft.py``'s ``run`` (TRL ``SFTTrainer`` assembled by
``mmla.training.sft.build_trainer``, ``VideoSFTCollator`` on 8-frame clips), launched by ``accelerate launch
--config_file training/recipes/accelerate/zero3.yaml``, recipe ``paper/sft/mintrec/qwen2-vl-72b``. The model has
Qwen2-VL-72B-Instruct's shapes (config.json on the Hub: 80 x 8192 text layers, 64 heads / 8 KV heads, MLP 29568,
vocab 152064, mrope [16, 24, 24], the 32-layer 1280-wide vision tower projecting to 8192) and random bf16
weights: with ``MMLA_RANDOM_INIT=1`` sft.py builds it from config.json with ``from_config``, which under ZeRO-3
(``zero3_init_flag: true``: an active ``HfDeepSpeedConfig``) runs inside ``deepspeed.zero.Init``. Every process
holds 1/N of the weights; the model is never whole on one device and no 144 GB checkpoint is read.

Reported (JSON, printed and written to $OUT or ``--json``): steady-state samples/s (steps after ``--warmup``),
peak ``torch.cuda.max_memory_allocated`` of every rank, time to the first step (from the launch and from the
start of the command), time to build the model (the ``from_config`` call, per rank). The adapter saved by
``trainer.save_model`` (ZeRO-3: gathered, frozen weights excluded) is checked (keys, shapes, non-zero B) and
loaded with PEFT onto a meta-device 72B model. A 72B model does not fit one 80 GB GPU in bf16 (~147 GB), so the
one-GPU reload through ``mmla eval --adapter`` runs on a Qwen2-VL-7B shape: a 7B folder (random weights) is
written, LoRA-trained for a few steps on one GPU through the same sft.py path, and evaluated with its adapter.

The tokenizer is SmolLM2-135M-Instruct's real byte-level BPE (embedded GGUF, 49,152 tokens) plus Qwen2-VL's
special tokens (``<|vision_start|>``, ``<|video_pad|>``, ...), with Qwen2-VL's chat template and its default
image/video processors (min 128 x 28 x 28 pixels per frame: the sample clips are upscaled to ~560 video tokens per
8-frame clip). The model's embedding keeps 152,064 rows; ids past the tokenizer are never seen.

    python bench/zero3_lora.py prepare --assets .zero3        # here: processor, clips, FFmpeg libs, torchcodec
    bash bench/zero3_lora.sh                                   # on the 4-GPU machine (bench/zero3_command.md)
    python bench/zero3_lora.py run --assets /tmp/z3 --tiny --nproc 2 --json /tmp/z3.json   # CPU smoke test
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ZERO3_CONFIG = ROOT / "training" / "recipes" / "accelerate" / "zero3.yaml"
RECIPES = {"72b": "paper/sft/mintrec/qwen2-vl-72b", "7b": "paper/sft/mintrec/qwen2-vl-7b", "tiny": None}

# Qwen2-VL-72B-Instruct / Qwen2-VL-7B-Instruct config.json (Hub model cards), in transformers 5 names.
_TEXT_COMMON = {"vocab_size": 152064, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
                "use_sliding_window": False, "hidden_act": "silu", "rope_scaling": {"type": "mrope",
                "mrope_section": [16, 24, 24]}}  # fmt: skip
_VISION_COMMON = {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_channels": 3, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2}  # fmt: skip
SHAPES: dict[str, dict[str, dict[str, Any]]] = {
    "72b": {
        "text": {**_TEXT_COMMON, "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
                 "num_attention_heads": 64, "num_key_value_heads": 8, "max_window_layers": 80},
        "vision": {**_VISION_COMMON, "hidden_size": 8192},
    },
    "7b": {
        "text": {**_TEXT_COMMON, "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                 "num_attention_heads": 28, "num_key_value_heads": 4, "max_window_layers": 28},
        "vision": {**_VISION_COMMON, "hidden_size": 3584},
    },
    "tiny": {  # CPU smoke test: 2 text layers, 1 vision layer, vocab = the tokenizer's
        "text": {**_TEXT_COMMON, "vocab_size": None, "hidden_size": 64, "intermediate_size": 128,
                 "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_window_layers": 2,
                 "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        "vision": {**_VISION_COMMON, "depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2},
    },
}  # fmt: skip

# Qwen2-VL's added tokens (ids 151643-151656 in the real tokenizer) and its chat template (Qwen2-VL-7B-Instruct).
QWEN2VL_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]  # fmt: skip
QWEN2VL_CHAT = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ------------------------------------------------------------------------------------------------ prepare (here)
def build_processor(out: Path) -> Any:
    """Qwen2-VL processor: SmolLM2's real BPE + Qwen2-VL's special tokens, chat template and default sizes."""
    from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    from mmla.eval.adapters import resolve_model

    folder, gguf = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    missing = [t for t in QWEN2VL_SPECIALS if t not in tok.get_vocab()]
    tok.add_special_tokens({"additional_special_tokens": missing})
    tok.pad_token, tok.eos_token = "<|endoftext|>", "<|im_end|>"
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor(),
                            tokenizer=tok, chat_template=QWEN2VL_CHAT)  # fmt: skip
    proc.save_pretrained(out)
    return proc


def pack_ffmpeg(av_wheel: Path, out: Path) -> dict:
    """The FFmpeg libraries PyAV's wheel bundles (torchcodec's; PyAV's own modules are left out), as a .tar.xz.

    On the machine they are unpacked to ``/tmp/site/av.libs``, which must be on ``LD_LIBRARY_PATH`` as well as
    the soname links ``bench/gpu_env.sh`` makes: loaded through a link, a library's ``$ORIGIN`` is the link's
    folder, so its hashed dependencies (``libx265-f5385bb8.so.216``, ...) are found only through the path.
    """
    import io
    import tarfile
    import zipfile

    n = 0
    with zipfile.ZipFile(av_wheel) as zf, tarfile.open(out, "w:xz") as tf:
        for info in zf.infolist():
            name = info.filename
            if not name.startswith("av.libs/") or name.endswith("/"):
                continue
            data = zf.read(info)
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o755
            tf.addfile(member, io.BytesIO(data))
            n += 1
    return {"libs": n, "bytes": out.stat().st_size}


def prepare(args: argparse.Namespace) -> int:
    """Everything the machine needs besides weights and packages: processor, clips, FFmpeg libraries."""
    from mmla.loaders.sample import write_sample_release

    out = Path(args.assets)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "proc", ignore_errors=True)
    build_processor(out / "proc")
    write_sample_release(out / "data", tasks="mintrec", per_class=args.per_class, hub_layout=False, overwrite=True)
    report: dict[str, Any] = {"assets": str(out)}
    wheels = sorted(Path(args.av_wheels).glob("av-*.whl")) if args.av_wheels else []
    if wheels and not args.no_ffmpeg:
        report["ffmpeg"] = pack_ffmpeg(wheels[-1], out / "ffmpeg_libs.tar.xz")
        for wheel in Path(args.av_wheels).glob("torchcodec-*.whl"):
            Path(args.wheels).mkdir(parents=True, exist_ok=True)
            shutil.copy2(wheel, Path(args.wheels) / wheel.name)
            report["torchcodec"] = wheel.name
    report["bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps(report))
    return 0


# ------------------------------------------------------------------------------------------------ model folders
def write_model_dir(proc_dir: Path, dest: Path, shape: str) -> Path:
    """config.json of ``shape`` (token ids from the processor's tokenizer) + the processor files; no weights."""
    from transformers import AutoProcessor, Qwen2VLConfig

    proc = AutoProcessor.from_pretrained(proc_dir)
    tok = proc.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN2VL_SPECIALS}
    text = dict(SHAPES[shape]["text"])
    text["vocab_size"] = text["vocab_size"] or len(tok)
    specials = {"bos_token_id": tok.bos_token_id, "eos_token_id": ids["<|im_end|>"],
                "pad_token_id": ids["<|endoftext|>"]}  # fmt: skip
    cfg = Qwen2VLConfig(
        text_config={**text, **specials}, vision_config=dict(SHAPES[shape]["vision"]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False, dtype="bfloat16", **specials,
    )  # fmt: skip
    dest.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(dest)
    proc.save_pretrained(dest)
    return dest


def build_weights(args: argparse.Namespace) -> int:
    """A folder with random bf16 weights of ``--shape`` (for ``mmla eval``, which loads weights from disk)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    t0 = time.time()
    dest = Path(args.out)
    write_model_dir(Path(args.proc), dest, args.shape)
    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16
    torch.manual_seed(0)
    with torch.device(args.device):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(dest), dtype=dtype)
    t_built = time.time()
    model.save_pretrained(dest)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"params": params, "build_s": round(t_built - t0, 1), "save_s": round(time.time() - t_built, 1)}))
    return 0


# ------------------------------------------------------------------------------------------------ train (per rank)
def _timed(fn: Any, rec: dict, label: str) -> Any:
    def wrapped(*a: Any, **k: Any) -> Any:
        t = time.time()
        rec[f"t_{label}_start"] = t
        try:
            return fn(*a, **k)
        finally:
            rec[f"t_{label}_end"] = time.time()
            rec[f"{label}_s"] = round(time.time() - t, 2)

    return wrapped


def _gpu_stats(rec: dict, prefix: str) -> None:
    import torch

    if torch.cuda.is_available():
        rec[f"{prefix}_peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        rec[f"{prefix}_peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)


def _count_params(model: Any) -> tuple[int, int]:
    """(all, trainable) parameters; under ZeRO-3 a parameter's full size is ``ds_numel`` (its data is a shard)."""
    total = trainable = 0
    for p in model.parameters():
        n = int(getattr(p, "ds_numel", 0) or p.numel())
        total += n
        trainable += n if p.requires_grad else 0
    return total, trainable


def train(args: argparse.Namespace, sft_argv: list[str]) -> int:
    """One process of the run: ``mmla.training.sft.main(sft_argv)`` with timing hooks; writes ``rank<R>.json``."""
    import psutil

    rank = int(os.environ.get("RANK", "0"))
    rec: dict[str, Any] = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                           "t_process": psutil.Process().create_time(), "t_main": time.time(), "steps": [],
                           "batches": [], "logs": []}  # fmt: skip
    bench = Path(args.bench_dir)
    bench.mkdir(parents=True, exist_ok=True)

    def flush() -> None:  # after every step too: a run stopped at the time limit still leaves its figures
        tmp = bench / f".rank{rank}.json.tmp"
        tmp.write_text(json.dumps(rec))
        os.replace(tmp, bench / f"rank{rank}.json")

    import torch
    from transformers import TrainerCallback

    import mmla.eval.adapters as adapters
    from mmla.training import sft

    rec["t_imported"] = time.time()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            rec["t_train_begin"] = time.time()  # after accelerator.prepare (the DeepSpeed engine exists)

        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            sync()
            rec["steps"].append({"step": state.global_step, "t": time.time()})
            _gpu_stats(rec, "last")
            flush()

        def on_log(self, args, state, control, logs=None, **kw):  # type: ignore[no-untyped-def]
            rec["logs"].append({"step": state.global_step, **{k: v for k, v in (logs or {}).items()
                                                               if isinstance(v, int | float)}})  # fmt: skip

        def on_train_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            rec["t_train_end"] = time.time()
            _gpu_stats(rec, "train")

    for mod, name in ((sft, "_random_init_model"), (adapters, "load_model")):
        if hasattr(mod, name):
            setattr(mod, name, _timed(getattr(mod, name), rec, "model_build"))
    build = sft.build_trainer

    def build_trainer(*a: Any, **k: Any) -> Any:
        trainer, adapter, acc_cb = _timed(build, rec, "build_trainer")(*a, **k)
        trainer.add_callback(StepTimer())
        rec["params"], rec["trainable_params"] = _count_params(trainer.model)
        base = [p for n, p in trainer.model.named_parameters() if "lora_" not in n]
        # Built inside deepspeed.zero.Init: every base weight is already a ZeRO-3 shard before the engine exists.
        rec["zero3_partitioned_at_build"] = bool(base) and all(hasattr(p, "ds_id") for p in base)
        rec["local_param_elements"] = sum(int(p.ds_tensor.numel()) if hasattr(p, "ds_tensor") else p.numel()
                                          for p in trainer.model.parameters())  # fmt: skip
        _gpu_stats(rec, "built")
        flush()
        step = trainer.training_step

        def training_step(model: Any, inputs: dict, *rest: Any, **kw: Any) -> Any:
            ids, mask = inputs.get("input_ids"), inputs.get("attention_mask")
            grid = inputs.get("video_grid_thw")
            rec["batches"].append({
                "rows": int(ids.shape[0]), "padded": int(ids.numel()),
                "tokens": int(mask.sum()) if mask is not None else int(ids.numel()),
                "video_patches": int(grid.prod(-1).sum()) if grid is not None else 0,
            })  # fmt: skip
            return step(model, inputs, *rest, **kw)

        trainer.training_step = training_step
        return trainer, adapter, acc_cb

    sft.build_trainer = build_trainer
    rc = 1
    try:
        rc = sft.main(sft_argv)
    except BaseException as err:
        rec["error"] = f"{type(err).__name__}: {err}"[:4000]
        raise
    finally:
        rec["rc"] = rc
        rec["t_end"] = time.time()
        _gpu_stats(rec, "final")
        flush()
    return rc


# ------------------------------------------------------------------------------------------------ run (orchestrator)
def _environment() -> dict:
    from importlib.metadata import version

    env: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, check=True, timeout=30).stdout  # fmt: skip
        gpus = [line.strip() for line in out.splitlines() if line.strip()]
        env.update({"device": gpus[0] if gpus else "cpu", "gpus": len(gpus)})
    except (OSError, subprocess.SubprocessError):
        env.update({"device": "cpu", "gpus": 0})
    for pkg in ("torch", "transformers", "accelerate", "deepspeed", "peft", "trl", "datasets", "torchcodec"):
        try:
            env[pkg] = version(pkg)
        except Exception:
            env[pkg] = None
    return env


def _stream(cmd: list[str], env: dict, log: Path, timeout: float) -> dict:
    """Run ``cmd`` in its own process group, teeing its output to ``log``; killed (whole group) after ``timeout``."""
    t0 = time.time()
    with open(log, "w", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)  # fmt: skip

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                fh.flush()
                print(line, end="", flush=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            timed_out = True
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=15)
                    break
                except subprocess.TimeoutExpired:
                    continue
        reader.join(timeout=10)
    return {"rc": proc.returncode, "timed_out": timed_out, "t_launch": t0, "wall_s": round(time.time() - t0, 1)}


def sft_argv(args: argparse.Namespace, shape: str, model: Path, out: Path, steps: int, batch: int) -> list[str]:
    argv = ["--model_name_or_path", str(model), "--data", str(Path(args.assets).resolve() / "data" / "MMLA-Datasets"),
            "--tasks", "mintrec", "--output_dir", str(out), "--max_steps", str(steps),
            "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", "1",
            "--eval_strategy", "no", "--eval_metric_split", "none", "--save_strategy", "no", "--logging_steps", "1",
            "--report_to", "none", "--num_frames", "8", "--seed", "0"]  # fmt: skip
    if RECIPES[shape]:
        argv = ["--recipe", RECIPES[shape], *argv]
    else:  # the tiny shape has no recipe row: the Qwen2-VL recipe's LoRA settings
        argv += ["--use_peft", "true", "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0.0",
                 "--learning_rate", "1e-4", "--text_only", "false", "--max_pixels", "200704",
                 "--lora_target_modules", r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"]  # fmt: skip
    if args.tiny:
        argv += ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--dataloader_num_workers", "0"]
    else:
        argv += ["--bf16", "true", "--dtype", "bfloat16"]
    return argv


def summarize(bench: Path, warmup: int, t_launch: float, t_command: float) -> dict:
    """Merge the ranks' records: steady samples/s, per-GPU peak memory, build time, time to the first step."""
    ranks = [json.loads(p.read_text()) for p in sorted(bench.glob("rank*.json"))]
    if not ranks:
        return {"error": "no rank wrote its record (see the log)"}
    ranks.sort(key=lambda r: r["rank"])
    r0 = ranks[0]
    out: dict[str, Any] = {
        "world_size": r0["world_size"], "ranks_reported": len(ranks), "rank_rc": [r.get("rc") for r in ranks],
        "errors": [r["error"] for r in ranks if r.get("error")],
        "params": r0.get("params"), "trainable_params": r0.get("trainable_params"),
        "zero3_partitioned_at_build": [r.get("zero3_partitioned_at_build") for r in ranks],
        "local_param_elements": [r.get("local_param_elements") for r in ranks],
        "peak_allocated_gib": [r.get("final_peak_allocated_gib", r.get("last_peak_allocated_gib")) for r in ranks],
        "peak_reserved_gib": [r.get("final_peak_reserved_gib", r.get("last_peak_reserved_gib")) for r in ranks],
        "train_peak_allocated_gib": [r.get("train_peak_allocated_gib") for r in ranks],
        "after_build_peak_allocated_gib": [r.get("built_peak_allocated_gib") for r in ranks],
        "model_build_s": [r.get("model_build_s") for r in ranks],
        "build_trainer_s": [r.get("build_trainer_s") for r in ranks],
        "interpreter_to_imports_s": [round(r["t_imported"] - r["t_process"], 1) for r in ranks],
    }  # fmt: skip
    if "t_model_build_start" in r0:
        out["launch_to_model_build_start_s"] = round(r0["t_model_build_start"] - t_launch, 1)
    if "t_train_begin" in r0 and "t_build_trainer_end" in r0:
        out["trainer_built_to_train_begin_s"] = round(r0["t_train_begin"] - r0["t_build_trainer_end"], 1)
    steps = r0["steps"]
    if steps:
        out["time_to_first_step_s"] = round(steps[0]["t"] - t_launch, 1)
        out["time_to_first_step_from_command_start_s"] = round(steps[0]["t"] - t_command, 1)
        out["first_step_s"] = round(steps[0]["t"] - r0.get("t_train_begin", steps[0]["t"]), 1)
        out["steps"] = len(steps)
        out["step_times_s"] = [round(b["t"] - a["t"], 2) for a, b in itertools.pairwise(steps)]
    # samples of step i: the rows every rank fed (one micro-batch per step here)
    per_step = [sum(r["batches"][i]["rows"] for r in ranks if i < len(r["batches"])) for i in range(len(steps))]
    tokens = [sum(r["batches"][i]["tokens"] for r in ranks if i < len(r["batches"])) for i in range(len(steps))]
    warmup = max(1, warmup)  # the clock starts at the end of the last warm-up step
    if len(steps) > warmup:
        span = steps[-1]["t"] - steps[warmup - 1]["t"]
        samples, toks, n_steps = sum(per_step[warmup:]), sum(tokens[warmup:]), len(steps) - warmup
        out["steady"] = {"steps": n_steps, "first_steps_excluded": warmup, "seconds": round(span, 2),
                         "samples": samples, "samples_per_s": round(samples / span, 3),
                         "tokens_per_s": round(toks / span, 1), "s_per_step": round(span / n_steps, 2)}  # fmt: skip
        n = out.get("params") or 0
        if n and not r0.get("error"):
            # ~6N FLOPs per token with a frozen base: forward, checkpointing's recompute, and a backward that
            # computes input gradients only (2N each); attention, LoRA and the vision tower's own work left out.
            out["steady"]["approx_tflops_per_gpu_6N"] = round(6 * n * toks / span / r0["world_size"] / 1e12, 1)
    b0 = r0["batches"]
    if b0:
        out["rows_per_gpu_step"] = b0[0]["rows"]
        out["tokens_per_row"] = round(sum(b["tokens"] for b in b0) / max(1, sum(b["rows"] for b in b0)), 1)
        out["video_tokens_per_row"] = round(sum(b["video_patches"] for b in b0) / 4 / max(1, sum(b["rows"] for b in b0)), 1)  # fmt: skip
    out["losses"] = [lg["loss"] for lg in r0["logs"] if "loss" in lg]
    return out


def check_adapter(adapter_dir: Path, model_dir: Path, *, meta_reload: bool = True) -> dict:
    """The saved adapter: every LoRA key of the config's layers, full shapes (not ZeRO-3 shards), trained B
    matrices, and PEFT loads it onto the model (built on the meta device: no memory)."""
    import torch
    from peft import PeftConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForImageTextToText

    file = adapter_dir / "adapter_model.safetensors"
    if not file.is_file():
        return {"ok": False, "error": f"{file} missing"}
    sd = load_file(str(file))
    config = AutoConfig.from_pretrained(model_dir)
    layers = config.text_config.num_hidden_layers
    expected = layers * 7 * 2  # q, k, v, o, gate, up, down x (A, B)
    empty = [k for k, v in sd.items() if v.numel() == 0]
    b_keys = [k for k in sd if "lora_B" in k]
    nonzero_b = sum(1 for k in b_keys if sd[k].abs().sum() > 0)
    out: dict[str, Any] = {"file_mb": round(file.stat().st_size / 2**20, 1), "keys": len(sd),
                           "expected_keys": expected, "empty": len(empty), "lora_B_nonzero": nonzero_b,
                           "lora_B": len(b_keys), "dtype": str(next(iter(sd.values())).dtype)}  # fmt: skip
    ok = len(sd) == expected and not empty and nonzero_b == len(b_keys)
    if meta_reload:
        t = time.time()
        with torch.device("meta"):
            base = AutoModelForImageTextToText.from_config(config)
        model = get_peft_model(base, PeftConfig.from_pretrained(str(adapter_dir)), low_cpu_mem_usage=True)
        shapes = {n.replace(".default.", "."): tuple(p.shape) for n, p in model.named_parameters() if "lora_" in n}
        wrong = [k for k, v in sd.items() if shapes.get(k) != tuple(v.shape)]
        res = set_peft_model_state_dict(model, sd, low_cpu_mem_usage=True)  # a size mismatch raises
        lora_missing = [k for k in res.missing_keys if "lora_" in k]
        out["meta_reload"] = {"model_lora_params": len(shapes), "shape_mismatches": len(wrong),
                              "missing_lora_keys": len(lora_missing), "unexpected_keys": len(res.unexpected_keys),
                              "seconds": round(time.time() - t, 1)}  # fmt: skip
        ok = ok and len(shapes) == len(sd) and not wrong and not lora_missing and not res.unexpected_keys
    out["ok"] = bool(ok)
    return out


def preflight(assets: Path, args: argparse.Namespace) -> dict:
    """Fail in seconds, not after the launch: DeepSpeed imports, a clip decodes (torchcodec + FFmpeg), GPUs."""
    out: dict[str, Any] = {}
    try:
        import torch

        if not args.no_deepspeed:
            import deepspeed

            out["deepspeed"] = deepspeed.__version__

        from mmla.loaders.video import sample_frames

        clip = next((assets / "data" / "MMLA-Datasets").glob("*/video/*.mp4"))
        frames = sample_frames(str(clip), num_frames=8)
        out["clip_frames"] = list(getattr(frames, "frames", frames).shape)
        out["gpus"] = torch.cuda.device_count()
        if not args.tiny and out["gpus"] < args.nproc:
            raise RuntimeError(f"{out['gpus']} GPUs for --nproc {args.nproc}")
        out["ok"] = True
    except Exception as err:
        out.update(ok=False, error=f"{type(err).__name__}: {err}"[:2000])
    return out


def run(args: argparse.Namespace) -> int:
    t_command = float(os.environ.get("ZERO3_T0") or time.time())
    deadline = t_command + args.budget_s
    assets, work = Path(args.assets).resolve(), Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(os.environ.get("OUT") or work)
    json_path = Path(args.json) if args.json else out_dir / "zero3_lora.json"
    big = "tiny" if args.tiny else "72b"
    small = "tiny" if args.tiny else "7b"
    report: dict[str, Any] = {"benchmark": "zero3_lora", "environment": _environment(), "shape": big,
                              "nproc": args.nproc, "per_device_train_batch_size": args.batch, "max_steps": args.steps,
                              "warmup_steps_excluded": args.warmup, "budget_s": args.budget_s}  # fmt: skip

    def save() -> None:
        report["elapsed_s"] = round(time.time() - t_command, 1)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=1))

    report["preflight"] = preflight(assets, args)
    save()
    if not report["preflight"]["ok"]:
        print(json.dumps(report, indent=1))
        return 1
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MMLA_RANDOM_INIT": "1", "TOKENIZERS_PARALLELISM": "false",
           "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}  # fmt: skip
    # ---- ZeRO-3, the big shape, every GPU
    model_dir = write_model_dir(assets / "proc", work / f"qwen2vl-{big}-config", big)
    run_dir, bench = work / f"run-{big}", work / f"bench-{big}"
    for d in (run_dir, bench):
        shutil.rmtree(d, ignore_errors=True)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ZERO3_CONFIG),
              "--num_processes", str(args.nproc), "--main_process_port", str(args.port)]  # fmt: skip
    if args.tiny:
        launch += ["--mixed_precision", "no"]  # fp32 on CPU (the config's bf16 is for the GPUs)
    if args.tiny and args.no_deepspeed:
        launch += ["--cpu"]  # accelerate's multi-CPU launch (gloo, no DeepSpeed): the data/model/sft.py path only
    cmd = [*launch, str(Path(__file__).resolve()), "train", "--bench-dir", str(bench), "--",
           *sft_argv(args, big, model_dir, run_dir, args.steps, args.batch)]  # fmt: skip
    print(f"[zero3] {big} LoRA, {args.nproc} processes, ZeRO-3{' (off: --no-deepspeed)' if args.no_deepspeed else ''}",
          flush=True)  # fmt: skip
    proc = _stream(cmd, env, out_dir / f"zero3_{big}.log", deadline - time.time() - args.reserve_s)
    report["zero3"] = {"command": " ".join(cmd), **proc, **summarize(bench, args.warmup, proc["t_launch"], t_command)}
    save()
    if (run_dir / "adapter_model.safetensors").is_file():
        try:
            report["zero3"]["adapter_check"] = check_adapter(run_dir, model_dir)
        except Exception as err:  # a failed check is a finding, not a reason to lose the measured run
            report["zero3"]["adapter_check"] = {"ok": False, "error": f"{type(err).__name__}: {err}"[:2000]}
        report["zero3"]["adapter_files"] = sorted(p.name for p in run_dir.iterdir())
    save()
    # ---- one-GPU reload with mmla eval --adapter on the small shape
    report["reload"] = reload_small(args, small, assets, work, out_dir, env, deadline)
    save()
    print(json.dumps(report, indent=1))
    print(table(report))
    ok = report["zero3"].get("rc") == 0 and report["zero3"].get("adapter_check", {}).get("ok")
    return 0 if ok else 1


def _cli_module() -> str:
    """The ``mmla`` console script's module (``mmla.cli`` since the CLI moved out of ``mmla.eval``)."""
    import importlib.util

    return "mmla.cli" if importlib.util.find_spec("mmla.cli") is not None else "mmla.eval.cli"


def reload_small(args: argparse.Namespace, shape: str, assets: Path, work: Path, out_dir: Path, env: dict,
                 deadline: float) -> dict:  # fmt: skip
    """Write a random-weights folder of ``shape``, LoRA-train it a few steps on one device through sft.py, then
    ``mmla eval --model <folder> --adapter <run>`` on one device. Skipped when the budget is spent."""
    res: dict[str, Any] = {"shape": shape, "why": "a 72B model does not fit one 80 GB GPU in bf16 (~147 GB of "
                           "weights): the adapter reload runs on a Qwen2-VL-7B shape, trained here on one GPU"}  # fmt: skip
    if args.skip_reload:
        return {**res, "skipped": "--skip-reload"}
    if deadline - time.time() < args.reload_min_s:
        return {**res, "skipped": f"{deadline - time.time():.0f} s left of the budget (< {args.reload_min_s} s)"}
    one = {**env, "CUDA_VISIBLE_DEVICES": "0"} if not args.tiny else dict(env)
    one.pop("MMLA_RANDOM_INIT", None)  # the one-GPU run loads weights from disk, as a user's would
    weights, run_dir, bench = work / f"qwen2vl-{shape}", work / f"run-{shape}", work / f"bench-{shape}"
    for d in (weights, run_dir, bench, work / f"eval-{shape}"):
        shutil.rmtree(d, ignore_errors=True)
    me = str(Path(__file__).resolve())
    steps = [
        ("build", [sys.executable, me, "build", "--shape", shape, "--proc", str(assets / "proc"), "--out",
                   str(weights), "--device", "cpu" if args.tiny else "cuda"]),
        ("train", [sys.executable, me, "train", "--bench-dir", str(bench), "--",
                   *sft_argv(args, shape, weights, run_dir, args.small_steps, args.batch)]),
        ("eval", [sys.executable, "-m", _cli_module(), "eval", "--model", str(weights), "--adapter", str(run_dir),
                  "--tasks", "mintrec", "--data", str(assets / "data" / "MMLA-Datasets"), "--split", "test",
                  "--limit", str(args.eval_limit), "--batch_size", "8", "--output_dir", str(work / f"eval-{shape}"),
                  *(["--device", "cpu", "--dtype", "float32"] if args.tiny else ["--dtype", "bfloat16"])]),
    ]  # fmt: skip
    for name, cmd in steps:
        left = deadline - time.time()
        if left < 20:
            res[name] = {"skipped": f"{left:.0f} s left of the budget"}
            break
        r = _stream(cmd, one, out_dir / f"reload_{name}.log", left - 5)
        res[name] = {"command": " ".join(cmd), **r}
        if name == "train":
            res[name].update(summarize(bench, min(args.warmup, args.small_steps - 1), r["t_launch"], r["t_launch"]))
        if r["rc"] != 0:
            break
    results = work / f"eval-{shape}" / "results.json"
    if results.is_file():
        data = json.loads(results.read_text())
        res["eval"]["results"] = {k: data.get(k) for k in ("adapter", "model", "split", "overall", "timing")}
        res["eval"]["adapter_applied"] = str(run_dir) in json.dumps(data.get("adapter"))
    return res


def table(report: dict) -> str:
    z = report.get("zero3", {})
    st = z.get("steady", {})
    rows = [
        f"device: {report['environment'].get('device')} x{report['environment'].get('gpus')}, shape {report['shape']}",
        f"rc {z.get('rc')} timed_out {z.get('timed_out')} wall {z.get('wall_s')} s; params {z.get('params')}",
        f"samples/s {st.get('samples_per_s')} (steps {st.get('steps')}, {st.get('s_per_step')} s/step, "
        f"tokens/s {st.get('tokens_per_s')}, ~{st.get('approx_tflops_per_gpu_6N')} TFLOP/s per GPU at 6N/token)",
        f"peak allocated GiB per GPU {z.get('peak_allocated_gib')}",
        f"model build s per rank {z.get('model_build_s')}; first step at {z.get('time_to_first_step_s')} s after "
        f"launch ({z.get('time_to_first_step_from_command_start_s')} s after the command started)",
        f"adapter check {z.get('adapter_check', {}).get('ok')}",
        f"reload: {json.dumps({k: (v.get('rc') if isinstance(v, dict) else v) for k, v in report.get('reload', {}).items() if k != 'why'})}",
    ]  # fmt: skip
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    passthrough: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="processor, clips, FFmpeg libraries (run here)", allow_abbrev=False)
    p.add_argument("--assets", default=".zero3")
    p.add_argument("--per-class", type=int, default=4, help="sample rows per MIntRec class and split (20 classes)")
    p.add_argument("--av-wheels", default=".whl_av", help="folder holding PyAV's and torchcodec's wheels")
    p.add_argument("--wheels", default=".whl_ds", help="where torchcodec's wheel is copied")
    p.add_argument("--no-ffmpeg", action="store_true")
    p = sub.add_parser("build", help="a random-weights model folder", allow_abbrev=False)
    p.add_argument("--shape", choices=sorted(SHAPES), required=True)
    p.add_argument("--proc", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p = sub.add_parser("train", help="one process of a run (under accelerate launch); sft.py options after --")
    p.add_argument("--bench-dir", required=True)
    p = sub.add_parser("run", help="the whole benchmark (on the GPU machine)", allow_abbrev=False)
    p.add_argument("--assets", default=".zero3")
    p.add_argument("--work", default="/tmp/zero3")
    p.add_argument("--json", default=None, help="report path (default: $OUT/zero3_lora.json)")
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny shapes, gloo")
    p.add_argument("--no-deepspeed", action="store_true", help="with --tiny: accelerate's plain multi-CPU launch")
    p.add_argument("--nproc", type=int, default=4)
    p.add_argument("--port", type=int, default=29533)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3, help="first steps left out of the steady-state rate (>= 1)")
    p.add_argument("--batch", type=int, default=4, help="per-device batch (the recipe's 8 is kept for real runs)")
    p.add_argument("--small-steps", type=int, default=5)
    p.add_argument("--eval-limit", type=int, default=16)
    p.add_argument("--budget-s", type=float, default=450.0, help="the whole command, from $ZERO3_T0")
    p.add_argument("--reserve-s", type=float, default=20.0, help="kept back from the ZeRO-3 run for the report")
    p.add_argument("--reload-min-s", type=float, default=150.0, help="budget left to start the 7B reload")
    p.add_argument("--skip-reload", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "train":
        return train(args, passthrough)
    return {"prepare": prepare, "build": build_weights, "run": run}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
