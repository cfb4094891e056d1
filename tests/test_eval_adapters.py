"""Adapters: registry by model_type, inputs for text (and video where torchvision exists), errors, PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmla.eval.adapters import (
    CausalLMAdapter,
    adapter_for,
    load_model,
    resolve_model,
)
from mmla.eval.adapters.llava_onevision import LlavaOnevisionAdapter
from mmla.eval.adapters.qwen2_vl import Qwen2VLAdapter
from mmla.eval.prompts import build_messages, build_target
from mmla.eval.scoring import candidate_token_ids, generate_answers, rank_scores, rank_scores_full
from mmla.loaders.tasks import get_task
from mmla.training.testing import tiny_llama, tiny_qwen2, tiny_tokenizer

MINTREC = get_task("mintrec")


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory, tok) -> Path:
    d = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama(len(tok)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _msgs(texts: list[str]) -> list[list[dict]]:
    return [build_messages(MINTREC, t) for t in texts]


def test_load_model_picks_causal_adapter_and_left_pads(llama_dir: Path) -> None:
    ad = load_model(str(llama_dir), device="cpu")
    assert type(ad) is CausalLMAdapter and not ad.is_multimodal
    batch = ad.build_inputs(_msgs(["hi", "a much longer utterance with many more words in it"]))
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][0, -1] == 1  # left padding
    text = ad.prompt_text(_msgs(["hi"])[0])
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")
    assert "candidate labels for intent" in text
    # training path: full conversation, no generation prompt, right padding
    conv = [*_msgs(["hi"])[0], {"role": "assistant", "content": build_target(MINTREC, "joke")}]
    full = ad.build_inputs([conv, _msgs(["hello there"])[0]], add_generation_prompt=False, padding_side="right")
    assert full["attention_mask"][0, 0] == 1
    assert "intent: joke<|im_end|>" in ad.tokenizer.decode(full["input_ids"][0])


@pytest.mark.parametrize("factory", [tiny_llama, tiny_qwen2])
def test_rank_with_shared_prompt_cache_equals_full_forwards(factory, tok) -> None:
    ad = adapter_for(factory(len(tok), seed=1), tok)
    inputs = ad.build_inputs(_msgs(["hi", "I am so sorry about that, really", "thanks"]))
    cands = candidate_token_ids(ad, [build_target(MINTREC, lab) for lab in MINTREC.labels])
    assert len({len(c) for c in cands}) > 1  # labels of different token lengths
    shared = rank_scores(ad, inputs, cands)
    full = rank_scores_full(ad, inputs, cands)
    assert shared.shape == (3, len(MINTREC.labels))
    torch.testing.assert_close(shared, full, atol=1e-4, rtol=1e-4)
    # padding does not change a sample's scores
    alone = rank_scores(ad, ad.build_inputs(_msgs(["hi"])), cands)
    torch.testing.assert_close(alone[0], shared[0], atol=1e-4, rtol=1e-4)


def test_rank_runs_label_tails_only_for_multi_token_labels(tok) -> None:
    """The second forward holds one row per (sample, label whose suffix has 2+ tokens), padded to the longest such
    suffix; single-token labels are scored from the prompt forward's logits alone."""
    ad = adapter_for(tiny_qwen2(len(tok), seed=1), tok)
    inputs = ad.build_inputs(_msgs(["hi", "I am so sorry about that, really", "thanks"]))
    cands = candidate_token_ids(ad, [build_target(MINTREC, lab) for lab in MINTREC.labels])
    k = next(i for i in range(min(map(len, cands))) if len({c[i] for c in cands}) > 1)  # shared target tokens
    multi = [c for c in cands if len(c) - k > 1]
    assert 0 < len(multi) < len(cands)  # the label set mixes both kinds
    fed = []
    hook = ad.model.register_forward_pre_hook(lambda m, a, kw: fed.append(tuple(kw["input_ids"].shape)),
                                              with_kwargs=True)  # fmt: skip
    try:
        shared = rank_scores(ad, inputs, cands)
    finally:
        hook.remove()
    assert fed[1:] == [(3 * len(multi), max(len(c) - k for c in multi) - 1)]
    torch.testing.assert_close(shared, rank_scores_full(ad, inputs, cands), atol=1e-4, rtol=1e-4)
    # single-token labels only: no second forward
    fed.clear()
    hook = ad.model.register_forward_pre_hook(lambda m, a, kw: fed.append(1), with_kwargs=True)
    try:
        rank_scores(ad, inputs, [c for c in cands if len(c) - k == 1])
    finally:
        hook.remove()
    assert len(fed) == 1


def test_generate_is_deterministic_and_batch_invariant(tok) -> None:
    ad = adapter_for(tiny_llama(len(tok), seed=2), tok)
    msgs = _msgs(["hi", "a longer sentence here to force padding"])
    a = generate_answers(ad, ad.build_inputs(msgs), max_new_tokens=5)
    b = generate_answers(ad, ad.build_inputs(msgs[:1]), max_new_tokens=5)
    assert a[0] == b[0] and a == generate_answers(ad, ad.build_inputs(msgs), max_new_tokens=5)


def test_no_chat_template_is_a_clear_error_unless_raw_prompt(tmp_path: Path) -> None:
    tok = tiny_tokenizer(chat_template=None)
    tiny_llama(len(tok)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    ad = load_model(str(tmp_path), device="cpu")
    with pytest.raises(ValueError, match="no-chat-template"):
        ad.prompt_text(_msgs(["hi"])[0])
    raw = load_model(str(tmp_path), device="cpu", use_chat_template=False)
    text = raw.prompt_text(_msgs(["hi"])[0])
    assert text.startswith("You are presented with a video") and "<|im_start|>" not in text
    assert raw.build_inputs(_msgs(["hi"]))["input_ids"].shape[0] == 1


@pytest.mark.parametrize(
    ("model_type", "auto_map"),
    [("internlm2", {"AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"}),
     ("minicpmv", {"AutoModel": "modeling_minicpmv.MiniCPMV"}),
     ("brand_new_arch", {"AutoModelForCausalLM": "modeling_x.X"})],
)  # fmt: skip
def test_remote_code_models_need_explicit_opt_in(tmp_path: Path, model_type: str, auto_map: dict) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "auto_map": auto_map}))
    with pytest.raises(ValueError, match="--trust-remote-code"):
        load_model(str(tmp_path), device="cpu")


def test_unknown_model_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nope"), device="cpu")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ValueError, match="neither a causal LM"):
        load_model(str(tmp_path), device="cpu")


def test_default_model_resolves_to_embedded_gguf() -> None:
    folder, gguf = resolve_model(None)
    assert gguf == "SmolLM2-135M-Instruct.Q4_1.gguf" and (Path(folder) / gguf).is_file()
    assert resolve_model("smollm2") == (folder, gguf)
    assert resolve_model("/x/y/model.gguf") == ("/x/y/model.gguf", None)  # not a file: left to the loader
    assert resolve_model("org/model", "m.gguf") == ("org/model", "m.gguf")


def test_peft_adapter_is_applied(llama_dir: Path, tmp_path: Path, tok) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    base = tiny_llama(len(tok))
    lora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    ad = load_model(str(llama_dir), adapter=str(tmp_path / "adapter"), device="cpu")
    assert isinstance(ad.model, PeftModel)
    inputs = ad.build_inputs(_msgs(["hi"]))
    cands = candidate_token_ids(ad, [build_target(MINTREC, lab) for lab in MINTREC.labels[:3]])
    torch.testing.assert_close(rank_scores(ad, inputs, cands), rank_scores_full(ad, inputs, cands), atol=1e-4, rtol=0)
    plain = load_model(str(llama_dir), device="cpu")
    assert not torch.allclose(rank_scores(plain, inputs, cands), rank_scores(ad, inputs, cands))
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        load_model(str(llama_dir), adapter=str(tmp_path), device="cpu")


# --------------------------------------------------------------------------- multimodal families
def _tiny_qwen2_vl(tok):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    vid = tok.convert_tokens_to_ids("<|video|>")
    cfg = Qwen2VLConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [2, 1, 1]},
                     "pad_token_id": 0},
        vision_config={"depth": 1, "embed_dim": 16, "hidden_size": 32, "num_heads": 2, "patch_size": 14,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3},
        image_token_id=vid, video_token_id=vid, vision_start_token_id=1, vision_end_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return Qwen2VLForConditionalGeneration(cfg).eval()


def _tiny_llava_ov(tok):
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    vid = tok.convert_tokens_to_ids("<|video|>")
    cfg = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", "vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "pad_token_id": 0},
        vision_config={"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14},
        image_token_id=vid, video_token_id=vid,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlavaOnevisionForConditionalGeneration(cfg).eval()


@pytest.mark.parametrize(
    ("factory", "cls"), [(_tiny_qwen2_vl, Qwen2VLAdapter), (_tiny_llava_ov, LlavaOnevisionAdapter)]
)
def test_multimodal_registry_and_text_path(factory, cls, tok) -> None:
    ad = adapter_for(factory(tok), tok)  # a tokenizer stands in for the processor on the text path
    assert type(ad) is cls and ad.is_multimodal and not ad.shares_prompt_cache
    msgs = [build_messages(MINTREC, "hi", num_videos=1), build_messages(MINTREC, "hello there, friend", num_videos=1)]
    assert "<|video|>" in ad.prompt_text(msgs[0])
    inputs = ad.build_inputs([_msgs(["hi"])[0], _msgs(["hello there, friend"])[0]])
    assert inputs["attention_mask"][0, 0] == 0
    cands = candidate_token_ids(ad, [build_target(MINTREC, lab) for lab in MINTREC.labels[:4]])
    scores = rank_scores(ad, inputs, cands)  # the full-forward path (no 1-D cache reuse)
    assert scores.shape == (2, 4) and torch.isfinite(scores).all()
    assert len(generate_answers(ad, inputs, max_new_tokens=3)) == 2


def test_text_adapter_refuses_videos(tok) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)
    with pytest.raises(ValueError, match="text-only"):
        ad.build_inputs(_msgs(["hi"]), videos=[[torch.zeros(4, 3, 28, 28, dtype=torch.uint8)]])


@pytest.mark.video_processor
def test_qwen2_vl_video_inputs_with_frames(tok) -> None:
    pytest.importorskip("torchvision")
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    chat = CHAT_VIDEO = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    del CHAT_VIDEO
    t = tiny_tokenizer(chat)
    t.add_special_tokens(
        {"additional_special_tokens": ["<|vision_start|>", "<|video_pad|>", "<|vision_end|>", "<|image_pad|>"]}
    )
    proc = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56),
        video_processor=Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=56 * 56),
        tokenizer=t,
        chat_template=chat,
    )
    model = _tiny_qwen2_vl(t)
    ad = adapter_for(model, proc)
    frames = torch.randint(0, 255, (4, 3, 56, 56), dtype=torch.uint8)
    msgs = [build_messages(MINTREC, "hi", num_videos=1)] * 2
    inputs = ad.build_inputs(msgs, videos=[[frames], [frames]])
    assert "pixel_values_videos" in inputs and inputs["video_grid_thw"].shape == (2, 3)


def test_rank_in_chunks_of_expanded_rows_matches(tok) -> None:
    ad = adapter_for(tiny_qwen2(len(tok), seed=3), tok)
    inputs = ad.build_inputs(_msgs(["hi", "sorry!", "thanks a lot", "see you tomorrow then"]))
    cands = candidate_token_ids(ad, [build_target(MINTREC, lab) for lab in MINTREC.labels])
    torch.testing.assert_close(
        rank_scores(ad, inputs, cands, max_rows=25), rank_scores(ad, inputs, cands), atol=1e-4, rtol=1e-4
    )


# --------------------------------------------------------------------------- video timing (Qwen2.5-VL, Qwen3-VL)
def _clip_samples(tmp_path: Path) -> list:
    """Two clips of the sample release's encoder, sampled as evaluation does (with their metadata):
    2 s at 10 fps sampled at 2 fps (4 frames), and 1 s at 10 fps with 4 frames (4 fps)."""
    from mmla.loaders.sample import CLIP_SPECS, write_clip
    from mmla.loaders.video import sample_frames

    long = write_clip(tmp_path / "long.mp4", CLIP_SPECS[3], seed=1)  # 64x48, 2.0 s, 10 fps
    short = write_clip(tmp_path / "short.mp4", CLIP_SPECS[1], seed=2)  # 48x64, 1.0 s, 10 fps
    samples = [
        sample_frames(long, fps=2, return_metadata=True),
        sample_frames(short, num_frames=4, return_metadata=True),
    ]
    assert [len(s.indices) for s in samples] == [4, 4]
    assert [round(s.sampled_fps, 3) for s in samples] == [2.0, 4.0]
    return samples


def _prompt_times(adapter, input_ids: torch.Tensor) -> list[float]:
    import re

    return [float(t) for t in re.findall(r"<([\d.]+) seconds>", adapter.tokenizer.decode(input_ids))]


def _pair_times(sample) -> list[float]:
    """Mean time of each temporal patch (2 frames), as Qwen3-VL's processor labels it."""
    ts = sample.timestamps
    return [(ts[i] + ts[i + 1]) / 2 for i in range(0, len(ts), 2)]


@pytest.fixture(scope="module")
def tiny_qwen2_5_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torchvision")
    from mmla.training.testing import tiny_qwen2_5_vl

    return tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-qwen2.5-vl"))


@pytest.fixture(scope="module")
def tiny_qwen3_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torchvision")
    from mmla.training.testing import tiny_qwen3_vl

    return tiny_qwen3_vl(tmp_path_factory.mktemp("tiny-qwen3-vl"))


@pytest.mark.video_processor
def test_qwen2_5_vl_second_per_grid_ts_from_the_sampled_fps(tiny_qwen2_5_vl_dir: Path, tmp_path: Path, caplog) -> None:
    ad = load_model(str(tiny_qwen2_5_vl_dir), device="cpu")
    assert type(ad) is Qwen2VLAdapter and ad.model.config.model_type == "qwen2_5_vl"
    samples = _clip_samples(tmp_path)
    msgs = [build_messages(MINTREC, "hi", num_videos=1), build_messages(MINTREC, "hello there", num_videos=1)]
    inputs = ad.build_inputs(msgs, videos=[[samples[0]], [samples[1]]])
    tps = ad.processor.video_processor.temporal_patch_size
    # temporal_patch_size / sampled fps per clip: 2/2 and 2/4 s (transformers' 24 fps default would give 2/24)
    expected = [tps / s.sampled_fps for s in samples]
    torch.testing.assert_close(torch.as_tensor(inputs["second_per_grid_ts"]).float(), torch.tensor(expected))
    assert inputs["video_grid_thw"][:, 0].tolist() == [2, 2]
    assert torch.isfinite(ad.model(**inputs).logits).all()  # the model consumes them (M-RoPE time positions)
    # Bare frames carry no timing: the processor's 24 fps default, and one warning that says so.
    bare = ad.build_inputs(msgs[:1], videos=[[samples[0].frames]])
    assert float(bare["second_per_grid_ts"][0]) == pytest.approx(tps / 24)
    assert "without their sampling metadata" in caplog.text


@pytest.mark.video_processor
def test_qwen3_vl_prompt_timestamps_are_the_frame_times(tiny_qwen3_vl_dir: Path, tmp_path: Path) -> None:
    from mmla.eval.adapters.qwen3_vl import Qwen3VLAdapter

    ad = load_model(str(tiny_qwen3_vl_dir), device="cpu")
    assert type(ad) is Qwen3VLAdapter and ad.is_multimodal and not ad.shares_prompt_cache
    samples = _clip_samples(tmp_path)
    msgs = [build_messages(MINTREC, "hi", num_videos=1), build_messages(MINTREC, "hello there", num_videos=1)]
    inputs = ad.build_inputs(msgs, videos=[[samples[0]], [samples[1]]])
    for i, sample in enumerate(samples):
        times = _prompt_times(ad, inputs["input_ids"][i])
        expected = _pair_times(sample)  # long clip: 0.3 and 1.6 s (24 fps would say 0.1 and 0.7)
        assert len(times) == len(expected) and all(abs(a - b) <= 0.051 for a, b in zip(times, expected, strict=True))
    assert _prompt_times(ad, inputs["input_ids"][0]) == [0.3, 1.6]
    assert torch.isfinite(ad.model(**inputs).logits).all()


# --------------------------------------------------------------------------- LoRA targets per family
def _lora_modules(model: torch.nn.Module) -> list[str]:
    from peft import LoraConfig, get_peft_model

    from mmla.eval.adapters import lora_targets_for

    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=lora_targets_for(model.config)))
    return [
        n for n, m in peft_model.named_modules() if hasattr(m, "lora_A") and isinstance(m.lora_A, torch.nn.ModuleDict)
    ]


LM_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.mark.parametrize("family", ["qwen2_vl", "llava_onevision", "qwen2_5_vl", "qwen3_vl", "llama"])
def test_lora_targets_are_the_language_model_linears(family: str, tok, request) -> None:
    from transformers import AutoModelForImageTextToText

    if family == "qwen2_vl":
        model = _tiny_qwen2_vl(tok)
    elif family == "llava_onevision":
        model = _tiny_llava_ov(tok)
    elif family == "llama":
        model = tiny_llama(len(tok))
    else:
        path = request.getfixturevalue("tiny_qwen2_5_vl_dir" if family == "qwen2_5_vl" else "tiny_qwen3_vl_dir")
        model = AutoModelForImageTextToText.from_pretrained(path)
    assert model.config.model_type == family
    n_layers = model.config.get_text_config().num_hidden_layers
    names = _lora_modules(model)
    # every projection of every decoder layer, and nothing else (no vision tower, projector or lm_head)
    assert len(names) == len(LM_LINEAR) * n_layers, names
    assert all(n.rsplit(".", 1)[-1] in LM_LINEAR for n in names)
    if family != "llama":
        assert all(".language_model." in n for n in names)
    if family == "qwen2_5_vl":  # its vision MLP has gate/up/down_proj too: they stay frozen
        assert any("visual" in n and n.endswith("gate_proj") for n, _ in model.named_modules())


def test_lora_targets_of_remote_code_families() -> None:
    import re

    from mmla.eval.adapters import lora_targets_for

    minicpm = lora_targets_for({"model_type": "minicpmv"})
    assert re.fullmatch(minicpm, "llm.model.layers.0.self_attn.q_proj")
    assert re.fullmatch(minicpm, "llm.model.layers.27.mlp.down_proj")
    assert not re.fullmatch(minicpm, "vpm.encoder.layers.0.self_attn.q_proj")  # SigLIP tower
    assert not re.fullmatch(minicpm, "resampler.attn.out_proj") and not re.fullmatch(minicpm, "llm.lm_head")
    assert lora_targets_for("internlm2") == ["wqkv", "wo", "w1", "w2", "w3"]
    assert lora_targets_for("llama") == "all-linear" and lora_targets_for("qwen3_vl") == lora_targets_for("qwen2_vl")


# --------------------------------------------------------------------------- adapter folder errors
@pytest.fixture()
def lora_dir(tmp_path: Path, tok) -> Path:
    from peft import LoraConfig, get_peft_model

    get_peft_model(tiny_llama(len(tok)), LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(tmp_path / "ad")
    return tmp_path / "ad"


def _break(folder: Path, case: str) -> Path:
    cfg = folder / "adapter_config.json"
    if case == "no weights":
        (folder / "adapter_model.safetensors").unlink()
    elif case == "invalid json":
        cfg.write_text('{"peft_type": "LORA",\n  "r": }')
    elif case == "no peft_type":
        data = json.loads(cfg.read_text())
        del data["peft_type"]
        cfg.write_text(json.dumps(data))
    elif case == "unknown peft_type":
        data = json.loads(cfg.read_text())
        cfg.write_text(json.dumps({**data, "peft_type": "LORAX"}))
    elif case == "json list":
        cfg.write_text("[1, 2]")
    elif case == "no config":
        cfg.unlink()
    elif case == "missing folder":
        return folder.parent / "nope"
    elif case == "a file":
        return cfg
    return folder


ADAPTER_CASES = [
    ("no weights", FileNotFoundError, "has adapter_config.json but no weights: expected adapter_model.safetensors"),
    ("invalid json", ValueError, "adapter_config.json:2:8: not valid JSON"),
    ("no peft_type", ValueError, 'adapter_config.json: no "peft_type" field'),
    ("unknown peft_type", ValueError, "adapter_config.json: unknown peft_type 'LORAX'"),
    ("json list", ValueError, "adapter_config.json: expected a JSON object"),
    ("no config", FileNotFoundError, "is not a PEFT adapter folder: adapter_config.json is missing"),
    ("missing folder", FileNotFoundError, "does not exist"),
    ("a file", FileNotFoundError, "is a file, not a folder"),
]


@pytest.mark.parametrize(("case", "exc", "message"), ADAPTER_CASES, ids=[c[0] for c in ADAPTER_CASES])
def test_bad_adapter_folders_are_one_line_errors(
    case: str, exc: type, message: str, lora_dir: Path, llama_dir: Path, monkeypatch
) -> None:
    import transformers

    bad = _break(lora_dir, case)

    def no_load(*args, **kwargs):  # the adapter is checked before any weights load
        raise AssertionError("model loaded before the adapter folder was checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    with pytest.raises(exc) as err:
        load_model(str(llama_dir), adapter=str(bad), device="cpu")
    text = str(err.value)
    assert message in text and "\n" not in text
    assert str(bad) in text or str(bad / "adapter_config.json") in text


def test_adapter_of_another_model_is_one_line(llama_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    other = tiny_tokenizer()
    big = tiny_llama(len(other))
    big.config.hidden_size = 48  # a base of another width: shapes differ
    from transformers import LlamaForCausalLM

    get_peft_model(LlamaForCausalLM(big.config), LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(
        tmp_path / "ad"
    )
    with pytest.raises(ValueError, match=r"cannot apply adapter .* to ") as err:
        load_model(str(llama_dir), adapter=str(tmp_path / "ad"), device="cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case", ["no weights", "invalid json", "no peft_type"])
def test_bad_adapter_via_cli_is_one_line(
    case: str, lora_dir: Path, llama_dir: Path, sample_release: Path, tmp_path: Path, capsys
) -> None:
    from mmla.cli.main import main

    bad = _break(lora_dir, case)
    argv = ["eval", "--model", str(llama_dir), "--adapter", str(bad), "--tasks", "mintrec", "--data",
            str(sample_release), "--text-only", "--limit", "2", "--output", str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error" in line.lower()]  # (datasets' progress bars aside)
    assert len(errors) == 1 and errors[0].startswith("mmla eval: error: "), err
    err = errors[0]
    assert str(bad) in err and "Repo id" not in err  # names the folder or file; PEFT never tries the Hub
