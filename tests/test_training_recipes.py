"""Recipe table, argument precedence, accelerate configs, ``mmla train``."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmla.training.config import RECIPE_TABLES, get_recipe, parse_args, recipe_names, recipe_source


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


def test_upstream_script_hyperparameters() -> None:
    """upstream/... follows src/Finetune/LLM/{SFT,IT}/scripts (SPEC.md Methods), not the paper's tables."""
    sft = get_recipe("upstream/sft/mintrec/qwen2-0.5b")
    assert (sft["learning_rate"], sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"]) == (
        5e-5,
        1,
        4,
    )
    assert (sft["num_train_epochs"], sft["lora_r"], sft["lora_alpha"], sft["lora_dropout"]) == (8, 16, 32, 0.0)
    assert (sft["max_length"], sft["eval_strategy"], sft["eval_steps"], sft["lr_scheduler_type"]) == (
        1024, "steps", 20, "cosine")  # fmt: skip
    assert sft["save_steps"] % sft["eval_steps"] == 0  # a checkpoint at every evaluation
    assert sft["warmup_steps"] == 0 and sft["tasks"] == "mintrec" and sft["text_only"] is True
    # "all" linear layers of the LM: attention and MLP projections, not the output head.
    assert set(sft["lora_target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"}  # fmt: skip
    assert get_recipe("upstream/sft/mosi/internlm2.5-7b")["lora_target_modules"] == ["wqkv", "wo", "w1", "w2", "w3"]
    it = get_recipe("upstream/it/qwen2-7b")
    assert (it["learning_rate"], it["lora_r"], it["lora_alpha"], it["lora_dropout"], it["tasks"]) == (
        1e-4, 8, 16, 0.0, "all")  # fmt: skip
    assert (it["per_device_train_batch_size"], it["gradient_accumulation_steps"]) == (2, 4)  # run_it.sh says 2
    # The two tables really differ where the sources do.
    paper = get_recipe("paper/sft/mintrec/qwen2-0.5b")
    assert (paper["learning_rate"], paper["lora_r"]) == (1e-4, 8) != (sft["learning_rate"], sft["lora_r"])
    names = recipe_names("upstream")
    assert "upstream/sft/annomi_therapist/llama3.2-1b" in names and "upstream/it/internlm2.5-7b" in names
    assert not any("qwen2-vl" in n for n in names)  # the LLM scripts only
    assert set(recipe_names(None)) == set(recipe_names("paper")) | set(names)


def test_every_recipe_says_where_its_values_come_from() -> None:
    assert set(RECIPE_TABLES) == {"paper", "upstream"}
    for name in recipe_names(None):
        src = recipe_source(name)
        assert src and ("run_sft.sh" in src if name.startswith("upstream/sft/") else True)
        get_recipe(name)  # every listed recipe resolves
    assert "run_it.sh" in recipe_source("upstream/it/qwen2-7b") and "dropout 0" in recipe_source("upstream/it/qwen2-7b")
    assert "Tables 5-8" in recipe_source("paper/sft/mosi/qwen2-7b")
    assert "per-dataset" in recipe_source("paper/sft/mintrec/qwen2-vl-7b")
    with pytest.raises(ValueError, match="Did you mean: upstream/sft/mintrec/qwen2-7b"):
        recipe_source("upstream/sft/mintrek/qwen2-7b")


def test_upstream_recipe_through_the_parser(tmp_path: Path) -> None:
    mmla, sft, model = parse_args(["--recipe", "upstream/sft/mosi/qwen2-1.5b", "--output_dir", str(tmp_path)])
    assert (sft.learning_rate, sft.gradient_accumulation_steps, sft.eval_steps, sft.max_length) == (5e-5, 4, 20, 1024)
    assert (model.lora_r, model.lora_alpha, model.lora_dropout) == (16, 32, 0.0)
    assert mmla.tasks == "mosi" and mmla.prompt_style == "upstream_sft"  # the fine-tuning files' prompt


def test_prompt_style_is_checked_when_parsing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown prompt style 'upstream-sft'"):
        parse_args(["--prompt_style", "upstream-sft", "--output_dir", str(tmp_path)])
    assert parse_args(["--prompt_style", "mmla", "--output_dir", str(tmp_path)])[0].prompt_style == "paper"


def test_training_options_are_never_abbreviated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--learning_rat"):  # was silently taken as --learning_rate
        parse_args(["--learning_rat", "0.1", "--output_dir", str(tmp_path)])
    _, sft, _ = parse_args(["--learning_rate", "0.1", "--output_dir", str(tmp_path)])
    assert sft.learning_rate == 0.1


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

    from mmla.cli.train import ACCELERATE_DIR

    kinds = {}
    for name in ("single_gpu", "ddp", "zero2", "zero3", "zero3_offload"):
        cfg = load_config_from_file(str(ACCELERATE_DIR / f"{name}.yaml"))  # unknown keys raise TypeError
        kinds[name] = (str(cfg.distributed_type), (cfg.deepspeed_config or {}).get("zero_stage"))
    assert kinds["single_gpu"][0].endswith("NO") and kinds["ddp"][0].endswith("MULTI_GPU")
    assert kinds["zero2"][1] == 2 and kinds["zero3"][1] == 3 and kinds["zero3_offload"][1] == 3


def test_mmla_train_print_command(capsys: pytest.CaptureFixture[str]) -> None:
    from mmla.cli.main import main

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
