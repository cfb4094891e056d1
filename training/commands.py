"""``mmla train``: run ``training/sft.py`` in-process, or print the ``accelerate launch`` command for it."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

ACCELERATE_DIR = Path(__file__).parent / "recipes" / "accelerate"


def accelerate_config(name: str) -> Path:
    """Path of a bundled accelerate config (``single_gpu``, ``ddp``, ``zero2``, ``zero3``, ``zero3_offload``)."""
    path = ACCELERATE_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in ACCELERATE_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no accelerate config {name!r}; bundled: {', '.join(known)}")
    return path


def launch_command(sft_args: list[str], *, accelerate: str = "single_gpu", num_processes: int | None = None) -> str:
    """The ``accelerate launch`` line that runs the same training on one or more GPUs."""
    cmd = ["accelerate", "launch", "--config_file", str(accelerate_config(accelerate))]
    if num_processes:
        cmd += ["--num_processes", str(num_processes)]
    cmd += [str(Path(__file__).parent / "sft.py"), *sft_args]
    return shlex.join(cmd)


def _handle(args: argparse.Namespace) -> int:
    sft_args = [a for a in args.sft_args if a != "--"]
    if args.print_command:
        print(launch_command(sft_args, accelerate=args.accelerate, num_processes=args.num_processes))
        return 0
    from mmla.training.sft import run

    run(sft_args)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        allow_abbrev=False,
        help="LoRA SFT (one task) or instruction tuning (several tasks) with TRL",
        description="Runs training/sft.py in this process (one device). Every option after the ones below is "
        "passed to it: --recipe paper/sft/<task>/<model> | paper/it/<model>, --config FILE, --tasks, --data, "
        "--output_dir and any SFTConfig/ModelConfig field. Use --print-command for multi-GPU (accelerate).",
    )
    p.add_argument("--print-command", action="store_true", help="print the accelerate launch command and exit")
    p.add_argument("--accelerate", default="single_gpu", help="bundled accelerate config (with --print-command)")
    p.add_argument("--num-processes", type=int, default=None, help="GPUs (with --print-command)")
    p.set_defaults(func=_handle, sft_args=[])
    parse_known = p.parse_known_args

    def parse_known_args(args=None, namespace=None):  # type: ignore[no-untyped-def]
        # Every option this subcommand does not define belongs to training/sft.py (TrlParser validates them).
        ns, extra = parse_known(args, namespace)
        ns.sft_args = [*ns.sft_args, *extra]
        return ns, []

    p.parse_known_args = parse_known_args  # type: ignore[method-assign]
