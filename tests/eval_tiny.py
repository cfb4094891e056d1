"""Tiny random models and an offline BPE tokenizer with a ChatML template, for the eval tests."""

from __future__ import annotations

import copy
import itertools
from functools import lru_cache

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mmla.eval.prompts import build_prompt, build_target
from mmla.loaders.tasks import TASKS

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'video' %}<|video|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<|im_start|>", "<|im_end|>", "<|video|>"]


@lru_cache(maxsize=1)
def _trained() -> Tokenizer:
    corpus = []
    for task in TASKS.values():
        corpus.append(build_prompt(task, "hello there, how are you today? I am sorry. Thanks!"))
        corpus.extend(build_target(task, lab) for lab in task.labels)
    corpus += ["user", "assistant", "system"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus * 3, trainer)
    return tok


def tiny_tokenizer(chat_template: str | None = CHATML) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(
        tokenizer_object=copy.deepcopy(_trained()), eos_token="<|im_end|>", pad_token="<pad>", bos_token=None
    )
    if chat_template:
        tok.chat_template = chat_template
    return tok


def tiny_llama(vocab: int, seed: int = 0) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      pad_token_id=0, eos_token_id=2, bos_token_id=None)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


def tiny_qwen2(vocab: int, seed: int = 0) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      pad_token_id=0, eos_token_id=2)  # fmt: skip
    return Qwen2ForCausalLM(cfg).eval()


def rig_to_answer(model: torch.nn.Module, token_ids: list[int], trigger: int, eos: int) -> torch.nn.Module:
    """Make ``model`` always continue ``trigger`` with ``token_ids`` then ``eos`` (a bigram bonus on the logits).

    The bonus depends only on the current input token, so cached and uncached forwards agree.
    """
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
