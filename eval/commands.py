"""``mmla eval`` and ``mmla report``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
PROMPT_STYLE_CHOICES = ("upstream", "upstream_sft", "paper", "mmla")


def register(subparsers: argparse._SubParsersAction) -> None:
    ev = subparsers.add_parser("eval", help="zero-shot evaluation of a model on MMLA tasks", allow_abbrev=False)
    ev.add_argument("--model", default=None, help="Hub id, local folder or .gguf file (default: embedded smollm2)")
    ev.add_argument("--tasks", default="all", help="all, a dimension, or comma-separated task keys")
    ev.add_argument("--data", default=None, help="release folder, folder of per-task folders, or Hub repo id")
    ev.add_argument("--videos", default=None, help="folder of clips of restricted corpora (IEMOCAP, MOSI, Anno-MI)")
    ev.add_argument("--split", default="test", choices=["train", "validation", "test"])
    ev.add_argument("--mode", default="generate", choices=["generate", "rank"])
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--limit", type=int, default=None, help="first N samples of each task")
    ev.add_argument("--output", default="mmla_eval",
                    help="output folder (results.json, predictions/); a rerun into it resumes")  # fmt: skip
    ev.add_argument("--text-only", action="store_true", help="never show videos (default for text LLMs)")
    ev.add_argument("--num-frames", type=int, default=8, help="frames sampled per clip (MLLMs)")
    ev.add_argument("--fps", type=float, default=None, help="sample frames at this rate instead of --num-frames")
    ev.add_argument("--trust-remote-code", action="store_true", help="allow modelling code from the model repo")
    ev.add_argument("--adapter", default=None, help="PEFT adapter folder applied to --model")
    ev.add_argument("--gguf-file", default=None, help="GGUF file name inside --model")
    ev.add_argument("--dtype", default="auto", help="auto, bfloat16, float16, float32")
    ev.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: the accelerate device)")
    ev.add_argument("--attn-implementation", default=None, help="sdpa, eager, flash_attention_2 ...")
    ev.add_argument("--max-new-tokens", type=int, default=16)
    ev.add_argument(
        "--prompt-style",
        default="upstream",
        choices=PROMPT_STYLE_CHOICES,
        help="upstream: the upstream zero-shot string, byte for byte (comparable with the paper); "
        "upstream_sft: the upstream fine-tuning files' wording; paper: Appendix D (mmla: old name)",
    )
    ev.add_argument(
        "--upstream-labels",
        action="store_true",
        help="list upstream zero-shot's candidate labels (CH-SIMS: positive, negative only); "
        "for exact reproduction of upstream runs only",
    )
    ev.add_argument(
        "--parse-mode",
        default="aliases",
        choices=["aliases", "upstream"],
        help="aliases: labels and their spelling variants; upstream: exactly upstream eval.py's clean()",
    )
    ev.add_argument("--no-chat-template", action="store_true", help="feed the raw prompt (models without template)")
    ev.add_argument(
        "--upstream-metrics",
        action="store_true",
        help="upstream eval.py's macro averages (no labels=: unknown/multi become classes)",
    )
    ev.add_argument("--skip-bad", action="store_true", help="skip (and record) samples whose video fails to decode")
    ev.add_argument("--plots", action="store_true", help="also write PNG plots next to results.json")
    ev.add_argument("--num-processes", type=int, default=1,
                    help="data-parallel processes (one per GPU; gloo on CPU), relaunched through torchrun")  # fmt: skip
    ev.set_defaults(func=run_eval, _parser=ev)

    rp = subparsers.add_parser(
        "report", help="tables, paper comparison and plots from results.json files", allow_abbrev=False
    )
    rp.add_argument("dirs", nargs="+", help="evaluation output folders (or results.json files)")
    rp.add_argument("--plots", action="store_true", help="write PNG plots")
    rp.add_argument("--output", default=None, help="where to write report.md and plots (default: first dir)")
    rp.set_defaults(func=run_report)


def _in_distributed_launch() -> bool:
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _argv_of(args: argparse.Namespace, parser: argparse.ArgumentParser, drop: tuple[str, ...]) -> list[str]:
    """The command line that reproduces ``args`` (non-default options only), for relaunching it."""
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in drop or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        argv += [flag] if isinstance(action, argparse._StoreTrueAction) else [flag, str(value)]
    return argv


def launch_command(args: argparse.Namespace) -> list[str]:
    """``torchrun`` running this same ``mmla eval`` in ``args.num_processes`` processes (one per GPU, or gloo on CPU).

    ``torch.distributed.run`` rather than ``accelerate launch``: the latter's ``--cpu`` runs one process and it
    reads the user's default accelerate config (which may say DeepSpeed); the runner builds its own
    ``PartialState`` either way.
    """
    import torch

    n, gpus = args.num_processes, torch.cuda.device_count()
    if args.device not in (None, "cpu", "cuda"):
        raise ValueError(f"--num-processes {n} puts one process on each GPU; drop --device {args.device}")
    if args.device != "cpu" and 0 < gpus < n:
        raise ValueError(f"--num-processes {n} but only {gpus} GPU(s) are visible; pass --device cpu to use the CPU")
    # Each process takes its own GPU (the accelerate device) unless the CPU was asked for.
    argv = _argv_of(
        args, args._parser, drop=("num_processes",) if args.device == "cpu" else ("num_processes", "device")
    )
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
            "-m", "mmla.eval.cli", *(["-v"] if getattr(args, "verbose", False) else []), "eval", *argv]  # fmt: skip


def _check_args(args: argparse.Namespace) -> None:
    """Option values that can be refused before anything is loaded."""
    for opt, value, low in (("--batch-size", args.batch_size, 1), ("--max-new-tokens", args.max_new_tokens, 1),
                            ("--num-frames", args.num_frames, 1), ("--num-processes", args.num_processes, 1)):  # fmt: skip
        if value < low:
            raise ValueError(f"{opt} must be >= {low} (got {value})")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1 (got {args.limit}); omit --limit to evaluate every row")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be > 0 (got {args.fps})")


def _peek_model(args: argparse.Namespace) -> bool | None:
    """Whether the model is text-only, from its config alone (no weights); None when that cannot be told cheaply.

    None (config unreadable, or modelling code the user has not trusted) means: load the model first, so that
    its own error comes before any data is fetched.
    """
    if args.text_only:
        return True
    try:
        from transformers import PretrainedConfig
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        from mmla.eval.adapters import adapter_class, resolve_model

        path, gguf_file = resolve_model(args.model, args.gguf_file)
        if gguf_file:
            return True  # transformers reads GGUF for text LMs only; parsing its metadata takes seconds
        config, _ = PretrainedConfig.get_config_dict(path, gguf_file=gguf_file)
    except Exception:  # load_model reports it in its own words
        return None
    model_type = config.get("model_type")
    cls = adapter_class(model_type)
    if (cls.requires_remote_code or ("auto_map" in config and model_type not in CONFIG_MAPPING)) and not (
        args.trust_remote_code
    ):
        return None
    return not cls.is_multimodal


def _load(args: argparse.Namespace, device: str | None) -> Any:
    from mmla.eval.adapters import load_model

    return load_model(
        args.model,
        adapter=args.adapter,
        gguf_file=args.gguf_file,
        dtype=args.dtype,
        device=device,
        trust_remote_code=args.trust_remote_code,
        attn_implementation=args.attn_implementation,
        use_chat_template=not args.no_chat_template,
        video_kwargs={"fps": args.fps} if args.fps else {"num_frames": args.num_frames},
    )


def run_eval(args: argparse.Namespace) -> int:
    # Everything that can be refused is refused before the model loads: options, tasks, the output folder, the data.
    _check_args(args)
    from mmla.eval.runner import claim_eval_output, load_eval_data
    from mmla.loaders.tasks import resolve_tasks

    tasks = resolve_tasks(args.tasks)  # unknown task -> KeyError with a hint
    if not tasks:
        raise ValueError(f"--tasks {args.tasks!r} selects no task; give task keys, a dimension or 'all'")
    launched = _in_distributed_launch()
    relaunch = launch_command(args) if args.num_processes > 1 and not launched else None  # checks --device
    if not launched or int(os.environ.get("RANK", "0")) == 0:
        claim_eval_output(args.output, protected=(args.data, args.videos, args.model, args.adapter))
    text_only = None
    loaded = None
    if not launched:  # under a launcher the parent process has checked the data (children load it in order)
        text_only = _peek_model(args)
        if text_only is not None:
            loaded = load_eval_data(
                tasks, args.data, args.split, text_only=text_only, videos=args.videos, limit=args.limit
            )
    if relaunch is not None:
        if text_only is None:
            _load(args, "cpu")  # the model's own error, before launching processes
        cmd = relaunch
        env = dict(os.environ)
        if args.device == "cpu":
            env["ACCELERATE_USE_CPU"] = "1"  # gloo CPU group in the runner, even where GPUs exist
        logger.info("relaunching in %d processes: %s", args.num_processes, shlex.join(cmd))
        return subprocess.run(cmd, env=env, check=False).returncode
    if args.num_processes > 1 and int(os.environ.get("WORLD_SIZE", "1")) != args.num_processes:
        logger.warning("--num-processes %d ignored: already launched with WORLD_SIZE=%s",
                       args.num_processes, os.environ.get("WORLD_SIZE"))  # fmt: skip
    device = args.device
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = None  # each process on its own GPU (the accelerate device), not all on cuda:0
    from mmla.eval.report import format_results, write_plots
    from mmla.eval.runner import evaluate_tasks

    adapter = _load(args, device)
    results = evaluate_tasks(
        adapter,
        tasks,
        args.data,
        args.split,
        mode=args.mode,
        batch_size=args.batch_size,
        limit=args.limit,
        output_dir=args.output,
        text_only=True if args.text_only else text_only,
        videos=args.videos,
        num_frames=args.num_frames,
        fps=args.fps,
        prompt_style=args.prompt_style,
        label_set="upstream" if args.upstream_labels else "full",
        parse_mode=args.parse_mode,
        max_new_tokens=args.max_new_tokens,
        skip_bad=args.skip_bad,
        upstream_metrics=args.upstream_metrics,
        base_model=adapter.model_id if args.adapter else None,
        adapter_path=args.adapter,
        method="zero-shot" if args.adapter is None else "sft",
        loaded=loaded,
    )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        state = PartialState()  # the one the runner set up
        state.wait_for_everyone()  # process 0 has written results.json
        is_main = state.is_main_process
        state.destroy_process_group()
        if not is_main:
            return 0
    print(format_results(results))
    if args.plots:
        for p in write_plots(results, Path(args.output)):
            print(f"wrote {p}")
    print(f"results: {Path(args.output) / 'results.json'}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from mmla.eval.report import load_results, write_plots, write_report

    runs = [load_results(d) for d in args.dirs]
    out = Path(args.output or (args.dirs[0] if Path(args.dirs[0]).is_dir() else Path(args.dirs[0]).parent))
    text = write_report(runs, out)
    print(text)
    if args.plots:
        for res in runs:
            for p in write_plots(res, out):
                print(f"wrote {p}")
    return 0
