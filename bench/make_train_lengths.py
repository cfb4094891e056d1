"""Write bench/mmla_train_lengths.json: prompt/answer token counts of the real MMLA training rows.

Tokenized with the SmolLM2 tokenizer and its chat template (the prompt of zero-shot eval), so the speed
bench trains on the real ragged length distribution without shipping any text.
    python bench/make_train_lengths.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=str(Path(__file__).with_name("mmla_train_lengths.json")))
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from mmla.eval.adapters import resolve_model
    from mmla.training.data import load_training_data

    folder, gguf = resolve_model(None)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    data = load_training_data("mintrec,iemocap,mosi,mustard", args.data, text_only=True, eval_split=None)
    rows = []
    for row in data.train:
        prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        n_full = len(tok(full, add_special_tokens=False)["input_ids"])
        rows.append([n_prompt, n_full - n_prompt])
    out = {"tokenizer": "SmolLM2-135M-Instruct", "source": "MMLA train splits: mintrec, iemocap, mosi, mustard",
           "columns": ["prompt_tokens", "answer_tokens"], "rows": rows}  # fmt: skip
    Path(args.out).write_text(json.dumps(out, separators=(",", ":")) + "\n")
    tot = [p + a for p, a in rows]
    print(f"{len(rows)} rows, mean {sum(tot) / len(tot):.1f} tokens, min {min(tot)}, max {max(tot)} -> {args.out}")


if __name__ == "__main__":
    main()
