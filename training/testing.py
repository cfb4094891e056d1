"""Tiny random models with real tokenizers/processors, built offline, for tests and ``--tiny`` benchmarks.

The tokenizer is a byte-level BPE trained on the MMLA prompts themselves, with a ChatML chat template,
so prompts tokenize to realistic structures (system/user/assistant turns, end-of-turn token) without
any download.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>",
            "<|image_pad|>"]  # fmt: skip

# ChatML; string or typed content (Qwen2-VL style video placeholders).
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


def _corpus() -> list[str]:
    from mmla.eval.prompts import build_prompt, build_target
    from mmla.loaders.tasks import TASKS

    texts = ["You are a helpful assistant.", "system user assistant", "okay so here is my moment"]
    for task in TASKS.values():
        texts.append(build_prompt(task, "i am so happy today, what a wonderful surprise"))
        texts.extend(build_target(task, label) for label in task.labels)
    return texts * 2


def tiny_tokenizer(vocab_size: int = 1200, chat_template: str | None = CHAT_TEMPLATE) -> Any:
    """A fast BPE tokenizer trained on the MMLA prompt vocabulary (deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(_corpus(), trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="right"
    )
    tok.chat_template = chat_template
    return tok


def tiny_causal_lm(out_dir: str | Path, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0) -> Path:
    """Save a 2-layer random Llama + the tiny tokenizer to ``out_dir`` (loadable by ``load_model``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tok = tiny_tokenizer(chat_template=chat_template)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, bos_token_id=None, tie_word_embeddings=True,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_qwen2_vl(out_dir: str | Path, *, seed: int = 0, max_pixels: int = 56 * 56) -> Path:
    """Save a random Qwen2-VL (2 text + 1 vision layers) with a full processor (needs torchvision)."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    tok = tiny_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    text_cfg = {
        "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"], "bos_token_id": None,
        "tie_word_embeddings": True,
    }  # fmt: skip
    vision_cfg = {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3}  # fmt: skip
    cfg = Qwen2VLConfig(
        text_config=text_cfg, vision_config=vision_cfg, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(copy.deepcopy(cfg))
    size = {"shortest_edge": 28 * 28, "longest_edge": max_pixels}
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(size=size),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _tiny_qwen_vl_ids(tok: Any) -> tuple[dict[str, int], dict[str, Any]]:
    """Special-token ids and the 2-layer text config shared by the tiny Qwen-VL families."""
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIALS}
    text_cfg = {
        "vocab_size": len(tok), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
        "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"], "bos_token_id": None,
        "tie_word_embeddings": True,
    }  # fmt: skip
    return ids, text_cfg


def tiny_qwen2_5_vl(out_dir: str | Path, *, seed: int = 0, max_pixels: int = 56 * 56) -> Path:
    """Save a random Qwen2.5-VL (2 text + 1 vision layers) with a full processor (needs torchvision).

    Its processor returns ``second_per_grid_ts`` (``temporal_patch_size / fps``), computed from the clips'
    ``video_metadata``; its vision MLP reuses the decoder's layer names (``gate_proj``/``up_proj``/``down_proj``).
    """
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    tok = tiny_tokenizer()
    ids, text_cfg = _tiny_qwen_vl_ids(tok)
    text_cfg["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
    vision_cfg = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                  "fullatt_block_indexes": [0], "in_channels": 3}  # fmt: skip
    cfg = Qwen2_5_VLConfig(
        text_config=text_cfg, vision_config=vision_cfg, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(copy.deepcopy(cfg))
    size = {"shortest_edge": 28 * 28, "longest_edge": max_pixels}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(size=size, cap_pixels_per_frame=False),  # max_pixels per frame
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def tiny_qwen3_vl(out_dir: str | Path, *, seed: int = 0, max_pixels: int = 64 * 64) -> Path:
    """Save a random Qwen3-VL (2 text + 1 vision layers, 16-pixel patches) with a full processor.

    Its processor writes ``<t seconds>`` before each temporal patch of a video, from the clip's
    ``video_metadata`` (``frames_indices / fps``); ``max_pixels`` is per frame.
    """
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    out = Path(out_dir)
    tok = tiny_tokenizer()
    ids, text_cfg = _tiny_qwen_vl_ids(tok)
    text_cfg.update(
        head_dim=16,
        rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [2, 3, 3],
                         "mrope_interleaved": True},
    )  # fmt: skip
    vision_cfg = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                  "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2,
                  "num_position_embeddings": 16, "deepstack_visual_indexes": [0], "in_channels": 3}  # fmt: skip
    cfg = Qwen3VLConfig(
        text_config=text_cfg, vision_config=vision_cfg, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(copy.deepcopy(cfg))
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": 32 * 32, "longest_edge": max_pixels},
                                              patch_size=16),
        video_processor=Qwen3VLVideoProcessor(size={"shortest_edge": 2 * 32 * 32, "longest_edge": 16 * max_pixels},
                                              patch_size=16, cap_pixels_per_frame=True, max_video_tokens=4),
        tokenizer=tok,
        chat_template=CHAT_TEMPLATE,
    )  # fmt: skip
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
