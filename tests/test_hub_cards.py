"""Dataset cards, model cards and leaderboards, checked with huggingface_hub's and datasets' own parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import get_dataset_config_names, load_dataset
from hub_testdata import build_dataset_folder, results_dict, write_adapter, write_results
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from mmla.hub_cards.dataset_card import scan_built_dataset, write_dataset_card
from mmla.hub_cards.demo import demo_outputs
from mmla.hub_cards.leaderboard import build_leaderboard, leaderboard_markdown, write_leaderboard
from mmla.hub_cards.model_card import merge_results, model_card
from mmla.hub_cards.results import load_results
from mmla.loaders.tasks import MMLA_CITATION, TASKS, get_task


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
    assert data.license == "other" and data.license_name
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


# -- results files --------------------------------------------------------------------------------------


def test_load_results_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = results_dict()
    del bad["tasks"]["mosi"]["metrics"]["acc"]
    (tmp_path / "results.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"results\.json: field 'tasks\.mosi\.metrics\.acc' is missing"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"model": "x",\n "split": }')
    with pytest.raises(ValueError, match=r"results\.json:2:"):
        load_results(tmp_path)


# -- model cards ----------------------------------------------------------------------------------------


def test_model_card_model_index_round_trip(tmp_path: Path) -> None:
    run = write_results(tmp_path / "run", tasks={"mintrec": 21.5, "mosi": 61.25, "meld": 40.0})
    card = model_card(run, repo_id="me/smol-mmla")
    parsed = ModelCard(str(card))
    results = parsed.data.eval_results
    assert len(results) == 3 * 6
    name, again = model_index_to_eval_results(parsed.data.to_dict()["model-index"])
    assert name == "smol-mmla (zero-shot)" and len(again) == 18
    acc = {r.dataset_config: r.metric_value for r in results if r.metric_name == "ACC"}
    assert acc == {"mintrec": 21.5, "mosi": 61.25, "meld": 40.0}
    wf1 = next(r for r in results if r.dataset_config == "mosi" and r.metric_name == "WF1")
    assert (wf1.metric_type, wf1.metric_args, wf1.metric_value) == ("f1", {"average": "weighted"}, 60.25)
    assert {r.dataset_type for r in results} == {"mmla/mintrec", "mmla/mosi", "mmla/meld"}
    assert {r.dataset_split for r in results} == {"test"}
    assert all("zero-shot" in r.task_name for r in results)
    # the body shows the same numbers, and the pooled overall
    assert "| `mosi` | MOSI | sentiment | 101 | 61.25 | 60.25 |" in parsed.text
    assert f"**{load_results(run).overall['acc']:.2f}**" in parsed.text


def test_model_card_for_adapter_has_hyperparameters(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "adapter")
    card = model_card(adapter, adapter_dir=adapter, repo_id="me/smol-lora")
    parsed = ModelCard(str(card))
    assert parsed.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert parsed.data.library_name == "peft"
    assert {"lora", "sft", "mmla"} <= set(parsed.data.tags)
    for needle in ("| `learning_rate` | 0.0001 |", "| `lora_alpha` | 16 |", "| `target_modules` | q_proj, v_proj |"):
        assert needle in parsed.text
    assert "/secret/x" not in parsed.text  # only the listed hyperparameters, not every field
    assert parsed.data.eval_results[0].task_name.endswith("(SFT)")


def test_model_card_compares_with_paper(tmp_path: Path) -> None:
    run = write_results(tmp_path / "q", model="Qwen/Qwen2-0.5B-Instruct", tasks={"mintrec": 20.0})
    text = str(model_card(run))
    assert "| `mintrec` | 18.88 | 20.00 | +1.12 |" in text
    assert "Qwen2-0.5B (paper) | zero-shot | 22.14" in text
    assert "18.88" not in str(model_card(run, with_paper=False))


def test_model_card_refuses_mixed_splits_and_models(tmp_path: Path) -> None:
    a = write_results(tmp_path / "a", tasks={"mintrec": 20.0})
    b = write_results(tmp_path / "b", tasks={"mosi": 50.0}, split="validation")
    with pytest.raises(ValueError, match="different splits"):
        model_card([a, b])
    card = model_card([a, b], allow_mixed=True)
    assert "† Mixed splits" in str(card)
    c = write_results(tmp_path / "c", model="other/model", tasks={"mosi": 50.0})
    with pytest.raises(ValueError, match="several"):
        model_card([a, c])


def test_merge_results_keeps_foreign_content(tmp_path: Path) -> None:
    existing = ModelCard(
        "---\nlicense: apache-2.0\nmodel-index:\n- name: their-model\n  results:\n  - task: {type: text-classification}\n"
        "    dataset: {name: MOSI, type: mmla/mosi, config: mosi, split: test}\n"
        "    metrics:\n    - {type: accuracy, value: 1.0, name: ACC}\n"
        "  - task: {type: text-classification}\n    dataset: {name: SST2, type: glue, split: test}\n"
        "    metrics:\n    - {type: accuracy, value: 93.0}\n---\n# Their model\n\nHand-written text.\n"
    )
    new = model_card(write_results(tmp_path / "r", tasks={"mosi": 55.0}))
    merged = ModelCard(str(merge_results(existing, new)))
    results = merged.data.eval_results
    acc = [r.metric_value for r in results if r.dataset_type == "mmla/mosi" and r.metric_name == "ACC"]
    assert acc == [55.0]  # replaced, not duplicated
    assert any(r.dataset_type == "glue" and r.metric_value == 93.0 for r in results)
    assert merged.data.license == "apache-2.0" and merged.data.model_name == "their-model"
    assert "Hand-written text." in merged.text and merged.text.count("<!-- mmla-results:start -->") == 1
    # a second merge replaces the section instead of appending another one
    again = merge_results(merged, new)
    assert str(again).count("<!-- mmla-results:start -->") == 1


# -- leaderboard ----------------------------------------------------------------------------------------


def test_leaderboard_ranks_by_pooled_acc(tmp_path: Path) -> None:
    lo = write_results(tmp_path / "lo", model="org/small", tasks={"mintrec": 10.0, "mosi": 50.0})
    hi = write_results(tmp_path / "hi", model="org/big", tasks={"mintrec": 30.0, "mosi": 70.0})
    sft = write_results(tmp_path / "sft", model="org/small", method="sft", tasks={"mintrec": 80.0, "mosi": 90.0})
    board = build_leaderboard([lo, hi, sft], with_paper=False)
    assert [r.name for r in board.groups["zero-shot"]] == ["big (zero-shot)", "small (zero-shot)"]
    assert [r.name for r in board.groups["fine-tuned"]] == ["small (SFT)"]
    assert board.groups["zero-shot"][0].dimensions == {"intent": 30.0, "sentiment": 70.0}
    md = leaderboard_markdown(board)
    assert md.index("big (zero-shot)") < md.index("small (zero-shot)") and "paper" not in md.split("\n", 3)[3]


def test_leaderboard_paper_rows_and_chart(tmp_path: Path) -> None:
    all_tasks = dict.fromkeys(TASKS, 45.0)
    run = write_results(tmp_path / "full", model="org/m", tasks=all_tasks)
    paths = write_leaderboard([run], tmp_path / "out")
    md = paths["leaderboard_md"].read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "zero-shot" in line]
    names = [line.split(" | ")[1] for line in rows]
    # comparable setting (test split, all 12 tasks): interleaved, ranked between Llama3-8B 44.06 and Qwen2-VL-7B 47.12
    assert names.index("**m (zero-shot)**") == names.index("Llama3-8B") - 1 == names.index("Qwen2-VL-7B") + 1
    assert paths["leaderboard_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # partial task set: paper listed apart, with a note
    part = write_results(tmp_path / "part", model="org/m", tasks={"mosi": 50.0})
    md2 = leaderboard_markdown(build_leaderboard([part]))
    assert "Paper reference" in md2 and "listed apart" in md2


def test_leaderboard_refuses_mixed_inputs(tmp_path: Path) -> None:
    a = write_results(tmp_path / "a", model="org/a", tasks={"mintrec": 20.0})
    b = write_results(tmp_path / "b", model="org/b", tasks={"mintrec": 20.0}, split="validation")
    c = write_results(tmp_path / "c", model="org/c", tasks={"mosi": 20.0})
    with pytest.raises(ValueError, match="different splits"):
        build_leaderboard([a, b])
    with pytest.raises(ValueError, match="different task sets"):
        build_leaderboard([a, c])
    board = build_leaderboard([a, b], allow_mixed=True, with_paper=False)
    md = leaderboard_markdown(board)
    assert "b (zero-shot)**†" in md and "† Mixed splits" in md


def test_demo_outputs(tmp_path: Path) -> None:
    run = write_results(tmp_path / "demo", tasks={"mintrec": 12.0, "mosi": 55.0})
    paths = demo_outputs(run)
    assert set(paths) == {"model_card", "leaderboard_md", "leaderboard_png"}
    assert all(p.parent == run and p.stat().st_size > 0 for p in paths.values())
    assert ModelCard.load(paths["model_card"]).data.eval_results
