"""``torch.profiler`` summaries for the benches: top CUDA kernels (or CPU ops) with their share, by category, and
the code's own ``record_function`` ranges (``mmla.*``), per step (training) or per pass (evaluation)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

__all__ = ["StepProfiler", "sync"]


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _cuda_type() -> Any:
    from torch.autograd import DeviceType

    return DeviceType.CUDA


_CATEGORIES = (
    ("gemm", ("gemm", "gemv", "xmma", "cutlass", "nvjet", "cublas", "wgmma", "sm90_", "sm80_", "aten::mm", "addmm",
              "aten::bmm", "aten::matmul", "aten::linear", "mmbackward")),
    ("attention", ("flash", "fmha", "attention", "attn")),
    ("lm head (chunked log-probs)", ("logprob",)),
    ("optimizer", ("multi_tensor", "foreach", "adam")),
    ("liger/triton", ("triton", "liger", "_rms_norm", "_swiglu", "_rope", "geglu")),
    ("copy/cast", ("copy", "cast", "memcpy", "memset", "to_copy", "cat")),
    ("reduce/norm", ("reduce", "norm", "softmax", "sum", "mean")),
    ("elementwise", ("elementwise", "vectorized", "unrolled", "silu", "mul", "add", "sub", "exp", "rsqrt", "pow")),
)  # fmt: skip


def _category(name: str) -> str:
    low = name.lower()
    return next((cat for cat, keys in _CATEGORIES if any(k in low for k in keys)), "other")


class StepProfiler:
    """``torch.profiler`` over a window of steps; writes the top kernels (CUDA) or ops (CPU) with their share."""

    def __init__(self, name: str, out_dir: Path, cuda: bool, top: int = 30) -> None:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        self.prof = profile(activities=acts, record_shapes=False)
        self.name, self.out_dir, self.cuda, self.top = name, out_dir, cuda, top
        self.t0 = 0.0
        self.steps = 0
        self.summary: dict[str, Any] | None = None

    def start(self) -> None:
        sync()
        self.prof.start()
        self.t0 = time.perf_counter()

    def stop(self, steps: int) -> dict[str, Any]:
        sync()
        wall = time.perf_counter() - self.t0
        self.prof.stop()
        self.steps = steps
        self.summary = self._write(wall)
        return self.summary

    def _write(self, wall: float) -> dict[str, Any]:
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        # The code's own record_function ranges (mmla.*): host wall time and calls, and the span of their GPU work
        # (a range shows on the GPU timeline too, as an annotation: never counted as a kernel).
        ranges: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0.0])
        cuda = _cuda_type()
        for e in self.prof.events():  # one pass: the ranges, and (CUDA) the kernels
            on_gpu = e.device_type == cuda
            if e.name.startswith("mmla."):
                ranges[e.name][2 if on_gpu else 0] += e.time_range.elapsed_us()
                ranges[e.name][1] += 0 if on_gpu else 1
            elif self.cuda and on_gpu and not getattr(e, "is_user_annotation", False):
                totals[e.name][0] += e.time_range.elapsed_us()
                totals[e.name][1] += 1
        if self.cuda:
            unit = "CUDA"
        else:
            for e in self.prof.key_averages():
                if e.self_cpu_time_total > 0 and e.key not in ranges:
                    totals[e.key][0] += e.self_cpu_time_total
                    totals[e.key][1] += e.count
            unit = "CPU (self)"
        busy_us = sum(t for t, _ in totals.values())
        rows = sorted(totals.items(), key=lambda kv: -kv[1][0])
        cats: dict[str, float] = defaultdict(float)
        for name, (t, _) in rows:
            cats[_category(name)] += t
        summary = {
            "run": self.name,
            "steps": self.steps,
            "wall_ms_per_step": round(1e3 * wall / max(1, self.steps), 2),
            "time": unit,
            f"{unit.split()[0].lower()}_ms_per_step": round(busy_us / 1e3 / max(1, self.steps), 2),
            "busy_fraction": round(busy_us / 1e6 / wall, 3) if self.cuda and wall else None,
            "categories": {c: round(100 * t / busy_us, 2) for c, t in sorted(cats.items(), key=lambda kv: -kv[1])},
            "ranges": {
                name: {
                    "ms_per_step": round(t / 1e3 / max(1, self.steps), 2),
                    "calls_per_step": round(n / max(1, self.steps), 1),
                    **({"gpu_span_ms_per_step": round(g / 1e3 / max(1, self.steps), 2)} if self.cuda else {}),
                }
                for name, (t, n, g) in sorted(ranges.items())
            },
            "top": [
                {
                    "name": name,
                    "share_pct": round(100 * t / busy_us, 2),
                    "ms_per_step": round(t / 1e3 / self.steps, 3),
                    "calls_per_step": round(n / self.steps, 1),
                }
                for name, (t, n) in rows[: self.top]
            ],
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"profile_{self.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
        lines = [
            f"# {self.name}: {self.steps} steps, {summary['wall_ms_per_step']} ms/step wall"
            + (f", GPU busy {100 * summary['busy_fraction']:.1f}%" if summary["busy_fraction"] is not None else ""),
            "",
            f"| category | share of {unit} time % |",
            "|---|---:|",
            *(f"| {c} | {s} |" for c, s in summary["categories"].items()),
            "",
            *(
                ["| range | host wall ms/step | GPU span ms/step | calls/step |", "|---|---:|---:|---:|"]
                + [
                    f"| `{n}` | {r['ms_per_step']} | {r.get('gpu_span_ms_per_step', '-')} | {r['calls_per_step']} |"
                    for n, r in summary["ranges"].items()
                ]
                + [""]
                if summary["ranges"]
                else []
            ),
            f"| # | kernel / op | share of {unit} time % | ms/step | calls/step |",
            "|---:|---|---:|---:|---:|",
            *(
                f"| {i} | `{r['name'][:110]}` | {r['share_pct']} | {r['ms_per_step']} | {r['calls_per_step']} |"
                for i, r in enumerate(summary["top"], 1)
            ),
        ]
        (self.out_dir / f"profile_{self.name}.md").write_text("\n".join(lines) + "\n")
        return summary
