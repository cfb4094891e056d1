"""Reference numbers of the MMLA paper (Zhang et al., 2025), test split, ACC in percent.

Data only; ``report.py`` compares a run with them when its model is one of the paper's.
"""

from __future__ import annotations

# Paper model name -> Hub ids (lower-case, without org) that are that model.
PAPER_MODELS: dict[str, tuple[str, ...]] = {
    "GPT-4o": ("gpt-4o",),
    "Qwen2-0.5B": ("qwen2-0.5b-instruct",),
    "Qwen2-1.5B": ("qwen2-1.5b-instruct",),
    "Qwen2-7B": ("qwen2-7b-instruct",),
    "Llama3-8B": ("meta-llama-3-8b-instruct", "llama-3-8b-instruct"),
    "InternLM2.5-7B": ("internlm2_5-7b-chat",),
    "Qwen2-VL-7B": ("qwen2-vl-7b-instruct",),
    "Qwen2-VL-72B": ("qwen2-vl-72b-instruct",),
    "LLaVA-Video-7B": ("llava-video-7b-qwen2", "llava-video-7b-qwen2-hf"),
    "LLaVA-Video-72B": ("llava-video-72b-qwen2", "llava-video-72b-qwen2-hf"),
    "LLaVA-OV-7B": ("llava-onevision-qwen2-7b-ov", "llava-onevision-qwen2-7b-ov-hf"),
    "LLaVA-OV-72B": ("llava-onevision-qwen2-72b-ov", "llava-onevision-qwen2-72b-ov-hf"),
    "MiniCPM-V-2.6-8B": ("minicpm-v-2_6",),
    "VideoLLaMA2-7B": ("videollama2-7b",),
}

# Overall ACC (all test samples of all tasks pooled), by method.
OVERALL: dict[str, dict[str, float]] = {
    "zero-shot": {
        "GPT-4o": 52.60, "Qwen2-VL-72B": 52.55, "LLaVA-OV-72B": 52.44, "LLaVA-Video-72B": 51.64,
        "InternLM2.5-7B": 50.28, "Qwen2-7B": 48.45, "Qwen2-VL-7B": 47.12, "Llama3-8B": 44.06,
        "LLaVA-Video-7B": 43.32, "VideoLLaMA2-7B": 42.82, "LLaVA-OV-7B": 40.65, "Qwen2-1.5B": 40.61,
        "MiniCPM-V-2.6-8B": 37.03, "Qwen2-0.5B": 22.14,
    },
    "sft": {
        "Qwen2-VL-72B": 69.18, "MiniCPM-V-2.6-8B": 68.88, "LLaVA-OV-72B": 68.67, "LLaVA-Video-72B": 68.44,
        "VideoLLaMA2-7B": 68.30, "Qwen2-VL-7B": 67.60, "LLaVA-OV-7B": 67.54, "LLaVA-Video-7B": 67.47,
        "Llama3-8B": 66.18, "Qwen2-7B": 66.15, "InternLM2.5-7B": 65.72, "Qwen2-1.5B": 64.00, "Qwen2-0.5B": 62.80,
    },
    "it": {
        "LLaVA-Video-72B": 68.87, "Qwen2-VL-72B": 68.64, "Qwen2-VL-7B": 67.34, "MiniCPM-V-2.6-8B": 67.25,
        "Qwen2-7B": 64.58, "InternLM2.5-7B": 64.41, "Llama3-8B": 64.16,
    },
}  # fmt: skip

# Per task ACC where the paper's text gives it: method -> model -> task -> ACC.
PER_TASK: dict[str, dict[str, dict[str, float]]] = {
    "zero-shot": {
        "Qwen2-0.5B": {"mintrec": 18.88},
        "Qwen2-1.5B": {"mintrec": 33.26},
        "Qwen2-7B": {"mintrec": 56.18},
    },
    "sft": {
        "Qwen2-0.5B": {"mintrec": 70.11, "mosi": 82.94, "mustard": 60.87, "iemocap": 46.61},
        "Qwen2-7B": {"mosi": 87.32, "mustard": 63.04, "iemocap": 52.10},
    },
    "it": {"Qwen2-VL-72B": {"mintrec": 86.29}},
}


def paper_model(model_id: str | None) -> str | None:
    """The paper's name of ``model_id`` (a Hub id or path), or None when the paper did not evaluate it."""
    if not model_id:
        return None
    tail = str(model_id).rstrip("/").split("/")[-1].lower()
    for name, ids in PAPER_MODELS.items():
        if tail in ids:
            return name
    return None
