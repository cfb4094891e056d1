"""``mmla eval`` / ``mmla report`` end to end on a tiny model and a JSONL task folder; error paths."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mmla.cli.main import main
from mmla.loaders.tasks import get_task
from mmla.training.testing import tiny_llama, tiny_tokenizer


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


# ------------------------------------------------------------------ checks before the model loads, one line
def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.startswith("mmla eval: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if the model is loaded: the error must come first."""
    import mmla.eval.adapters as adapters

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(adapters, "load_model", refuse)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--limit", "0"], ["--limit must be >= 1 (got 0)", "omit --limit"]),
        (["--batch-size", "0"], ["--batch-size must be >= 1 (got 0)"]),
        (["--max-new-tokens", "-1"], ["--max-new-tokens must be >= 1"]),
        (["--tasks", ","], ["--tasks ',' selects no task"]),
        (["--tasks", "mosi,mintrex"], ["unknown task 'mintrex'", "Did you mean 'mintrec'"]),
        (["--split", "train", "--data", "MISSING"], ["MISSING"]),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(
    model_dir: Path, data_dir: Path, tmp_path: Path, capsys, no_model_load, extra: list[str], needles: list[str]
) -> None:
    argv = ["eval", "--model", str(model_dir), "--tasks", "mosi", "--data", str(data_dir), "--device", "cpu",
            "--output", str(tmp_path / "out")]  # fmt: skip
    extra = [str(tmp_path / "missing-data") if x == "MISSING" else x for x in extra]
    needles = [str(tmp_path / "missing-data") if x == "MISSING" else x for x in needles]
    assert main(argv + extra) == 1
    _one_line_error(capsys, *needles)
    assert not (tmp_path / "out").exists()


def test_missing_split_and_duplicate_ids_are_refused_before_the_model_loads(
    model_dir: Path, tmp_path: Path, capsys, no_model_load
) -> None:
    labels = get_task("mosi").labels
    data = tmp_path / "data"
    (data / "mosi").mkdir(parents=True)
    rows = [{"id": f"r{i % 3}", "text": f"utterance {i}", "label": labels[i % 2]} for i in range(5)]  # r0, r1 twice
    (data / "mosi" / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["eval", "--model", str(model_dir), "--tasks", "mosi", "--data", str(data), "--device", "cpu",
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert main([*argv, "--split", "test"]) == 1
    _one_line_error(capsys, "test")
    assert main([*argv, "--split", "validation"]) == 1
    line = _one_line_error(capsys)
    assert "'r0'" in line and "duplicate" in line.lower()  # the reader or the runner names it
    assert not (tmp_path / "out").exists()


def test_output_folder_checks(model_dir: Path, data_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import mmla.eval.adapters as adapters

    real_load = adapters.load_model
    loads: list[str] = []
    monkeypatch.setattr(adapters, "load_model", lambda *a, **k: loads.append("x") or real_load(*a, **k))
    argv = ["eval", "--model", str(model_dir), "--tasks", "mosi", "--data", str(data_dir), "--split", "validation",
            "--mode", "rank", "--limit", "3", "--device", "cpu", "--output"]  # fmt: skip
    (tmp_path / "a-file").write_text("precious")
    assert main([*argv, str(tmp_path / "a-file")]) == 1
    _one_line_error(capsys, "--output", "is a file")
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("precious")
    assert main([*argv, str(user)]) == 1
    _one_line_error(capsys, "--output", "not written by mmla")
    assert main([*argv, str(data_dir)]) == 1  # the output may never hold the data
    _one_line_error(capsys, "--output", "input")
    assert loads == []  # none of these loaded the model
    assert (tmp_path / "a-file").read_text() == "precious" and (user / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in user.iterdir()) == ["thesis.tex"]
    out = tmp_path / "run"
    assert main([*argv, str(out)]) == 0
    assert main([*argv, str(out)]) == 0  # a rerun resumes: nothing recomputed
    assert json.loads((out / "results.json").read_text())["timing"]["samples_computed"] == 0


def test_read_only_output_is_refused(
    model_dir: Path, data_dir: Path, tmp_path: Path, capsys, monkeypatch, no_model_load
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: make the folder read-only for the check itself
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == ro else real(p, mode, **k))
    try:
        argv = ["eval", "--model", str(model_dir), "--tasks", "mosi", "--data", str(data_dir), "--output",
                str(ro / "out")]  # fmt: skip
        assert main(argv) == 1
        _one_line_error(capsys, "--output", "not writable")
    finally:
        ro.chmod(0o755)


def test_options_are_never_abbreviated(capsys) -> None:
    for argv in (["eval", "--prompt-sty", "paper"], ["report", "x", "--out", "y"], ["ev", "--tasks", "mosi"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --prompt-sty paper" in err and "--out" in err and "invalid choice: 'ev'" in err
    assert "Traceback" not in err


def test_protocol_flags_are_recorded_and_reports_never_mix_protocols(
    model_dir: Path, data_dir: Path, tmp_path: Path, capsys
) -> None:
    base = ["eval", "--model", str(model_dir), "--tasks", "mosi", "--data", str(data_dir), "--split", "validation",
            "--limit", "3", "--max-new-tokens", "2", "--device", "cpu", "--output"]  # fmt: skip
    assert main([*base, str(tmp_path / "up")]) == 0
    assert main([*base, str(tmp_path / "paper"), "--prompt-style", "paper", "--upstream-labels", "--parse-mode",
                 "upstream", "--upstream-metrics"]) == 0  # fmt: skip
    up, paper = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("up", "paper"))
    assert (up["prompt_style"], up["label_set"], up["parse_mode"], up["upstream_metrics"]) == (
        "upstream", "full", "aliases", False)  # fmt: skip
    assert (paper["prompt_style"], paper["label_set"], paper["parse_mode"], paper["upstream_metrics"]) == (
        "paper", "upstream", "upstream", True)  # fmt: skip
    capsys.readouterr()
    assert main(["report", str(tmp_path / "up"), str(tmp_path / "paper"), "--output", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "are not compared" in report
    sections = [line for line in report.splitlines() if line.startswith("## Zero-shot inference")]
    assert len(sections) == 2 and "| 2 |" not in report  # two sections of one run: nothing ranked 2nd
    assert "prompt `upstream`" in sections[0] + sections[1] and "prompt `paper`" in sections[0] + sections[1]
    assert "prompt style upstream" in report and "prompt style paper" in report  # each run's own table
    # Same protocol: one ranking.
    assert main([*base, str(tmp_path / "up2"), "--mode", "rank"]) == 0
    assert main(["report", str(tmp_path / "up"), str(tmp_path / "up2"), "--output", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    sections = [line for line in report.splitlines() if line.startswith("## Zero-shot inference")]
    assert len(sections) == 1 and "| 2 |" in report and "are not compared" not in report


def test_utterance_longer_than_the_context_is_one_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    labels = get_task("mosi").labels
    (tmp_path / "data" / "mosi").mkdir(parents=True)
    rows = [{"id": f"m{i}", "text": "so long " * (900 if i == 1 else 3), "label": labels[i % 2]} for i in range(3)]
    (tmp_path / "data" / "mosi" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["eval", "--model", str(model_dir), "--tasks", "mosi", "--data", str(tmp_path / "data"), "--device",
            "cpu", "--output", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 1
    _one_line_error(capsys, "task mosi", "'m1'", "context of 1024 tokens")
    assert not (tmp_path / "out" / "predictions").exists()


# ------------------------------------------------------------------ EvalArguments (HfArgumentParser)
def _parse_eval(argv: list[str]):
    from mmla.cli.eval import eval_arguments
    from mmla.cli.main import build_parser

    return eval_arguments(build_parser().parse_args(["eval", *argv]))


def test_dashed_and_underscored_options_parse_alike() -> None:
    dashed = ["--batch-size", "3", "--max-new-tokens", "4", "--output", "o", "--text-only", "--prompt-style", "paper",
              "--upstream-labels", "--parse-mode", "upstream", "--num-frames", "2", "--no-chat-template",
              "--trust-remote-code", "--num-processes", "2"]  # fmt: skip
    under = ["--batch_size", "3", "--max_new_tokens", "4", "--output_dir", "o", "--text_only", "--prompt_style",
             "paper", "--upstream_labels", "--parse_mode", "upstream", "--num_frames", "2", "--no_chat_template",
             "--trust_remote_code", "--num_processes", "2"]  # fmt: skip
    a, b = _parse_eval(dashed), _parse_eval(under)
    assert a == b
    ev, model, cmd = a
    assert (ev.batch_size, ev.output_dir, ev.text_only, ev.label_set, ev.num_frames) == (3, "o", True, "upstream", 2)
    assert (model.no_chat_template, model.trust_remote_code, cmd.num_processes) == (True, True, 2)


def test_eval_arguments_defaults_are_the_runners() -> None:
    """Defaults of the command equal evaluate_tasks' own, and every runner keyword is one it takes."""
    import inspect

    from mmla.eval.arguments import EvalArguments
    from mmla.eval.runner import evaluate_tasks

    ev, model, cmd = _parse_eval([])
    assert ev == EvalArguments() and model.model is None and cmd.num_processes == 1 and not cmd.plots
    params = inspect.signature(evaluate_tasks).parameters
    kwargs = ev.runner_kwargs()
    assert set(kwargs) <= set(params)
    differ = {
        k for k, v in kwargs.items() if params[k].default is not inspect.Parameter.empty and v != params[k].default
    }
    assert differ == set()
    assert kwargs["text_only"] is None and EvalArguments(text_only=True).runner_kwargs()["text_only"] is True
    assert EvalArguments(fps=2.0).video_kwargs() == {"fps": 2.0} and ev.video_kwargs() == {"num_frames": 8}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "--batch-size must be >= 1 (got 0)"),
        ({"limit": 0}, "omit --limit"),
        ({"fps": 0.0}, "--fps must be > 0"),
        ({"num_frames": 0}, "--num-frames must be >= 1"),
    ],
)
def test_eval_arguments_refuse_bad_values_in_code_too(kwargs: dict, message: str) -> None:
    from mmla.eval.arguments import EvalArguments

    with pytest.raises(ValueError, match=re.escape(message)):
        EvalArguments(**kwargs)
