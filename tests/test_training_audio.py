"""The SFT collator with audio (tiny Qwen2.5-Omni thinker, tiny Qwen2-Audio) and one LoRA SFT step with audio on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchvision")

from mmla.eval.prompts import build_messages, build_target
from mmla.loaders.sample import ClipSpec, write_clip
from mmla.loaders.tasks import get_task
from mmla.training.collators import IGNORE_INDEX, VideoSFTCollator


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmla.training.testing import tiny_qwen2_5_omni

    return tiny_qwen2_5_omni(tmp_path_factory.mktemp("omni") / "m")


def _rows(tmp_path: Path) -> list[dict]:
    task = get_task("mustard")
    clips = [write_clip(tmp_path / f"c{i}.mp4", ClipSpec(64, 48, 1.0 + i / 2, 10), seed=i) for i in range(2)]
    return [
        {"prompt": build_messages(task, f"oh great, just great {i}", num_videos=1),
         "completion": [{"role": "assistant", "content": build_target(task, label)}], "video": str(clip),
         "label_name": label}
        for i, (clip, label) in enumerate(zip(clips, task.labels, strict=False))
    ]  # fmt: skip


def _check_labels(batch: dict, rows: list[dict], tok, audio_id: int) -> None:
    for i, row in enumerate(rows):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        assert tok.decode(ids[labels != IGNORE_INDEX]) == build_target(get_task("mustard"), row["label_name"]) + (
            "<|im_end|>\n"
        )
        assert (ids == audio_id).sum() > 0 and (labels[ids == audio_id] == IGNORE_INDEX).all()
        assert (labels[batch["attention_mask"][i] == 0] == IGNORE_INDEX).all()


def test_omni_collator_adds_the_audio_track(omni_dir: Path, tmp_path: Path) -> None:
    from mmla.eval.adapters import load_model

    adapter = load_model(str(omni_dir), device="cpu")
    rows = _rows(tmp_path)
    batch = VideoSFTCollator(adapter, num_frames=4)(rows)
    assert batch["use_audio_in_video"] is True and batch["input_features"].shape[:2] == (2, 128)
    assert batch["video_grid_thw"].shape == (2, 3)
    _check_labels(batch, rows, adapter.tokenizer, adapter.processor.audio_token_id)
    video_only = VideoSFTCollator(adapter, num_frames=4, modalities=("text", "video"))(rows)
    assert "input_features" not in video_only and "use_audio_in_video" not in video_only
    loss = adapter.model(**batch).loss
    assert torch.isfinite(loss)


def test_qwen2_audio_collator_audio_alone(tmp_path: Path) -> None:
    from mmla.eval.adapters import load_model
    from mmla.training.testing import tiny_qwen2_audio

    adapter = load_model(str(tiny_qwen2_audio(tmp_path / "qa")), device="cpu")
    rows = _rows(tmp_path)
    batch = VideoSFTCollator(adapter, num_frames=4)(rows)
    assert "pixel_values_videos" not in batch and batch["input_features"].shape[0] == 2
    _check_labels(batch, rows, adapter.tokenizer, adapter.processor.audio_token_id)
    with pytest.raises(ValueError, match="cannot be shown video"):
        VideoSFTCollator(adapter, modalities=("text", "video", "audio"))


def _sft_argv(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--data", str(data), "--output_dir", str(out),
        "--tasks", "mustard", "--num_frames", "4", "--max_steps", "1", "--per_device_train_batch_size", "2",
        "--limit_train", "2", "--limit_eval", "2", "--per_device_eval_batch_size", "2", "--eval_strategy", "steps",
        "--eval_steps", "1", "--eval_mode", "rank", "--save_strategy", "no", "--report_to", "none",
        "--gradient_checkpointing", "false", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "flags, shown",
    [((), ["text", "video", "audio"]), (("--modalities", "text,video"), ["text", "video"])],
    ids=["default-all", "video-only"],
)
def test_one_sft_step_with_audio(omni_dir: Path, sample_release: Path, tmp_path: Path, flags, shown) -> None:
    """The Omni default shows audio; --modalities text,video trains the same model without it. Both recorded."""
    from mmla.training.sft import run

    out = tmp_path / "run"
    res = run(_sft_argv(omni_dir, sample_release, out, *flags))
    assert res["method"] == "sft" and res["modalities"] == shown
    assert res["tasks"]["mustard"]["n"] == 2
    assert json.loads((out / "results.json").read_text())["modalities"] == shown
    run_config = json.loads((out / "run_config.json").read_text())
    assert run_config["modalities"] == shown
    assert run_config["mmla"]["modalities"] == (",".join(shown) if flags else None)  # as asked
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert "language_model" in str(cfg["target_modules"])
    from safetensors.torch import load_file

    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all("language_model" in k for k in weights)


def test_video_model_keeps_its_default_and_refuses_audio(sample_release: Path, tmp_path: Path, capsys) -> None:
    """A video MLLM still trains on text + video by default; --modalities with audio is one line naming it."""
    from mmla.cli.main import main
    from mmla.training.sft import run
    from mmla.training.testing import tiny_qwen2_vl

    vl = tiny_qwen2_vl(tmp_path / "vl")
    res = run(_sft_argv(vl, sample_release, tmp_path / "run"))
    assert res["modalities"] == ["text", "video"]
    assert json.loads((tmp_path / "run" / "run_config.json").read_text())["modalities"] == ["text", "video"]
    code = main(["train", *_sft_argv(vl, sample_release, tmp_path / "run2", "--modalities", "text,video,audio")])
    captured = capsys.readouterr().err
    err = captured.strip().splitlines()[-1]  # before it: the progress bars of loading the model
    assert code == 1 and "Traceback" not in captured
    assert err.startswith("mmla train: error: model ") and "cannot be shown audio" in err
    assert err.endswith("(--modalities text,video,audio)")


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--modalities", "text,smell"), "--modalities 'text,smell': expected a comma-separated subset of "
                                         "text,video,audio"),
        (("--modalities", "video,audio"), "must include text"),
        (("--text_only", "true", "--modalities", "text,audio"), "--text_only true contradicts --modalities text,audio"),
    ],
)  # fmt: skip
def test_bad_modalities_fail_before_the_model_loads(tmp_path: Path, capsys, flags, message) -> None:
    from mmla.cli.main import main

    argv = _sft_argv(tmp_path / "no-such-model", tmp_path / "no-data", tmp_path / "run", *flags)
    assert main(["train", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmla train: error: ") and message in err and "\n" not in err
