"""Dataset cards, model cards and leaderboards, checked with huggingface_hub's and datasets' own parsers."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from datasets import get_dataset_config_names, load_dataset
from hub_testdata import build_dataset_folder, official, sample_results, variant, write_adapter, write_run
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from mmla.cli.demo import demo_outputs
from mmla.cli.main import main
from mmla.eval.results import METRICS, RunResults, load_results
from mmla.hub_cards.dataset_card import scan_built_dataset, write_dataset_card
from mmla.hub_cards.leaderboard import build_leaderboard, leaderboard_markdown, write_leaderboard
from mmla.hub_cards.model_card import merge_results, model_card
from mmla.loaders.build import PER_CORPUS_LICENSE
from mmla.loaders.files import MARKER_NAME, output_kind
from mmla.loaders.tasks import MMLA_CITATION, MMLA_HUB_REPO, TASKS, get_task


@pytest.fixture(scope="session")
def sample_run(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """What ``evaluate_tasks`` wrote for the sample release (one evaluation per session, see hub_testdata)."""
    return sample_results(sample_release, tmp_path_factory)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two configs: mintrec with clips, mosi (restricted) text-only; card written by hub_cards."""
    out = build_dataset_folder(tmp_path_factory.mktemp("built"), {"mintrec": True, "mosi": False})
    write_dataset_card(out)
    return out


# -- dataset cards ------------------------------------------------------------------------------------


def test_dataset_card_metadata_round_trip(built: Path) -> None:
    card = DatasetCard.load(built / "README.md")
    data = card.data
    # MIntRec and MOSI both have custom terms, and different ones: the body lists each
    assert data.license == "other" and data.license_name == PER_CORPUS_LICENSE
    assert data.language == ["en"]
    assert data.task_categories == ["video-classification", "text-classification"]
    assert data.size_categories == ["n<1K"]
    assert "mmla" in data.tags
    configs = {c["config_name"]: c for c in data.configs}
    assert set(configs) == {"mintrec", "mosi"}
    assert configs["mosi"]["data_files"] == [
        {"split": s, "path": f"mosi/{s}-*"} for s in ("train", "validation", "test")
    ]
    infos = {i["config_name"]: i for i in data.dataset_info}
    label = next(f for f in infos["mintrec"]["features"] if f["name"] == "label")
    assert list(label["dtype"]["class_label"]["names"].values()) == list(get_task("mintrec").labels)
    assert {s["name"]: s["num_examples"] for s in infos["mosi"]["splits"]} == {"train": 4, "validation": 2, "test": 3}
    # A second render is byte-identical to the round-tripped card (stable YAML).
    assert str(DatasetCard(str(card))) == str(card)


def test_load_dataset_reads_the_card_offline(built: Path) -> None:
    assert get_dataset_config_names(str(built)) == ["mintrec", "mosi"]
    ds = load_dataset(str(built), "mosi")
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 4, "validation": 2, "test": 3}
    assert ds["train"].features["label"].names == ["positive", "negative"]
    mintrec = load_dataset(str(built))  # default config: the first task
    assert "video" in mintrec["test"].features


def test_dataset_card_body(built: Path) -> None:
    text = (built / "README.md").read_text()
    mosi = text[text.index("## MOSI") :]
    mintrec = text[text.index("## MIntRec") : text.index("## MOSI")]
    assert "Videos are not included" in mosi and get_task("mosi").video.source_url in mosi
    assert "Videos are not included" not in mintrec
    assert "2 of 3" not in mintrec and "6 of 9 rows have their clip embedded" in mintrec
    assert MMLA_CITATION in text and get_task("mosi").citation in text and get_task("mintrec").citation in text
    assert 'load_dataset("mmla/mmla", "mosi")' in text
    # label table: every label with its per-split counts
    assert "| 1 | negative | 2 | 1 | 1 |" in mosi


def test_single_task_card_usage_and_stats(tmp_path: Path) -> None:
    folder = build_dataset_folder(tmp_path, {"iemocap": False})
    stats = scan_built_dataset(folder)
    assert stats["iemocap"].splits["test"].label_counts == {"angry": 1, "happy": 1, "sad": 1}
    text = write_dataset_card(folder).read_text()
    assert 'load_dataset("mmla/iemocap")' in text
    assert DatasetCard.load(folder / "README.md").data.task_categories == ["text-classification"]
    assert "sail.usc.edu" in text


def test_scan_rejects_unknown_layout(tmp_path: Path) -> None:
    build_dataset_folder(tmp_path, {"mosi": False})
    (tmp_path / "mosi" / "test-00000-of-00001.parquet").rename(tmp_path / "mosi" / "random.parquet")
    with pytest.raises(ValueError, match=r"random\.parquet.*split name"):
        scan_built_dataset(tmp_path)
    with pytest.raises(FileNotFoundError):
        scan_built_dataset(tmp_path / "missing")


# -- model cards ----------------------------------------------------------------------------------------


def test_model_card_model_index_round_trip(sample_run: RunResults, tmp_path: Path) -> None:
    run = variant(sample_run, tasks=["mintrec", "mosi", "meld"])
    card = model_card(write_run(tmp_path / "run", run), repo_id="me/smol-mmla")
    parsed = ModelCard(str(card))
    results = parsed.data.eval_results
    assert len(results) == 3 * 6
    name, again = model_index_to_eval_results(parsed.data.to_dict()["model-index"])
    assert name == "smol-mmla (zero-shot)" and len(again) == 18
    acc = {r.dataset_config: r.metric_value for r in results if r.metric_name == "ACC"}
    assert acc == {k: t.metrics["acc"] for k, t in run.tasks.items()}
    mosi = run.tasks["mosi"]
    wf1 = next(r for r in results if r.dataset_config == "mosi" and r.metric_name == "WF1")
    assert (wf1.metric_type, wf1.metric_args, wf1.metric_value) == ("f1", {"average": "weighted"}, mosi.metrics["wf1"])
    assert {r.dataset_type for r in results} == {"mmla/mintrec", "mmla/mosi", "mmla/meld"}  # sample data
    assert {r.dataset_split for r in results} == {"test"}
    assert all("zero-shot" in r.task_name for r in results)
    # the body shows the same numbers, and ACC pooled from the counts
    cells = " | ".join(f"{mosi.metrics[m]:.2f}" for m in METRICS)
    assert f"| `mosi` | MOSI | sentiment | {mosi.n} | {cells} |" in parsed.text
    assert f"| **overall (pooled)** | {run.overall.n} | **{run.overall.acc:.2f}** |" in parsed.text
    # a run on a verified fetch of the release: the model-index names the release, the command line fetches it
    off = ModelCard(str(model_card(official(run))))
    assert {r.dataset_type for r in off.data.eval_results} == {MMLA_HUB_REPO}
    assert f"--data {MMLA_HUB_REPO} " in off.text


def test_model_card_for_adapter_has_hyperparameters(sample_run: RunResults, tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter", sample_run)
    card = model_card(adapter, adapter_dir=adapter, repo_id="me/smol-lora")
    parsed = ModelCard(str(card))
    assert parsed.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert parsed.data.library_name == "peft"
    assert {"lora", "sft", "mmla"} <= set(parsed.data.tags)
    for needle in ("| `learning_rate` | 0.0001 |", "| `lora_alpha` | 16 |", "| `target_modules` | q_proj, v_proj |"):
        assert needle in parsed.text
    assert "/secret/x" not in parsed.text  # only the listed hyperparameters, not every field
    assert parsed.data.eval_results[0].task_name.endswith("(SFT, upstream prompt)")


def test_model_card_compares_with_paper(sample_run: RunResults, tmp_path: Path) -> None:
    qwen = {"model": "Qwen/Qwen2-0.5B-Instruct", "label_set": "upstream", "parse_mode": "upstream"}
    run = official(sample_run, correct={"mintrec": 8}, **qwen)  # 8 of 40 = 20.00
    text = str(model_card(write_run(tmp_path / "q", run)))
    assert "| `mintrec` | 18.88 | 20.00 | +1.12 |" in text and "| Qwen2-0.5B (paper) | zero-shot | 22.14 |" in text
    assert "Not comparable" not in text
    assert "18.88" not in str(model_card(run, with_paper=False))
    # the same model on the synthetic sample data: reference only, and said so
    text = str(model_card(variant(sample_run, correct={"mintrec": 8}, **qwen)))
    assert "**Not comparable:** this run used a synthetic sample release" in text and "+1.12" not in text


def test_model_card_refuses_mixed_splits_and_models(sample_run: RunResults, tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", variant(sample_run, tasks=["mintrec"]))
    b = write_run(tmp_path / "b", variant(sample_run, tasks=["mosi"], split="validation"))
    with pytest.raises(ValueError, match="different splits"):
        model_card([a, b])
    assert "† Mixed splits: test; validation." in str(model_card([a, b], allow_mixed=True))
    c = write_run(tmp_path / "c", variant(sample_run, tasks=["mosi"], model="other/model"))
    with pytest.raises(ValueError, match="several"):
        model_card([a, c])
    # one model's runs on different tasks make one card, pooled from their counts
    d = write_run(tmp_path / "d", variant(sample_run, tasks=["mosi"]))
    both = variant(sample_run, tasks=["mintrec", "mosi"])
    assert f"| **overall (pooled)** | {both.overall.n} | **{both.overall.acc:.2f}** |" in str(model_card([a, d]))


def test_merge_results_keeps_foreign_content(sample_run: RunResults, tmp_path: Path) -> None:
    existing = ModelCard(
        "---\nlicense: apache-2.0\nmodel-index:\n- name: their-model\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: MOSI, type: mmla/mosi, config: mosi, split: test}\n"
        "    metrics:\n    - {type: accuracy, value: 1.0, name: ACC}\n"
        "  - task: {type: text-classification}\n    dataset: {name: SST2, type: glue, split: test}\n"
        "    metrics:\n    - {type: accuracy, value: 93.0}\n---\n# Their model\n\nHand-written text.\n"
    )
    new = model_card(write_run(tmp_path / "r", variant(sample_run, tasks=["mosi"])))
    merged = ModelCard(str(merge_results(existing, new)))
    results = merged.data.eval_results
    acc = [r.metric_value for r in results if r.dataset_type == "mmla/mosi" and r.metric_name == "ACC"]
    assert acc == [sample_run.tasks["mosi"].metrics["acc"]]  # replaced, not duplicated
    assert any(r.dataset_type == "glue" and r.metric_value == 93.0 for r in results)
    assert merged.data.license == "apache-2.0" and merged.data.model_name == "their-model"
    assert "Hand-written text." in merged.text and merged.text.count("<!-- mmla-results:start -->") == 1
    # a second merge replaces the section instead of appending another one
    again = merge_results(merged, new)
    assert str(again).count("<!-- mmla-results:start -->") == 1


# -- leaderboard ----------------------------------------------------------------------------------------

UPSTREAM = {"label_set": "upstream", "parse_mode": "upstream"}
"""The paper's label lists and parsing (with the default upstream prompt: the paper's protocol)."""


def test_leaderboard_ranks_by_pooled_acc(sample_run: RunResults) -> None:
    lo = variant(sample_run, model="org/small", correct={"mintrec": 1})
    hi = variant(sample_run, model="org/big", correct={"mintrec": 30})
    sft = variant(sample_run, model="org/small", method="sft")
    board = build_leaderboard([lo, hi, sft], with_paper=False)
    (zero_shot,) = board.sections_of("zero-shot")
    assert [r.name for r in zero_shot.rows] == ["big (zero-shot)", "small (zero-shot)"]
    assert (zero_shot.kind, zero_shot.reason) == ("runs", None)
    assert [r.name for r in board.sections_of("fine-tuned")[0].rows] == ["small (SFT)"]
    top = zero_shot.rows[0]
    assert (top.overall_acc, top.n) == (hi.overall.acc, hi.overall.n)
    assert top.dimensions == {d: a.acc for d, a in hi.dimensions.items()}
    md = leaderboard_markdown(board)
    assert md.index("big (zero-shot)") < md.index("small (zero-shot)") and "| paper |" not in md


def test_official_runs_rank_among_the_paper_others_apart(sample_run: RunResults, tmp_path: Path) -> None:
    others = sum(t.correct for k, t in sample_run.tasks.items() if k not in ("mintrec", "mintrec2"))
    need = round(0.45 * sample_run.overall.n) - others  # 45 % overall
    run = official(sample_run, model="org/m", correct={"mintrec2": min(60, need), "mintrec": need - min(60, need)},
                   **UPSTREAM)  # fmt: skip
    assert 44.06 < run.overall.acc < 47.12  # between the paper's Llama3-8B and Qwen2-VL-7B
    paths = write_leaderboard([run, sample_run], tmp_path / "out", allow_mixed=True)
    md = paths["leaderboard_md"].read_text()
    start, apart = (
        md.index("## Zero-shot inference: ranked with the paper"),
        md.index("not comparable with the paper\n"),
    )
    names = [line.split(" | ")[1] for line in md[start:apart].splitlines() if line.startswith("| ")][1:]
    assert names.index("**m (zero-shot)**") == names.index("Llama3-8B") - 1 == names.index("Qwen2-VL-7B") + 1
    rest = md[apart:].split("\n## ")[0]
    assert "**tiny-llama (zero-shot)**" in rest and "| paper |" not in rest
    assert "Why not ranked with the paper: these runs used a synthetic sample release" in rest
    assert "## Zero-shot inference: the paper's rows" not in md  # the paper is ranked above, not repeated
    assert paths["leaderboard_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_refuses_mixed_inputs(sample_run: RunResults) -> None:
    a = variant(sample_run, model="org/a", tasks=["mintrec"])
    b = variant(sample_run, model="org/b", tasks=["mintrec"], split="validation")
    c = variant(sample_run, model="org/c", tasks=["mosi"])
    d = official(sample_run, model="org/d", tasks=["mintrec"])
    for other, what in ((b, "splits"), (c, "task sets"), (d, "data sources")):
        with pytest.raises(ValueError, match=f"different {what}"):
            build_leaderboard([a, other])
    board = build_leaderboard([a, b], allow_mixed=True, with_paper=False)
    assert [[r.name for r in s.rows] for s in board.sections] == [["a (zero-shot)"], ["b (zero-shot)"]]
    md = leaderboard_markdown(board)
    assert "Mixed splits: test; validation." in md and "runs of different sections are not compared" in md


def test_demo_outputs(sample_run: RunResults, tmp_path: Path) -> None:
    run = write_run(tmp_path / "demo", variant(sample_run, tasks=["mintrec", "mosi"]))
    paths = demo_outputs(run)
    assert set(paths) == {"model_card", "leaderboard_md", "leaderboard_png"}
    assert all(p.parent == run and p.stat().st_size > 0 for p in paths.values())
    assert ModelCard.load(paths["model_card"]).data.eval_results


# -- licenses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hub_id", "name"),
    [("mustard", "mit", None), ("meld", "gpl-3.0", None), ("mintrec2", "cc-by-nc-sa-4.0", None),
     ("mintrec", "other", "mintrec-research")],
)  # fmt: skip
def test_dataset_card_license_from_registry(tmp_path: Path, key: str, hub_id: str, name: str | None) -> None:
    folder = build_dataset_folder(tmp_path, {key: False})
    card = DatasetCard.load(write_dataset_card(folder))
    lic = get_task(key).license
    assert card.data.license == hub_id == lic.hub_id
    assert card.data.get("license_name") == name
    assert card.data.get("license_link") == (lic.url if name else None)
    body = card.text
    assert lic.terms.rstrip(".") in body and "redistributes this corpus' clips" in body  # all four ship video
    assert "for research use under the terms of the original corpus" not in body  # the old free-text sentence
    assert "redistributed by MMLA" not in str(card.data.to_dict())


def test_multi_corpus_card_lists_each_license(tmp_path: Path) -> None:
    folder = build_dataset_folder(tmp_path, {"mustard": False, "meld": False, "mosi": False})
    card = DatasetCard.load(write_dataset_card(folder))
    assert sorted(card.data.license) == ["gpl-3.0", "mit", "other"]
    mosi = get_task("mosi").license
    assert (card.data.license_name, card.data.license_link) == (mosi.name, mosi.url)  # the only custom terms
    table = card.text[card.text.index("## Licenses") :]
    assert "| MOSI | `other (cmu-mosi)` | restricted | no |" in table
    assert "| MUStARD | `mit` | open | yes |" in table
    mosi_section = card.text[card.text.index("## MOSI") : card.text.index("## Licenses")]
    assert "no, MMLA does not redistribute this corpus' video" in mosi_section
    assert "not granted by the owners' terms" in mosi_section


# -- results validation and the `mmla card` / `mmla leaderboard` commands -----------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mmla {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["tasks"].update(mintrecc=d["tasks"].pop("mintrec")),
            r"'tasks\.mintrecc'.*Did you mean 'mintrec'\?",
        ),
        (lambda d: d["tasks"]["mosi"]["metrics"].update(acc=250), r"'tasks\.mosi\.metrics\.acc' is 250; .*0 and 100"),
        (lambda d: d["tasks"]["mosi"]["metrics"].update(f1=-0.5), r"'tasks\.mosi\.metrics\.f1' is -0\.5"),
        (lambda d: d["overall"].update(acc=100.5), r"'overall\.acc' is 100\.5"),
        (lambda d: d.update(model="org/m\n# injected"), r"'model' is .*cannot be written into a card \('\\n'\)"),
        (lambda d: d.update(model="org/m | x"), r"'model' is .*\('\|'\)"),
        (lambda d: d.update(adapter="[click](http://x)"), r"'adapter' is .*'\['"),
    ],
)
def test_card_model_rejects_bad_results(sample_run: RunResults, tmp_path: Path, capsys, change, message: str) -> None:
    data = variant(sample_run, tasks=["mintrec", "mosi"]).to_json()
    change(data)
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        load_results(tmp_path)
    code, _, err = _cli(capsys, "card", "model", str(tmp_path), "--out", str(tmp_path / "card"))
    assert code == 1

    assert re.search(message, _one_line_error(err, "card"))
    assert not (tmp_path / "card").exists() and not (tmp_path / "MODEL_CARD.md").exists()


def test_card_model_rejects_bad_names(sample_run: RunResults, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", sample_run)
    with pytest.raises(ValueError, match=r"model name 'a\\nb' cannot be written"):
        model_card(run, model_name="a\nb")
    with pytest.raises(ValueError, match=r"--repo-id 'me/x y' is not a valid Hub repo id"):
        model_card(run, repo_id="me/x y")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_card_model_out_folder_is_claimed(sample_run: RunResults, tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", variant(sample_run, tasks=["mintrec"]))
    user = tmp_path / "notes"
    user.mkdir()
    (user / "mine.txt").write_text("keep")
    code, _, err = _cli(capsys, "card", "model", str(run), "--out", str(user))
    assert code == 1 and "not written by mmla" in _one_line_error(err, "card")
    assert sorted(p.name for p in user.iterdir()) == ["mine.txt"]
    code, _, err = _cli(capsys, "card", "model", str(run), "--out", str(user), "--overwrite")
    assert code == 1 and (user / "mine.txt").read_text() == "keep"  # --overwrite never replaces a user's folder
    code, _, err = _cli(capsys, "card", "model", str(run), "--out", str(tmp_path / "out.md"))
    assert code == 1 and "looks like a file name" in _one_line_error(err, "card")
    old = os.umask(0o027)
    try:
        code, out, _ = _cli(capsys, "card", "model", str(run), "--out", str(tmp_path / "card"))
    finally:
        os.umask(old)
    assert code == 0 and out.strip() == f"wrote {tmp_path / 'card' / 'README.md'}"
    assert output_kind(tmp_path / "card") == "mmla card"
    assert _mode(tmp_path / "card" / "README.md") == 0o640 and _mode(tmp_path / "card" / MARKER_NAME) == 0o640
    assert ModelCard.load(tmp_path / "card" / "README.md").data.eval_results
    code, _, err = _cli(capsys, "card", "model", str(run), "--out", str(tmp_path / "card"))
    assert code == 1 and "--overwrite" in _one_line_error(err, "card")
    assert _cli(capsys, "card", "model", str(run), "--out", str(tmp_path / "card"), "--overwrite")[0] == 0
    # --out holding the input run is refused
    code, _, err = _cli(capsys, "card", "model", str(run), "--out", str(tmp_path))
    assert code == 1 and "contains the input" in _one_line_error(err, "card")


def test_card_model_default_file_needs_overwrite(sample_run: RunResults, tmp_path: Path, capsys) -> None:
    run = write_run(tmp_path / "run", sample_run)
    assert _cli(capsys, "card", "model", str(run))[0] == 0
    first = (run / "MODEL_CARD.md").read_text()
    (run / "MODEL_CARD.md").write_text("edited by hand")
    code, _, err = _cli(capsys, "card", "model", str(run / "results.json"))
    assert code == 1 and "MODEL_CARD.md already exists; pass --overwrite" in _one_line_error(err, "card")
    assert (run / "MODEL_CARD.md").read_text() == "edited by hand"
    assert _cli(capsys, "card", "model", str(run), "--overwrite")[0] == 0
    assert (run / "MODEL_CARD.md").read_text() == first


def test_card_dataset_never_replaces_a_user_readme(tmp_path: Path, capsys) -> None:
    built = build_dataset_folder(tmp_path / "built", {"mustard": False})
    assert _cli(capsys, "card", "dataset", str(built))[0] == 0  # our build: the card is rewritten
    assert "## MUStARD" in (built / "README.md").read_text()
    (built / MARKER_NAME).unlink()  # a folder that is not (known to be) a build of ours
    (built / "README.md").write_text("# my notes")
    code, _, err = _cli(capsys, "card", "dataset", str(built))
    assert code == 1 and "is not an `mmla data build` output" in _one_line_error(err, "card")
    assert (built / "README.md").read_text() == "# my notes"
    assert _cli(capsys, "card", "dataset", str(built), "--out", str(tmp_path / "card"))[0] == 0
    assert DatasetCard.load(tmp_path / "card" / "README.md").data.license == "mit"
    code, _, err = _cli(capsys, "card", "dataset", str(built), "--out", str(tmp_path))
    assert code == 1 and "contains the input" in _one_line_error(err, "card")


def test_leaderboard_out_is_claimed(sample_run: RunResults, tmp_path: Path, capsys) -> None:
    a = write_run(tmp_path / "runs" / "a", variant(sample_run, model="org/a"))
    b = write_run(tmp_path / "runs" / "b", variant(sample_run, model="org/b"))
    code, _, err = _cli(capsys, "leaderboard", str(a), str(b), "--out", str(tmp_path / "runs"))
    assert code == 1 and "contains the input" in _one_line_error(err, "leaderboard")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "x.txt").write_text("keep")
    code, _, err = _cli(capsys, "leaderboard", str(a), "--out", str(tmp_path / "mine"), "--overwrite")
    assert code == 1 and "not written by mmla" in _one_line_error(err, "leaderboard")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["x.txt"]
    old = os.umask(0o022)
    try:
        assert _cli(capsys, "leaderboard", str(a), str(b), "--out", str(tmp_path / "board"))[0] == 0
    finally:
        os.umask(old)
    board = tmp_path / "board"
    assert output_kind(board) == "mmla leaderboard"
    assert _mode(board / "leaderboard.md") == 0o644 and _mode(board / "leaderboard.png") == 0o644
    code, _, err = _cli(capsys, "leaderboard", str(a), str(b), "--out", str(board))
    assert code == 1 and "--overwrite" in _one_line_error(err, "leaderboard")
    assert _cli(capsys, "leaderboard", str(a), str(b), "--out", str(board), "--overwrite")[0] == 0
    # default: beside the first run, replacing an earlier leaderboard only with --overwrite
    assert _cli(capsys, "leaderboard", str(a), str(b))[0] == 0
    code, _, err = _cli(capsys, "leaderboard", str(a), str(b))
    assert code == 1 and "leaderboard.md already exists" in _one_line_error(err, "leaderboard")


@pytest.mark.parametrize(
    "argv",
    [["leaderboard", "RUN", "--allow-mix"], ["leaderboard", "RUN", "--ou", "x"], ["card", "model", "RUN", "--over"],
     ["card", "dataset", "RUN", "--pretty", "x"], ["push", "dataset", "RUN", "--repo", "a/b"]],
)  # fmt: skip
def test_options_are_not_abbreviated(sample_run: RunResults, tmp_path: Path, capsys, argv: list[str]) -> None:
    run = str(write_run(tmp_path / "run", sample_run))
    with pytest.raises(SystemExit) as exit_info:
        main([run if a == "RUN" else a for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err or "arguments are required: --repo-id" in err  # not taken as --repo-id


# -- prompt protocols and data sources -----------------------------------------------------------------------


def test_model_card_records_the_prompt_protocol(sample_run: RunResults, tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", variant(sample_run, tasks=["mosi"]))
    card = ModelCard(str(model_card(run)))
    assert "| prompt style | `upstream` |" in card.text
    assert "| label set | `full` |" in card.text and "| parse mode | `aliases` |" in card.text
    assert "| data source | `synthetic sample release ('mmla data sample')` |" in card.text
    assert all(r.task_name.endswith("(zero-shot, upstream prompt)") for r in card.data.eval_results)
    assert "--split test --prompt-style upstream --parse-mode aliases`" in card.text
    # a paper-style run compared with the paper says that the prompt differs
    paper_style = variant(sample_run, model="Qwen/Qwen2-0.5B-Instruct", prompt_style="paper")
    assert "the `paper` prompt style, not the upstream code's" in str(model_card(paper_style))


def test_model_card_refuses_mixed_prompt_styles(sample_run: RunResults, tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", variant(sample_run, tasks=["mintrec"]))
    b = write_run(tmp_path / "b", variant(sample_run, tasks=["mosi"], prompt_style="paper"))
    with pytest.raises(ValueError, match=r"different prompt protocols.*--allow-mixed"):
        model_card([a, b])
    text = str(model_card([a, b], allow_mixed=True))
    assert "† Mixed prompt protocols" in text
    assert "| prompt style | `upstream, paper` |" in text
    assert "| prompt `paper`, labels `full`, parsing `aliases` |" in text  # the per-task rows say which prompt


def test_leaderboard_never_ranks_styles_together(sample_run: RunResults) -> None:
    up = variant(sample_run, model="org/up", correct={"mintrec": 3})
    paper = variant(sample_run, model="org/pa", prompt_style="paper", correct={"mintrec": 30})
    with pytest.raises(ValueError, match="different prompt protocols"):
        build_leaderboard([up, paper])
    board = build_leaderboard([up, paper], allow_mixed=True, with_paper=False)
    assert [[r.name for r in s.rows] for s in board.sections] == [["up (zero-shot)"], ["pa (zero-shot)"]]
    md = leaderboard_markdown(board)
    assert "prompt `upstream`, labels `full`" in board.sections[0].title and "prompt `paper`" in board.sections[1].title
    assert "runs of different sections are not compared" in md
    both = [line for line in md.splitlines() if line.startswith("| 1 |")]
    assert len(both) == 2  # each run is first of its own section, neither is ranked below the other


def test_synthetic_sample_runs_are_not_ranked_with_the_paper(sample_run: RunResults, tmp_path: Path) -> None:
    """The demo's case: the runner's own output on the synthetic release, all 12 test sets, even with the
    paper's protocol and a score above a paper row, is never ranked among the paper's rows."""
    smol = variant(sample_run, model="HuggingFaceTB/SmolLM2-135M-Instruct", correct={"mintrec2": 60}, **UPSTREAM)
    assert smol.overall.acc > 22.14 and smol.task_set == set(TASKS) and smol.split == "test"  # above Qwen2-0.5B
    board = build_leaderboard([write_run(tmp_path / "run", smol)])
    assert [s.kind for s in board.sections] == ["runs", "reference"]
    assert [r.source for r in board.sections[0].rows] == ["this run"]
    assert board.sections[0].reason == "a synthetic sample release (`mmla data sample`), not the MMLA release"
    md = leaderboard_markdown(board)
    assert "## Zero-shot inference: not comparable with the paper" in md
    assert "synthetic sample release" in str(model_card(tmp_path / "run"))
    # the same numbers from a verified fetch of the release are ranked with the paper
    board = build_leaderboard([official(smol)])
    assert [s.kind for s in board.sections] == ["paper"]
    names = [r.name for r in board.sections[0].rows]
    assert names.index("SmolLM2-135M-Instruct (zero-shot)") < names.index("Qwen2-0.5B")


def test_leaderboard_paper_rows_need_the_paper_protocol(sample_run: RunResults) -> None:
    paper_style = official(sample_run, model="org/m", prompt_style="paper", **UPSTREAM)
    (runs, reference) = build_leaderboard([paper_style]).sections
    assert (runs.kind, reference.kind) == ("runs", "reference")
    assert runs.reason == "the `paper` prompt style, not the upstream code's"
    md = leaderboard_markdown(build_leaderboard([paper_style]))
    assert "## Zero-shot inference: the paper's rows (reference, not ranked with the runs above)" in md
    # upstream prompt but our label lists and parsing: not the paper's protocol either, and said so
    ours = official(sample_run, model="org/m")
    (runs, _) = build_leaderboard([ours]).sections
    assert runs.reason.startswith("label set `full` and parse mode `aliases`, not upstream")
    assert "--upstream-labels --parse-mode upstream" in runs.reason
    # the paper's protocol: ranked with the paper
    (ranked,) = build_leaderboard([official(sample_run, model="org/m", **UPSTREAM)]).sections
    row = next(r for r in ranked.rows if r.source == "this run")
    assert ranked.kind == "paper" and row.prompt == "upstream, labels upstream, parsing upstream"
