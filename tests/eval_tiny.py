"""Temporary: the helpers live in mmla.training.testing."""

from mmla.training.testing import CHATML, SPECIALS, rig_to_answer, tiny_llama, tiny_qwen2, tiny_tokenizer  # noqa: F401
