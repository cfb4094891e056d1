"""The options of an evaluation as dataclasses, parsed with ``transformers.HfArgumentParser``.

``mmla eval``, the training callback and the demo build one :class:`EvalArguments` and hand
:meth:`EvalArguments.runner_kwargs` to :func:`mmla.eval.runner.evaluate_tasks`, instead of each re-typing
its keyword parameters. :class:`ModelArguments` says which model to load and how.

HfArgumentParser registers each field as ``--field_name`` and ``--field-name``; the README documents the
dashed spelling. Values are checked in ``__post_init__``, so a bad value is refused wherever the
arguments are built (command line or code), before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["EvalArguments", "ModelArguments", "parse_modalities"]

from mmla.eval.results import MODALITIES


def parse_modalities(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"text,video,audio"`` (or a sequence) -> the modalities in canonical order; a one-line error otherwise."""
    items = [m.strip().lower() for m in (value.split(",") if isinstance(value, str) else value) if m.strip()]
    unknown = [m for m in items if m not in MODALITIES]
    if unknown or not items:
        raise ValueError(f"--modalities {value!r}: expected a comma-separated subset of {','.join(MODALITIES)}")
    if "text" not in items:
        raise ValueError(f"--modalities {value!r}: must include text (the utterance and the question are text)")
    return tuple(m for m in MODALITIES if m in items)


def check_modalities(value: str | Sequence[str], text_only: bool | None, *, text_only_option: str) -> str:
    """``--modalities`` in canonical form (``"text,video"``), refused when it contradicts a text-only switch
    (``text_only_option``: how the switch is written in that command)."""
    shown = ",".join(parse_modalities(value))
    if text_only and shown != "text":
        raise ValueError(f"{text_only_option} contradicts --modalities {shown}; pass one of them")
    return shown


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class EvalArguments:
    """What to evaluate and how: everything :func:`~mmla.eval.runner.evaluate_tasks` needs besides the model."""

    _argument_group_name = "evaluation"

    tasks: str = field(default="all", metadata=_help("all, a dimension, or comma-separated task keys"))
    data: str | None = field(default=None, metadata=_help("release folder, folder of per-task folders, or Hub repo id"))
    videos: str | None = field(
        default=None, metadata=_help("folder of clips of restricted corpora (IEMOCAP, MOSI, Anno-MI)")
    )
    split: Literal["train", "validation", "test"] = field(default="test", metadata=_help("split to evaluate"))
    mode: Literal["generate", "rank"] = field(
        default="generate", metadata=_help("generate: parse the greedy answer; rank: most likely label")
    )
    batch_size: int = field(default=8, metadata=_help("samples per batch (halved on out-of-memory)"))
    limit: int | None = field(default=None, metadata=_help("first N samples of each task"))
    output_dir: str = field(
        default="mmla_eval",
        metadata=_help("output folder (results.json, predictions/); a rerun into it resumes", aliases=["--output"]),
    )
    text_only: bool = field(default=False, metadata=_help("never show videos (default for text LLMs)"))
    num_frames: int = field(default=8, metadata=_help("frames sampled per clip (MLLMs)"))
    fps: float | None = field(default=None, metadata=_help("sample frames at this rate instead of --num-frames"))
    max_new_tokens: int = field(default=16, metadata=_help("generate mode: tokens generated per answer"))
    prompt_style: Literal["upstream", "upstream_sft", "paper", "mmla"] = field(
        default="upstream",
        metadata=_help(
            "upstream: the upstream zero-shot string, byte for byte (comparable with the paper); "
            "upstream_sft: the upstream fine-tuning files' wording; paper: Appendix D (mmla: old name)"
        ),
    )
    upstream_labels: bool = field(
        default=False,
        metadata=_help(
            "list upstream zero-shot's candidate labels (CH-SIMS: positive, negative only); "
            "for exact reproduction of upstream runs only"
        ),
    )
    parse_mode: Literal["aliases", "upstream"] = field(
        default="aliases",
        metadata=_help("aliases: labels and their spelling variants; upstream: exactly upstream eval.py's clean()"),
    )
    upstream_metrics: bool = field(
        default=False, metadata=_help("upstream eval.py's macro averages (no labels=: unknown/multi become classes)")
    )
    skip_bad: bool = field(default=False, metadata=_help("skip (and record) samples whose video fails to decode"))
    modalities: str | None = field(
        default=None,
        metadata=_help(
            "what the model is shown, a comma-separated subset of text,video,audio that it supports "
            "(default: all it supports; video MLLMs: text,video; text LLMs: text); recorded in the results"
        ),
    )
    allow_silent: bool = field(
        default=False,
        metadata=_help("with audio: feed silence for clips without an audio track (counted in the results)"),
    )
    packed_prefill: Literal["auto", "on", "off"] = field(
        default="auto",
        metadata=_help(
            "text models: prefill each batch's prompts packed in one row without padding, their shared prefix once "
            "(auto: where the CUDA varlen kernel runs; on: also elsewhere, with an SDPA stand-in; off: padded "
            "batches); recorded in the results"
        ),
    )

    def __post_init__(self) -> None:
        for opt, value in (("--batch-size", self.batch_size), ("--max-new-tokens", self.max_new_tokens),
                           ("--num-frames", self.num_frames)):  # fmt: skip
            if value < 1:
                raise ValueError(f"{opt} must be >= 1 (got {value})")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1 (got {self.limit}); omit --limit to evaluate every row")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"--fps must be > 0 (got {self.fps})")
        if self.modalities is not None:
            check_modalities(self.modalities, self.text_only, text_only_option="--text-only")
        if self.packed_prefill not in ("auto", "on", "off"):
            raise ValueError(f"--packed-prefill {self.packed_prefill!r}: choose one of auto, on, off")

    @property
    def label_set(self) -> str:
        return "upstream" if self.upstream_labels else "full"

    def runner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~mmla.eval.runner.evaluate_tasks` (``text_only`` False: the model decides)."""
        return {
            "tasks": self.tasks,
            "data": self.data,
            "split": self.split,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "limit": self.limit,
            "output_dir": self.output_dir,
            "text_only": True if self.text_only else None,
            "videos": self.videos,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "prompt_style": self.prompt_style,
            "label_set": self.label_set,
            "parse_mode": self.parse_mode,
            "max_new_tokens": self.max_new_tokens,
            "skip_bad": self.skip_bad,
            "upstream_metrics": self.upstream_metrics,
            "modalities": self.modalities,
            "allow_silent": self.allow_silent,
            "packed_prefill": self.packed_prefill,
        }

    def video_kwargs(self) -> dict[str, Any]:
        """How the processor samples frames (``load_model(video_kwargs=...)``): the same rate the runner uses."""
        return {"fps": self.fps} if self.fps else {"num_frames": self.num_frames}


@dataclass
class ModelArguments:
    """Which model to evaluate and how to load it (:func:`mmla.eval.adapters.load_model`)."""

    _argument_group_name = "model"

    model: str | None = field(
        default=None, metadata=_help("Hub id, local folder or .gguf file; none: the embedded SmolLM2-135M-Instruct")
    )
    adapter: str | None = field(default=None, metadata=_help("PEFT adapter folder applied to --model"))
    gguf_file: str | None = field(default=None, metadata=_help("GGUF file name inside --model"))
    dtype: str = field(default="auto", metadata=_help("auto, bfloat16, float16, float32"))
    device: str | None = field(default=None, metadata=_help("cpu, cuda, cuda:1; none: the accelerate device"))
    attn_implementation: str | None = field(default=None, metadata=_help("sdpa, eager, flash_attention_2 ..."))
    trust_remote_code: bool = field(default=False, metadata=_help("allow modelling code from the model repo"))
    no_chat_template: bool = field(
        default=False, metadata=_help("feed the raw prompt (models without a chat template)")
    )

    def load(self, *, device: str | None, video_kwargs: dict[str, Any] | None = None) -> Any:
        """The model wrapped in its family adapter, on ``device`` (which may differ from ``--device``)."""
        from mmla.eval.adapters import load_model

        return load_model(
            self.model,
            adapter=self.adapter,
            gguf_file=self.gguf_file,
            dtype=self.dtype,
            device=device,
            trust_remote_code=self.trust_remote_code,
            attn_implementation=self.attn_implementation,
            use_chat_template=not self.no_chat_template,
            video_kwargs=video_kwargs,
        )
