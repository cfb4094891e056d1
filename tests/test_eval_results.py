"""The results model: what the runner writes is what every reader reads, checked once; provenance; pooling."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hub_testdata import official, sample_results, variant

from mmla.eval.paper_results import paper_comparison, paper_problems
from mmla.eval.report import format_results, write_report
from mmla.eval.results import (
    SCHEMA_VERSION,
    DataSource,
    ResultsError,
    RunResults,
    check_compatible,
    load_results,
)
from mmla.loaders.files import mark_output_dir
from mmla.loaders.tasks import MMLA_HUB_REPO, TASKS, get_task


@pytest.fixture(scope="session")
def sample_run(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """What ``evaluate_tasks`` wrote for the sample release (one evaluation per session)."""
    return sample_results(sample_release, tmp_path_factory)


def _tiny_adapter():
    from mmla.eval.adapters import adapter_for
    from mmla.training.testing import tiny_llama, tiny_tokenizer

    tok = tiny_tokenizer()
    return adapter_for(tiny_llama(len(tok), seed=2), tok)


# -- what the runner writes -----------------------------------------------------------------------------


def test_runner_writes_what_load_results_reads(sample_release: Path, tmp_path: Path) -> None:
    from mmla.eval.runner import evaluate_tasks

    ret = evaluate_tasks(_tiny_adapter(), ["mosi", "mintrec"], str(sample_release), "test", mode="rank",
                         output_dir=tmp_path, text_only=True, show_progress=False, model_name="tiny/llama")  # fmt: skip
    on_disk = json.loads((tmp_path / "results.json").read_text())
    loaded = load_results(tmp_path)
    assert isinstance(ret, RunResults) and loaded == ret and loaded.path == tmp_path / "results.json"
    assert on_disk == ret.to_json() and on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["data_source"] == {"kind": "sample", "repo": None, "revision": None, "path": str(sample_release)}
    # the counts are the predictions' own
    rows = [json.loads(line) for line in (tmp_path / "predictions" / "mosi.jsonl").read_text().splitlines()]
    assert on_disk["tasks"]["mosi"]["correct"] == sum(r["pred"] == r["gold"] for r in rows)
    assert on_disk["tasks"]["mosi"]["n"] == len(rows) == 4  # 2 classes x 2 rows in the sample's test split
    # the read-only mapping view is the results.json form
    assert ret["overall"] == on_disk["overall"] and ret["tasks"]["mosi"] == on_disk["tasks"]["mosi"]
    assert set(ret) == set(on_disk) and not hasattr(ret, "__setitem__")


def test_round_trip_keeps_unknown_fields(sample_run: RunResults, tmp_path: Path) -> None:
    body = sample_run.to_json()
    body["selected_step"] = 40  # written by training into its results.json
    (tmp_path / "results.json").write_text(json.dumps(body))
    run = load_results(tmp_path)
    assert run.extra == {"selected_step": 40} and run.to_json() == body
    assert RunResults.from_json(body) == run


def test_pooled_from_counts_never_from_rounded_percentages(sample_run: RunResults) -> None:
    # 0 of 1 and 4 of 6: sum(acc * n) / n over the rounded 66.67 gives 57.15; 4 of 7 is 57.14
    run = variant(sample_run, tasks=["mosi", "mintrec"])
    run = dataclasses.replace(
        run,
        tasks={
            "mosi": dataclasses.replace(run.tasks["mosi"], n=1, correct=0, metrics={"acc": 0.0}),
            "mintrec": dataclasses.replace(run.tasks["mintrec"], n=6, correct=4, metrics={"acc": 66.67}),
        },
    )
    assert run.overall.to_json() == {"acc": 57.14, "n": 7}
    assert run.to_json()["overall"] == {"acc": 57.14, "n": 7}
    assert {d: a.to_json() for d, a in run.dimensions.items()} == {
        "intent": {"acc": 66.67, "n": 6},
        "sentiment": {"acc": 0.0, "n": 1},
    }
    body = run.to_json()
    body["overall"]["acc"] = 57.15  # what pooling the rounded percentages gives: refused
    with pytest.raises(ResultsError, match=r"'overall\.acc' is 57\.15 but the tasks' counts pool to 57\.14"):
        RunResults.from_json(body)
    total = sum(t.correct for t in sample_run.tasks.values()), sum(t.n for t in sample_run.tasks.values())
    assert sample_run.overall.acc == round(100 * total[0] / total[1], 2) and sample_run.overall.n == total[1]


def test_schema_1_files_are_read(sample_run: RunResults, tmp_path: Path) -> None:
    """Files of older mmla: no counts (recovered exactly from ACC), no data source, the old protocol names."""
    body = sample_run.to_json()
    for key in ("schema_version", "data_source", "label_set", "parse_mode"):
        del body[key]
    for entry in body["tasks"].values():
        del entry["correct"]
    body["prompt_style"] = "mmla"
    (tmp_path / "results.json").write_text(json.dumps(body))
    run = load_results(tmp_path)
    assert {k: t.correct for k, t in run.tasks.items()} == {k: t.correct for k, t in sample_run.tasks.items()}
    assert run.protocol == ("paper", "full", "aliases") and run.data_source == DataSource("unknown")
    assert run.schema_version == SCHEMA_VERSION  # written back in the current schema
    # recovery of counts from two-decimal ACC is exact below 10,000 samples
    for n in (1, 7, 13, 999, 9999):
        for correct in {0, 1, n // 3, n // 2, n - 1, n}:
            assert round(round(100 * correct / n, 2) * n / 100) == correct


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tasks"].update(mintrecc=d["tasks"].pop("mintrec")), r"'tasks\.mintrecc'.*Did you mean 'mintrec'\?"),
        (lambda d: d["tasks"]["mosi"]["metrics"].update(acc=250), r"'tasks\.mosi\.metrics\.acc' is 250; .*0 and 100"),
        (lambda d: d["tasks"]["mosi"]["metrics"].update(f1=-0.5), r"'tasks\.mosi\.metrics\.f1' is -0\.5"),
        (lambda d: d["tasks"]["mosi"]["ci95"].update(acc=[-1, 3]), r"'tasks\.mosi\.ci95\.acc\[0\]' is -1"),
        (lambda d: d["tasks"]["mosi"].update(correct=99), r"'tasks\.mosi\.correct' is 99, more than n = 4"),
        (lambda d: d["tasks"]["mosi"].update(correct=0), r"'tasks\.mosi\.metrics\.acc' is 50\.0 but 0 correct of 4"),
        (lambda d: d["tasks"]["mosi"].update(n=-1), r"'tasks\.mosi\.n' must be a non-negative integer"),
        (lambda d: d["tasks"]["mosi"]["metrics"].pop("acc"), r"'tasks\.mosi\.metrics\.acc' is missing"),
        (lambda d: d["overall"].update(acc=100.5), r"'overall\.acc' is 100\.5"),
        (lambda d: d["dimensions"]["intent"].update(n=3), r"'dimensions\.intent\.n' is 3 but the tasks' counts"),
        (lambda d: d.update(model="org/m\n# injected"), r"'model' is .*cannot be written into a card \('\\n'\)"),
        (lambda d: d.update(model="org/m | x"), r"'model' is .*\('\|'\)"),
        (lambda d: d.update(adapter="[click](http://x)"), r"'adapter' is .*'\['"),
        (lambda d: d.update(method="rlhf"), r"'method' is 'rlhf'; expected one of"),
        (lambda d: d.update(schema_version=99), r"'schema_version' is 99: written by a newer mmla"),
        (lambda d: d["data_source"].update(kind="mine"), r"'data_source\.kind' is 'mine'"),
        (lambda d: d["data_source"].update(kind="official"), r"'data_source' says official data but does not name"),
        (lambda d: d.pop("split"), r"'split' is missing"),
    ],
)  # fmt: skip
def test_bad_results_fail_once_naming_file_and_field(sample_run, tmp_path: Path, change, message: str) -> None:
    data = variant(sample_run, correct={"mosi": 2}).to_json()  # mosi: 2 of 4 = 50.0
    change(data)
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=message) as info:
        load_results(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'results.json'}: field ") and "\n" not in str(info.value)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"/nope not found: pass a results\.json or a run folder"):
        load_results(tmp_path / "nope")
    (tmp_path / "results.json").write_text('{"model": "x",\n "split": }')
    with pytest.raises(ValueError, match=r"results\.json:2:"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ResultsError, match=r"field '<root>' must be a JSON object"):
        load_results(tmp_path)


def test_runner_refuses_names_it_could_not_read_back(tmp_path: Path) -> None:
    from mmla.eval.runner import evaluate_tasks

    with pytest.raises(ValueError, match=r"model 'a\|b' cannot be written into a card"):
        evaluate_tasks(_tiny_adapter(), ["mosi"], {}, "test", output_dir=tmp_path / "o", model_name="a|b")
    assert not (tmp_path / "o").exists()  # refused before the output folder is claimed


# -- provenance -------------------------------------------------------------------------------------------


def test_data_source_of_sample_user_and_in_memory(sample_release: Path, tmp_path: Path) -> None:
    mosi = [get_task("mosi")]
    assert DataSource.detect(str(sample_release), mosi, "test") == DataSource("sample", path=str(sample_release))
    inside = sample_release / get_task("mosi").release_dir
    assert inside.is_dir() and DataSource.detect(inside, mosi, "test").kind == "sample"  # a folder inside it
    (tmp_path / "mine").mkdir()
    assert DataSource.detect(str(tmp_path / "mine"), mosi, "test") == DataSource("user", path=str(tmp_path / "mine"))
    assert DataSource.detect({"mosi": object()}, mosi, "test") == DataSource("user")
    assert DataSource.detect("org/their-mmla", mosi, "test") == DataSource("user", repo="org/their-mmla")
    mark_output_dir(tmp_path / "mine", "mmla data fetch")  # a fetch marker alone proves nothing
    assert DataSource.detect(str(tmp_path / "mine"), mosi, "test").kind == "user"


@pytest.fixture
def fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """mosi and mustard fetched (text only) from a fake Hub serving the sample's Hub layout as the release."""
    from fake_hub import serve_as_hub

    from mmla.loaders.fetch import fetch_corpus
    from mmla.loaders.sample import HUB_DIRNAME, write_sample_release

    write_sample_release(tmp_path / "hub-sample", tasks="mosi,mustard", per_class=1, seed=3)
    with serve_as_hub(monkeypatch, tmp_path) as fake:
        repo = fake.add_repo_from_folder(MMLA_HUB_REPO, tmp_path / "hub-sample" / HUB_DIRNAME)
        for key in ("mosi", "mustard"):
            result = fetch_corpus(get_task(key), tmp_path / "release", text_only=True)
        yield tmp_path / "release", result.revision, repo


def test_official_data_is_a_verified_fetch(fetched, tmp_path: Path, caplog) -> None:
    from mmla.eval.runner import evaluate_tasks

    root, commit, _ = fetched
    assert len(commit) == 40
    run = evaluate_tasks(_tiny_adapter(), ["mosi", "mustard"], str(root), "test", mode="rank",
                         output_dir=tmp_path / "run", text_only=True, show_progress=False)  # fmt: skip
    assert run.data_source == DataSource("official", repo=MMLA_HUB_REPO, revision=commit, path=str(root))
    assert load_results(tmp_path / "run").data_source.describe() == f"official release {MMLA_HUB_REPO}@{commit[:12]}"
    # the release as `load_task(MMLA_HUB_REPO)` uses it: the default fetch folder
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMLA_FETCH_DIR", str(root))
        assert DataSource.detect(MMLA_HUB_REPO, [get_task("mosi")], "test").revision == commit
    # a split that was not fetched, or a file changed since the fetch: not proven, so user data
    assert DataSource.detect(str(root), [get_task("mintrec")], "test").kind == "user"
    test_tsv = root / get_task("mosi").release_dir / "test.tsv"
    test_tsv.write_bytes(test_tsv.read_bytes() + b"\n")
    with caplog.at_level("WARNING"):
        assert DataSource.detect(str(root), [get_task("mosi")], "test") == DataSource("user", path=str(root))
    assert "changed since it was fetched" in caplog.text


# -- comparing runs ---------------------------------------------------------------------------------------


def test_check_compatible(sample_run: RunResults) -> None:
    a = variant(sample_run)
    b = variant(sample_run, split="validation")
    c = variant(sample_run, prompt_style="paper")
    d = official(sample_run)
    e = variant(sample_run, tasks=["mosi"])
    assert check_compatible([a, variant(sample_run, model="other/m")]) == []
    for other, what in ((b, "splits"), (c, "prompt protocols"), (d, "data sources"), (e, "task sets")):
        with pytest.raises(ValueError, match=f"results use different {what}: .*--allow-mixed"):
            check_compatible([a, other])
        assert check_compatible([a, other], allow_mixed=True)[0].startswith(f"Mixed {what}: ")
    assert check_compatible([a, e], same_tasks=False) == []  # one model's runs on different tasks (a card)


def test_paper_problems_name_every_difference(sample_run: RunResults) -> None:
    upstream = {"label_set": "upstream", "parse_mode": "upstream"}
    assert paper_problems(official(sample_run, **upstream)) == []
    assert paper_problems(official(sample_run, method="sft", prompt_style="upstream_sft", **upstream)) == []
    problems = paper_problems(sample_run)  # the real run: synthetic data, full labels, alias parsing
    assert problems[0].startswith("a synthetic sample release") and "label set `full`" in problems[1]
    off = official(sample_run, tasks=["mosi"], split="validation", prompt_style="paper", **upstream)
    assert paper_problems(off) == [
        "the validation split, not test", "the `paper` prompt style, not the upstream code's", "1 of the 12 tasks"
    ]  # fmt: skip
    legacy = variant(sample_run, data_source=DataSource("unknown"), **upstream)
    assert "does not record" in paper_problems(legacy)[0]


def test_paper_comparison_shows_differences_only_when_comparable(sample_run: RunResults) -> None:
    upstream = {"label_set": "upstream", "parse_mode": "upstream", "model": "Qwen/Qwen2-0.5B-Instruct"}
    n = sample_run.tasks["mintrec"].n  # 40
    comparable = official(sample_run, correct={"mintrec": 8}, **upstream)  # 8 of 40 = 20.00
    text = paper_comparison(comparable)
    assert "Not comparable" not in text and "| `mintrec` | 18.88 | 20.00 | +1.12 |" in text and n == 40
    assert "| Qwen2-0.5B (paper) | zero-shot | 22.14 |" in text
    assert f"| **this run** ({comparable.overall.n} samples) | zero-shot | **{comparable.overall.acc:.2f}** |" in text
    sample = variant(sample_run, correct={"mintrec": 8}, **upstream)
    text = paper_comparison(sample)
    assert "**Not comparable:** this run used a synthetic sample release" in text
    assert "| `mintrec` | 18.88 | 20.00 |" in text and "+1.12" not in text


# -- reports ------------------------------------------------------------------------------------------------


def test_report_is_per_run_and_never_ranks(sample_run: RunResults, tmp_path: Path) -> None:
    text = format_results(sample_run)
    assert "Data: synthetic sample release (`mmla data sample`)." in text
    mosi = sample_run.tasks["mosi"]
    assert f"| mosi | sentiment | {mosi.n} | {mosi.metrics['acc']:.2f} |" in text
    assert f"| **overall (pooled)** | {sample_run.overall.n} | **{sample_run.overall.acc:.2f}** |" in text
    assert "Comparison with the paper" not in text  # not one of the paper's models
    qwen = variant(sample_run, model="Qwen/Qwen2-0.5B-Instruct")
    assert "Comparison with the paper" in format_results(qwen) and "**Not comparable:**" in format_results(qwen)
    out = write_report([sample_run, qwen], tmp_path)
    assert (tmp_path / "report.md").read_text() == out + "\n" and "| rank |" not in out
    ranked = write_report([sample_run, qwen], tmp_path, ranking="# MMLA leaderboard\n\n| rank | ... |")
    assert ranked.startswith("# MMLA leaderboard") and "## Runs" in ranked


def test_every_task_in_the_registry_round_trips(sample_run: RunResults) -> None:
    assert set(sample_run.tasks) == set(TASKS)
    assert RunResults.from_json(json.loads(json.dumps(sample_run.to_json()))) == sample_run
