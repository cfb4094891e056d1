"""``mmla eval`` / ``mmla report`` end to end on a tiny model and a JSONL task folder; error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_tiny import tiny_llama, tiny_tokenizer

from mmla.eval.cli import main
from mmla.loaders.tasks import get_task


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli-llama")
    tok = tiny_tokenizer()
    tiny_llama(len(tok)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of per-task folders of JSONL (the layout of the real-text benchmark data)."""
    root = tmp_path_factory.mktemp("cli-data")
    for key in ("mosi", "mustard"):
        labels = get_task(key).labels
        (root / key).mkdir()
        for split in ("train", "validation", "test"):
            rows = [{"id": f"{key}-{split}-{i}", "text": f"utterance number {i}", "label": labels[i % len(labels)]}
                    for i in range(5)]  # fmt: skip
            (root / key / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_eval_then_report(model_dir: Path, data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(["eval", "--model", str(model_dir), "--tasks", "mosi,mustard", "--data", str(data_dir), "--split",
               "validation", "--mode", "rank", "--batch-size", "2", "--limit", "4", "--output", str(out),
               "--device", "cpu", "--plots"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["split"] == "validation" and res["overall"]["n"] == 8 and set(res["tasks"]) == {"mosi", "mustard"}
    printed = capsys.readouterr().out
    assert "| mosi | sentiment | 4 |" in printed and "overall (pooled)" in printed
    assert (out / "dimensions.png").stat().st_size > 1000
    rc = main(["report", str(out), "--plots"])
    assert rc == 0 and (out / "report.md").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "--tasks", "mintrex"], "unknown task 'mintrex'"),
        (["eval", "--model", "/does/not/exist", "--tasks", "mosi"], "does not exist"),
        (["report", "/does/not/exist"], "/does/not/exist not found"),
    ],
)
def test_cli_errors_are_one_clear_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_remote_code_error_via_cli(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "internlm2", "auto_map": {}}))
    assert main(["eval", "--model", str(tmp_path), "--tasks", "mosi"]) == 1
    assert "--trust-remote-code" in capsys.readouterr().err
