"""``mmla eval`` and ``mmla report``."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shlex
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

from mmla.eval.arguments import EvalArguments, ModelArguments

logger = logging.getLogger(__name__)
CLI_MODULE = "mmla.cli"
"""The module the launcher runs in each process (``python -m``)."""


@dataclass
class LaunchArguments:
    """Options of the ``mmla eval`` command itself (not of the evaluation)."""

    _argument_group_name = "command"

    num_processes: int = field(
        default=1,
        metadata={"help": "data-parallel processes (one per GPU; gloo on CPU), launched through accelerate's launcher"},
    )
    plots: bool = field(default=False, metadata={"help": "also write PNG plots next to results.json"})

    def __post_init__(self) -> None:
        if self.num_processes < 1:
            raise ValueError(f"--num-processes must be >= 1 (got {self.num_processes})")


EVAL_ARGUMENTS = (EvalArguments, ModelArguments, LaunchArguments)


def register(subparsers: argparse._SubParsersAction) -> None:
    # The `mmla` parser makes its subcommand parsers HfArgumentParsers: each dataclass field is an option.
    ev = subparsers.add_parser(
        "eval",
        help="zero-shot evaluation of a model on MMLA tasks",
        description="Options may be written --batch-size or --batch_size.",
        allow_abbrev=False,
        dataclass_types=EVAL_ARGUMENTS,
    )
    ev.set_defaults(func=run_eval)

    rp = subparsers.add_parser(
        "report", help="tables, paper comparison and plots from results.json files", allow_abbrev=False
    )
    rp.add_argument("dirs", nargs="+", help="evaluation output folders (or results.json files)")
    rp.add_argument("--plots", action="store_true", help="write PNG plots")
    rp.add_argument("--output", default=None, help="where to write report.md and plots (default: first dir)")
    rp.set_defaults(func=run_report)


def eval_arguments(args: argparse.Namespace) -> tuple[EvalArguments, ModelArguments, LaunchArguments]:
    """The parsed dataclasses (what ``HfArgumentParser.parse_args_into_dataclasses`` builds), checked."""
    out = []
    for dtype in EVAL_ARGUMENTS:
        out.append(dtype(**{f.name: getattr(args, f.name) for f in fields(dtype) if f.init}))
    return tuple(out)  # type: ignore[return-value]


def _in_distributed_launch() -> bool:
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _check_launch(n: int, device: str | None) -> None:
    """One process per GPU (or all on the CPU): refused before anything is loaded."""
    import torch

    gpus = torch.cuda.device_count()
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"--num-processes {n} puts one process on each GPU; drop --device {device}")
    if device != "cpu" and 0 < gpus < n:
        raise ValueError(f"--num-processes {n} but only {gpus} GPU(s) are visible; pass --device cpu to use the CPU")


def launch_argv(cli_argv: list[str], n: int) -> list[str]:
    """The ``accelerate launch`` command line that runs the same evaluation in ``n`` fresh processes.

    ``mmla eval --num-processes N`` forks its workers instead (:func:`launch`); this is the equivalent a user
    types for ``accelerate launch`` (printed in the log, used by scripts that cannot fork).
    """
    threads = os.environ.get("OMP_NUM_THREADS") or str(_threads_per_process(n))
    return ["--multi_gpu", "--num_processes", str(n), "--num_cpu_threads_per_process", threads,
            "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", "0", "--module", CLI_MODULE, *cli_argv]  # fmt: skip


def _threads_per_process(n: int) -> int:
    """Each process's share of the cores: frame decoding and the video processor run on the CPU in every one."""
    return max(1, (os.cpu_count() or 1) // n)


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def launch(job: Callable[[], int], n: int, *, cpu: bool, cli_argv: list[str], command: str = "eval") -> int:
    """Run ``job`` in ``n`` processes forked from this one, through accelerate's ``notebook_launcher``.

    Why fork: this process has already imported torch and transformers and loaded and checked the data (the
    model is not loaded and CUDA is not initialised). A fresh interpreter per process (``accelerate launch``,
    ``torchrun``) imports and checks everything again, 10-15 s per process on the GPU machines, which was
    most of the wall-clock difference between one and two GPUs (docs/benchmarks.md). Forked workers start
    with the data in memory and only load the model. Each worker's error is printed there as one line;
    here the failure is one line per failed process.
    """
    import torch
    from accelerate import notebook_launcher
    from accelerate.state import AcceleratorState
    from accelerate.utils import patch_environment

    if torch.cuda.is_initialized():  # this process used the GPU already (a notebook, a script): no fork
        return launch_fresh(cli_argv, n, cpu=cpu)
    # An accelerate state left by earlier work in this process (e.g. a Trainer) is not the workers' state:
    # each worker sets up its own after the fork. (notebook_launcher refuses to start while one exists.)
    AcceleratorState._reset_state(reset_partial_state=True)
    threads = int(os.environ.get("OMP_NUM_THREADS") or _threads_per_process(n))

    def worker() -> None:
        import torch

        sys.stdout = sys.__stdout__  # the launcher's own message was silenced below; the results are not
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read by accelerate's state too
        torch.set_num_threads(threads)
        code = _run_reporting_errors(job, command)
        if code:
            sys.exit(code)  # the exit code, without a traceback (the error is printed above)

    env = {"ACCELERATE_USE_CPU": "1"} if cpu else {}  # gloo CPU group in the runner, even where GPUs exist
    logger.info("evaluating in %d processes (forked, %d CPU threads each)", n, threads)
    # The launcher prints "Launching training on N ..." and torch's elastic agent logs each failed process's
    # traceback; the workers print their own results and one-line errors, so both are kept quiet here.
    elastic_log = logging.getLogger("torch.distributed.elastic")
    level = elastic_log.level
    elastic_log.setLevel(logging.CRITICAL)
    try:
        with patch_environment(**env), contextlib.redirect_stdout(io.StringIO()):
            notebook_launcher(worker, num_processes=n, use_port=_free_port())
    except Exception as err:
        _raise_process_failures(err)
        raise
    finally:
        elastic_log.setLevel(level)
    return 0


def launch_fresh(cli_argv: list[str], n: int, *, cpu: bool) -> int:
    """The same command line in ``n`` fresh processes through accelerate's launcher, run in this process.

    For a process that has initialised CUDA already, which cannot fork workers that use it.
    """
    from accelerate.commands.launch import launch_command, launch_command_parser
    from accelerate.utils import patch_environment

    argv = launch_argv(cli_argv, n)
    logger.info("launching %d fresh processes: accelerate launch %s", n, shlex.join(argv))
    env = {"ACCELERATE_USE_CPU": "1"} if cpu else {}
    try:
        with patch_environment(**env):
            launch_command(launch_command_parser().parse_args(argv))
    except Exception as err:
        _raise_process_failures(err)
        raise
    return 0


def _raise_process_failures(err: Exception) -> None:
    """torch.distributed.elastic's ChildFailedError (itself or as the cause): one line naming each failed process
    (each printed its own error); any other exception is left to the caller."""
    from mmla.cli.main import process_failures

    codes = process_failures(err)
    if codes:
        raise RuntimeError(f"evaluation failed ({codes}); the failing process printed its error above") from None


def _run_reporting_errors(job: Callable[[], int], command: str) -> int:
    """``job()`` in a worker: a user error becomes one line on stderr and exit code 1, as in :func:`mmla.cli.main.main`."""
    from mmla.cli.main import USER_ERRORS, error_line

    try:
        return int(job() or 0)
    except USER_ERRORS as err:
        if logging.getLogger().isEnabledFor(logging.DEBUG):  # -v: the traceback
            raise
        print(error_line(command, err, process=os.environ.get("RANK", "?")), file=sys.stderr)
        return 1


def _peek_model(margs: ModelArguments, eargs: EvalArguments) -> bool | None:
    """Whether the model is text-only, from its config alone (no weights); None when that cannot be told cheaply.

    None (config unreadable, or modelling code the user has not trusted) means: load the model first, so that
    its own error comes before any data is fetched.
    """
    if eargs.text_only:
        return True
    try:
        from transformers import PretrainedConfig
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        from mmla.eval.adapters import adapter_class, resolve_model

        path, gguf_file = resolve_model(margs.model, margs.gguf_file)
        if gguf_file:
            return True  # transformers reads GGUF for text LMs only; parsing its metadata takes seconds
        config, _ = PretrainedConfig.get_config_dict(path, gguf_file=gguf_file)
    except Exception:  # load_model reports it in its own words
        return None
    model_type = config.get("model_type")
    cls = adapter_class(model_type)
    if (cls.requires_remote_code or ("auto_map" in config and model_type not in CONFIG_MAPPING)) and not (
        margs.trust_remote_code
    ):
        return None
    return not cls.is_multimodal


def run_eval(args: argparse.Namespace) -> int:
    # Everything that can be refused is refused before the model loads: options, tasks, the output folder, the data.
    eargs, margs, largs = eval_arguments(args)
    from mmla.eval.runner import claim_eval_output, load_eval_data
    from mmla.loaders.tasks import resolve_tasks

    tasks = resolve_tasks(eargs.tasks)  # unknown task -> KeyError with a hint
    if not tasks:
        raise ValueError(f"--tasks {eargs.tasks!r} selects no task; give task keys, a dimension or 'all'")
    launched = _in_distributed_launch()
    relaunch = largs.num_processes > 1 and not launched
    if relaunch:
        _check_launch(largs.num_processes, margs.device)
    if not launched or int(os.environ.get("RANK", "0")) == 0:
        claim_eval_output(eargs.output_dir, protected=(eargs.data, eargs.videos, margs.model, margs.adapter))
    text_only = None
    loaded = None
    if not launched:  # under a launcher the parent process has checked the data (children load it in order)
        text_only = _peek_model(margs, eargs)
        if text_only is not None:
            loaded = load_eval_data(
                tasks, eargs.data, eargs.split, text_only=text_only, videos=eargs.videos, limit=eargs.limit
            )
    if relaunch:
        if text_only is None:
            margs.load(device="cpu")  # the model's own error, before launching processes
        return launch(lambda: _evaluate(eargs, margs, largs, tasks, text_only, loaded, world=largs.num_processes),
                      largs.num_processes, cpu=margs.device == "cpu", cli_argv=args.cli_argv)  # fmt: skip
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if largs.num_processes > 1 and world != largs.num_processes:
        logger.warning("--num-processes %d ignored: already launched with WORLD_SIZE=%d", largs.num_processes, world)
    return _evaluate(eargs, margs, largs, tasks, text_only, loaded, world=world)


def _evaluate(
    eargs: EvalArguments,
    margs: ModelArguments,
    largs: LaunchArguments,
    tasks: list,
    text_only: bool | None,
    loaded: dict | None,
    *,
    world: int,
) -> int:
    """Load the model and evaluate (this process's share when ``world`` > 1); process 0 prints the tables."""
    device = margs.device
    if device == "cuda" and world > 1:
        device = None  # each process on its own GPU (the accelerate device), not all on cuda:0
    from mmla.eval.report import format_results, write_plots
    from mmla.eval.runner import evaluate_tasks

    adapter = margs.load(device=device, video_kwargs=eargs.video_kwargs())
    kwargs = eargs.runner_kwargs()
    kwargs.update(
        tasks=tasks,
        text_only=True if eargs.text_only else text_only,
        base_model=adapter.model_id if margs.adapter else None,
        adapter_path=margs.adapter,
        method="zero-shot" if margs.adapter is None else "sft",
        loaded=loaded,
    )
    results = evaluate_tasks(adapter, **kwargs)
    if world > 1:
        from accelerate import PartialState

        state = PartialState()  # the one the runner set up
        state.wait_for_everyone()  # process 0 has written results.json
        is_main = state.is_main_process
        state.destroy_process_group()
        if not is_main:
            return 0
    print(format_results(results))
    if largs.plots:
        for p in write_plots(results, Path(eargs.output_dir)):
            print(f"wrote {p}")
    print(f"results: {Path(eargs.output_dir) / 'results.json'}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from mmla.eval.report import write_plots, write_report
    from mmla.eval.results import load_results

    runs = [load_results(d) for d in args.dirs]
    out = Path(args.output or (args.dirs[0] if Path(args.dirs[0]).is_dir() else Path(args.dirs[0]).parent))
    ranking = None
    if len(runs) > 1:  # ranking is the leaderboard's: runs that differ in split, tasks, protocol or data apart
        from mmla.hub_cards.leaderboard import build_leaderboard, leaderboard_markdown

        ranking = leaderboard_markdown(build_leaderboard(runs, with_paper=False, allow_mixed=True))
    text = write_report(runs, out, ranking=ranking)
    print(text)
    if args.plots:
        for res in runs:
            for p in write_plots(res, out):
                print(f"wrote {p}")
    return 0
