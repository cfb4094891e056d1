"""``mmla eval --num-processes 2`` (workers forked through accelerate's ``notebook_launcher``, gloo on CPU) gives the
same predictions and metrics as one process; ``accelerate launch -m mmla.cli eval`` runs the same command under the
launcher; a worker's error is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmla.cli.main import main
from mmla.loaders import load_task
from mmla.training.testing import tiny_llama, tiny_tokenizer

TASKS = ("mosi", "meld", "annomi_client")  # a restricted corpus too: text-only needs no clips


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mp-llama")
    tok = tiny_tokenizer()
    tiny_llama(len(tok), seed=5).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _eval(model_dir: Path, data: Path, out: Path, *extra: str) -> dict:
    argv = ["eval", "--model", str(model_dir), "--tasks", ",".join(TASKS), "--data", str(data), "--split", "test",
            "--text-only", "--mode", "rank", "--batch-size", "3", "--limit", "7", "--device", "cpu", "--output",
            str(out), *extra]  # fmt: skip
    assert main(argv) == 0
    return json.loads((out / "results.json").read_text())


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for k in TASKS for x in (out / "predictions" / f"{k}.jsonl").read_text().splitlines()]


def _preds(out: Path) -> dict[str, list[tuple[str, str, str]]]:
    rows = {k: [json.loads(x) for x in (out / "predictions" / f"{k}.jsonl").read_text().splitlines()] for k in TASKS}
    return {k: [(r["id"], r["pred"], r["gold"]) for r in v] for k, v in rows.items()}


def test_two_processes_match_one(model_dir: Path, sample_release: Path, tmp_path: Path, monkeypatch) -> None:
    for var in ("WORLD_SIZE", "LOCAL_RANK", "RANK"):  # as if typed in a shell, not under a launcher
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = _eval(model_dir, sample_release, tmp_path / "one")
    from accelerate import PartialState

    PartialState(cpu=True)  # a state left by earlier work in this process (a Trainer, a notebook cell)
    two = _eval(model_dir, sample_release, tmp_path / "two", "--num-processes", "2")

    expected = _preds(tmp_path / "one")
    assert _preds(tmp_path / "two") == expected
    assert {k: len(v) for k, v in expected.items()} == {k: one["tasks"][k]["n"] for k in TASKS}
    rows_one, rows_two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len({json.dumps(r["scores"]) for r in rows_one}) == len(rows_one)  # rows are told apart by their scores
    for k in TASKS:  # merged in split order, whichever process scored a row
        ids = load_task(k, data=sample_release, split="test", text_only=True)["id"][:7]
        assert [i for i, _, _ in expected[k]] == ids
    for a, b in zip(rows_one, rows_two, strict=True):  # other batches and padding, same scores (4 decimals kept)
        assert a["hash"] == b["hash"] and a["scores"] == pytest.approx(b["scores"], abs=2e-4)
    for key in ("tasks", "dimensions", "overall", "settings"):
        assert two[key] == one[key], key
    assert (one["timing"]["num_processes"], two["timing"]["num_processes"]) == (1, 2)
    assert two["timing"]["samples_computed"] == one["timing"]["samples_computed"] == one["overall"]["n"] > 10
    pred_dir = tmp_path / "two" / "predictions"
    assert sorted(p.name for p in pred_dir.iterdir()) == sorted(f"{k}.jsonl" for k in TASKS)  # parts merged

    # A killed run leaves per-process parts: the rerun reuses them (and the merged files), computes nothing.
    # This time under `accelerate launch -m mmla.cli` (every launcher setting given: no accelerate config needed).
    os.replace(pred_dir / "meld.jsonl", pred_dir / "meld.part1.jsonl")
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
                "-m", "mmla.cli"]  # fmt: skip
    argv = ["eval", "--model", str(model_dir), "--tasks", ",".join(TASKS), "--data", str(sample_release), "--split",
            "test", "--text-only", "--mode", "rank", "--batch-size", "3", "--limit", "7", "--device", "cpu",
            "--output", str(tmp_path / "two")]  # fmt: skip
    proc = subprocess.run([*launcher, *argv], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results: ") == 1  # process 0 alone prints
    again = json.loads((tmp_path / "two" / "results.json").read_text())
    assert again["timing"]["num_processes"] == 2
    assert again["timing"]["samples_computed"] == 0
    assert again["tasks"] == one["tasks"] and _preds(tmp_path / "two") == expected
    assert not list(pred_dir.glob("*.part*"))


def test_num_processes_rejects_a_single_device(model_dir: Path, capsys) -> None:
    assert (
        main(["eval", "--model", str(model_dir), "--tasks", "mosi", "--num-processes", "2", "--device", "cuda:1"]) == 1
    )
    assert "drop --device cuda:1" in capsys.readouterr().err


def test_forked_workers_report_an_error_in_one_line_each(model_dir: Path, sample_release: Path, tmp_path: Path) -> None:
    """A user error raised inside the forked workers (after the model loaded) is one line per process, rc 1."""
    argv = [sys.executable, "-m", "mmla.cli", "eval", "--model", str(model_dir), "--tasks", "mosi", "--data",
            str(sample_release), "--split", "test", "--text-only", "--max-new-tokens", "5000", "--device", "cpu",
            "--output", str(tmp_path / "out"), "--num-processes", "2"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "LOCAL_RANK", "RANK")}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Launching training" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mmla eval: error:")]
    # Both processes fail alike; the launcher stops the other one at the first failure, which may be before it prints.
    workers, summary = errors[:-1], errors[-1]
    assert 1 <= len(workers) <= 2 and {w.split(":")[2].strip() for w in workers} <= {"process 0", "process 1"}
    assert all("exceeds the model's context" in line for line in workers), proc.stderr
    assert summary.startswith("mmla eval: error: evaluation failed (process ")


def test_a_process_that_used_cuda_launches_fresh_interpreters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forking needs CUDA untouched in the parent; where it was initialised, the same command line goes to
    accelerate's launcher (fresh interpreters) instead of notebook_launcher."""
    import torch

    import mmla.cli.eval as cli_eval

    calls = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(cli_eval, "launch_fresh", lambda argv, n, *, cpu: calls.append((argv, n, cpu)) or 0)
    monkeypatch.setattr("accelerate.notebook_launcher", lambda *a, **k: pytest.fail("forked after CUDA was used"))
    assert cli_eval.launch(lambda: 0, 2, cpu=False, cli_argv=["eval", "--tasks", "mosi"]) == 0
    assert calls == [(["eval", "--tasks", "mosi"], 2, False)]
    assert cli_eval.launch_argv(["eval"], 2)[-2:] == ["mmla.cli", "eval"]  # what that launcher runs in each process
