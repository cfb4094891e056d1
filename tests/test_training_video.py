"""Video LoRA SFT of a tiny random Qwen2-VL through the training collator (needs torchvision)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torchvision")  # transformers video processors need it

from mmla.eval.prompts import build_target
from mmla.loaders.tasks import get_task


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmla.training.testing import tiny_qwen2_vl

    return tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"))


def _argv(model: Path, data: Path, out: Path) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--data", str(data), "--output_dir", str(out), "--tasks", "mintrec",
        "--num_frames", "4", "--max_steps", "2", "--per_device_train_batch_size", "2", "--limit_train", "4",
        "--limit_eval", "2", "--per_device_eval_batch_size", "2", "--eval_strategy", "steps", "--eval_steps", "2",
        "--save_strategy", "no", "--report_to", "none", "--gradient_checkpointing", "false", "--disable_tqdm", "true",
    ]  # fmt: skip


def test_collator_masks_all_but_the_answer(tiny_vl: Path, sample_release: Path, tmp_path: Path) -> None:
    from mmla.training.config import parse_args
    from mmla.training.sft import build_trainer

    argv = _argv(tiny_vl, sample_release, tmp_path / "out")
    trainer, adapter, _ = build_trainer(*parse_args(argv), argv)
    rows = [trainer.train_dataset[i] for i in range(2)]
    batch = trainer.data_collator(rows)
    assert batch["pixel_values_videos"].shape[0] > 0 and batch["video_grid_thw"].tolist()[0][0] == 2  # 4 frames / 2
    tok = adapter.tokenizer
    video_pad = tok.convert_tokens_to_ids("<|video_pad|>")
    for i, row in enumerate(rows):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        target = build_target(get_task("mintrec"), row["label_name"])
        assert tok.decode(ids[labels != -100]) == target + "<|im_end|>\n"
        n_video = int((ids == video_pad).sum())
        assert n_video == int(batch["video_grid_thw"][i].prod()) // 4 and (labels[ids == video_pad] == -100).all()
        pad = batch["attention_mask"][i] == 0
        assert (labels[pad] == -100).all()
    # LoRA sits on the language model only; the vision tower is frozen.
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("language_model" in n and "lora_" in n for n in trainable)


def test_video_sft_runs_and_reports(tiny_vl: Path, sample_release: Path, tmp_path: Path) -> None:
    from mmla.eval.adapters import load_model
    from mmla.training.sft import run

    out = tmp_path / "run"
    res = run(_argv(tiny_vl, sample_release, out))
    assert res["method"] == "sft" and res["text_only"] is False and res["tasks"]["mintrec"]["n"] == 2
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert "language_model" in str(cfg["target_modules"])
    adapter = load_model(str(tiny_vl), adapter=str(out), device="cpu")
    assert adapter.is_multimodal


# --------------------------------------------------------------------------- video timing in the SFT collator
def _timing_rows(tmp_path: Path) -> list[dict]:
    """Two rows whose clips (the sample release's encoder) are 2 s and 1 s long at 10 fps."""
    from mmla.eval.prompts import build_messages
    from mmla.loaders.sample import CLIP_SPECS, write_clip

    task = get_task("mintrec")
    clips = [write_clip(tmp_path / "a.mp4", CLIP_SPECS[3], seed=1), write_clip(tmp_path / "b.mp4", CLIP_SPECS[1])]
    return [
        {"prompt": build_messages(task, text, num_videos=1), "video": str(clip), "label_name": label,
         "completion": [{"role": "assistant", "content": build_target(task, label)}]}
        for text, clip, label in zip(["hi", "hello there"], clips, ["joke", "thank"], strict=True)
    ]  # fmt: skip


@pytest.mark.video_processor
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_collator_passes_the_frame_times(family: str, tmp_path: Path) -> None:
    import re

    import torch

    from mmla.eval.adapters import load_model
    from mmla.loaders.video import sample_frames
    from mmla.training import testing
    from mmla.training.collators import VideoSFTCollator

    model_dir = getattr(testing, f"tiny_{family}")(tmp_path / "model")
    adapter = load_model(str(model_dir), device="cpu")
    rows = _timing_rows(tmp_path)
    batch = VideoSFTCollator(adapter, num_frames=None, fps=2)(rows)
    # what the collator sampled: 4 frames of the 2 s clip (2 fps) and 2 of the 1 s clip
    samples = [sample_frames(row["video"], fps=2, return_metadata=True) for row in rows]
    assert [len(s.indices) for s in samples] == [4, 2]
    tps = adapter.processor.video_processor.temporal_patch_size
    tok = adapter.tokenizer
    if family == "qwen2_5_vl":
        expected = torch.tensor([tps / s.sampled_fps for s in samples])  # 1.0 s per temporal patch (not 2/24)
        torch.testing.assert_close(torch.as_tensor(batch["second_per_grid_ts"]).float(), expected)
    else:
        for i, sample in enumerate(samples):
            times = [float(t) for t in re.findall(r"<([\d.]+) seconds>", tok.decode(batch["input_ids"][i]))]
            ts = sample.timestamps
            expected = [(ts[j] + ts[j + 1]) / 2 for j in range(0, len(ts), 2)]  # 0.3, 1.6 s for the 2 s clip
            assert len(times) == len(expected) and all(
                abs(a - b) <= 0.051 for a, b in zip(times, expected, strict=True)
            )
    for i, row in enumerate(rows):  # the timestamps are prompt: labels stay on the answer only
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        assert tok.decode(ids[labels != -100]) == build_target(get_task("mintrec"), row["label_name"]) + "<|im_end|>\n"
    out = adapter.model(**batch)
    assert torch.isfinite(out.loss)
