"""A learning curve's points come from its sizes, seeds and settings; its summary from the runs that finished."""

from __future__ import annotations

import csv
import dataclasses
import io
import statistics
from pathlib import Path

import pytest
import yaml

from tlpipe.cli import build_parser, main
from tlpipe.errors import ConfigError
from tlpipe.learning_curve_plan import (
    AS_IS,
    BASELINE,
    POINT_COLUMNS,
    CurvePoint,
    check_points,
    curve_markdown,
    curve_points,
    curve_rows,
    curve_summary,
    parse_settings,
    parse_sizes,
    plot_learning_curve,
    point_result,
    points_csv,
    scratch_pairs,
    scratch_setting,
)

REPO = Path(__file__).resolve().parents[1]


def test_settings_are_named_overrides_with_yaml_typed_values_and_a_list_keeps_its_commas() -> None:
    settings = parse_settings(
        ["public", "scratch:train.strategy=scratch,train.epochs=20", "probe:train.auto.compare=[linear_probe, full]"]
    )

    assert settings == {
        "public": {},
        "scratch": {"train.strategy": "scratch", "train.epochs": 20},
        "probe": {"train.auto.compare": ["linear_probe", "full"]},
    }


def test_no_setting_means_the_params_as_they_are() -> None:
    assert parse_settings([]) == {AS_IS: {}}


@pytest.mark.parametrize(
    ("specs", "complaint"),
    [
        ([":train.epochs=3"], "write it as NAME"),
        (["scratch:"], "write it as NAME"),
        (["bad name:train.epochs=3"], "write it as NAME"),
        (["scratch:train.strategy"], "is not <section>.<key>=<value>"),
        (["scratch:epochs=3"], "is not <section>.<key>=<value>"),
        (["scratch:train.epochs=3,train.epochs=4"], "set twice"),
        (["a:train.epochs=3", "a:train.epochs=4"], "given twice"),
        ([f"{BASELINE}:train.epochs=3"], "names the baseline"),
        (["a:split.examples_per_class=8"], "--sizes and --seeds"),
        (["a:train.seed=1"], "--sizes and --seeds"),
    ],
)
def test_malformed_settings_are_refused_with_what_to_write(specs: list[str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_settings(specs)


def test_sizes_are_sorted_whole_numbers() -> None:
    assert parse_sizes("32,8,16") == [8, 16, 32]


@pytest.mark.parametrize(("text", "complaint"), [("1,8", "at least 2"), ("8,8", "twice"), ("8,many", "whole numbers")])
def test_bad_sizes_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_sizes(text)


def test_each_point_sets_the_size_both_seeds_and_its_settings_overrides() -> None:
    settings = {"public": {}, "scratch": {"train.strategy": "scratch"}}

    points = curve_points(settings, [8, 16], [0, 1, 2])

    assert len(points) == 2 * 3 * 2
    assert len({(p.setting, p.examples_per_class, p.seed) for p in points}) == len(points)
    scratch_16_2 = next(p for p in points if (p.setting, p.examples_per_class, p.seed) == ("scratch", 16, 2))
    assert scratch_16_2.overrides == {
        "split.examples_per_class": 16, "split.seed": 2, "train.seed": 2, "train.strategy": "scratch",
    }  # fmt: skip
    assert [p.examples_per_class for p in points] == sorted(p.examples_per_class for p in points)


@pytest.mark.parametrize(
    ("sizes", "seeds", "complaint"), [([8], [], "one seed"), ([1, 8], [0], "at least 2"), ([8, 8], [0], "twice")]
)
def test_a_curve_without_seeds_or_with_bad_sizes_is_refused(sizes: list[int], seeds: list[int], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        curve_points({"public": {}}, sizes, seeds)


def test_points_whose_overrides_params_yaml_accepts_pass_the_check() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())

    check_points(raw, curve_points({"public": {}, "scratch": {"train.strategy": "scratch"}}, [8, 64], [0]))


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [({"train.strategy": "guess"}, "train.strategy"), ({"train.epoch": 3}, "epoch"), ({"nosuch.key": 1}, "nosuch")],
)
def test_a_bad_override_is_refused_before_anything_runs(overrides: dict, complaint: str) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())

    with pytest.raises(ConfigError, match=complaint):
        check_points(raw, curve_points({"public": {}, "bad": overrides}, [8], [0]))


def metrics(test: float, baseline: float, verdict: str | None = None) -> dict:
    scores = {"finetuned": {"macro_f1": test}, "baseline": {"macro_f1": baseline}}
    if verdict:
        scores["transfer"] = {"over_baseline": {"verdict": verdict, "point": test - baseline, "low": 0.0, "high": 0.1}}
    return scores


def point(setting: str, size: int, seed: int) -> CurvePoint:
    return CurvePoint(setting, size, seed, {"split.examples_per_class": size, "split.seed": seed, "train.seed": seed})


# public beats the baseline from 16 on; scratch never does, and one of its runs failed.
RUNS = [
    (point("public", 8, 0), metrics(0.50, 0.55, "did_not_help")),
    (point("public", 8, 1), metrics(0.54, 0.57, "inconclusive")),
    (point("public", 16, 0), metrics(0.80, 0.60, "helped")),
    (point("public", 16, 1), metrics(0.84, 0.64, "helped")),
    (point("scratch", 8, 0), metrics(0.30, 0.55)),
    (point("scratch", 8, 1), None),
    (point("scratch", 16, 0), metrics(0.40, 0.60)),
    (point("scratch", 16, 1), metrics(0.44, 0.64)),
]


@pytest.fixture
def results() -> list:
    return [point_result(p, f"curve-{n:02d}", scores) for n, (p, scores) in enumerate(RUNS, start=1)]


def test_rows_hold_the_mean_and_spread_over_seeds_and_count_the_failed_run(results: list) -> None:
    rows = {(row.setting, row.examples_per_class): row for row in curve_rows(results)}

    public_16 = rows["public", 16]
    assert public_16.mean == pytest.approx(statistics.fmean([0.80, 0.84]))
    assert public_16.std == pytest.approx(statistics.stdev([0.80, 0.84]))
    assert (public_16.finished, public_16.failed, public_16.verdicts) == (2, 0, {"helped": 2})
    scratch_8 = rows["scratch", 8]
    assert (scratch_8.mean, scratch_8.std, scratch_8.finished, scratch_8.failed) == (0.30, None, 1, 1)
    assert rows["scratch", 8].verdicts == {}


def test_the_baseline_counts_each_size_and_seed_once_whatever_the_setting(results: list) -> None:
    rows = {(row.setting, row.examples_per_class): row for row in curve_rows(results)}

    assert (rows[BASELINE, 16].finished, rows[BASELINE, 16].failed) == (2, 0)
    assert rows[BASELINE, 16].mean == pytest.approx(statistics.fmean([0.60, 0.64]))
    assert rows[BASELINE, 8].mean == pytest.approx(statistics.fmean([0.55, 0.57]))


def test_a_run_without_a_transfer_verdict_is_read_without_one() -> None:
    result = point_result(point("public", 8, 0), "curve-01", metrics(0.5, 0.4))

    assert (result.test_macro_f1, result.baseline_macro_f1, result.verdict) == (0.5, 0.4, None)


def test_the_table_has_a_row_per_size_a_column_per_setting_and_the_baseline_and_notes_failures(results: list) -> None:
    table = curve_markdown(curve_rows(results))

    assert "| labelled examples per class | public | scratch | baseline |" in table
    assert f"| 16 | {statistics.fmean([0.80, 0.84]):.3f} ± {statistics.stdev([0.80, 0.84]):.3f} |" in table
    assert "| 0.300 (1 of 2 failed) |" in table  # scratch at 8: one seed finished, so no spread
    assert "| 8 | 0 / 1 / 1 | 0 / 0 / 0 |" in table and "| 16 | 2 / 0 / 0 | 0 / 0 / 0 |" in table  # the verdicts


def test_the_summary_names_where_each_setting_first_beats_the_baseline(results: list) -> None:
    summary = curve_summary(curve_rows(results))

    assert "**public** first beats the baseline at **16** labelled examples per class (0.820 vs 0.620)" in summary
    assert "**scratch** never beats the baseline" in summary


def test_a_setting_that_drops_below_the_baseline_again_is_said_to() -> None:
    runs = [(8, 0.7, 0.6), (16, 0.6, 0.65), (32, 0.8, 0.7)]
    results = [point_result(point("public", size, 0), f"c-{size}", metrics(test, base)) for size, test, base in runs]

    assert "first beats the baseline at **8** labelled examples per class (0.700 vs 0.600); not at 16" in curve_summary(
        curve_rows(results)
    )


def test_the_points_csv_has_one_row_per_finished_run(results: list) -> None:
    rows = list(csv.DictReader(io.StringIO(points_csv(results))))

    assert tuple(rows[0]) == POINT_COLUMNS
    assert len(rows) == sum(1 for _, scores in RUNS if scores is not None)
    assert "curve-06" not in {row["experiment"] for row in rows}  # the failed run
    first = rows[0]
    assert [first[column] for column in ("setting", "examples_per_class", "seed", "verdict")] == [
        "public", "8", "0", "did_not_help",
    ]  # fmt: skip
    assert float(first["test_macro_f1"]) == pytest.approx(0.50)
    assert float(first["baseline_macro_f1"]) == pytest.approx(0.55)


def test_the_plot_is_a_png_file(results: list, tmp_path: Path) -> None:
    path = tmp_path / "curve" / "curve.png"

    plot_learning_curve(curve_rows(results), path)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_the_command_defaults_to_four_sizes_three_seeds_and_the_params_as_they_are() -> None:
    args = build_parser().parse_args(["learning-curve"])

    assert (parse_sizes(args.sizes), args.seeds, parse_settings(args.settings), args.jobs) == (
        [8, 16, 32, 64], 3, {AS_IS: {}}, 1,
    )  # fmt: skip


def test_the_command_refuses_bad_sizes_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    status = main(["learning-curve", "--sizes", "1,8"])

    assert status == 1
    assert "every size needs at least 2 examples per class" in capsys.readouterr().err


def test_the_command_explains_what_it_runs_and_writes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["learning-curve", "--help"])

    text = " ".join(capsys.readouterr().out.split())
    assert "sizes x seeds x settings runs" in text and "points.csv" in text and "curve.png" in text
    assert "model.source=models/source" in text and "--setting scratch:train.strategy=scratch" in text


def test_the_scratch_setting_is_the_one_that_trains_from_random_weights() -> None:
    settings = {"public": {}, "control": {"train.strategy": "scratch"}, "own": {"model.source": "models/source"}}

    assert scratch_setting(settings) == "control"
    assert scratch_setting({"public": {}}) is None


def test_each_run_is_paired_with_the_scratch_run_on_the_same_sample(results: list) -> None:
    pairs = {
        (ours.point.examples_per_class, ours.point.seed): control for ours, control in scratch_pairs(results, "scratch")
    }

    assert set(pairs) == {(8, 0), (16, 0), (16, 1)}  # scratch at 8/class seed 1 failed: nothing to compare with
    assert all(control.point.setting == "scratch" for control in pairs.values())


def test_gains_over_scratch_are_averaged_and_their_verdicts_counted_in_the_table(results: list) -> None:
    gains = {"curve-03": {"point": 0.40, "verdict": "helped"}, "curve-04": {"point": 0.30, "verdict": "inconclusive"}}
    compared = [dataclasses.replace(r, over_scratch=gains.get(r.experiment)) for r in results]

    rows = {(row.setting, row.examples_per_class): row for row in curve_rows(compared)}
    table = curve_markdown(curve_rows(compared))

    assert rows["public", 16].gain_over_scratch == pytest.approx(0.35)
    assert rows["public", 16].scratch_verdicts == {"helped": 1, "inconclusive": 1}
    assert rows["public", 8].gain_over_scratch is None
    assert "Gain in test macro-F1 over scratch" in table and "| 16 | +0.350 (1 / 1 / 0) |" in table
