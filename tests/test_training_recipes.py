"""Recipe table, argument precedence, accelerate configs, ``mmla train``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmla.training.config import get_recipe, parse_args, recipe_names


def test_paper_hyperparameters() -> None:
    llm_sft = get_recipe("paper/sft/mosi/qwen2-0.5b")
    assert (llm_sft["learning_rate"], llm_sft["warmup_steps"], llm_sft["per_device_train_batch_size"]) == (1e-4, 0.1, 2)
    assert (llm_sft["num_train_epochs"], llm_sft["lora_r"], llm_sft["lora_alpha"]) == (8, 8, 16)
    assert llm_sft["tasks"] == "mosi" and llm_sft["text_only"] is True
    vl = get_recipe("paper/sft/mintrec/qwen2-vl-7b")  # per-dataset override from the paper
    assert (vl["learning_rate"], vl["per_device_train_batch_size"], vl["num_train_epochs"]) == (1.1e-4, 8, 60)
    assert "language_model" in vl["lora_target_modules"] and vl["text_only"] is False
    assert get_recipe("paper/sft/meld/qwen2-vl-7b")["num_train_epochs"] != 60
    it = get_recipe("paper/it/qwen2-7b")
    assert (it["learning_rate"], it["per_device_train_batch_size"], it["lora_r"], it["lora_alpha"]) == (5e-5, 1, 16, 32)
    it_vl = get_recipe("paper/it/qwen2-vl-7b")
    assert (it_vl["learning_rate"], it_vl["warmup_steps"], it_vl["num_train_epochs"]) == (1e-4, 0.3, 5)
    assert (it_vl["lora_r"], it_vl["lora_alpha"], it_vl["tasks"]) == (64, 128, "all")
    assert "paper/sft/annomi_therapist/llava-ov-7b" in recipe_names()


def test_unknown_recipe_suggests() -> None:
    with pytest.raises(ValueError, match=r"Did you mean: paper/sft/mintrec/qwen2-0.5b"):
        get_recipe("paper/sft/mintrek/qwen2-0.5b")
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("nope")


def test_precedence_recipe_config_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("recipe: paper/sft/mustard/qwen2-1.5b\nlearning_rate: 3.0e-4\nnum_train_epochs: 2\n")
    mmla, sft, model = parse_args(["--config", str(cfg), "--num_train_epochs", "5", "--output_dir", str(tmp_path)])
    assert mmla.tasks == "mustard" and model.model_name_or_path == "Qwen/Qwen2-1.5B-Instruct"
    assert sft.learning_rate == 3e-4  # config over recipe
    assert sft.num_train_epochs == 5  # CLI over config
    assert sft.per_device_train_batch_size == 2 and model.lora_r == 8  # recipe
    assert sft.lr_scheduler_type == "cosine" and sft.warmup_steps == 0.1
    with pytest.raises(ValueError, match="unknown recipe"):
        parse_args(["--recipe", "paper/sft/mintrec/qwen-0.5b", "--output_dir", str(tmp_path)])


def test_accelerate_configs_parse() -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    from mmla.training.commands import ACCELERATE_DIR

    kinds = {}
    for name in ("single_gpu", "ddp", "zero2", "zero3", "zero3_offload"):
        cfg = load_config_from_file(str(ACCELERATE_DIR / f"{name}.yaml"))  # unknown keys raise TypeError
        kinds[name] = (str(cfg.distributed_type), (cfg.deepspeed_config or {}).get("zero_stage"))
    assert kinds["single_gpu"][0].endswith("NO") and kinds["ddp"][0].endswith("MULTI_GPU")
    assert kinds["zero2"][1] == 2 and kinds["zero3"][1] == 3 and kinds["zero3_offload"][1] == 3


def test_mmla_train_print_command(capsys: pytest.CaptureFixture[str]) -> None:
    from mmla.eval.cli import main

    assert main(["train", "--print-command", "--accelerate", "zero3", "--num-processes", "4", "--",
                 "--recipe", "paper/it/qwen2-vl-7b"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "accelerate launch --config_file" in out and "zero3.yaml" in out and "--num_processes 4" in out
    assert out.strip().endswith("training/sft.py --recipe paper/it/qwen2-vl-7b")
    assert main(["train", "--print-command", "--accelerate", "zero9", "--", "--tasks", "mosi"]) == 1
    assert "no accelerate config 'zero9'" in capsys.readouterr().err


def test_sft_script_reports_user_errors_in_one_line(capsys) -> None:  # type: ignore[no-untyped-def]
    from mmla.training.sft import main

    assert main(["--recipe", "paper/sft/mintrec/qwen2-05b", "--output_dir", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown recipe" in err[0] and "paper/sft/mintrec/qwen2-0.5b" in err[0]
