"""``MMLA_RANDOM_INIT=1`` (benchmarks, ``bench/zero3_lora.py``): sft.py builds the model from a folder holding only
config.json and processor files, with random weights; without it the same folder is refused for lack of weights."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torchvision")  # transformers video processors need it


@pytest.fixture(scope="module")
def config_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmla.training.testing import tiny_qwen2_vl

    folder = tiny_qwen2_vl(tmp_path_factory.mktemp("config-only"))
    for weights in folder.glob("model*.safetensors*"):
        weights.unlink()
    assert (folder / "config.json").is_file()
    return folder


def _argv(model: Path, data: Path, out: Path) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--data", str(data), "--output_dir", str(out), "--tasks", "mintrec",
        "--num_frames", "4", "--max_steps", "1", "--per_device_train_batch_size", "2", "--limit_train", "2",
        "--eval_strategy", "no", "--eval_metric_split", "none", "--save_strategy", "no", "--report_to", "none",
        "--use_cpu", "true", "--bf16", "false",
    ]  # fmt: skip


def test_random_init_builds_the_model_from_its_config(
    config_only: Path, sample_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer

    monkeypatch.setenv("MMLA_RANDOM_INIT", "1")
    argv = _argv(config_only, sample_release, tmp_path / "out")
    trainer, adapter, _ = build_trainer(*parse_args(argv), argv)
    assert adapter.is_multimodal and type(adapter).__name__ == "Qwen2VLAdapter"
    assert adapter.tokenizer.convert_tokens_to_ids("<|video_pad|>") == adapter.model.config.video_token_id
    base = {n: p for n, p in trainer.model.named_parameters() if "lora_" not in n}
    # from_config ran the model's own initialisation: the weights are random, not zeros or uninitialised.
    embed = next(p for n, p in base.items() if n.endswith("embed_tokens.weight"))
    assert 0.005 < float(embed.float().std()) < 0.1  # initializer_range 0.02
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("language_model" in n and "lora_" in n for n in trainable)


@pytest.mark.parametrize("value", [None, "0"])
def test_without_the_variable_the_weights_are_loaded(
    value: str | None, config_only: Path, sample_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer

    if value is None:
        monkeypatch.delenv("MMLA_RANDOM_INIT", raising=False)
    else:
        monkeypatch.setenv("MMLA_RANDOM_INIT", value)
    argv = _argv(config_only, sample_release, tmp_path / "out")
    with pytest.raises(OSError, match=r"no file named model\.safetensors"):  # load_model: no weight files there
        build_trainer(*parse_args(argv), argv)
