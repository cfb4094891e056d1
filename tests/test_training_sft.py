"""LoRA SFT / IT of a tiny random Llama on the synthetic sample releases (CPU, seconds)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mmla.eval.prompts import build_messages, build_target
from mmla.loaders.tasks import get_task

COMMON = [
    "--text_only", "true", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--learning_rate", "1e-3", "--logging_steps", "2", "--report_to", "none", "--disable_tqdm", "true",
    "--seed", "0", "--limit_eval", "6", "--gradient_checkpointing", "false",
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmla.training.testing import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


def _args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model), "--data", str(data), "--output_dir", str(out), *COMMON, *extra]


@pytest.fixture(scope="session")
def sft_run(tiny_lm: Path, sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One SFT run on mintrec: 6 steps, evaluated (and checkpointed) every 3."""
    from mmla.training.sft import run

    out = tmp_path_factory.mktemp("sft") / "run"
    steps = ["--max_steps", "6", "--eval_strategy", "steps", "--eval_steps", "3", "--save_strategy", "steps",
             "--save_steps", "3"]  # fmt: skip
    results = run(_args(tiny_lm, sample_release, out, "--tasks", "mintrec", *steps))
    return out, results


def test_rows_use_the_eval_prompt(sample_release: Path) -> None:
    from mmla.loaders import load_task
    from mmla.training.data import load_training_data

    data = load_training_data("mintrec", str(sample_release), text_only=True, limit_eval=3, style="paper")
    task = get_task("mintrec")
    raw = load_task("mintrec", str(sample_release), text_only=True, split="train")
    by_id = {r["id"]: r for r in raw}
    row = data.train[0]
    src = by_id[row["id"]]
    assert row["prompt"] == build_messages(task, src["text"], style="paper")
    assert row["completion"] == [{"role": "assistant", "content": build_target(task, src["label"])}]
    assert row["task"] == "mintrec" and row["label_name"] == task.labels[src["label"]]
    assert len(data.train) == len(raw) and len(data.eval["mintrec"]) == 3


def test_it_mixture_keeps_each_task_prompt(sample_release: Path) -> None:
    from mmla.training.data import load_training_data

    data = load_training_data("mintrec,mosi,mustard", str(sample_release), text_only=True, max_per_task=10)
    assert data.train_counts == {"mintrec": 10, "mosi": 4, "mustard": 4}
    assert len(data.train) == 18
    for row in data.train:
        task = get_task(row["task"])
        content = row["prompt"][0]["content"]  # the task's own instruction: its dimension and label list
        assert task.dimension_text in content and all(label in content for label in task.labels)
        assert row["completion"][0]["content"] == build_target(task, row["label_name"])
    # shuffled, not task after task
    assert [r["task"] for r in data.train][:10] != ["mintrec"] * 10


def test_mixture_sizes() -> None:
    from mmla.training.data import mixture_sizes

    sizes = {"a": 1000, "b": 100}
    assert mixture_sizes(sizes) == sizes
    assert mixture_sizes(sizes, max_per_task=300) == {"a": 300, "b": 100}
    assert mixture_sizes(sizes, min_per_task=250) == {"a": 1000, "b": 250}
    flat = mixture_sizes(sizes, temperature=1e6)  # T -> inf: uniform over tasks, same total
    assert abs(flat["a"] - flat["b"]) <= 1 and sum(flat.values()) in (1099, 1100, 1101)
    assert mixture_sizes(sizes, temperature=1.0) == sizes
    with pytest.raises(ValueError, match="mix_temperature"):
        mixture_sizes(sizes, temperature=0)


def test_labels_cover_only_the_answer(tiny_lm: Path, sample_release: Path, tmp_path: Path) -> None:
    """The trained span is exactly "<dimension>: <label>" + end of turn; the rest is the eval prompt."""
    import torch

    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer

    argv = _args(tiny_lm, sample_release, tmp_path / "out", "--tasks", "mintrec,mustard", "--max_steps", "1")
    trainer, adapter, _ = build_trainer(*parse_args(argv), argv)
    ds = trainer.train_dataset
    tok = adapter.tokenizer
    for i in range(4):
        row = ds[i]
        task = get_task(row["task"])
        ids, labels = row["input_ids"], row["labels"]
        answer = [t for t, lab in zip(ids, labels, strict=True) if lab != -100]
        prompt = [t for t, lab in zip(ids, labels, strict=True) if lab == -100]
        assert tok.decode(answer) == build_target(task, row["label_name"]) + "<|im_end|>\n"
        assert tok.decode(prompt) == adapter.prompt_text(row["prompt"])  # the zero-shot prompt, verbatim
    batch = trainer.data_collator([ds[i] for i in range(4)])
    pad = batch["input_ids"] == tok.pad_token_id
    assert pad.any() and (batch["labels"][pad] == -100).all()
    assert int((batch["labels"] != -100).sum()) == sum(sum(1 for x in ds[i]["labels"] if x != -100) for i in range(4))
    assert torch.is_tensor(batch["labels"])
    # Without a varlen attention kernel (CPU/SDPA here) ragged rows are batched by length to cut padding.
    assert trainer.args.train_sampling_strategy == "group_by_length"
    from transformers.trainer_pt_utils import LengthGroupedSampler

    assert isinstance(trainer._get_train_sampler(), LengthGroupedSampler)


def test_sft_selects_saves_and_reloads(sft_run: tuple[Path, dict], tiny_lm: Path, sample_release: Path) -> None:
    import torch

    from mmla.eval.adapters import load_model
    from mmla.eval.runner import evaluate_tasks

    out, results = sft_run
    assert (out / "adapter_model.safetensors").is_file() and not (out / "best").exists()  # no private copy
    args = json.loads((out / "training_args.json").read_text())
    assert args["learning_rate"] == 1e-3 and args["max_steps"] == 6
    curve = json.loads((out / "validation_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [3, 6]
    assert curve["best"]["acc"] == max(p["acc"] for p in curve["points"])
    assert (out / "validation_curve.png").stat().st_size > 1000
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["method"] == "sft" and on_disk["adapter"] == str(out) and on_disk["split"] == "validation"
    assert on_disk["overall"] == results["overall"] and on_disk["tasks"]["mintrec"]["n"] == 6

    # The saved adapter is the selected one (not simply the last step), and it reloads and evaluates.
    from safetensors.torch import load_file

    step = curve["best"]["step"]
    # The Trainer chose the same step by eval_mmla_acc (load_best_model_at_end), and logged the metric.
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["best_global_step"] == step and state["best_metric"] == curve["best"]["acc"]
    assert [e["eval_mmla_acc"] for e in state["log_history"] if "eval_mmla_acc" in e] == [
        p["acc"] for p in curve["points"]
    ]
    assert json.loads((out / "run_config.json").read_text())["selected"]["step"] == step == on_disk["selected_step"]
    final = load_file(str(out / "adapter_model.safetensors"))
    at_step = load_file(str(out / f"checkpoint-{step}" / "adapter_model.safetensors"))
    last = load_file(str(out / "checkpoint-6" / "adapter_model.safetensors"))
    assert final.keys() == at_step.keys() == last.keys() and any("lora_A" in k for k in final)
    assert all(torch.equal(final[k], at_step[k]) for k in final)
    assert step == 6 or any(not torch.equal(final[k], last[k]) for k in final)
    adapter = load_model(str(tiny_lm), adapter=str(out), device="cpu")
    loaded = {k: v for k, v in adapter.model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(final)
    again = evaluate_tasks(adapter, ["mintrec"], str(sample_release), "validation", limit=6, output_dir=out / "re")
    selected = (out / "mmla_eval" / f"step-{step}" / "predictions" / "mintrec.jsonl").read_text().splitlines()
    reloaded = (out / "re" / "predictions" / "mintrec.jsonl").read_text().splitlines()
    assert [json.loads(x)["raw"] for x in reloaded] == [json.loads(x)["raw"] for x in selected]
    assert again["overall"]["acc"] == results["overall"]["acc"]


def test_it_run_reports_every_task(tiny_lm: Path, sample_release: Path, tmp_path: Path) -> None:
    from mmla.training.sft import run

    out = tmp_path / "it"
    res = run(_args(tiny_lm, sample_release, out, "--tasks", "mosi,mustard", "--max_steps", "2",
                    "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "no"))  # fmt: skip
    assert res["method"] == "it" and set(res["tasks"]) == {"mosi", "mustard"}
    assert res["overall"]["n"] == 8  # 2 rows per class per split in the sample release
    assert json.loads((out / "run_config.json").read_text())["tasks"] == ["mosi", "mustard"]


def test_resume_continues_from_last_checkpoint(sft_run: tuple[Path, dict], tiny_lm: Path, sample_release: Path,
                                               tmp_path: Path) -> None:  # fmt: skip
    import shutil

    from mmla.training.sft import run

    # A run killed after its step-3 checkpoint: same output_dir without the later files.
    src, _ = sft_run
    out = tmp_path / "killed"
    out.mkdir()
    shutil.copytree(src / "checkpoint-3", out / "checkpoint-3")
    steps = ["--tasks", "mintrec", "--max_steps", "6", "--eval_strategy", "steps", "--eval_steps", "3",
             "--save_strategy", "steps", "--save_steps", "3"]  # fmt: skip
    with pytest.raises(ValueError, match="--resume"):
        run(_args(tiny_lm, sample_release, out, *steps))
    run(_args(tiny_lm, sample_release, out, *steps, "--resume", "true"))
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    logged = [e["step"] for e in state["log_history"] if "loss" in e]
    assert logged == [2, 4, 6]  # step 2 from the first run, 4 and 6 from the resumed one
    # The selection continued from the checkpoint's trainer state: same choice and adapter as the uninterrupted run.
    import torch
    from safetensors.torch import load_file

    from mmla.loaders.files import output_kind

    assert output_kind(out) == "mmla train"  # adopted (a run of a version without markers) and marked
    first = json.loads((src / "run_config.json").read_text())["selected"]
    again = json.loads((out / "run_config.json").read_text())["selected"]
    assert again["step"] == first["step"] == state["best_global_step"]
    a, b = load_file(str(src / "adapter_model.safetensors")), load_file(str(out / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run(_args(tiny_lm, sample_release, tmp_path / "empty", *steps, "--resume", "true"))


def test_bad_input(tiny_lm: Path, sample_release: Path, tmp_path: Path) -> None:
    from mmla.training.sft import run
    from mmla.training.testing import tiny_causal_lm

    with pytest.raises(KeyError, match="Did you mean 'mintrec'"):
        run(_args(tiny_lm, sample_release, tmp_path / "a", "--tasks", "mintrek"))
    no_template = tiny_causal_lm(tmp_path / "no-template", chat_template=None)
    with pytest.raises(ValueError, match="no chat template"):
        run(_args(no_template, sample_release, tmp_path / "b", "--tasks", "mosi"))
    # A JSONL corpus without a validation split.
    corpus = tmp_path / "corpus" / "mosi"
    corpus.mkdir(parents=True)
    rows = [{"id": i, "dataset": "MOSI", "task": "sentiment", "video": f"{i}.mp4", "text": f"text {i}",
             "label": ["positive", "negative"][i % 2]} for i in range(4)]  # fmt: skip
    (corpus / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="no 'validation' split"):
        run(_args(tiny_lm, corpus.parent, tmp_path / "c", "--tasks", "mosi"))


# ----------------------------------------------------------------------------- precedence: user > automatic
def test_yaml_and_cli_values_beat_automatic_defaults(tiny_lm: Path, sample_release: Path, tmp_path: Path) -> None:
    """Length grouping (and the selection settings) are automatic defaults: a value set in --config or on the
    command line stays, where before only argv was looked at and a YAML value was silently replaced."""
    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer, explicit_options

    def trainer_args(*extra: str):  # type: ignore[no-untyped-def]
        argv = _args(tiny_lm, sample_release, tmp_path / "out", "--tasks", "mosi", "--max_steps", "1", *extra)
        trainer, _, _ = build_trainer(*parse_args(argv), argv)
        return trainer.args

    cfg = tmp_path / "run.yaml"
    cfg.write_text("train_sampling_strategy: random\nload_best_model_at_end: false\nmetric_for_best_model: loss\n")
    assert explicit_options(["--config", str(cfg), "--learning-rate", "1e-4"]) == {
        "train_sampling_strategy", "load_best_model_at_end", "metric_for_best_model", "learning_rate"
    }  # fmt: skip
    auto = trainer_args("--eval_strategy", "steps", "--eval_steps", "1")
    assert auto.train_sampling_strategy == "group_by_length"  # the automatic choice without a user value
    assert auto.metric_for_best_model == "eval_mmla_acc" and auto.load_best_model_at_end and auto.greater_is_better
    assert auto.save_strategy == "steps" and auto.save_steps == 1  # a checkpoint at every evaluation
    from_yaml = trainer_args("--config", str(cfg), "--eval_strategy", "steps", "--eval_steps", "1")
    assert from_yaml.train_sampling_strategy == "random"
    assert from_yaml.load_best_model_at_end is False and from_yaml.metric_for_best_model == "loss"
    cli = trainer_args("--train_sampling_strategy", "sequential")
    assert cli.train_sampling_strategy == "sequential"
    cfg.write_text("train_sampling_strategy: random\n")  # the command line still beats the file
    both = trainer_args("--config", str(cfg), "--train_sampling_strategy=sequential")
    assert both.train_sampling_strategy == "sequential"
    # The user's own save settings are kept: no checkpoint per evaluation -> the last step, not the best.
    user_save = trainer_args("--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "no")
    assert user_save.save_strategy == "no" and user_save.load_best_model_at_end is False
    with pytest.raises(ValueError, match="--load_best_model_at_end needs a checkpoint at every evaluation"):
        trainer_args("--eval_strategy", "steps", "--eval_steps", "2", "--save_steps", "4",
                     "--load_best_model_at_end", "true")  # fmt: skip


# ----------------------------------------------------------------------------- one-line user errors
def _no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """These checks must fail before any model is loaded."""

    def fail(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was loaded before the argument check")

    monkeypatch.setattr("mmla.eval.adapters.load_model", fail)


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from mmla.training.sft import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("training/sft.py: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def test_config_file_errors_name_file_and_line(tiny_lm: Path, sample_release: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _no_model_load(monkeypatch)
    base = _args(tiny_lm, sample_release, tmp_path / "out", "--tasks", "mosi")
    cases = {
        "bad.yaml": ("learning_rate: 1e-4\ntasks: [mosi\nseed: 3\n", r"bad\.yaml:\d+: not valid YAML"),
        "list.yaml": ("# a list, not a mapping\n- learning_rate: 1e-4\n- seed: 3\n", r"list\.yaml:2: the top level is a list"),
        "scalar.yaml": ("just text\n", r"scalar\.yaml:1: the top level is a str"),
        "typo.yaml": ("seed: 1\nlearning_rat: 0.1\n", r"typo\.yaml:2: unknown argument 'learning_rat' \(did you mean learning_rate\?"),
        "empty.yaml": ("", r"empty\.yaml: the file is empty"),
    }  # fmt: skip
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        line = _one_line_error([*base, "--config", str(tmp_path / name)], capsys)
        assert re.search(expected, line), line
    (tmp_path / "latin1.yaml").write_bytes("seed: 1 # caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in _one_line_error([*base, "--config", str(tmp_path / "latin1.yaml")], capsys)
    assert "no such file" in _one_line_error([*base, f"--config={tmp_path / 'missing.yaml'}"], capsys)


def test_abbreviated_options_are_refused(tiny_lm: Path, sample_release: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from mmla.cli.main import main as mmla

    _no_model_load(monkeypatch)
    base = _args(tiny_lm, sample_release, tmp_path / "out", "--tasks", "mosi")
    line = _one_line_error([*base, "--learning_rat", "0.1"], capsys)  # argparse took it as --learning_rate
    assert "unknown option --learning_rat (did you mean --learning_rate?)" in line
    assert "unknown option --max_step" in _one_line_error([*base, "--max_step=3"], capsys)
    assert "unknown option --no_such_option" in _one_line_error([*base, "--no_such_option", "1"], capsys)
    assert not (tmp_path / "out").exists()
    # mmla train: its own options and sft.py's.
    for argv, expected in ((["train", "--print-comm"], "did you mean --print-command?"),
                           (["train", *base, "--learning_rat", "0.1"], "did you mean --learning_rate?")):  # fmt: skip
        assert mmla(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("mmla train: error: unknown option") and expected in err[0]


def test_output_dir_is_claimed_before_the_model_loads(tiny_lm: Path, sample_release: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _no_model_load(monkeypatch)

    def argv(out: Path) -> list[str]:
        return _args(tiny_lm, sample_release, out, "--tasks", "mosi")

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert "is a file, not a folder" in _one_line_error(argv(a_file), capsys)
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("mine")
    assert "was not written by mmla" in _one_line_error(argv(user), capsys)
    assert "contains the input" in _one_line_error(argv(sample_release.parent), capsys)  # would hold the data
    assert "is the input" in _one_line_error(argv(tiny_lm), capsys)
    eval_out = tmp_path / "eval"
    eval_out.mkdir()
    from mmla.loaders.files import mark_output_dir

    mark_output_dir(eval_out, "mmla eval")
    assert "holds the output of `mmla eval`" in _one_line_error(argv(eval_out), capsys)
    assert (a_file.read_text(), (user / "thesis.tex").read_text()) == ("mine", "mine")  # nothing touched
    assert sorted(p.name for p in user.iterdir()) == ["thesis.tex"]
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            assert "is not writable" in _one_line_error(argv(ro / "run"), capsys)
        finally:
            ro.chmod(0o755)


def test_claimed_output_dir_is_marked(sft_run: tuple[Path, dict]) -> None:
    from mmla.loaders.files import output_kind

    out, _ = sft_run
    assert output_kind(out) == "mmla train"


def test_failed_training_under_accelerate_is_one_line(tmp_path: Path) -> None:
    """`mmla train --accelerate ...` runs accelerate's launcher: a failure is our line, not its traceback."""
    import subprocess
    import sys

    a_file = tmp_path / "afile"
    a_file.write_text("mine")
    cmd = [sys.executable, "-m", "mmla.cli", "train", "--accelerate", "single_gpu", "--tasks", "mosi",
           "--output_dir", str(a_file)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "CalledProcessError" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "error" in x.lower()]
    assert lines == [
        f"training/sft.py: error: --output_dir {a_file} is a file, not a folder. Choose a folder path",
        "mmla train: error: training failed (exit code 1); the failing process printed its error above",
    ], proc.stderr
    assert a_file.read_text() == "mine"


# ----------------------------------------------------------------------------- speed defaults (issue 13)
def _without(argv: list[str], flag: str) -> list[str]:
    i = argv.index(flag)
    return argv[:i] + argv[i + 2 :]


def test_varlen_attention_trains_padding_free_like_padded_sdpa(tiny_lm: Path, sample_release: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    """Through training/sft.py: a varlen attention turns on padding-free batches (no length grouping, no pad token)
    and trains to the loss and adapter of padded SDPA on the same rows (fp32, the SDPA stand-in of varlen_attn)."""
    import torch
    from safetensors.torch import load_file

    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer, run

    steps = [
        "--tasks",
        "mosi",
        "--max_steps",
        "2",
        "--eval_strategy",
        "no",
        "--eval_metric_split",
        "none",
        "--save_strategy",
        "no",
        "--train_sampling_strategy",
        "random",
        "--lora_dropout",
        "0",
    ]  # fmt: skip  (TRL's default dropout 0.05 draws different masks per path)
    varlen = ["--attn_implementation", "mmla_varlen_reference"]
    argv = _args(tiny_lm, sample_release, tmp_path / "probe", *_without(steps, "--train_sampling_strategy"), *varlen)
    trainer = build_trainer(*parse_args(argv), argv)[0]
    assert trainer.args.padding_free and trainer.args.train_sampling_strategy == "random"
    assert trainer.mmla_speed["attn_implementation"] == "mmla_varlen_reference"
    rows = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(rows)
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    assert batch["input_ids"].shape[1] == sum(len(r["input_ids"]) for r in rows)  # real tokens only
    assert batch["cu_seq_lens_q"].numel() == 5
    user = build_trainer(*parse_args([*argv, "--padding_free", "false"]), [*argv, "--padding_free", "false"])[0]
    assert not user.args.padding_free and user.args.train_sampling_strategy == "group_by_length"  # the user's value

    adapters = []
    for name, extra in (("sdpa", []), ("varlen", varlen)):
        out = tmp_path / name
        run(_args(tiny_lm, sample_release, out, *steps, *extra))
        state = json.loads((out / "run_config.json").read_text())
        assert state["speed"]["padding_free"] is (name == "varlen")
        log = json.loads((out / "training_args.json").read_text())
        assert log["padding_free"] is (name == "varlen")
        adapters.append(load_file(str(out / "adapter_model.safetensors")))
    a, b = adapters
    assert a.keys() == b.keys() and any(float(t.abs().sum()) > 0 for t in a.values())
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)


def test_gradient_checkpointing_is_chosen_by_memory(tiny_lm: Path, sample_release: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Off where the activations fit in the free GPU memory, on where not; a value set on the command line or in
    --config always stays. (Free memory is faked: on CPU nothing is measured and TRL's default stays.)"""
    import mmla.training.sft as sft
    from mmla.training.config import parse_args

    base = _without(_args(tiny_lm, sample_release, tmp_path / "out", "--tasks", "mosi", "--max_steps", "1",
                          "--eval_strategy", "no", "--eval_metric_split", "none"), "--gradient_checkpointing")  # fmt: skip

    def built(free: int | None, *extra: str):  # type: ignore[no-untyped-def]
        monkeypatch.setattr(sft, "gpu_free_bytes", lambda args: free)
        argv = [*base, *extra]
        return sft.build_trainer(*parse_args(argv), argv)[0]

    cpu = built(None)
    assert cpu.args.gradient_checkpointing and cpu.mmla_speed["checkpointing_plan"] is None  # TRL's default
    roomy = built(2**40)
    plan = roomy.mmla_speed["checkpointing_plan"]
    assert not roomy.args.gradient_checkpointing and not roomy.args.activation_checkpointing
    assert plan["checkpointing"] is False and plan["batch_tokens"] >= 4 * 60  # batch 4 of MMLA-length rows
    tight = built(2**20)
    assert tight.args.gradient_checkpointing and tight.mmla_speed["checkpointing_plan"]["checkpointing"] is True
    assert not built(2**20, "--gradient_checkpointing", "false").args.gradient_checkpointing  # the user's value
    cfg = tmp_path / "gc.yaml"
    cfg.write_text("gradient_checkpointing: true\n")
    from_yaml = built(2**40, "--config", str(cfg))
    assert from_yaml.args.gradient_checkpointing and from_yaml.mmla_speed["checkpointing_plan"] is None
    assert built(2**40, "--activation_checkpointing", "true").args.activation_checkpointing


def test_automatic_attention_where_varlen_runs(tiny_lm: Path, sample_release: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The GPU default, simulated on CPU: where varlen_attn runs, a text model gets mmla_varlen with padding-free
    batches and no length grouping, and trains; fp32 weights (which the kernel cannot take) fall back to SDPA."""
    import torch
    import torch.nn.attention.varlen as varlen_mod

    import mmla.training.attention as attention
    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer

    def runs_here(dtype=None, device=None):  # type: ignore[no-untyped-def]  # a GPU with the kernel
        return None if dtype in (None, torch.bfloat16, "bfloat16") else "varlen_attn takes float16/bfloat16 only"

    def kernel(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False, **kw):  # type: ignore[no-untyped-def]  # fmt: skip
        assert window_size == (-1, 0)
        return attention._varlen_reference(q, k, v, cu_q, cu_k, scale)

    monkeypatch.setattr(attention, "varlen_unavailable_reason", runs_here)
    monkeypatch.setattr(varlen_mod, "varlen_attn", kernel)
    steps = ["--tasks", "mosi", "--max_steps", "1", "--eval_strategy", "no", "--eval_metric_split", "none"]
    # --bf16 true (what parse_args sets where the GPU has BF16), no --dtype: the weights follow the training
    # precision (not TRL's float32 default, which loaded the base in fp32 and fell back to SDPA on the GPU)
    argv = _args(tiny_lm, sample_release, tmp_path / "bf16", *steps, "--bf16", "true", "--use_cpu", "true")
    trainer = build_trainer(*parse_args(argv), argv)[0]
    assert trainer.mmla_speed["weights_dtype"] == "bfloat16"
    assert trainer.mmla_speed["attn_implementation"] == "mmla_varlen"
    assert trainer.mmla_speed["lora_input_casts"].startswith("skipped under autocast")  # training/lora_casts.py
    assert trainer.args.padding_free and trainer.args.train_sampling_strategy == "random"
    from peft.tuners.lora import Linear as LoraLinear

    casts = []  # the switch as each LoRA layer sees it in the Trainer's passes: off, since they run under autocast
    for layer in [m for m in trainer.model.modules() if isinstance(m, LoraLinear)]:
        layer.register_forward_pre_hook(lambda m, a: casts.append(m.cast_input_dtype_enabled))
    trainer.train()
    assert casts and not any(casts)
    assert trainer.state.global_step == 1 and trainer.state.log_history[-1]["train_loss"] > 0
    argv = _args(tiny_lm, sample_release, tmp_path / "fp32", *steps)
    fp32 = build_trainer(*parse_args(argv), argv)[0]
    assert fp32.mmla_speed["weights_dtype"] == "float32"  # no BF16 here: float32 weights, as the user would expect
    assert fp32.mmla_speed["lora_input_casts"] == "kept"  # no autocast, nothing to skip
    assert fp32.mmla_speed["attn_implementation"] == "sdpa" and fp32.model.config._attn_implementation == "sdpa"
    assert not fp32.args.padding_free and fp32.args.train_sampling_strategy == "group_by_length"


def test_varlen_attention_refused_where_it_cannot_run(tiny_lm: Path, sample_release: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A requested varlen attention the machine or the model cannot run is a one-line error, not a kernel
    traceback mid-training."""
    import shutil

    from mmla.training.attention import varlen_unavailable_reason

    base = _args(tiny_lm, sample_release, tmp_path / "a", "--tasks", "mosi", "--max_steps", "1")
    if varlen_unavailable_reason() is not None:  # this CPU machine: the kernel needs CUDA
        line = _one_line_error([*base, "--attn_implementation", "mmla_varlen"], capsys)
        assert "--attn_implementation mmla_varlen: varlen_attn runs on CUDA only" in line or "torch" in line
        assert "mmla_varlen_reference" in line
    dropout = tmp_path / "dropout-lm"
    shutil.copytree(tiny_lm, dropout)
    cfg = json.loads((dropout / "config.json").read_text())
    (dropout / "config.json").write_text(json.dumps({**cfg, "attention_dropout": 0.1}))
    argv = _args(dropout, sample_release, tmp_path / "b", "--tasks", "mosi", "--max_steps", "1",
                 "--attn_implementation", "mmla_varlen_reference")  # fmt: skip
    from mmla.training.sft import main

    assert main(argv) == 2  # checked on the loaded config (the weights' progress bars come before the line)
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert "Traceback" not in err and line.startswith("training/sft.py: error: --attn_implementation mmla_varlen_ref")
    assert "supports text models with full causal attention" in line and "attention dropout 0.1" in line
