"""``training/sft.py`` in two processes (torchrun, gloo on CPU) with best-checkpoint selection on.

Before every process took part in validation scoring, this run hung at the first evaluation: process 0
scored alone and waited in the runner's gather for a process that never came. The timeout turns such a
hang into a failure. Each process writes its own log (torchrun ``--log-dir``), so the test sees that both
trained and that both chose the same step.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT_S = 120
"""A run takes 30-40 s on a busy 2-core machine; a hang ends here, as a failure."""
ROWS = 16


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmla.training.testing import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="module")
def mustard_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Real MUStARD rows from ../shared/data when present, else the synthetic sample release."""
    from conftest import SHARED_DATA

    if (SHARED_DATA / "mustard" / "validation.jsonl").is_file():
        return SHARED_DATA, "real"
    from mmla.loaders.sample import RELEASE_DIRNAME, write_sample_release

    out = tmp_path_factory.mktemp("sample")
    write_sample_release(out, per_class=8, seed=0)  # 16 MUStARD rows per split
    return out / RELEASE_DIRNAME, "sample"


def _rank_logs(log_dir: Path) -> dict[int, str]:
    """stderr of each rank, from torchrun's ``--log-dir`` (``<run id>/attempt_0/<rank>/stderr.log``)."""
    logs = {}
    for path in log_dir.glob("*/attempt_*/*/stderr.log"):
        logs[int(path.parent.name)] = path.read_text(errors="replace")
    return logs


def _launch(argv: list[str], log_dir: Path) -> subprocess.CompletedProcess[str]:
    import mmla.training.sft as sft

    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--log-dir", str(log_dir), "--redirects", "3", sft.__file__, *argv]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # SIGTERM lets torchrun stop its workers (they run in sessions of their own); then kill what is left.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        tails = {r: text[-1500:] for r, text in _rank_logs(log_dir).items()}
        pytest.fail(f"2-process training did not finish in {TIMEOUT_S} s (hang?); per-rank log tails: {tails}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def test_two_processes_train_and_agree_on_the_best_step(
    tiny_lm: Path, mustard_data: tuple[Path, str], tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    data, _ = mustard_data
    out = tmp_path / "run"
    argv = ["--recipe", "paper/sft/mustard/smollm2-135m", "--model_name_or_path", str(tiny_lm), "--data", str(data),
            "--output_dir", str(out), "--limit_train", str(ROWS), "--limit_eval", "8", "--max_steps", "4",
            "--eval_strategy", "steps", "--eval_steps", "2", "--per_device_train_batch_size", "2",
            "--per_device_eval_batch_size", "4", "--learning_rate", "0.05", "--use_cpu", "true",
            "--disable_tqdm", "true", "--seed", "0"]  # fmt: skip
    proc = _launch(argv, tmp_path / "logs")
    logs = _rank_logs(tmp_path / "logs")
    assert proc.returncode == 0, (proc.stderr[-3000:], {r: t[-2000:] for r, t in logs.items()})
    assert sorted(logs) == [0, 1]

    # Both processes trained: each reports the end of training, and 16 rows / (2 processes x 2 rows) = 4 steps
    # make one epoch (one process alone would be at epoch 0.5).
    chosen = {}
    for rank, text in logs.items():
        assert f"process {rank}/2: trained to step 4 (epoch 1.00)" in text, text[-2000:]
        found = re.findall(rf"process {rank}/2: selected step (\d+) \(best eval_mmla_acc", text)
        assert len(found) == 1, text[-2000:]
        chosen[rank] = int(found[0])
    assert chosen[0] == chosen[1]
    step = chosen[0]

    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["epoch"] == 1.0 and state["best_global_step"] == step
    curve = json.loads((out / "validation_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [2, 4]
    assert curve["best"]["step"] == step and state["best_metric"] == curve["best"]["acc"]
    logged = [e["eval_mmla_acc"] for e in state["log_history"] if "eval_mmla_acc" in e]  # through trainer.log
    assert logged == [p["acc"] for p in curve["points"]]
    run_config = json.loads((out / "run_config.json").read_text())
    assert run_config["num_processes"] == 2 and run_config["selected"]["step"] == step
    results = json.loads((out / "results.json").read_text())
    assert results["selected_step"] == step and results["tasks"]["mustard"]["n"] == 8
    assert results["overall"]["acc"] == curve["best"]["acc"]
    # Every validation row was scored once, whichever process scored it.
    preds = (out / "mmla_eval" / f"step-{step}" / "predictions" / "mustard.jsonl").read_text().splitlines()
    assert len({json.loads(x)["id"] for x in preds}) == 8
    # The saved adapter is the chosen checkpoint's.
    final = load_file(str(out / "adapter_model.safetensors"))
    at_step = load_file(str(out / f"checkpoint-{step}" / "adapter_model.safetensors"))
    assert final.keys() == at_step.keys() and all(torch.equal(final[k], at_step[k]) for k in final)
    assert not (out / "best").exists()
