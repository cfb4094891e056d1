"""Omni family (Qwen2.5-Omni thinker, Qwen2-Audio): inputs with the sample clips' AAC audio, both scoring modes,
--modalities as a switch recorded in results, unsupported modalities and missing audio as one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmla.eval.adapters import adapter_class, load_model, lora_targets_for
from mmla.eval.adapters.omni import OmniAdapter, Qwen2AudioAdapter
from mmla.eval.prompts import build_target
from mmla.eval.results import load_results
from mmla.eval.runner import evaluate_tasks
from mmla.eval.scoring import candidate_token_ids, generate_answers, rank_scores, rank_scores_full
from mmla.loaders.audio import AVClip, sample_audio
from mmla.loaders.sample import ClipSpec, write_clip
from mmla.loaders.tasks import get_task
from mmla.loaders.video import sample_frames
from mmla.training.testing import tiny_causal_lm, tiny_qwen2_5_omni, tiny_qwen2_audio, tiny_qwen3_omni, write_av_clip

pytest.importorskip("torchvision")

MSG = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "what is the intent?"}]}]
AUDIO_MSG = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "what is the intent?"}]}]


@pytest.fixture(scope="module")
def omni(tmp_path_factory) -> OmniAdapter:
    folder = tiny_qwen2_5_omni(tmp_path_factory.mktemp("omni") / "m")
    return load_model(str(folder), device="cpu")


@pytest.fixture(scope="module")
def qwen2_audio(tmp_path_factory) -> Qwen2AudioAdapter:
    folder = tiny_qwen2_audio(tmp_path_factory.mktemp("qa") / "m")
    return load_model(str(folder), device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[AVClip]:
    d = tmp_path_factory.mktemp("clips")
    paths = [
        write_clip(d / "a.mp4", ClipSpec(64, 48, 1.5, 10), seed=1),
        write_clip(d / "b.mp4", ClipSpec(48, 64, 1, 8)),
    ]
    return [
        AVClip(sample_frames(p, num_frames=4, return_metadata=True), sample_audio(p, return_info=True)) for p in paths
    ]


def test_chosen_by_model_type_and_lora_targets_the_language_model(omni, qwen2_audio) -> None:
    assert type(omni) is OmniAdapter and type(qwen2_audio) is Qwen2AudioAdapter
    for t in ("qwen2_5_omni", "qwen2_5_omni_thinker", "qwen3_omni_moe", "qwen3_omni_moe_thinker"):
        assert adapter_class(t) is OmniAdapter
    assert type(omni.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert OmniAdapter.model_class("qwen2_5_omni").__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    from peft import LoraConfig, get_peft_model

    for ad in (omni, qwen2_audio):
        peft = get_peft_model(ad.model, LoraConfig(r=2, target_modules=lora_targets_for(ad.model)))
        lora = {n for n, _ in peft.named_modules() if n.endswith("lora_A")}
        assert lora and all("language_model" in n for n in lora)
        assert not any("audio_tower" in n or "visual" in n for n in lora)
        peft.unload()


def test_inputs_interleave_audio_and_video(omni, clips) -> None:
    inputs = omni.build_inputs([MSG, MSG], [[c] for c in clips])
    assert inputs["use_audio_in_video"] is True
    assert inputs["input_features"].shape[:2] == (2, 128) and inputs["video_grid_thw"].shape == (2, 3)
    audio_id, video_id = omni.processor.audio_token_id, omni.processor.video_token_id
    ids = inputs["input_ids"]
    for row in range(2):
        assert (ids[row] == audio_id).sum() > 0 and (ids[row] == video_id).sum() > 0
    # per-clip temporal spacing from each clip's own sampled fps (4 frames over 1.5 s and over 1 s)
    per_grid = inputs["video_second_per_grid"].tolist()
    assert per_grid == pytest.approx([2 / (4 / 1.5), 2 / (4 / 1.0)], rel=0.05)
    video_only = omni.build_inputs([MSG], [[clips[0].frames]])
    assert "input_features" not in video_only and "use_audio_in_video" not in video_only


def test_both_modes_with_audio_and_batching_is_exact(omni, clips) -> None:
    inputs = omni.build_inputs([MSG, MSG], [[c] for c in clips])
    answers = generate_answers(omni, inputs, max_new_tokens=3)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    cands = candidate_token_ids(omni, ["intent: complain", "intent: praise", "intent: thank"])
    both = rank_scores(omni, inputs, cands)
    alone = rank_scores(omni, omni.build_inputs([MSG], [[clips[1]]]), cands)
    torch.testing.assert_close(both[1:], alone, atol=1e-4, rtol=0)  # left padding changes nothing
    no_audio = rank_scores(omni, omni.build_inputs([MSG], [[clips[1].frames]]), cands)
    assert not torch.allclose(alone, no_audio)  # the audio reaches the model
    audio_only = rank_scores(omni, omni.build_inputs([AUDIO_MSG], [[clips[1].audio]]), cands)
    assert torch.isfinite(audio_only).all()


def _long_and_short(video: bool) -> list:
    make = (
        (lambda t: [{**MSG[0], "content": [MSG[0]["content"][0], {"type": "text", "text": t}]}])
        if video
        else (lambda t: [{**AUDIO_MSG[0], "content": [AUDIO_MSG[0]["content"][0], {"type": "text", "text": t}]}])
    )
    return [make("what is the intent of this speaker, given all that was said before?"), make("intent?")]


def _check_shared_prefix_rank(ad, inputs) -> None:
    """Rank scoring on the prompt's shared cache (one prompt forward, labels continued on it) equals one full
    forward per label, for MIntRec's 20 labels (shared "intent:" prefix, 1-3 label tokens) and left padding."""
    task = get_task("mintrec")
    cands = candidate_token_ids(ad, [build_target(task, lab) for lab in task.labels])
    assert max(map(len, cands)) - min(map(len, cands)) >= 1
    calls = []
    forward = ad.model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return forward(*args, **kwargs)

    ad.model.forward = counting
    try:
        shared = rank_scores(ad, inputs, cands)
    finally:
        ad.model.forward = forward
    assert len(calls) == 2  # the prompt once, then every label's remaining tokens in one batch
    torch.testing.assert_close(shared, rank_scores_full(ad, inputs, cands), atol=1e-4, rtol=0)


def test_rank_shares_the_prompt_cache_exactly(omni, qwen2_audio, clips) -> None:
    _check_shared_prefix_rank(omni, omni.build_inputs(_long_and_short(True), [[c] for c in clips]))
    _check_shared_prefix_rank(qwen2_audio, qwen2_audio.build_inputs(_long_and_short(False), [[c.audio] for c in clips]))
    # the label tokens' M-RoPE positions matter: 1-D positions after the prompt give other scores
    task = get_task("mintrec")
    cands = candidate_token_ids(omni, [build_target(task, lab) for lab in task.labels])
    inputs = omni.build_inputs(_long_and_short(True), [[c] for c in clips])
    right = rank_scores(omni, inputs, cands)
    omni.continuation_positions = lambda pos, rows, n: pos.unsqueeze(0).expand(3, -1, -1)
    try:
        assert not torch.allclose(right, rank_scores(omni, inputs, cands), atol=1e-4)
    finally:
        del omni.continuation_positions


def test_qwen3_omni_thinker_both_modes(tmp_path, clips) -> None:
    ad = load_model(str(tiny_qwen3_omni(tmp_path / "q3")), device="cpu")
    assert type(ad) is OmniAdapter and type(ad.model).__name__ == "Qwen3OmniMoeThinkerForConditionalGeneration"
    inputs = ad.build_inputs([MSG, MSG], [[c] for c in clips])
    assert inputs["use_audio_in_video"] is True and (inputs["input_ids"] == ad.processor.audio_token_id).any()
    assert len(generate_answers(ad, inputs, max_new_tokens=2)) == 2
    cands = candidate_token_ids(ad, ["intent: complain", "intent: praise"])
    both = rank_scores(ad, inputs, cands)
    torch.testing.assert_close(
        both[:1], rank_scores(ad, ad.build_inputs([MSG], [[clips[0]]]), cands), atol=1e-4, rtol=0
    )
    assert not torch.allclose(both[:1], rank_scores(ad, ad.build_inputs([MSG], [[clips[0].frames]]), cands))
    _check_shared_prefix_rank(ad, ad.build_inputs(_long_and_short(True), [[c] for c in clips]))
    assert ad._audio_window() is None  # Qwen3-Omni's processor does not truncate long audio
    with pytest.raises(ValueError, match="mixes clips with and without their audio"):
        ad.build_inputs([MSG, MSG], [[clips[0]], [clips[1].frames]])


def test_audio_beyond_the_window_is_said_once(omni, caplog) -> None:
    import logging

    import numpy as np

    from mmla.loaders.audio import AudioSample

    long = AudioSample(np.zeros(31 * 16000, np.float32), 16000, 16000, 1, 31.0, path="long.mp4")
    with caplog.at_level(logging.WARNING, logger="mmla.eval.adapters.omni"):
        omni.build_inputs([AUDIO_MSG, AUDIO_MSG], [[long], [long]])
    said = [r.getMessage() for r in caplog.records if "long.mp4" in r.getMessage()]
    assert len(said) == 1 and "31.0 s of audio" in said[0] and "first 30 s" in said[0]


def test_qwen2_audio_both_modes(qwen2_audio, clips) -> None:
    inputs = qwen2_audio.build_inputs([AUDIO_MSG, AUDIO_MSG], [[c.audio] for c in clips])
    assert (inputs["input_ids"] == qwen2_audio.processor.audio_token_id).sum() > 0
    assert len(generate_answers(qwen2_audio, inputs, max_new_tokens=2)) == 2
    cands = candidate_token_ids(qwen2_audio, ["intent: complain", "intent: praise"])
    both = rank_scores(qwen2_audio, inputs, cands)
    alone = rank_scores(qwen2_audio, qwen2_audio.build_inputs([AUDIO_MSG], [[clips[0].audio]]), cands)
    torch.testing.assert_close(both[:1], alone, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="takes no video"):
        qwen2_audio.build_inputs([MSG], [[clips[0]]])


@pytest.mark.parametrize("mode", ["generate", "rank"])
def test_runner_with_and_without_audio_on_the_same_clips(omni, sample_release, tmp_path, mode) -> None:
    runs = {}
    for shows in ("text,video,audio", "text,video", "text,audio", "text"):
        runs[shows] = evaluate_tasks(omni, ["mustard"], str(sample_release), "test", mode=mode, batch_size=3,
                                     limit=3, num_frames=4, modalities=shows, max_new_tokens=3,
                                     output_dir=tmp_path / shows, show_progress=False, n_bootstrap=0)  # fmt: skip
    assert {k: r.modalities for k, r in runs.items()} == {k: tuple(k.split(",")) for k in runs}
    assert runs["text"].text_only and not runs["text,audio"].text_only
    on_disk = json.loads((tmp_path / "text,video,audio" / "results.json").read_text())
    assert on_disk["modalities"] == ["text", "video", "audio"] and on_disk["schema_version"] == 2
    assert load_results(tmp_path / "text,audio").modalities == ("text", "audio")
    assert runs["text,video,audio"].settings["modalities"] == "text,video,audio"
    assert runs["text,video"].settings["modalities"] is None  # no audio: the hashes of earlier runs stay valid
    hashes = {k: [json.loads(x)["hash"] for x in (tmp_path / k / "predictions" / "mustard.jsonl").open()] for k in runs}
    assert len({tuple(h) for h in hashes.values()}) == 4  # each switch changes what is cached
    if mode == "rank":
        scores = {k: [json.loads(x)["scores"] for x in (tmp_path / k / "predictions" / "mustard.jsonl").open()]
                  for k in runs}  # fmt: skip
        assert scores["text,video,audio"] != scores["text,video"]
    from mmla.hub_cards.model_card import model_card

    card = str(model_card(runs["text,video,audio"], with_paper=False))
    assert "| modalities | `text,video,audio` |" in card and "--modalities text,video,audio" in card
    default = evaluate_tasks(omni, ["mustard"], str(sample_release), "test", mode=mode, limit=1, num_frames=4,
                             output_dir=tmp_path / "default", show_progress=False, n_bootstrap=0)  # fmt: skip
    assert default.modalities == ("text", "video", "audio")


def test_unsupported_modality_is_one_line_before_scoring(qwen2_audio, sample_release, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"\(Qwen2AudioAdapter\) takes text,audio; it cannot be shown video") as e:
        evaluate_tasks(qwen2_audio, ["mustard"], str(sample_release), "test", modalities="text,video,audio",
                       output_dir=tmp_path / "x", limit=1)  # fmt: skip
    assert "\n" not in str(e.value) and not (tmp_path / "x").exists()
    run = evaluate_tasks(qwen2_audio, ["mustard"], str(sample_release), "test", mode="rank", limit=2,
                         output_dir=tmp_path / "qa", show_progress=False, n_bootstrap=0)  # fmt: skip
    assert run.modalities == ("text", "audio") and run.settings["num_frames"] is None
    with pytest.raises(ValueError, match="must include text"):
        evaluate_tasks(qwen2_audio, ["mustard"], str(sample_release), "test", modalities="audio",
                       output_dir=tmp_path / "y")  # fmt: skip


def _release_with_clip(src: Path, dst: Path, clip: Path) -> Path:
    """A copy of the sample MUStARD release whose every clip is ``clip``."""
    import shutil

    from mmla.loaders.tasks import get_task

    task = get_task("mustard")
    shutil.copytree(src / task.release_dir, dst / task.release_dir)
    for mp4 in (dst / task.release_dir).rglob("*.mp4"):
        shutil.copyfile(clip, mp4)
    return dst


def test_clip_without_audio_error_or_counted_silence(omni, sample_release, tmp_path) -> None:
    pytest.importorskip("av")
    data = _release_with_clip(sample_release, tmp_path / "rel", write_av_clip(tmp_path / "mute.mp4", audio=False))
    kw = {"mode": "rank", "limit": 2, "num_frames": 4, "show_progress": False, "n_bootstrap": 0}
    with pytest.raises(RuntimeError, match=r"mute\.mp4|no audio track.*--allow-silent") as e:
        evaluate_tasks(omni, ["mustard"], str(data), "test", output_dir=tmp_path / "a", **kw)
    assert "no audio track" in str(e.value) and "\n" not in str(e.value)
    run = evaluate_tasks(omni, ["mustard"], str(data), "test", output_dir=tmp_path / "b", allow_silent=True, **kw)
    assert run.extra["silent_audio"] == {"mustard": 2} and run.settings["allow_silent"] is True
    assert json.loads((tmp_path / "b" / "results.json").read_text())["silent_audio"] == {"mustard": 2}
    skipped = evaluate_tasks(omni, ["mustard"], str(data), "test", output_dir=tmp_path / "d", skip_bad=True, **kw)
    assert len(skipped.tasks["mustard"].skipped) == 2 and skipped.tasks["mustard"].n == 0
    video_only = evaluate_tasks(omni, ["mustard"], str(data), "test", output_dir=tmp_path / "c",
                                modalities="text,video", **kw)  # fmt: skip
    assert "silent_audio" not in video_only.extra


def test_cli_modalities_flag(sample_release, tmp_path) -> None:
    """`mmla eval --modalities` on a text LLM: a one-line error before any model runs; `text` is accepted."""
    model = tiny_causal_lm(tmp_path / "llm")
    base = [sys.executable, "-m", "mmla.cli", "eval", "--model", str(model), "--tasks", "mustard", "--data",
            str(sample_release), "--limit", "1", "--device", "cpu", "--mode", "rank"]  # fmt: skip
    bad = subprocess.run([*base, "--modalities", "text,audio", "--output", str(tmp_path / "o1")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("mmla eval: error: model ")
    assert "it cannot be shown audio" in bad.stderr
    ok = subprocess.run([*base, "--modalities", "text", "--output", str(tmp_path / "o2")],
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads((tmp_path / "o2" / "results.json").read_text())["modalities"] == ["text"]
