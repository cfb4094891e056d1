"""Runs that fed the model audio are never ranked with the paper (its models saw text and video only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_testdata import official, sample_results, variant

from mmla.eval.paper_results import fed_audio, modality_mark, paper_comparison, paper_problems
from mmla.eval.report import format_results
from mmla.eval.results import RunResults, load_results
from mmla.hub_cards.leaderboard import build_leaderboard, leaderboard_markdown

AV = ("text", "video", "audio")
UPSTREAM = {"label_set": "upstream", "parse_mode": "upstream", "model": "Qwen/Qwen2-0.5B-Instruct"}
AUDIO_REASON = (
    "the clips' audio (`--modalities text,video,audio`): audio fed, while the paper's models saw text and video "
    "only (the upstream code feeds no audio)"
)


@pytest.fixture(scope="module")
def run(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    return sample_results(sample_release, tmp_path_factory)


def test_audio_is_a_paper_problem_of_its_own(run: RunResults, tmp_path: Path) -> None:
    twin = official(run, modalities=("text", "video"), **UPSTREAM)
    heard = official(run, modalities=AV, **UPSTREAM)
    assert paper_problems(twin) == [] and not fed_audio(twin) and modality_mark(twin) is None
    assert paper_problems(heard) == [AUDIO_REASON] and modality_mark(heard) == "text+video+audio"
    ablation = official(run, modalities=("text", "audio"), **UPSTREAM)  # Qwen2-Audio: no video at all
    assert "(`--modalities text,audio`): audio fed" in paper_problems(ablation)[0]
    # the record survives results.json
    heard.write(tmp_path)
    assert paper_problems(load_results(tmp_path)) == [AUDIO_REASON]


def test_comparison_and_report_say_so(run: RunResults) -> None:
    heard = official(run, modalities=AV, correct={"mintrec": 8}, **UPSTREAM)
    text = paper_comparison(heard)
    assert f"**Not comparable:** this run used {AUDIO_REASON}." in text
    assert "| `mintrec` | 18.88 | 20.00 |" in text and "+1.12" not in text  # no difference shown
    assert "Shown: text, video, audio." in format_results(heard)


def test_leaderboard_never_ranks_audio_with_the_paper(run: RunResults) -> None:
    twin = official(run, modalities=("text", "video"), **UPSTREAM)
    heard = official(run, modalities=AV, **UPSTREAM)
    board = build_leaderboard([twin, heard])
    (ranked,) = board.sections_of("zero-shot", "paper")
    (apart,) = board.sections_of("zero-shot", "runs")
    assert [r.source for r in ranked.rows].count("this run") == 1
    assert all(not r.name.endswith("]") for r in ranked.rows)
    assert [r.name for r in apart.rows] == [f"{heard.display_name} [text+video+audio]"]
    assert apart.reason == AUDIO_REASON
    md = leaderboard_markdown(board)
    assert f"Why not ranked with the paper: these runs used {AUDIO_REASON}." in md


def test_with_and_without_audio_side_by_side_on_sample_data(run: RunResults) -> None:
    """Same data (synthetic), one model with and without audio: ranked together, the audio row marked."""
    plain = variant(run, modalities=("text", "video"), **UPSTREAM)
    heard = variant(run, modalities=AV, correct={"mintrec": 30}, **UPSTREAM)
    board = build_leaderboard([plain, heard])
    (section,) = board.sections_of("zero-shot", "runs")
    assert {r.name for r in section.rows} == {plain.display_name, f"{heard.display_name} [text+video+audio]"}
    assert section.reason.startswith("a synthetic sample release")
    assert "the clips' audio in the runs marked with their modalities (`--modalities text,video,audio`)" in (
        section.reason
    )
    assert not board.sections_of("zero-shot", "paper")


def test_hub_results_name_the_audio_run_apart(run: RunResults) -> None:
    """The model-index and .eval_results entries of a run fed audio never share a name with text+video ones."""
    import yaml

    from mmla.hub_cards.model_card import eval_result_files, eval_results

    plain = official(run, modalities=("text", "video"), **UPSTREAM)
    heard = official(run, modalities=AV, **UPSTREAM)
    names = {r.task_name for r in eval_results(plain)}
    heard_names = {r.task_name for r in eval_results(heard)}
    assert not names & heard_names and all(n.endswith(", text+video+audio)") for n in heard_names)
    notes = yaml.safe_load(eval_result_files(heard)[".eval_results/mintrec.yaml"])[0]["notes"]
    assert "shown: text+video+audio" in notes
    assert "shown:" not in yaml.safe_load(eval_result_files(plain)[".eval_results/mintrec.yaml"])[0]["notes"]
