"""A learning curve's points and its summary: how test macro-F1 grows with the labelled examples per class.

``tlpipe learning-curve`` (``tlpipe.flows.learning_curve``) runs the pipeline up to ``evaluate``
as one DVC experiment per point: each size of ``split.examples_per_class`` × each seed × each
compared setting (the public model, an own-domain snapshot, training from scratch...). This module
is the part that needs no DVC or Prefect: parsing the settings and sizes, the points with their
params overrides, and the summary of finished runs.

A point's seed sets both the sample of labelled examples (``split.seed``) and training
(``train.seed``), so the spread over seeds is what a team would see from labelling a different
sample. The baseline is trained on the same sample, so it depends on the size and the seed but not
on the setting; its line counts each (size, seed) once. A setting "beats" the baseline at a size
when its mean test macro-F1 is above the baseline's mean there.
"""

from __future__ import annotations

import copy
import csv
import io
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlpipe.errors import ConfigError
from tlpipe.params import parse_params
from tlpipe.strategies import STRATEGIES, get_strategy
from tlpipe.sweep_plan import yaml_value

DEFAULT_SIZES = (8, 16, 32, 64)
AS_IS = "params.yaml"  # the setting that runs the params as they are
BASELINE = "baseline"
VERDICTS = ("helped", "inconclusive", "did_not_help")
CURVE_KEYS = ("split.examples_per_class", "split.seed", "train.seed")
SETTING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Split a setting's overrides on the commas that start a new KEY=, so a YAML list value keeps its own.
NEXT_OVERRIDE = re.compile(r",(?=\s*[A-Za-z_][\w.]*=)")
POINT_COLUMNS = ("setting", "examples_per_class", "seed", "test_macro_f1", "baseline_macro_f1", "verdict", "experiment")


@dataclass(frozen=True)
class CurvePoint:
    """One run of the curve: a setting at a size and a seed, and every params override it runs with."""

    setting: str
    examples_per_class: int
    seed: int
    overrides: dict[str, Any]

    def label(self) -> str:
        return f"{self.setting} {self.examples_per_class}/class seed {self.seed}"


@dataclass(frozen=True)
class PointResult:
    """A point's experiment and its test scores; the scores are None when the experiment failed."""

    point: CurvePoint
    experiment: str
    test_macro_f1: float | None
    baseline_macro_f1: float | None
    verdict: str | None
    over_scratch: dict[str, Any] | None = None  # the gain over the scratch run of the same size and seed

    @property
    def finished(self) -> bool:
        return self.test_macro_f1 is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "setting": self.point.setting,
            "examples_per_class": self.point.examples_per_class,
            "seed": self.point.seed,
            "test_macro_f1": self.test_macro_f1,
            "baseline_macro_f1": self.baseline_macro_f1,
            "verdict": self.verdict,
            "over_scratch": self.over_scratch,
            "experiment": self.experiment,
            "overrides": self.point.overrides,
        }


@dataclass(frozen=True)
class CurveRow:
    """One point of a line: a setting (or the baseline) at a size, its mean and spread over the seeds that finished."""

    setting: str
    examples_per_class: int
    mean: float | None
    std: float | None
    finished: int
    failed: int
    verdicts: dict[str, int] = field(default_factory=dict)
    gain_over_scratch: float | None = None  # mean over seeds of the gain over the scratch run of the same sample
    scratch_verdicts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "verdicts": dict(self.verdicts), "scratch_verdicts": dict(self.scratch_verdicts)}


def parse_sizes(text: str) -> list[int]:
    """``"8,16,32"`` to the sorted sizes ``[8, 16, 32]``; each a whole number of at least 2 examples per class."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--sizes {text!r}: give whole numbers of examples per class, e.g. --sizes 8,16,32") from None
    _check_sizes(sizes)
    return sorted(sizes)


def _check_sizes(sizes: list[int]) -> None:
    if any(size < 2 for size in sizes):
        raise ConfigError(f"sizes {sizes}: every size needs at least 2 examples per class (one to validate on)")
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"sizes {sizes}: a size is given twice; list each once")


def parse_settings(specs: list[str]) -> dict[str, dict[str, Any]]:
    """``["scratch:train.strategy=scratch"]`` to ``{name: {key: value}}`` (YAML-typed); none: the params as they are."""
    settings: dict[str, dict[str, Any]] = {}
    for spec in specs or [AS_IS]:
        name, colon, body = spec.partition(":")
        name = name.strip()
        if not SETTING_NAME.fullmatch(name) or (colon and not body.strip()):
            raise ConfigError(
                f"setting {spec!r}: write it as NAME or NAME:KEY=VALUE[,KEY=VALUE...] "
                "(NAME of letters, digits, '.', '_' or '-'), e.g. scratch:train.strategy=scratch"
            )
        if name == BASELINE:
            raise ConfigError(f"setting {spec!r}: {BASELINE!r} names the baseline's line; call the setting otherwise")
        if name in settings:
            raise ConfigError(f"setting {name!r} is given twice; give each compared setting its own name")
        settings[name] = _overrides(spec, body) if colon else {}
    return settings


def _overrides(spec: str, body: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for part in NEXT_OVERRIDE.split(body):
        key, equals, value = part.partition("=")
        key = key.strip()
        if not equals or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", key):
            raise ConfigError(f"setting {spec!r}: {part!r} is not <section>.<key>=<value>")
        if key in overrides:
            raise ConfigError(f"setting {spec!r}: {key} is set twice")
        if key in CURVE_KEYS:
            raise ConfigError(f"setting {spec!r}: the curve sets {key} itself; choose them with --sizes and --seeds")
        overrides[key] = yaml_value(value.strip())
    return overrides


def curve_points(settings: dict[str, dict[str, Any]], sizes: list[int], seeds: list[int]) -> list[CurvePoint]:
    """Every size × seed × setting, smallest size first so the cheap points report first."""
    if not sizes or not seeds or not settings:
        raise ConfigError("a learning curve needs at least one size, one seed and one setting")
    _check_sizes(sizes)
    return [
        CurvePoint(name, size, seed, {"split.examples_per_class": size, "split.seed": seed, "train.seed": seed, **own})
        for size in sizes
        for seed in seeds
        for name, own in settings.items()
    ]


def check_points(raw_params: dict[str, Any], points: list[CurvePoint]) -> None:
    """Raise ``ConfigError`` before anything runs if a point's overrides name an unknown key or a bad value."""
    for point in points:
        parse_params(with_overrides(raw_params, point.overrides), origin=f"params.yaml with {point.label()}")


def with_overrides(raw_params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of the parsed params.yaml with each dotted key of ``overrides`` set."""
    params = copy.deepcopy(raw_params)
    for dotted, value in overrides.items():
        *sections, key = dotted.split(".")
        node = params
        for name in sections:
            if not isinstance(node.get(name), dict):
                raise ConfigError(f"override {dotted!r}: params.yaml has no section {name!r}")
            node = node[name]
        node[key] = value
    return params


def point_result(point: CurvePoint, experiment: str, metrics: dict[str, Any] | None) -> PointResult:
    """A point's result from its experiment's ``reports/metrics.json`` (None: the experiment failed)."""
    if not metrics:
        return PointResult(point, experiment, None, None, None)
    transfer = (metrics.get("transfer") or {}).get("over_baseline") or {}
    return PointResult(
        point=point,
        experiment=experiment,
        test_macro_f1=metrics["finetuned"]["macro_f1"],
        baseline_macro_f1=metrics["baseline"]["macro_f1"],
        verdict=transfer.get("verdict"),
    )


def curve_rows(results: list[PointResult]) -> list[CurveRow]:
    """One row per setting and size (mean and sample standard deviation over seeds), then the baseline's rows."""
    sizes = sorted({result.point.examples_per_class for result in results})
    settings = list(dict.fromkeys(result.point.setting for result in results))
    rows = []
    for name in settings:
        for size in sizes:
            group = [r for r in results if r.point.setting == name and r.point.examples_per_class == size]
            scores = [r.test_macro_f1 for r in group if r.test_macro_f1 is not None]
            verdicts = Counter(r.verdict for r in group if r.verdict is not None)
            gains = [r.over_scratch for r in group if r.over_scratch]
            rows.append(
                CurveRow(
                    name, size, *_spread(scores), len(scores), len(group) - len(scores), dict(verdicts),
                    statistics.fmean(g["point"] for g in gains) if gains else None,
                    dict(Counter(g["verdict"] for g in gains)),
                )
            )  # fmt: skip
    for size in sizes:
        # The baseline trains on the (size, seed) sample whatever the setting: count each sample once.
        by_seed = {r.point.seed: r.baseline_macro_f1 for r in results
                   if r.point.examples_per_class == size and r.baseline_macro_f1 is not None}  # fmt: skip
        seeds = {r.point.seed for r in results if r.point.examples_per_class == size}
        scores = list(by_seed.values())
        rows.append(CurveRow(BASELINE, size, *_spread(scores), len(scores), len(seeds) - len(scores)))
    return rows


def _spread(scores: list[float]) -> tuple[float | None, float | None]:
    if not scores:
        return None, None
    return statistics.fmean(scores), statistics.stdev(scores) if len(scores) > 1 else None


def curve_markdown(rows: list[CurveRow]) -> str:
    """The curve as Markdown: a row per size, a "mean ± std" column per setting and the baseline, then verdicts."""
    lines_by = _lines(rows)
    names = list(lines_by)
    sizes = sorted({row.examples_per_class for row in rows})
    header = ["| labelled examples per class | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    body = [f"| {size} | " + " | ".join(_cell(lines_by[name][size]) for name in names) + " |" for size in sizes]
    lines = ["Test macro-F1, mean ± standard deviation over the seeds that finished.", "", *header, *body]
    judged = [row for row in rows if row.verdicts]
    if judged:
        settings = [name for name in names if name != BASELINE]
        intro = "Transfer over the baseline, runs per bootstrap verdict (helped / inconclusive / did not help):"
        lines += _size_table(intro, settings, sizes, lambda name, size: _verdict_cell(lines_by[name][size]))
    compared = [name for name in names if any(row.scratch_verdicts for row in lines_by[name].values())]
    if compared:
        intro = (
            "Gain in test macro-F1 over scratch (the same architecture from random weights, on the same labelled "
            "sample), mean over seeds, and runs per bootstrap verdict (helped / inconclusive / did not help):"
        )
        lines += _size_table(intro, compared, sizes, lambda name, size: _scratch_cell(lines_by[name][size]))
    return "\n".join([*lines, "", curve_summary(rows)])


def _size_table(intro: str, names: list[str], sizes: list[int], cell: Callable[[str, int], str]) -> list[str]:
    """A Markdown table after ``intro``: a row per size, a column per name, ``cell(name, size)`` in each."""
    return [
        "",
        intro,
        "",
        "| labelled examples per class | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
        *(f"| {size} | " + " | ".join(cell(name, size) for name in names) + " |" for size in sizes),
    ]


def scratch_setting(settings: dict[str, dict[str, Any]]) -> str | None:
    """The compared setting whose strategy trains from scratch (a randomly initialised body), if one is."""
    return next((name for name, overrides in settings.items() if _from_scratch(overrides.get("train.strategy"))), None)


def _from_scratch(strategy: Any) -> bool:
    return isinstance(strategy, str) and strategy in STRATEGIES and not get_strategy(strategy).pretrained


def scratch_pairs(results: list[PointResult], scratch: str) -> list[tuple[PointResult, PointResult]]:
    """Each finished run of another setting with the finished scratch run on the same sample (size and seed)."""
    controls = {
        (r.point.examples_per_class, r.point.seed): r for r in results if r.point.setting == scratch and r.finished
    }
    return [
        (r, controls[(r.point.examples_per_class, r.point.seed)])
        for r in results
        if r.point.setting != scratch and r.finished and (r.point.examples_per_class, r.point.seed) in controls
    ]


def _scratch_cell(row: CurveRow) -> str:
    if row.gain_over_scratch is None:
        return "–"
    counts = " / ".join(str(row.scratch_verdicts.get(verdict, 0)) for verdict in VERDICTS)
    return f"{row.gain_over_scratch:+.3f} ({counts})"


def _lines(rows: list[CurveRow]) -> dict[str, dict[int, CurveRow]]:
    lines: dict[str, dict[int, CurveRow]] = {}
    for row in rows:
        lines.setdefault(row.setting, {})[row.examples_per_class] = row
    return lines


def _cell(row: CurveRow) -> str:
    failed = f" ({row.failed} of {row.finished + row.failed} failed)" if row.failed else ""
    if row.mean is None:
        return f"failed{failed}" if row.failed else "–"
    spread = f" ± {row.std:.3f}" if row.std is not None else ""
    return f"{row.mean:.3f}{spread}{failed}"


def _verdict_cell(row: CurveRow) -> str:
    return " / ".join(str(row.verdicts.get(verdict, 0)) for verdict in VERDICTS)


def curve_summary(rows: list[CurveRow]) -> str:
    """One sentence per setting: the smallest size where its mean beats the baseline's, and whether it stays above."""
    lines_by = _lines(rows)
    baseline = lines_by.get(BASELINE, {})
    sentences = []
    for name, line in lines_by.items():
        if name == BASELINE:
            continue
        compared = [
            (size, row.mean, baseline[size].mean)
            for size, row in sorted(line.items())
            if row.mean is not None and size in baseline and baseline[size].mean is not None
        ]
        if not compared:
            sentences.append(f"- **{name}**: no size where both it and the baseline finished.")
            continue
        above = [size for size, mean, base in compared if mean > base]  # type: ignore[operator]
        if not above:
            sentences.append(f"- **{name}** never beats the baseline at these sizes (up to {compared[-1][0]}/class).")
            continue
        first = above[0]
        _, mean, base = next(item for item in compared if item[0] == first)
        later_below = [size for size, _, _ in compared if size > first and size not in above]
        stays = f"; not at {', '.join(map(str, later_below))}" if later_below else " and stays above at larger sizes"
        sentences.append(
            f"- **{name}** first beats the baseline at **{first}** labelled examples per class "
            f"({mean:.3f} vs {base:.3f}){stays}."
        )
    return "\n".join(sentences)


def points_csv(results: list[PointResult]) -> str:
    """One CSV row per finished run (the points ``dvc plots show`` draws), in the order they were planned."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(POINT_COLUMNS)
    for result in results:
        if result.finished:
            point = result.point
            writer.writerow([point.setting, point.examples_per_class, point.seed, f"{result.test_macro_f1:.6f}",
                             f"{result.baseline_macro_f1:.6f}", result.verdict or "", result.experiment])  # fmt: skip
    return buffer.getvalue()


def plot_learning_curve(rows: list[CurveRow], path: Path) -> None:
    """A PNG at ``path`` (atomic) of test macro-F1 against examples per class: a line and ±std band per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    from tlpipe.plots import save_png

    sizes = sorted({row.examples_per_class for row in rows})
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, line in _lines(rows).items():
        drawn = [row for _, row in sorted(line.items()) if row.mean is not None]
        if not drawn:
            continue
        x = [row.examples_per_class for row in drawn]
        mean = [row.mean or 0.0 for row in drawn]
        std = [row.std or 0.0 for row in drawn]
        style = {"color": "0.35", "linestyle": "--"} if name == BASELINE else {}
        (plotted,) = axis.plot(x, mean, marker="o", label=name, **style)
        low = [m - s for m, s in zip(mean, std, strict=True)]
        high = [m + s for m, s in zip(mean, std, strict=True)]
        axis.fill_between(x, low, high, color=plotted.get_color(), alpha=0.15, linewidth=0)
    axis.set_xscale("log", base=2)
    axis.set_xticks(sizes, [str(size) for size in sizes])
    axis.xaxis.set_minor_locator(NullLocator())
    axis.set_xlabel("labelled examples per class")
    axis.set_ylabel("test macro-F1")
    axis.set_title("Learning curve (mean ± std over seeds)")
    axis.grid(True, alpha=0.3)
    axis.legend(loc="best")
    save_png(figure, path)
