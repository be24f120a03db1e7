"""How many folds should choose with few labels? ``split.folds`` 5 against 3, judged on training rows.

With 8 labelled examples per class, each of 3 folds trains on about 5 per class and validates on
about 3, so cross-validation scores every candidate at two thirds of the data the final model
gets. A strategy that gains more from the last few labels than the others (the lexical probe,
whose wordpiece channel needs to have seen a word to use it) is ranked too low: on the work
requests at 8 per class the folds put it last of four candidates. More folds train each fold
closer to the final size, at one more run of every candidate for each fold added; for the
default at 8 per class that is one more contrastive tuning each, the stage's costly part.

For each dataset of ``harness/text_datasets.py``, size and seed, this study runs the default (params.yaml as
shipped) and the two probes named alone with each fold count on the same labelled sample, and
scores each on the training rows the sample did not draw (``harness.train_runs.on_undrawn``), never the
test table. A setting is ``ROW K folds``; each is compared with the same row at the shipped fold count
(``split.folds`` in params.yaml, 3), with a paired bootstrap interval over the undrawn rows. The report adds
what the default chose with each fold count, and for every candidate how far its cross-validated score fell
below what its final model scored on the undrawn rows (the folds' pessimism, per strategy).

The rule, fixed before the first run: 5 folds replace 3 if the default's mean over the seeds is
at least 1 point higher with 5 on both datasets at 8 per class, and ``default_run_cost.py`` then
keeps the 8-per-class run within 2x the previous default's time.

    .venv/bin/python benchmarks/fold_count.py                              # 8 per class, 3 seeds, about 25 min
    .venv/bin/python benchmarks/fold_count.py --settings '* 8 folds' '* 3 folds' --seeds 0

Results go to benchmarks/results/fold_count_grid.json and .md (benchmarks/README.md's figures came from this
study before the harness: benchmarks/results/fold_count.json and .md).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from harness import Setting, Study, main
from harness.text_datasets import DATASETS
from harness.train_runs import on_undrawn, shipped_params

ROWS = ("default", "linear_probe", "lexical_probe")  # the probes alone: seconds each, for their own folds' pessimism
SHIPPED = shipped_params()["split"]["folds"]
TRIED = 5
FOLDS = tuple(sorted({SHIPPED, TRIED, 8}))
RULE = 0.01  # the default with TRIED folds minus SHIPPED, mean over the seeds, on every dataset at 8 per class


def name(row: str, folds: int) -> str:
    return f"{row} {folds} folds"


SETTINGS = tuple(
    Setting(name(row, folds), {"split": {"folds": folds}, **({} if row == "default" else {"train": {"strategy": row}})})
    for folds in FOLDS
    for row in ROWS
)


def cross_validated(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: ``on_undrawn``, failing the cell unless the stage chose by cross-validation with the cell's folds."""
    result = on_undrawn(cell)
    details, folds = result["details"], cell["params"]["split"]["folds"]
    if details["model_selection"] != "cross_validation":
        raise RuntimeError(f"asked for {folds} folds, the train stage chose by {details['model_selection']}")
    ran = {len(score["fold_scores"]) for score in details["cross_validation"].values()}
    if ran != {folds}:
        raise RuntimeError(f"asked for {folds} folds, the train stage's cross-validation ran {sorted(ran)}")
    return result


def report(records: list[dict[str, Any]]) -> list[str]:
    """The default's choices with each fold count, the rule, and every candidate's cross-validated pessimism."""
    return [*choices(records), *pessimism(records)]


def choices(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset, size and fold count: the default's difference to the shipped fold count on each seed both ran,
    its seconds ratio and what it chose; then the rule."""
    runs = {(r["dataset"], r["size"], r["params"]["split"]["folds"], r["seed"]): r
            for r in records if r["setting"].startswith("default ")}  # fmt: skip
    if not runs:
        return []
    lines = [f"## The default with each fold count against {SHIPPED} folds", "",
             f"| dataset | per class | undrawn rows | folds | seeds | minus {SHIPPED} folds (per seed) "
             f"| seconds, / {SHIPPED} folds | chose (per seed) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    gaps: dict[tuple[str, int, int], float] = {}
    for dataset, size, folds in sorted(dict.fromkeys(key[:3] for key in runs)):
        ours = [record for key, record in sorted(runs.items()) if key[:3] == (dataset, size, folds)]
        shipped = [runs.get((dataset, size, SHIPPED, record["seed"])) for record in ours]
        pairs = [(record, other) for record, other in zip(ours, shipped, strict=True) if other]
        versus = "- | -"
        if folds != SHIPPED and pairs:
            differences = [a["score"]["macro_f1"] - b["score"]["macro_f1"] for a, b in pairs]
            gap = gaps[(dataset, size, folds)] = statistics.fmean(differences)
            ratio = statistics.fmean(a["seconds"] for a, _ in pairs) / statistics.fmean(b["seconds"] for _, b in pairs)
            versus = f"{gap:+.3f} ({', '.join(f'{d:+.3f}' for d in differences)}) | {ratio:.2f}"
        chose = ", ".join(r["details"]["chose"] for r in ours)
        undrawn = ours[0]["details"]["undrawn_rows"]
        lines.append(f"| {dataset} | {size} | {undrawn} | {folds} | {len(ours)} | {versus} | {chose} |")
    at_8 = {where: gap for where, gap in gaps.items() if where[1] == 8 and where[2] == TRIED}
    verdict = "met" if all(gap >= RULE for gap in at_8.values()) else "not met"
    if not at_8:
        verdict = f"not judged, the default did not run at 8 per class with both {TRIED} and {SHIPPED} folds"
    rule = f"Rule (at 8 per class, {TRIED} folds at least 1 point above {SHIPPED} on every dataset run): {verdict}."
    return [*lines, "", rule, ""]


def pessimism(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset, size, fold count and strategy: the mean of its cross-validated score minus its final model's
    undrawn score, over the runs whose final model is that strategy (a probe the default chose is its own row's)."""
    groups: dict[tuple[str, int, int, str], list[float]] = {}
    for record in records:
        details, row = record["details"], record["setting"].split(" ")[0]
        if row == "default" and details["chose"] in ROWS:
            continue
        key = (record["dataset"], record["size"], record["params"]["split"]["folds"], details["chose"])
        groups.setdefault(key, []).append(
            details["training_data_macro_f1"][details["chose"]] - record["score"]["macro_f1"]
        )
    lines = [
        "## How far each candidate's cross-validated score fell below its final model's undrawn score", "",
        "Cross-validated minus undrawn macro-F1, mean over the runs whose final model is that strategy "
        "(the default's choice, or the probe named alone); negative: the folds were pessimistic.", "",
        "| dataset | per class | folds | strategy | runs | cross-validated - undrawn |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {d} | {s} | {k} | {strategy} | {len(gaps)} | {statistics.fmean(gaps):+.3f} |"
              for (d, s, k, strategy), gaps in sorted(groups.items())]  # fmt: skip
    return [*lines, ""]


STUDY = Study(
    name="fold_count",
    title="Fold count: macro-F1 on the undrawn training rows",
    description=__doc__,
    worker="fold_count:cross_validated",
    datasets=tuple(DATASETS),
    settings=SETTINGS,
    sizes=(8,),
    seeds=(0, 1, 2),
    reference={s.name: name(s.name.split(" ")[0], SHIPPED) for s in SETTINGS},
    default_settings=tuple(name(row, folds) for folds in (TRIED, SHIPPED) for row in ROWS),
    sections=report,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
