"""Read the real upstream LLaMA-Factory files with `mmla data build` and compare them with the shared JSONL.

For each task: `mmla data build <task> --source ../shared/upstream/llamafactory --text-only --out TMP/<task>`,
then id, text and label of every validation row against `../shared/data/<task>/validation.jsonl`, row for row.
Prints `<task> equal/total` and exits 1 on any difference.

    python bench/check_upstream_files.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import tempfile
from pathlib import Path

TASKS = ("mintrec", "meld", "iemocap", "mosi", "mustard")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    args = ap.parse_args()
    import datasets

    shared = Path(args.shared)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for task in TASKS:
            out = Path(tmp) / task
            cmd = [sys.executable, "-m", "mmla.cli", "data", "build", task, "--source",
                   str(shared / "upstream" / "llamafactory"), "--text-only", "--out", str(out)]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
            files = sorted(glob.glob(str(out / "**" / "validation-*.parquet"), recursive=True))
            ds = datasets.concatenate_datasets([datasets.Dataset.from_parquet(f) for f in files])
            names = ds.features["label"].names
            lines = (shared / "data" / task / "validation.jsonl").read_text(encoding="utf-8").splitlines()
            ref = [json.loads(line) for line in lines if line.strip()]
            same = 0
            if len(ds) == len(ref):
                same = sum(
                    str(a["id"]) == str(b["id"]) and a["text"] == b["text"] and names[a["label"]] == b["label"]
                    for a, b in zip(ds, ref, strict=True)
                )
            bad += same != len(ref)
            print(f"{task} {same}/{len(ref)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
