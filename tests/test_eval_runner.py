"""Runner: both modes agree, resume after a kill, corrupted cache lines, OOM retry, bad videos, schema."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch

from mmla.eval.adapters import adapter_for
from mmla.eval.adapters.base import VisionLanguageAdapter
from mmla.eval.prompts import build_target
from mmla.eval.runner import evaluate_tasks, read_predictions
from mmla.loaders.tasks import get_task
from mmla.training.testing import rig_to_answer, tiny_llama, tiny_tokenizer

MINTREC, MOSI = get_task("mintrec"), get_task("mosi")


def _dataset(task, n: int, seed: int = 0) -> datasets.Dataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(task.labels), (n,), generator=g).tolist()
    words = ["hello", "sorry", "thanks", "great", "no way", "please help", "see you", "well"]
    texts = [" ".join(words[(i * 7 + k) % len(words)] for k in range(1 + i % 6)) for i in range(n)]
    feats = datasets.Features({"id": datasets.Value("string"), "text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=list(task.labels))})  # fmt: skip
    return datasets.Dataset.from_dict(
        {"id": [f"s{i}" for i in range(n)], "text": texts, "label": labels}, features=feats
    )


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def data() -> dict[str, datasets.Dataset]:
    return {"mintrec": _dataset(MINTREC, 14, 0), "mosi": _dataset(MOSI, 9, 1)}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_rank_and_generate_agree_on_a_model_rigged_to_one_label(tok, data, tmp_path: Path) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)
    trigger = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-1]
    target = tok(build_target(MINTREC, "joke"), add_special_tokens=False)["input_ids"]
    rig_to_answer(ad.model, target, trigger, tok.eos_token_id)
    res = {}
    for mode in ("generate", "rank"):
        res[mode] = evaluate_tasks(ad, ["mintrec"], data, "test", mode=mode, batch_size=4,
                                   output_dir=tmp_path / mode, show_progress=False)  # fmt: skip
    gen, rank = (_lines(tmp_path / m / "predictions" / "mintrec.jsonl") for m in ("generate", "rank"))
    assert [r["pred"] for r in gen] == [r["pred"] for r in rank] == ["joke"] * 14
    assert gen[0]["raw"].strip() == "intent: joke"
    assert set(rank[0]["scores"]) == set(MINTREC.labels) and max(rank[0]["scores"], key=rank[0]["scores"].get) == "joke"
    assert res["generate"]["tasks"]["mintrec"]["metrics"] == res["rank"]["tasks"]["mintrec"]["metrics"]
    golds = [MINTREC.labels[i] for i in data["mintrec"]["label"]]
    assert res["rank"]["tasks"]["mintrec"]["metrics"]["acc"] == round(100 * golds.count("joke") / 14, 2)


def test_results_schema_and_pooling(tok, data, tmp_path: Path) -> None:
    ad = adapter_for(tiny_llama(len(tok), seed=3), tok)
    res = evaluate_tasks(ad, ["mintrec", "mosi"], data, "validation", mode="rank", batch_size=5,
                         output_dir=tmp_path, show_progress=False, model_name="tiny/llama")  # fmt: skip
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["overall"] == res["overall"]
    for key in ("mmla_version", "model", "adapter", "base_model", "method", "mode", "split", "data", "text_only",
                "prompt_style", "created", "tasks", "dimensions", "overall"):  # fmt: skip
        assert key in on_disk
    assert on_disk["model"] == "tiny/llama" and on_disk["mode"] == "rank" and on_disk["text_only"] is True
    t = on_disk["tasks"]["mintrec"]
    assert {"dataset", "dimension", "n", "num_unknown", "num_multi", "metrics", "ci95"} <= set(t)
    assert set(t["metrics"]) == {"acc", "wf1", "wp", "f1", "r", "p"}
    correct = sum(
        r["pred"] == r["gold"] for k in ("mintrec", "mosi") for r in _lines(tmp_path / "predictions" / f"{k}.jsonl")
    )
    assert on_disk["overall"] == {"acc": round(100 * correct / 23, 2), "n": 23}
    assert set(on_disk["dimensions"]) == {"intent", "sentiment"}
    ids = [r["id"] for r in _lines(tmp_path / "predictions" / "mintrec.jsonl")]
    assert ids == list(data["mintrec"]["id"])  # final file in split order despite length-sorted batches


class _Kill(Exception):
    pass


@pytest.mark.parametrize("mode", ["generate", "rank"])
def test_killed_run_resumes_to_the_same_predictions(tok, data, tmp_path: Path, mode: str) -> None:
    ad = adapter_for(tiny_llama(len(tok), seed=4), tok)
    kw = {"mode": mode, "batch_size": 3, "show_progress": False, "max_new_tokens": 6}
    full = evaluate_tasks(ad, ["mintrec"], data, "test", output_dir=tmp_path / "full", **kw)

    def kill_after_two(task: str, n: int) -> None:
        if n == 2:
            raise _Kill

    with pytest.raises(_Kill):
        evaluate_tasks(
            ad, ["mintrec"], data, "test", output_dir=tmp_path / "resumed", on_batch_end=kill_after_two, **kw
        )
    assert len(_lines(tmp_path / "resumed" / "predictions" / "mintrec.jsonl")) == 6
    resumed = evaluate_tasks(ad, ["mintrec"], data, "test", output_dir=tmp_path / "resumed", **kw)
    assert resumed["timing"]["samples_computed"] == 14 - 6
    strip = lambda rows: [{k: v for k, v in r.items()} for r in rows]  # noqa: E731
    assert strip(_lines(tmp_path / "resumed" / "predictions" / "mintrec.jsonl")) == strip(
        _lines(tmp_path / "full" / "predictions" / "mintrec.jsonl")
    )
    assert resumed["tasks"] == full["tasks"]
    again = evaluate_tasks(ad, ["mintrec"], data, "test", output_dir=tmp_path / "resumed", **kw)
    assert again["timing"]["samples_computed"] == 0  # a finished task is not recomputed
    changed = evaluate_tasks(
        ad, ["mintrec"], data, "test", output_dir=tmp_path / "resumed", **{**kw, "prompt_style": "paper"}
    )
    assert changed["timing"]["samples_computed"] == 14  # other prompt -> other hash -> recomputed


def test_corrupted_cache_lines_are_reported_dropped_and_recomputed(tok, data, tmp_path: Path, caplog) -> None:
    ad = adapter_for(tiny_llama(len(tok), seed=5), tok)
    kw = {"mode": "rank", "batch_size": 4, "show_progress": False, "output_dir": tmp_path}
    first = evaluate_tasks(ad, ["mosi"], data, "test", **kw)
    path = tmp_path / "predictions" / "mosi.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = "this is not json"
    path.write_text("\n".join(lines) + "\n" + lines[5][:25])  # plus a truncated last line (killed mid-write)
    with caplog.at_level("WARNING"):
        rows = read_predictions(path)
    assert len(rows) == 8 and "mosi.jsonl:4" in caplog.text and "mosi.jsonl:10" in caplog.text
    assert path.read_text().endswith("\n") and len(path.read_text().splitlines()) == 8  # repaired in place
    second = evaluate_tasks(ad, ["mosi"], data, "test", **kw)
    assert second["timing"]["samples_computed"] == 1 and second["tasks"] == first["tasks"]


@pytest.mark.parametrize(
    "message",
    ["CUDA out of memory. Tried to allocate 2 GiB", "DefaultCPUAllocator: can't allocate memory: out of memory"],
)
def test_out_of_memory_halves_the_batch(tok, data, tmp_path: Path, monkeypatch, message: str) -> None:
    import mmla.eval.scoring as scoring

    ad = adapter_for(tiny_llama(len(tok), seed=6), tok)
    real = scoring.rank_scores
    sizes: list[int] = []

    def flaky(adapter, inputs, cands):
        sizes.append(inputs["input_ids"].shape[0])
        if inputs["input_ids"].shape[0] > 2:
            raise (torch.cuda.OutOfMemoryError(message) if "CUDA" in message else RuntimeError(message))
        return real(adapter, inputs, cands)

    monkeypatch.setattr(scoring, "rank_scores", flaky)
    res = evaluate_tasks(
        ad, ["mintrec"], data, "test", mode="rank", batch_size=8, output_dir=tmp_path, show_progress=False
    )
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) == 2
    assert res["tasks"]["mintrec"]["n"] == 14
    monkeypatch.setattr(scoring, "rank_scores", lambda *a: (_ for _ in ()).throw(RuntimeError("shape mismatch")))
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors are not swallowed
        evaluate_tasks(ad, ["mosi"], data, "test", mode="rank", batch_size=8, output_dir=tmp_path, show_progress=False)


class _StubVL(VisionLanguageAdapter):
    """A multimodal adapter over a text model: records the frames it is given."""

    seen: list

    def build_inputs(self, messages_list, videos=None, *, add_generation_prompt=True, padding_side="left"):
        self.seen.append(videos)
        texts = [self.prompt_text(m, add_generation_prompt=add_generation_prompt) for m in messages_list]
        return self.tokenizer(
            texts, padding=True, padding_side=padding_side, return_tensors="pt", add_special_tokens=False
        )


def test_video_frames_are_sampled_and_bad_videos_named_or_skipped(tok, sample_release, tmp_path: Path) -> None:
    from mmla.loaders import load_task

    ds = load_task("mustard", data=sample_release, split="test")
    bad = (
        ds.cast_column("video", datasets.Video(decode=False))
        .map(
            lambda r, i: {"video": {"path": str(tmp_path / "missing.mp4"), "bytes": None} if i == 1 else r["video"]},
            with_indices=True,
        )
        .cast_column("video", datasets.Video())
    )
    ad = _StubVL(model=tiny_llama(len(tok)), processor=tok, model_id="stub")
    ad.seen = []
    res = evaluate_tasks(ad, ["mustard"], {"mustard": ds}, "test", mode="rank", batch_size=2, num_frames=4,
                         output_dir=tmp_path / "ok", show_progress=False)  # fmt: skip
    clips = [c for batch in ad.seen for clips in batch for c in clips]
    frames = [c.frames for c in clips]  # FrameSample: the frames and when they were taken (processors need the fps)
    assert len(clips) == len(ds) and all(f.dtype == torch.uint8 and f.ndim == 4 and f.shape[0] == 4 for f in frames)
    assert all(len(c.timestamps) == 4 and c.sampled_fps > 0 and c.duration > 0 for c in clips)
    assert res["text_only"] is False and res["settings"]["num_frames"] == 4
    with pytest.raises(RuntimeError, match=r"mustard.*sample .*cannot decode.*--skip-bad"):
        evaluate_tasks(ad, ["mustard"], {"mustard": bad}, "test", mode="rank", batch_size=2, num_frames=4,
                       output_dir=tmp_path / "bad", show_progress=False)  # fmt: skip
    res = evaluate_tasks(ad, ["mustard"], {"mustard": bad}, "test", mode="rank", batch_size=2, num_frames=4,
                         output_dir=tmp_path / "bad", show_progress=False, skip_bad=True)  # fmt: skip
    assert res["tasks"]["mustard"]["skipped"] == [bad["id"][1]] and res["tasks"]["mustard"]["n"] == len(ds) - 1


def test_text_model_cannot_be_shown_videos(tok, data, tmp_path: Path) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)
    with pytest.raises(ValueError, match="--text-only"):
        evaluate_tasks(ad, ["mosi"], data, "test", text_only=False, output_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown mode"):
        evaluate_tasks(ad, ["mosi"], data, "test", mode="sample", output_dir=tmp_path)


# ------------------------------------------------------------------- data and output checks, protocol record
def test_duplicate_ids_are_an_error_naming_them(tok, data, tmp_path: Path) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)
    ds = data["mosi"]
    dup = datasets.concatenate_datasets([ds, ds.select([1, 4])])  # rows 9, 10 repeat the ids of rows 1, 4
    with pytest.raises(ValueError, match=r"task mosi: duplicate ids .*'s1' \(rows 1, 9\); 's4' \(rows 4, 10\)"):
        evaluate_tasks(ad, ["mosi"], {"mosi": dup}, "test", output_dir=tmp_path / "o", show_progress=False)
    assert not (tmp_path / "o" / "predictions").exists()  # refused before anything was scored


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, r"limit must be >= 1 \(got 0\)"),
        ({"batch_size": 0}, r"batch size must be >= 1 \(got 0\)"),
        ({"max_new_tokens": 0}, r"max_new_tokens must be >= 1"),
        ({"prompt_style": "mmla_text"}, "unknown prompt style 'mmla_text'"),
        ({"parse_mode": "strict"}, "unknown parse mode 'strict'"),
        ({"label_set": "two"}, "unknown label set 'two'"),
        ({"tasks": ","}, "no task selected"),
    ],
)
def test_bad_settings_are_refused(tok, data, tmp_path: Path, kwargs: dict, message: str) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)
    tasks = kwargs.pop("tasks", ["mosi"])
    with pytest.raises(ValueError, match=message):
        evaluate_tasks(ad, tasks, data, "test", output_dir=tmp_path / "o", show_progress=False, **kwargs)


def test_empty_split_is_an_error(tok, data, tmp_path: Path) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)
    empty = data["mosi"].select([])
    with pytest.raises(ValueError, match="task mosi: the test split of the given data has no rows"):
        evaluate_tasks(ad, ["mosi"], {"mosi": empty}, "test", output_dir=tmp_path, show_progress=False)


@pytest.mark.parametrize("mode", ["generate", "rank"])
def test_prompt_longer_than_the_context_names_the_row(tok, data, tmp_path: Path, mode: str) -> None:
    ad = adapter_for(tiny_llama(len(tok)), tok)  # max_position_embeddings 1024
    ds = data["mosi"]
    long = ds.map(lambda r, i: {"text": "hello there " * 600 if i == 2 else r["text"]}, with_indices=True)
    with pytest.raises(ValueError, match=r"task mosi: the prompt of row 's2' \(\d+ tokens\).*context of 1024 tokens"):
        evaluate_tasks(ad, ["mosi"], {"mosi": long}, "test", mode=mode, output_dir=tmp_path, show_progress=False)
    assert not (tmp_path / "predictions").exists()
    fits = ds.map(lambda r, i: {"text": "hello there " * 100 if i == 2 else r["text"]}, with_indices=True)
    res = evaluate_tasks(ad, ["mosi"], {"mosi": fits}, "test", mode=mode, output_dir=tmp_path, show_progress=False,
                         max_new_tokens=4)  # fmt: skip
    assert res["tasks"]["mosi"]["n"] == len(ds)


def test_output_folder_is_claimed(tok, data, tmp_path: Path) -> None:
    from mmla.loaders.files import OutputDirError, output_kind

    ad = adapter_for(tiny_llama(len(tok)), tok)
    kw = {"mode": "rank", "show_progress": False}
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(OutputDirError, match="not empty and was not written by mmla"):
        evaluate_tasks(ad, ["mosi"], data, "test", output_dir=user, **kw)
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        evaluate_tasks(ad, ["mosi"], data, "test", output_dir=tmp_path / "file", **kw)
    out = tmp_path / "run"
    evaluate_tasks(ad, ["mosi"], data, "test", output_dir=out, **kw)
    assert output_kind(out) == "mmla eval"
    again = evaluate_tasks(ad, ["mosi"], data, "test", output_dir=out, **kw)  # ours: resumed
    assert again["timing"]["samples_computed"] == 0
    # A folder an earlier version wrote (no marker) is recognised by its contents and resumed.
    (out / ".mmla-output.json").unlink()
    legacy = evaluate_tasks(ad, ["mosi"], data, "test", output_dir=out, **kw)
    assert legacy["timing"]["samples_computed"] == 0 and output_kind(out) == "mmla eval"


def test_protocol_is_recorded_and_parse_mode_rescores_cached_answers(tok, data, tmp_path: Path) -> None:
    ad = adapter_for(tiny_llama(len(tok), seed=7), tok)
    trigger = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"][-1]
    rig_to_answer(ad.model, tok("intent: apologize", add_special_tokens=False)["input_ids"], trigger, tok.eos_token_id)
    kw = {"batch_size": 4, "show_progress": False, "max_new_tokens": 8, "output_dir": tmp_path}
    first = evaluate_tasks(ad, ["mintrec"], data, "test", **kw)
    assert (first["prompt_style"], first["label_set"], first["parse_mode"], first["upstream_metrics"]) == (
        "upstream", "full", "aliases", False)  # fmt: skip
    assert {r["pred"] for r in _lines(tmp_path / "predictions" / "mintrec.jsonl")} == {"apologise"}
    second = evaluate_tasks(ad, ["mintrec"], data, "test", parse_mode="upstream", upstream_metrics=True, **kw)
    assert second["timing"]["samples_computed"] == 0  # the raw answers are reused, only re-parsed
    assert second["parse_mode"] == "upstream" and second["upstream_metrics"] is True
    assert {r["pred"] for r in _lines(tmp_path / "predictions" / "mintrec.jsonl")} == {"unknown"}
    assert second["tasks"]["mintrec"]["num_unknown"] == 14 and second["tasks"]["mintrec"]["metrics"]["acc"] == 0.0
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["parse_mode"] == "upstream" and on_disk["settings"]["prompt_style"] == "upstream"


def test_upstream_labels_change_the_prompt_and_are_recorded(tok, tmp_path: Path) -> None:
    chsims = get_task("chsims2")
    ad = adapter_for(tiny_llama(len(tok)), tok)
    ds = {"chsims2": _dataset(chsims, 6)}
    kw = {"mode": "rank", "show_progress": False}
    full = evaluate_tasks(ad, ["chsims2"], ds, "test", output_dir=tmp_path / "full", **kw)
    up = evaluate_tasks(ad, ["chsims2"], ds, "test", output_dir=tmp_path / "up", label_set="upstream", **kw)
    assert (full["label_set"], up["label_set"]) == ("full", "upstream")
    hashes = [{r["hash"] for r in _lines(tmp_path / d / "predictions" / "chsims2.jsonl")} for d in ("full", "up")]
    assert not hashes[0] & hashes[1]  # other prompt, other cache key
    assert set(_lines(tmp_path / "up" / "predictions" / "chsims2.jsonl")[0]["scores"]) == set(chsims.labels)


def test_upstream_mode_reproduces_upstream_eval_py_through_the_runner(tok, data, tmp_path: Path, monkeypatch) -> None:
    """--parse-mode upstream --upstream-metrics on scripted raw answers == the port of upstream eval.py."""
    from test_eval_parsing import _raw_answers, _upstream_eval_py

    import mmla.eval.scoring as scoring

    ds = data["mintrec"]
    raws = _raw_answers(MINTREC, len(ds))
    answer_of = {f"says: {t}.": raws[i] for i, t in enumerate(ds["text"])}  # texts are distinct
    assert len(answer_of) == len(ds)
    ad = adapter_for(tiny_llama(len(tok)), tok)

    def scripted(adapter, inputs, *, max_new_tokens):
        texts = adapter.tokenizer.batch_decode(inputs["input_ids"], skip_special_tokens=True)
        return [next(a for k, a in answer_of.items() if k in t) for t in texts]

    monkeypatch.setattr(scoring, "generate_answers", scripted)
    res = evaluate_tasks(ad, ["mintrec"], data, "test", parse_mode="upstream", upstream_metrics=True,
                         output_dir=tmp_path / "o", show_progress=False, n_bootstrap=0)  # fmt: skip
    golds = [build_target(MINTREC, MINTREC.labels[i]) for i in ds["label"]]
    ref_pred, ref_metrics = _upstream_eval_py(tmp_path, MINTREC.labels, golds, raws)
    rows = _lines(tmp_path / "o" / "predictions" / "mintrec.jsonl")
    assert [r["raw"] for r in rows] == raws and [r["pred"] for r in rows] == ref_pred
    assert res["tasks"]["mintrec"]["metrics"] == ref_metrics


@pytest.mark.parametrize("mode", ["generate", "rank"])
def test_packed_prefill_gives_the_padded_runs_predictions_and_is_recorded(tok, data, tmp_path: Path, mode: str) -> None:
    """--packed-prefill on (CPU: the SDPA stand-in of the varlen kernel) against off, through the runner."""
    from mmla.eval.arguments import EvalArguments

    ad = adapter_for(tiny_llama(len(tok), seed=7), tok)
    res = {}
    for setting in ("on", "off"):
        kwargs = EvalArguments(tasks="mintrec,mosi", mode=mode, batch_size=5, packed_prefill=setting,
                               output_dir=str(tmp_path / setting)).runner_kwargs()  # fmt: skip
        kwargs.update(data=data, split="test", show_progress=False)
        res[setting] = evaluate_tasks(ad, **kwargs)
    for key in ("mintrec", "mosi"):
        on, off = (_lines(tmp_path / s / "predictions" / f"{key}.jsonl") for s in ("on", "off"))
        assert [r["raw"] for r in on] == [r["raw"] for r in off] and [r["pred"] for r in on] == [r["pred"] for r in off]
        if mode == "rank":
            for a, b in zip(on, off, strict=True):
                assert a["scores"] == pytest.approx(b["scores"], abs=2e-4)
    on_disk = json.loads((tmp_path / "on" / "results.json").read_text())
    assert on_disk["settings"]["packed_prefill"] == "on" and on_disk["timing"]["prefill"] == "packed (SDPA reference)"
    assert res["off"]["timing"]["prefill"] == "padded"
    assert res["on"]["overall"] == res["off"]["overall"]


def test_packed_prefill_option_is_checked() -> None:
    from mmla.eval.arguments import EvalArguments

    assert EvalArguments().packed_prefill == "auto" and EvalArguments().runner_kwargs()["packed_prefill"] == "auto"
    with pytest.raises(ValueError, match=r"^--packed-prefill 'yes': choose one of auto, on, off$"):
        EvalArguments(packed_prefill="yes")
