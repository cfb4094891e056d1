"""Data-parallel evaluation scaling: the real ``mmla eval --num-processes N`` command, N = 1, 2, ...

Each run is the command a user types (``python -m mmla.cli eval ... --num-processes N``), timed from
outside (wall-clock: interpreter start, relaunch, model loading in every process, data,
scoring, gather, writing) and from inside (``results.json`` ``timing``: the runner alone). A
``sitecustomize`` hook (``MMLA_SCALING_TRACE``, this file's :func:`install_trace`) stamps each process's
phases into a JSON-lines trace, so the gap between the two is attributed: interpreter start and imports,
relaunch, ``load_model``, data loading, scoring, gather, exit.

Workloads (model folders are built on the machine from random bf16 weights, never carried):
  text_val   Qwen2-7B-shaped LLM, the five shared tasks' real validation rows (../shared/data, 2,442 prompts)
  text_test  the same model, a test-split-sized run: ~12,000 prompts over all 12 tasks (each task's share
             of the real test sizes; utterances drawn from the real shared texts, labels from the task's set)
  vl         Qwen2-VL-7B-shaped MLLM, 8 frames from generated 1280x720 mp4 clips (real MIntRec text)
The tokenizer is SmolLM2-135M-Instruct's (from the embedded GGUF, 49,152 tokens, ChatML template); the
text model keeps Qwen2-7B's 152,064-row embedding (ids past the tokenizer decode to nothing).

Usage (results and where the time goes: docs/benchmarks.md, "Data-parallel evaluation scaling"):
    python bench/eval_scaling.py prepare --assets .snap/assets     # here: tokenizer, processor, JSONL (clips
                                                                   # are written on the machine)
    python bench/eval_scaling.py run --assets .snap/assets --workloads text_val,text_test --nprocs 1,2
    python bench/eval_scaling.py run --assets /tmp/a --tiny         # CPU smoke run (tiny shapes, gloo)
``--nprocs`` items: ``N`` (``--num-processes N``), ``Nt`` (the same workers under ``torchrun`` directly, no
parent process), ``1xK`` (K single-process runs at once, one per GPU: do the GPUs slow each other?).
Prints a compact table last; writes eval_scaling_<workloads>.json to $OUT (or --json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from shapes import QWEN2_7B, QWEN2VL_7B_VISION, QWEN2VL_TINY_VISION  # bench/ is on sys.path (the script's folder)

ROOT = Path(__file__).resolve().parents[1]
SHARED_TASKS = ("mintrec", "meld", "iemocap", "mosi", "mustard")
TRACE_ENV = "MMLA_SCALING_TRACE"

QWEN2_TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 128, "vocab_size": 152064, "max_position_embeddings": 4096}  # fmt: skip
# Qwen2-VL-7B-Instruct's chat template (video/image placeholders), so the processor expands <|video_pad|>.
QWEN2VL_CHAT = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
VL_SPECIALS = ["<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>"]
VL_PIXELS = {"min_pixels": 224 * 224, "max_pixels": 336 * 336}  # as bench/eval_speed.py: 576 tokens per 8 frames


# ------------------------------------------------------------------------------------------------ trace hook
def install_trace(path: str) -> None:
    """Append ``{"t", "pid", "rank", "event"}`` lines to ``path`` at each phase of an ``mmla eval`` process.

    Called from a ``sitecustomize`` at interpreter start, so the first event is the process start. The
    functions are wrapped right after their modules execute (an import hook), before ``register`` binds
    ``run_eval`` and before the command imports ``load_model``/``evaluate_tasks``: nothing else changes.
    """
    import atexit
    import importlib.abc
    import time as _time

    def ev(name: str, **kw: object) -> None:
        rec = {"t": _time.time(), "pid": os.getpid(), "rank": os.environ.get("RANK"), "event": name, **kw}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")

    def wrap(mod: object, name: str, label: str, count_arg: int | None = None) -> None:
        fn = getattr(mod, name)

        def wrapped(*a: object, **k: object) -> object:
            extra = {"n": len(a[count_arg])} if count_arg is not None and len(a) > count_arg else {}
            ev(label + "_start", **extra)
            try:
                return fn(*a, **k)
            finally:
                ev(label + "_end")

        setattr(mod, name, wrapped)

    def patch_commands(mod: object) -> None:
        wrap(mod, "run_eval", "run_eval")
        for name, label in (
            ("launch", "launch_command"),
            ("launch_command", "launch_command"),
            ("_peek_model", "peek_model"),
        ):
            if hasattr(mod, name):
                wrap(mod, name, label)

    def patch_adapters(mod: object) -> None:
        wrap(mod, "load_model", "load_model")

    def patch_runner(mod: object) -> None:
        # The scoring loop: ``_run_pending`` (or ``score_samples``, its name in a refactor under way).
        for name in ("score_samples", "_run_pending"):
            if hasattr(mod, name):
                wrap(mod, name, "score", count_arg=1)
        if hasattr(mod, "load_eval_data"):
            wrap(mod, "load_eval_data", "load_data")
        orig = mod.evaluate_tasks

        def evaluate_tasks(*a: object, **k: object) -> object:
            import accelerate.utils

            if not getattr(accelerate.utils.gather_object, "_traced", False):
                wrap(accelerate.utils, "gather_object", "gather")
                accelerate.utils.gather_object._traced = True
            ev("evaluate_start")
            try:
                return orig(*a, **k)
            finally:
                ev("evaluate_end")

        mod.evaluate_tasks = evaluate_tasks

    patches = {"mmla.cli.eval": patch_commands, "mmla.eval.adapters": patch_adapters,
               "mmla.eval.runner": patch_runner}  # fmt: skip

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):  # type: ignore[override]
            if fullname not in patches:
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
            orig_exec = spec.loader.exec_module

            def exec_module(module: object) -> None:
                orig_exec(module)
                patches[fullname](module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())
    argv = list(getattr(sys, "orig_argv", []))
    role = "torchrun" if "torch.distributed.run" in argv else "worker" if os.environ.get("RANK") else "cli"
    ev("start", role=role, argv=argv[:6])
    atexit.register(ev, "exit")


# ------------------------------------------------------------------------------------------------ prepare
def _utterances(shared: Path) -> list[str]:
    texts = []
    for path in sorted(shared.glob("*/*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    return texts


def prepare(args: argparse.Namespace) -> None:
    """Everything the machine needs besides weights: tokenizer, processor, JSONL data, clips (a few MiB)."""
    from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    from mmla.eval.adapters import resolve_model
    from mmla.loaders.tasks import TASKS

    out, shared = Path(args.assets), Path(args.shared)
    if out.exists():
        shutil.rmtree(out)
    folder, gguf = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    tok.save_pretrained(out / "tok_text")
    vtok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    vtok.add_special_tokens({"additional_special_tokens": VL_SPECIALS})
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**VL_PIXELS),
                            video_processor=Qwen2VLVideoProcessor(**VL_PIXELS), tokenizer=vtok,
                            chat_template=QWEN2VL_CHAT)  # fmt: skip
    proc.save_pretrained(out / "proc_vl")
    # (i) the five shared tasks' real validation rows, as they are.
    for key in SHARED_TASKS:
        (out / "data_val" / key).mkdir(parents=True)
        shutil.copyfile(shared / key / "validation.jsonl", out / "data_val" / key / "validation.jsonl")
    # (ii) ~N test rows over all 12 tasks in proportion to the real test sizes; real utterances, random labels.
    pool = _utterances(shared)
    rng = random.Random(0)
    total = sum(t.splits["test"] for t in TASKS.values())
    for key, task in TASKS.items():
        k = max(1, round(args.test_prompts * task.splits["test"] / total))
        (out / "data_test" / key).mkdir(parents=True)
        with open(out / "data_test" / key / "test.jsonl", "w", encoding="utf-8") as fh:
            for i in range(k):
                row = {"id": f"{key}-{i}", "text": rng.choice(pool), "label": rng.choice(task.labels)}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    # (b) real MIntRec validation text, each row pointing at one of a few generated 720p clips.
    # The clips themselves are written on the machine (ensure_clips): they would not fit the carry limit.
    vdir = out / "data_vl" / "mintrec"
    vdir.mkdir(parents=True)
    with open(shared / "mintrec" / "validation.jsonl", encoding="utf-8") as src:
        rows = [json.loads(line) for line in src if line.strip()][: args.vl_rows]
    with open(vdir / "validation.jsonl", "w", encoding="utf-8") as fh:
        for i, row in enumerate(rows):
            clip = f"clips/clip{i % args.clips}.mp4"
            fh.write(json.dumps({"id": row["id"], "text": row["text"], "label": row["label"], "video": clip}) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"assets in {out}: {size / 2**20:.1f} MiB, {len(rows)} vl rows, {len(pool)} utterances in the pool")


def ensure_clips(vdir: Path, tiny: bool) -> list[str]:
    """The H.264 clips the VL rows name (1280x720, 25 fps, 3-4 s; 160x90 with ``tiny``), written if missing."""
    from mmla.loaders.sample import ClipSpec, write_clip

    names = set()
    with open(vdir / "validation.jsonl", encoding="utf-8") as fh:
        names = {json.loads(line)["video"] for line in fh if line.strip()}
    for name in sorted(names):
        k = int(Path(name).stem.removeprefix("clip"))
        if not (vdir / name).exists():
            w, h = (160, 90) if tiny else (1280, 720)
            write_clip(vdir / name, ClipSpec(w, h, 3.0 + 0.5 * (k % 3), 25), seed=k)
    return sorted(names)


# ------------------------------------------------------------------------------------------------ models
def _save_random_model(cls, config, *, tiny: bool, dtype, companion, dest: Path, t0: float) -> dict:
    """Random weights (``eval_speed.random_model``) saved with ``companion`` (tokenizer/processor); atomic rename."""
    from eval_speed import random_model  # bench/ is on sys.path when a bench script runs

    model = random_model(cls, config, "cpu" if tiny else "cuda", dtype)
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    companion.save_pretrained(tmp)
    params = sum(p.numel() for p in model.parameters())
    del model
    os.replace(tmp, dest)
    return {"built_s": round(time.perf_counter() - t0, 1), "params": params}


def build_text_model(assets: Path, dest: Path, tiny: bool) -> dict:
    """A Qwen2-7B-shaped folder (random weights) with the carried tokenizer; skipped when already there."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    if (dest / "config.json").exists():
        return {"built_s": 0.0, "reused": True}
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(assets / "tok_text")
    dtype = torch.float32 if tiny else torch.bfloat16
    cfg = Qwen2Config(**(QWEN2_TINY if tiny else QWEN2_7B), tie_word_embeddings=False, dtype=dtype,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    return _save_random_model(Qwen2ForCausalLM, cfg, tiny=tiny, dtype=dtype, companion=tok, dest=dest, t0=t0)


def build_vl_model(assets: Path, dest: Path, tiny: bool) -> dict:
    """A Qwen2-VL-7B-shaped folder (random weights) with the carried processor."""
    import torch
    from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    if (dest / "config.json").exists():
        return {"built_s": 0.0, "reused": True}
    t0 = time.perf_counter()
    proc = AutoProcessor.from_pretrained(assets / "proc_vl")
    tok = proc.tokenizer
    ids = {s: tok.convert_tokens_to_ids(s) for s in VL_SPECIALS}
    dtype = torch.float32 if tiny else torch.bfloat16
    text = {**(QWEN2_TINY if tiny else QWEN2_7B), "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id,
            "rope_scaling": {"type": "mrope", "mrope_section": [4, 2, 2] if tiny else [16, 24, 24]}}  # fmt: skip
    cfg = Qwen2VLConfig(text_config=text, vision_config=QWEN2VL_TINY_VISION if tiny else QWEN2VL_7B_VISION,
                        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, dtype=dtype)  # fmt: skip
    return _save_random_model(
        Qwen2VLForConditionalGeneration, cfg, tiny=tiny, dtype=dtype, companion=proc, dest=dest, t0=t0
    )


# ------------------------------------------------------------------------------------------------ runs
def workloads(assets: Path, work: Path) -> dict[str, dict]:
    return {
        "text_val": {"model": work / "text_model", "tasks": ",".join(SHARED_TASKS), "data": assets / "data_val",
                     "split": "validation", "kind": "text"},
        "text_test": {"model": work / "text_model", "tasks": "all", "data": assets / "data_test", "split": "test",
                      "kind": "text"},
        "vl": {"model": work / "vl_model", "tasks": "mintrec", "data": assets / "data_vl", "split": "validation",
               "kind": "vl"},
    }  # fmt: skip


def eval_command(w: dict, out: Path, spec: str, args: argparse.Namespace, limit: int | None) -> list[str]:
    """``spec``: ``"N"`` is ``mmla eval --num-processes N`` (what users type); ``"Nt"`` starts the same command
    with ``torchrun --nproc_per_node N`` directly (no parent process: the lower bound of the relaunch)."""
    bs = args.vl_batch_size if w["kind"] == "vl" else args.batch_size
    n = int(spec.rstrip("t"))
    cmd = [sys.executable, "-m", "mmla.cli", "eval", "--model", str(w["model"]), "--tasks", w["tasks"],
           "--data", str(w["data"]), "--split", w["split"], "--batch-size", str(bs), "--output", str(out)]  # fmt: skip
    if spec.endswith("t"):
        cmd[1:3] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), "-m", "mmla.cli"]
    else:
        cmd += ["--num-processes", str(n)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    cmd += shlex.split(args.eval_args)
    if args.tiny:
        cmd += ["--device", "cpu", "--dtype", "float32"]
    return cmd


def _phases(events: list[dict], t0: float, wall: float) -> dict:
    """Per-process phase durations (s) and start offsets from the command's start, from the trace."""
    procs: dict[int, list[dict]] = {}
    for e in events:
        procs.setdefault(e["pid"], []).append(e)
    out: dict = {"processes": []}
    for pid, evs in sorted(procs.items(), key=lambda kv: kv[1][0]["t"]):
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        n_scored = None
        for e in evs:
            first.setdefault(e["event"], e["t"] - t0)
            last[e["event"]] = e["t"] - t0
            if e["event"] == "score_start":
                n_scored = e.get("n")
        start = next((e for e in evs if e["event"] == "start"), None)
        # A forked worker (mmla eval --num-processes N) has no interpreter start of its own: its first event
        # (load_model_start, just after the fork) stands for it, and it leaves through os._exit (no exit event).
        role = start["role"] if start else "forked"
        rank = next((e.get("rank") for e in evs if e.get("rank") is not None), None)
        rec: dict = {"pid": pid, "rank": rank, "role": role, "start_at": first.get("start", min(first.values()))}

        def span(a: str, b: str, rec: dict = rec, first: dict = first, last: dict = last) -> None:
            if a in first and b in last:
                rec[f"{a.removesuffix('_start')}_s"] = round(last[b] - first[a], 2)

        if "run_eval_start" in first:
            rec["imports_s"] = round(first["run_eval_start"] - first.get("start", 0.0), 2)
        span("load_model_start", "load_model_end")
        if "evaluate_start" in first and "score_start" in first:
            rec["data_s"] = round(first["score_start"] - first["evaluate_start"], 2)
        span("score_start", "score_end")
        span("gather_start", "gather_end")
        if "score_end" in last and "evaluate_end" in last:
            rec["after_score_s"] = round(last["evaluate_end"] - last["score_end"], 2)
        if start is None:
            last.setdefault("exit", max(last.values()))
        if "evaluate_end" in last and "exit" in last:
            rec["after_evaluate_s"] = round(last["exit"] - last["evaluate_end"], 2)
        if "launch_command_start" in first:  # the launcher starts the worker processes
            rec["relaunch_at"] = round(first["launch_command_start"], 2)
        for key in ("load_model_end", "score_start", "score_end", "exit"):
            if key in last:
                rec[f"{key}_at"] = round(last[key], 2)
        rec["samples_scored"] = n_scored
        out["processes"].append(rec)
    workers = [p for p in out["processes"] if "load_model_s" in p]
    if workers:
        out["workers_started_at"] = round(max(p["start_at"] for p in workers), 2)
        out["model_loaded_at"] = round(max(p.get("load_model_end_at", 0.0) for p in workers), 2)
        out["scoring_from"] = round(min(p.get("score_start_at", wall) for p in workers), 2)
        out["scoring_to"] = round(max(p.get("score_end_at", 0.0) for p in workers), 2)
        out["last_worker_exit_at"] = round(max(p.get("exit_at", 0.0) for p in workers), 2)
    return out


def _predictions(out: Path) -> dict[tuple[str, str], str]:
    preds = {}
    for path in sorted((out / "predictions").glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                preds[(path.stem, row["id"])] = row["raw"]
    return preds


def run_one(w: dict, spec: str, args: argparse.Namespace, work: Path, tag: str, limit: int | None = None) -> dict:
    """One timed command. ``spec`` ``"1xK"``: K independent single-process runs at once, one per GPU, each over
    all the data (a diagnostic: does a process score slower while the other GPU is busy, with no launcher?)."""
    copies = int(spec.split("x")[1]) if "x" in spec else 1
    procs, outs, traces, logs, cmds = [], [], [], [], []
    t0 = time.time()
    for c in range(copies):
        sub = f"{tag}_{c}" if copies > 1 else tag
        out, trace, log = work / f"out_{sub}", work / f"trace_{sub}.jsonl", work / f"log_{sub}.txt"
        shutil.rmtree(out, ignore_errors=True)
        trace.unlink(missing_ok=True)
        env = dict(os.environ, **{TRACE_ENV: str(trace)})
        env["PYTHONPATH"] = os.pathsep.join([str(work / "site_hook"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        if copies > 1:
            env["CUDA_VISIBLE_DEVICES"] = str(c)
        cmd = eval_command(w, out, spec.split("x")[0], args, limit)
        fh = open(log, "wb")  # noqa: SIM115 (closed below, after the process ends)
        procs.append((subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT), fh))
        outs.append(out), traces.append(trace), logs.append(log), cmds.append(cmd)
    for proc, fh in procs:
        proc.wait()
        fh.close()
    wall = time.time() - t0
    runs = []
    for (proc, _), out, trace, log, cmd in zip(procs, outs, traces, logs, cmds, strict=True):
        if proc.returncode != 0:
            print(log.read_text(encoding="utf-8", errors="replace")[-6000:], file=sys.stderr)
            raise SystemExit(f"{tag}: exit {proc.returncode}: {' '.join(cmd)}")
        res = json.loads((out / "results.json").read_text(encoding="utf-8"))
        events = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines() if line.strip()]
        runs.append((res, events, cmd, out))
    res, events, cmd, out = runs[0]
    timing = res["timing"]
    samples = timing["samples_computed"]
    rec = {
        "tag": tag,
        "spec": spec,
        "num_processes": timing["num_processes"],
        "command": " ".join(["python", *cmd[1:]]),
        "wall_s": round(wall, 2),
        "samples": samples,
        "wall_samples_per_s": round(samples / wall, 2),
        "runner_s": timing["seconds"],
        "runner_samples_per_s": timing["samples_per_second"],
        "timing": timing,
        "overall": res["overall"],
        "phases": _phases(events, t0, wall),
    }
    if copies > 1:
        rec["copies"] = [{"timing": r[0]["timing"], "phases": _phases(r[1], t0, wall)} for r in runs]
    rec["_out"] = str(out)
    return rec


def _repeats(spec: str, name: str) -> int:
    """``"2"`` for every workload, or ``"text_val=1,text_test=2"`` (unnamed workloads: 1)."""
    if "=" not in spec:
        return int(spec)
    pairs = dict(item.split("=") for item in spec.split(","))
    return int(pairs.get(name, 1))


def _environment() -> dict:
    env: dict = {"cpus": os.cpu_count()}
    try:
        names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, check=True).stdout.split("\n")  # fmt: skip
        names = [n.strip() for n in names if n.strip()]
        env.update({"device": names[0] if names else "cpu", "gpus": len(names)})
    except (OSError, subprocess.CalledProcessError):
        env.update({"device": "cpu", "gpus": 0})
    from importlib.metadata import version

    for pkg in ("torch", "transformers", "accelerate", "datasets", "tokenizers", "torchcodec"):
        try:
            env[pkg] = version(pkg)
        except Exception:
            env[pkg] = None
    return env


def _json_subprocess(cmd: list[str]) -> dict:
    """Run a helper step of this script in its own process (so this one never holds GPU memory); its last line
    of stdout is JSON."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-6000:], file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


PACKAGES = ("torch", "transformers", "datasets", "accelerate", "evaluate", "sklearn", "scipy", "pandas", "pyarrow",
            "jax", "huggingface_hub", "tokenizers", "safetensors", "numpy", "mmla.eval.adapters", "mmla.eval.metrics",
            "mmla.loaders.load", "mmla.eval.report", "transformers.modeling_utils")  # fmt: skip


def _import_times() -> dict:
    """Seconds of ``import mmla.eval.runner`` (what every process imports before it loads the model): the
    inclusive time of the first import of each of ``PACKAGES`` (``python -X importtime``, a fresh interpreter)."""
    out: dict = {}
    for module in ("mmla.cli.main", "mmla.eval.runner"):
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        wall = time.time() - t0
        top: dict[str, float] = {}
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or line.count("|") != 2:
                continue
            _, cum, name = line.split("|")
            if name.strip() in PACKAGES and cum.strip().isdigit():  # each module is imported (listed) once
                top[name.strip()] = round(int(cum) / 1e6, 2)
        big = dict(sorted(top.items(), key=lambda kv: -kv[1]))
        out[module] = {"wall_s": round(wall, 2), "first_import_s": big}
    return out


def build(args: argparse.Namespace) -> int:
    fn = build_vl_model if args.kind == "vl" else build_text_model
    print(json.dumps(fn(Path(args.assets), Path(args.dest), args.tiny)))
    return 0


def warm_data(args: argparse.Namespace) -> int:
    """Build the datasets cache of one workload (what the first ``mmla eval`` on new data would do)."""
    from mmla.eval.runner import load_eval_data
    from mmla.loaders.tasks import resolve_tasks

    t0 = time.perf_counter()
    out = load_eval_data(resolve_tasks(args.tasks), args.data, args.split, text_only=not args.video)
    print(json.dumps({"rows": sum(len(d) for d in out.values()), "s": round(time.perf_counter() - t0, 2)}))
    return 0


def probe(args: argparse.Namespace) -> int:
    """Where one process's start-up goes: imports, ``load_model`` as the command does it, and the same weights
    loaded straight onto the GPU (``device_map``) for comparison."""
    t0 = time.perf_counter()
    import torch

    t_torch = time.perf_counter()
    import mmla.eval.adapters
    import mmla.eval.runner

    res = {"import_torch_s": round(t_torch - t0, 2), "import_mmla_eval_s": round(time.perf_counter() - t_torch, 2)}
    device = "cpu" if args.tiny else "cuda:0"
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for attempt in range(2):
        t = time.perf_counter()
        adapter = mmla.eval.adapters.load_model(args.model, device=device)
        sync()
        res[f"load_model_s_{attempt}"] = round(time.perf_counter() - t, 2)
        is_mm = adapter.is_multimodal
        del adapter
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    auto = AutoModelForImageTextToText if is_mm else AutoModelForCausalLM
    for attempt in range(2):
        t = time.perf_counter()
        model = auto.from_pretrained(args.model, dtype=torch.float32 if args.tiny else torch.bfloat16,
                                     device_map=device)  # fmt: skip
        sync()
        res[f"from_pretrained_device_map_s_{attempt}"] = round(time.perf_counter() - t, 2)
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    print(json.dumps(res))
    return 0


def write_hook(work: Path) -> None:
    hook = work / "site_hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"if os.environ.get({TRACE_ENV!r}):\n"
        f"    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "    import eval_scaling as _es\n"
        f"    _es.install_trace(os.environ[{TRACE_ENV!r}])\n"
        "    sys.path.pop(0)\n",
        encoding="utf-8",
    )


def run(args: argparse.Namespace) -> int:
    assets = Path(args.assets).resolve()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    write_hook(work)
    ws = workloads(assets, work)
    names = args.workloads.split(",")
    nprocs = args.nprocs.split(",")
    report: dict = {"workloads": {}, "args": {k: v for k, v in vars(args).items() if k != "func"}}
    report.update(_environment())  # without touching the GPU: this process holds no CUDA context during the runs
    dest = args.json or (os.path.join(os.environ["OUT"], f"eval_scaling_{'_'.join(names)}.json") if os.environ.get("OUT") else None)  # fmt: skip

    def save() -> None:  # after every run, so a command stopped at its time limit still returns what it measured
        if dest:
            clean = json.loads(json.dumps(report, default=str))
            for entry in clean["workloads"].values():
                for rec in entry.get("runs", []):
                    rec.pop("_out", None)
            Path(dest).write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")

    t_all = time.time()
    built: dict[str, dict] = {}
    for name in names:
        w = ws[name]
        entry: dict = {"runs": []}
        if w["kind"] not in built:
            if w["kind"] == "vl":
                clips = ensure_clips(Path(w["data"]) / "mintrec", args.tiny)
                print(f"[{time.time() - t_all:6.1f}s] {len(clips)} clips ready", flush=True)
            built[w["kind"]] = _json_subprocess(
                [sys.executable, __file__, "build", "--kind", w["kind"], "--assets", str(assets), "--dest",
                 str(w["model"]), *(["--tiny"] if args.tiny else [])])  # fmt: skip
            print(f"[{time.time() - t_all:6.1f}s] model {w['kind']}: {built[w['kind']]}", flush=True)
            # Warm-up: one short run pulls the weights into the page cache and builds the datasets cache.
            warm = run_one(w, "1", args, work, f"{name}_warm", limit=args.warm_limit)
            entry["warmup"] = {k: warm[k] for k in ("wall_s", "samples", "phases")}
        else:  # same model already warm: only the datasets cache of this workload's data
            t0 = time.time()
            _json_subprocess([sys.executable, __file__, "warm-data", "--tasks", w["tasks"], "--data", str(w["data"]),
                              "--split", w["split"], *(["--video"] if w["kind"] == "vl" else [])])  # fmt: skip
            entry["warmup"] = {"data_only_s": round(time.time() - t0, 2)}
        entry["model_build"] = built[w["kind"]]
        print(f"[{time.time() - t_all:6.1f}s] {name} warm-up: {entry['warmup'].get('wall_s')}", flush=True)
        for r in range(_repeats(args.repeats, name)):
            order = nprocs if r % 2 == 0 else nprocs[::-1]  # alternate the order: no side always goes first
            for n in order:
                limit = args.vl_limit if w["kind"] == "vl" and args.vl_limit is not None else args.limit
                rec = run_one(w, n, args, work, f"{name}_n{n}_r{r}", limit=limit)
                n = rec["spec"]
                rec["repeat"] = r
                entry["runs"].append(rec)
                report["workloads"][name] = entry
                save()
                print(f"[{time.time() - t_all:6.1f}s] {name} N={n} r{r}: wall {rec['wall_s']} s, runner "
                      f"{rec['runner_s']} s ({rec['runner_samples_per_s']}/s)", flush=True)  # fmt: skip
        # Agreement of N > 1 with N = 1 (same repeat): the split must not change the answers.
        base = {r["repeat"]: r for r in entry["runs"] if r["spec"] == nprocs[0]}
        for rec in entry["runs"]:
            b = base.get(rec["repeat"])
            if b is not None and rec is not b and "copies" not in rec:
                p1, p2 = _predictions(Path(b["_out"])), _predictions(Path(rec["_out"]))
                same = sum(p1.get(k) == v for k, v in p2.items())
                rec["same_raw_answer_as_n1"] = round(same / max(1, len(p1)), 4)
                rec["rows_n1_vs_n"] = [len(p1), len(p2)]
                rec["wall_speedup"] = round(b["wall_s"] / rec["wall_s"], 3)
                rec["runner_speedup"] = round(rec["runner_samples_per_s"] / b["runner_samples_per_s"], 3)
        for rec in entry["runs"]:
            rec.pop("_out", None)
        report["workloads"][name] = entry
    if args.probe:
        for kind in built:
            model = next(w["model"] for w in ws.values() if w["kind"] == kind)
            cmd = [sys.executable, __file__, "probe", "--model", str(model), *(["--tiny"] if args.tiny else [])]
            report.setdefault("probe", {})[kind] = _json_subprocess(cmd)
            print(f"[{time.time() - t_all:6.1f}s] probe {kind}: {report['probe'][kind]}", flush=True)
        report["import_times"] = _import_times()
        print(f"[{time.time() - t_all:6.1f}s] imports: {report['import_times']}", flush=True)
    report["total_s"] = round(time.time() - t_all, 1)
    save()
    if dest:
        import tarfile

        logs = Path(dest).with_name(Path(dest).stem + "_logs.tar.gz")
        with tarfile.open(logs, "w:gz") as tar:
            for path in sorted(work.glob("trace_*.jsonl")) + sorted(work.glob("log_*.txt")):
                tar.add(path, arcname=path.name)
        print(f"wrote {dest} and {logs}")
    print(table(report))
    return 0


def table(report: dict) -> str:
    lines = [f"device: {report.get('device')} x{report.get('gpus')}  torch {report.get('torch')}  "
             f"transformers {report.get('transformers')}",
             "| workload | N | r | samples | wall s | wall /s | x N=1 | runner s | runner /s | x N=1 | start | load | data | "
             "score | gather | end | same |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, entry in report["workloads"].items():
        for r in entry["runs"]:
            ph = r["phases"]
            ws = [p for p in ph["processes"] if "load_model_s" in p]

            def mx(key: str, ws: list = ws) -> str:
                vals = [p[key] for p in ws if key in p]
                return f"{max(vals):.1f}" if vals else "-"

            lines.append(
                f"| {name} | {r['spec']} | {r['repeat']} | {r['samples']} | {r['wall_s']:.1f} | "
                f"{r['wall_samples_per_s']:.1f} | {r.get('wall_speedup', 1.0):.2f} | {r['runner_s']:.1f} | "
                f"{r['runner_samples_per_s']:.1f} | {r.get('runner_speedup', 1.0):.2f} | "
                f"{ph.get('workers_started_at', 0):.1f} | {mx('load_model_s')} | {mx('data_s')} | {mx('score_s')} | "
                f"{mx('gather_s')} | {r['wall_s'] - ph.get('scoring_to', r['wall_s']):.1f} | "
                f"{r.get('same_raw_answer_as_n1', 1.0):.3f} |"
            )
    lines.append("start: last worker's interpreter start after the command's start; load: load_model; data: "
                 "dataset + prompts before scoring; score/gather: max over workers; end: wall - last scoring end")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare", help="tokenizer, processor, JSONL data and clips (here, CPU)")
    pp.add_argument("--assets", required=True)
    pp.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    pp.add_argument("--test-prompts", type=int, default=12000)
    pp.add_argument("--vl-rows", type=int, default=384)
    pp.add_argument("--clips", type=int, default=8)
    pp.set_defaults(func=prepare)
    pr = sub.add_parser("run", help="time mmla eval --num-processes N")
    pr.add_argument("--assets", required=True)
    pr.add_argument("--work", default="/tmp/mmla_scaling", help="model folders, outputs, traces, logs")
    pr.add_argument("--workloads", default="text_val,text_test")
    pr.add_argument("--nprocs", default="1,2")
    pr.add_argument("--repeats", default="1", help='runs per N: "2", or per workload "text_val=1,text_test=2"')
    pr.add_argument("--probe", action="store_true", help="also time imports and model loading apart")
    pr.add_argument("--batch-size", type=int, default=512)
    pr.add_argument("--vl-batch-size", type=int, default=16)
    pr.add_argument("--limit", type=int, default=None, help="first N rows of each task (smoke runs)")
    pr.add_argument("--warm-limit", type=int, default=4)
    pr.add_argument("--vl-limit", type=int, default=None, help="first N rows of the vl workload (timed runs)")
    pr.add_argument(
        "--eval-args", default="", help='more `mmla eval` options for every run, e.g. "--packed-prefill off"'
    )
    pr.add_argument("--tiny", action="store_true", help="tiny random models on CPU (gloo), for a smoke run")
    pr.add_argument("--json", default=None)
    pr.set_defaults(func=run)
    pb = sub.add_parser("build", help="(internal) build one model folder")
    pb.add_argument("--kind", choices=["text", "vl"], required=True)
    pb.add_argument("--assets", required=True)
    pb.add_argument("--dest", required=True)
    pb.add_argument("--tiny", action="store_true")
    pb.set_defaults(func=build)
    pw = sub.add_parser("warm-data", help="(internal) build the datasets cache of one workload")
    pw.add_argument("--tasks", required=True)
    pw.add_argument("--data", required=True)
    pw.add_argument("--split", required=True)
    pw.add_argument("--video", action="store_true")
    pw.set_defaults(func=warm_data)
    pq = sub.add_parser("probe", help="(internal) time imports and model loading in one process")
    pq.add_argument("--model", required=True)
    pq.add_argument("--tiny", action="store_true")
    pq.set_defaults(func=probe)
    args = p.parse_args()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
