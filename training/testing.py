"""Tiny random models with real tokenizers/processors, built offline: the one test helper of the project.

Used by the tests (eval, training, hub_cards) and the ``--tiny`` benchmarks. The tokenizer is a byte-level
BPE trained on the MMLA prompts themselves, so prompts tokenize to realistic structures (turns, end-of-turn
token) without any download. Two chat templates: :data:`CHATML` (a plain text LLM; a video is one
``<|video|>`` token, the default) and :data:`CHAT_TEMPLATE` (Qwen-VL style: a default system turn and
``<|vision_start|><|video_pad|><|vision_end|>`` per clip, what the Qwen-VL processors expand).
"""

from __future__ import annotations

import copy
import itertools
from functools import lru_cache
from pathlib import Path
from typing import Any

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>",
            "<|image_pad|>", "<|video|>"]  # fmt: skip
"""Special tokens, ids 0.. in this order: pad 0, ``<|im_start|>`` 1, eos ``<|im_end|>`` 2."""

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'video' %}<|video|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML with Qwen-VL video/image placeholders and its default system turn."""

TINY_TEXT = {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
"""The decoder shape every tiny model shares (widths differ)."""
MROPE = {"rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}
"""Qwen2-VL / Qwen2.5-VL multimodal rotary sections for the 16-dim heads of the tiny text model."""


def _corpus() -> list[str]:
    from mmla.eval.prompts import build_prompt, build_target
    from mmla.loaders.tasks import TASKS

    texts = ["You are a helpful assistant.", "system user assistant", "okay so here is my moment"]
    for task in TASKS.values():
        texts.append(build_prompt(task, "hello there, how are you today? I am sorry. Thanks!"))
        texts.append(build_prompt(task, "i am so happy today, what a wonderful surprise"))
        texts.extend(build_target(task, label) for label in task.labels)
    return texts * 2


@lru_cache(maxsize=2)
def _trained_bpe(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_corpus(), trainer)
    return bpe


def tiny_tokenizer(chat_template: str | None = CHATML, vocab_size: int = 1200) -> Any:
    """A fast BPE tokenizer trained on the MMLA prompt vocabulary (deterministic; trained once per size)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=copy.deepcopy(_trained_bpe(vocab_size)), eos_token="<|im_end|>", pad_token="<|endoftext|>",
        bos_token=None, padding_side="right",
    )  # fmt: skip
    if chat_template:
        tok.chat_template = chat_template
    return tok


def tiny_llama(vocab: int, seed: int = 0, **sizes: Any) -> Any:
    """A random 2-layer Llama (width 32 unless ``sizes`` say otherwise) in eval mode; pad id 0, eos id 2."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(**{"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, **TINY_TEXT,
                         "max_position_embeddings": 1024, "pad_token_id": 0, "eos_token_id": 2, "bos_token_id": None,
                         **sizes})  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


def tiny_qwen2(vocab: int, seed: int = 0) -> Any:
    """A random 2-layer Qwen2 (width 32) in eval mode; pad id 0, eos id 2."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, **TINY_TEXT,
                      max_position_embeddings=1024, pad_token_id=0, eos_token_id=2)  # fmt: skip
    return Qwen2ForCausalLM(cfg).eval()


def tiny_causal_lm(out_dir: str | Path, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0) -> Path:
    """Save a 2-layer random Llama (width 64) + the tiny tokenizer to ``out_dir`` (loadable by ``load_model``)."""
    out = Path(out_dir)
    tok = tiny_tokenizer(chat_template)
    model = tiny_llama(len(tok), seed, hidden_size=64, intermediate_size=128, max_position_embeddings=2048,
                       tie_word_embeddings=True)  # fmt: skip
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def rig_to_answer(model: Any, token_ids: list[int], trigger: int, eos: int) -> Any:
    """Make ``model`` always continue ``trigger`` with ``token_ids`` then ``eos`` (a bigram bonus on the logits).

    The bonus depends only on the current input token, so cached and uncached forwards agree.
    """
    import torch

    nxt = torch.full((model.config.vocab_size,), -1, dtype=torch.long)
    chain = [trigger, *token_ids, eos]
    for a, b in itertools.pairwise(chain):
        nxt[a] = b
    orig = model.forward

    def forward(*args, **kwargs):
        out = orig(*args, **kwargs)
        ids = kwargs["input_ids"]
        k = out.logits.shape[1]
        target = nxt[ids[:, -k:].cpu()].to(out.logits.device)
        bonus = torch.zeros_like(out.logits)
        hit = target >= 0
        bonus[hit] = bonus[hit].scatter(-1, target[hit][:, None], 50.0)
        out.logits = out.logits + bonus
        return out

    model.forward = forward
    return model


def _qwen_vl(config_cls: Any, model_cls: Any, vision_cfg: dict[str, Any], text: dict[str, Any], *, seed: int,
             **top: Any) -> tuple[Any, Any]:  # fmt: skip
    """The tiny tokenizer (Qwen-VL template) and a random Qwen-VL family model: 2 text layers (width 64);
    ``text`` and ``top`` add to the text config and the model config."""
    import torch

    tok = tiny_tokenizer(CHAT_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    text_cfg = {
        "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, **TINY_TEXT,
        "max_position_embeddings": 4096, "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
        "bos_token_id": None, "tie_word_embeddings": True, **text,
    }  # fmt: skip
    cfg = config_cls(
        text_config=text_cfg, vision_config=vision_cfg, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], **top,
    )  # fmt: skip
    torch.manual_seed(seed)
    return tok, model_cls(copy.deepcopy(cfg))


def _save(out_dir: str | Path, model: Any, processor: Any) -> Path:
    out = Path(out_dir)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def tiny_qwen2_vl(out_dir: str | Path, *, seed: int = 0, max_pixels: int = 56 * 56) -> Path:
    """Save a random Qwen2-VL (2 text + 1 vision layers) with a full processor (needs torchvision)."""
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    vision_cfg = {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3}  # fmt: skip
    tok, model = _qwen_vl(Qwen2VLConfig, Qwen2VLForConditionalGeneration, vision_cfg, MROPE, seed=seed)
    size = {"shortest_edge": 28 * 28, "longest_edge": max_pixels}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(size=size),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )
    return _save(out_dir, model, processor)


def tiny_qwen2_5_vl(out_dir: str | Path, *, seed: int = 0, max_pixels: int = 56 * 56) -> Path:
    """Save a random Qwen2.5-VL (2 text + 1 vision layers) with a full processor (needs torchvision).

    Its processor returns ``second_per_grid_ts`` (``temporal_patch_size / fps``), computed from the clips'
    ``video_metadata``; its vision MLP reuses the decoder's layer names (``gate_proj``/``up_proj``/``down_proj``).
    """
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    vision_cfg = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                  "fullatt_block_indexes": [0], "in_channels": 3}  # fmt: skip
    tok, model = _qwen_vl(Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, vision_cfg, MROPE, seed=seed)
    size = {"shortest_edge": 28 * 28, "longest_edge": max_pixels}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(size=size, cap_pixels_per_frame=False),  # max_pixels per frame
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )
    return _save(out_dir, model, processor)


def tiny_qwen3_vl(out_dir: str | Path, *, seed: int = 0, max_pixels: int = 64 * 64) -> Path:
    """Save a random Qwen3-VL (2 text + 1 vision layers, 16-pixel patches) with a full processor.

    Its processor writes ``<t seconds>`` before each temporal patch of a video, from the clip's
    ``video_metadata`` (``frames_indices / fps``); ``max_pixels`` is per frame.
    """
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    vision_cfg = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                  "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                  "num_position_embeddings": 16, "deepstack_visual_indexes": [0], "in_channels": 3}  # fmt: skip
    rope = {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    text = {"head_dim": 16, "rope_parameters": rope}
    tok, model = _qwen_vl(Qwen3VLConfig, Qwen3VLForConditionalGeneration, vision_cfg, text, seed=seed,
                          tie_word_embeddings=True)  # fmt: skip
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": 32 * 32, "longest_edge": max_pixels},
                                              patch_size=16),
        video_processor=Qwen3VLVideoProcessor(size={"shortest_edge": 2 * 32 * 32, "longest_edge": 16 * max_pixels},
                                              patch_size=16, cap_pixels_per_frame=True, max_video_tokens=4),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )  # fmt: skip
    return _save(out_dir, model, processor)


def write_av_clip(
    path: str | Path,
    *,
    audio: bool = True,
    sampling_rate: int = 16000,
    layout: str = "mono",
    seconds: float = 1.0,
    corrupt_audio: bool = False,
) -> Path:
    """An H.264 mp4 (64x48, 10 fps, needs PyAV) with an AAC sine track, none (``audio=False``), one at any rate
    and layout (``"stereo"``), or one whose AAC packets are random bytes (``corrupt_audio``): audio bad-input tests.
    """
    import fractions

    import av
    import numpy as np

    path = Path(path)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as out:
        vstream = out.add_stream("libx264", rate=10)
        vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        astream = out.add_stream("aac", rate=sampling_rate) if audio else None
        if astream is not None:
            astream.layout = layout
        for i in range(max(1, int(seconds * 10))):
            img = np.full((48, 64, 3), (i * 20) % 256, np.uint8)
            out.mux(vstream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vstream.encode())
        if astream is None:
            return path
        n, channels = int(seconds * sampling_rate), 2 if layout == "stereo" else 1
        t = np.arange(n, dtype=np.float32) / sampling_rate
        wave = np.tile((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (channels, 1))
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, start : start + 1024]), format="fltp",
                                               layout=layout)  # fmt: skip
            frame.sample_rate, frame.pts = sampling_rate, start
            for packet in astream.encode(frame):
                if corrupt_audio:
                    pts = packet.pts
                    packet = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                    packet.stream, packet.pts, packet.dts = astream, pts, pts
                    packet.time_base = fractions.Fraction(1, sampling_rate)
                out.mux(packet)
        if not corrupt_audio:
            out.mux(astream.encode())
    return path


OMNI_TOKENS = {"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
               "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "vision_bos_token": "<|vision_bos|>",
               "vision_eos_token": "<|vision_eos|>"}  # fmt: skip
"""The Qwen2.5-Omni / Qwen2-Audio tokenizer's named multimodal tokens (what their processors read)."""

OMNI_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif c['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML with Qwen2.5-Omni's placeholders: ``<|vision_bos|><|VIDEO|><|vision_eos|>`` per clip (the processor puts
the clip's audio inside it with ``use_audio_in_video``), ``<|audio_bos|><|AUDIO|><|audio_eos|>`` per audio."""


def omni_tokenizer_from(base: Any, *, padding_side: str = "right") -> Any:
    """``base`` (a fast tokenizer) with Qwen2.5-Omni's multimodal tokens as named special tokens and its template."""
    from transformers import PreTrainedTokenizerFast

    base.add_special_tokens({"additional_special_tokens": list(OMNI_TOKENS.values())})
    tok = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
        padding_side=padding_side, extra_special_tokens=OMNI_TOKENS,
    )  # fmt: skip
    tok.chat_template = OMNI_CHAT_TEMPLATE
    return tok


def _omni_tokenizer() -> tuple[Any, dict[str, int]]:
    """The tiny BPE with the Omni tokens added as named special tokens, and their ids."""
    tok = omni_tokenizer_from(tiny_tokenizer(None))
    ids = {t: tok.convert_tokens_to_ids(t) for t in [*OMNI_TOKENS.values(), "<|im_end|>", "<|endoftext|>"]}
    return tok, ids


TINY_WHISPER_AUDIO = {"num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
                      "d_model": 32}  # fmt: skip
"""A one-layer Whisper-style audio encoder (128 mel bins, as Qwen2.5-Omni's)."""


def tiny_qwen2_5_omni(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Save a random Qwen2.5-Omni thinker (2 text + 1 vision + 1 audio layers) with a full processor.

    ``model_type`` is ``qwen2_5_omni_thinker`` (text out, no talker). The processor is the real
    ``Qwen2_5OmniProcessor`` (Qwen2-VL video processor, 128-bin Whisper feature extractor).
    """
    import torch
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    tok, ids = _omni_tokenizer()
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}
    text_cfg = {"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, **TINY_TEXT,
                "max_position_embeddings": 4096, "eos_token_id": ids["<|im_end|>"],
                "pad_token_id": ids["<|endoftext|>"], "rope_parameters": rope}  # fmt: skip
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
              "fullatt_block_indexes": [0], "in_channels": 3}  # fmt: skip
    audio = {**TINY_WHISPER_AUDIO, "output_dim": 64, "n_window": 100}
    cfg = Qwen2_5OmniThinkerConfig(
        text_config=text_cfg, vision_config=vision, audio_config=audio, audio_token_index=ids["<|AUDIO|>"],
        image_token_index=ids["<|IMAGE|>"], video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"], audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"], tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(cfg).eval()
    size = {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}
    processor = Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(size=size, cap_pixels_per_frame=False),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tok,
        chat_template=OMNI_CHAT_TEMPLATE,
    )
    return _save(out_dir, model, processor)


def tiny_qwen2_audio(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Save a random Qwen2-Audio (2 text + 1 audio layers, 1-D RoPE) with the real ``Qwen2AudioProcessor``."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tok, ids = _omni_tokenizer()
    text_cfg = {"model_type": "qwen2", "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128,
                **TINY_TEXT, "max_position_embeddings": 4096, "eos_token_id": ids["<|im_end|>"],
                "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True}  # fmt: skip
    cfg = Qwen2AudioConfig(audio_config={**TINY_WHISPER_AUDIO, "num_mel_bins": 128}, text_config=text_cfg,
                           audio_token_index=ids["<|AUDIO|>"])  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(cfg).eval()
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok, chat_template=OMNI_CHAT_TEMPLATE
    )
    return _save(out_dir, model, processor)


def tiny_qwen3_omni(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Save a random Qwen3-Omni MoE thinker (2 MoE text layers of 4 experts, 1 vision + 1 audio layer) with the
    real ``Qwen3OmniMoeProcessor`` (Qwen3-VL video processor, 16-pixel patches)."""
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3OmniMoeProcessor,
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
        Qwen3VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    tok, ids = _omni_tokenizer()
    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    text = {"vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, **TINY_TEXT, "head_dim": 16,
            "max_position_embeddings": 4096, "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
            "rope_parameters": rope, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}  # fmt: skip
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16,
              "deepstack_visual_indexes": [0]}  # fmt: skip
    audio = {**TINY_WHISPER_AUDIO, "output_dim": 64, "n_window": 50, "downsample_hidden_size": 16}
    cfg = Qwen3OmniMoeThinkerConfig(
        text_config=text, vision_config=vision, audio_config=audio, audio_token_id=ids["<|AUDIO|>"],
        image_token_id=ids["<|IMAGE|>"], video_token_id=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
        vision_start_token_id=ids["<|vision_bos|>"], tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen3OmniMoeThinkerForConditionalGeneration(cfg).eval()
    processor = Qwen3OmniMoeProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16),
        video_processor=Qwen3VLVideoProcessor(patch_size=16, size={"shortest_edge": 2 * 32 * 32,
                                                                   "longest_edge": 16 * 64 * 64}),
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tok,
        chat_template=OMNI_CHAT_TEMPLATE,
    )  # fmt: skip
    return _save(out_dir, model, processor)
