"""How many folds should choose? ``split.folds`` against 3, judged on training rows.

Two questions, each with its rule fixed before its first run.

**Fewer labels, more folds?** With 8 labelled examples per class, each of 3 folds trains on about 5 per class
and validates on about 3, so cross-validation scores every candidate at two thirds of the data the final model
gets. A strategy that gains more from the last few labels than the others (the lexical probe, whose wordpiece
channel needs to have seen a word to use it) is ranked too low. More folds train each fold closer to the final
size, at one more run of every candidate for each fold added. Rule: 5 folds replace 3 if the default's mean
over the seeds is at least 1 point higher with 5 on every dataset run at 8 per class (asked on the project's
two datasets before the real suite existed: not met).

**More labels, fewer folds?** From ``train.auto.few_labels_below`` (40) per class, ``auto`` fine-tunes the
whole body (freeze_unfreeze) in every fold, and the folds are most of the train stage's time: 3 folds train
three models on two thirds of the data each before the final one trains on all of it; 2 folds train two on
half. With this many labels each fold still validates on dozens of examples a class. Rule: 2 folds replace 3
from 40 labels per class if, at 64 per class on every real text dataset run (``harness/text_datasets.py``'s
``REAL``), the default's mean over the seeds with 2 folds is at most 0.5 points below its mean with 3, and its
train stage takes at most 0.8 of the time.

**Which candidate, when the folds cannot tell?** ``auto`` keeps the candidate with the best mean fold score, even
where the next one is inside the folds' spread (issue 30). The one-standard-error rule (Hastie, Tibshirani and
Friedman, ESL 7.10; what ``tlpipe.transferability`` does for bodies) keeps the cheapest candidate whose mean is
within one standard error (fold std / sqrt(k)) of the best one's. Each candidate also runs named alone on the same
sample and folds, so what either rule would have kept is scored on the undrawn rows, and "cheapest" is its
measured train stage. Rule: the one-standard-error rule replaces the best mean if, over the real datasets run,
its mean undrawn score is at least the best mean's and on no dataset more than 1 point below it. The report also
says, as a measurement and not a rule, what the best mean would keep without freeze_unfreeze among the candidates
(``WITHOUT``), and how much longer freeze_unfreeze trains than the probes.

For each dataset, size and seed, this study runs the default (params.yaml as shipped) and each candidate named
alone with each fold count on the same labelled sample, and scores each on the training rows the sample did not
draw (``harness.train_runs.on_undrawn``), never the test table. A setting is ``ROW K folds``; each is compared
with the same row at 3 folds (what ``split.folds: auto`` gives below 40 labels a class), with a paired bootstrap
interval over the undrawn rows. The report adds what the default chose with each fold count, and for every
candidate how far its cross-validated score fell below what its final model scored on the undrawn rows (the
folds' pessimism, per strategy).

    .venv/bin/python benchmarks/fold_count.py --datasets support_tickets work_requests   # 8 per class, 3 seeds, 25 min
    .venv/bin/python benchmarks/fold_count.py --datasets rotten_tomatoes spam_assassin reuters_r8 --sizes 64 \
        --settings 'default 2 folds' 'default 3 folds' --out benchmarks/results/fold_count_many_labels.json
    .venv/bin/python benchmarks/fold_count.py --datasets rotten_tomatoes spam_assassin reuters_r8 --sizes 64 \
        --settings '* 2 folds' --out benchmarks/results/fold_count_choice_rules.json

Results go to benchmarks/results/fold_count_grid.json and .md, or ``--out`` (benchmarks/README.md's
first figures came from this study before the harness: benchmarks/results/fold_count.json and .md).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from harness import Setting, Study, main
from harness.text_datasets import DATASETS, REAL
from harness.train_runs import on_undrawn

ROWS = ("default", "linear_probe", "lexical_probe", "freeze_unfreeze")  # candidates alone: their own scores and seconds
SHIPPED = 3  # what split.folds (auto) gives below 40 labels a class, and gave everywhere before: the reference
TRIED = 5
FEWER = 2  # from MANY_LABELS per class
WITHOUT = "freeze_unfreeze"  # the costly candidate: what would auto keep without it?
MANY_LABELS = 64
FOLDS = tuple(sorted({FEWER, SHIPPED, TRIED, 8}))
RULE = 0.01  # the default with TRIED folds minus SHIPPED, mean over the seeds, on every dataset at 8 per class
FEWER_RULE = (-0.005, 0.8)  # FEWER folds minus SHIPPED at least this, at most this share of the time, at MANY_LABELS


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
    return [*choices(records), *pessimism(records), *choice_rules(records)]


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
    return [*lines, "", rule, "", fewer_folds_rule(runs, gaps), ""]


def fewer_folds_rule(runs: Mapping[tuple[str, int, int, int], dict[str, Any]], gaps: Mapping[Any, float]) -> str:
    """The verdict of the many-label rule on the real datasets run with both fold counts at MANY_LABELS."""
    floor, time_share = FEWER_RULE
    judged = {dataset for dataset, size, folds in gaps if size == MANY_LABELS and folds == FEWER and dataset in REAL}
    shares = {}
    for dataset in judged:
        ours = {seed: record for (d, size, folds, seed), record in runs.items()
                if (d, size, folds) == (dataset, MANY_LABELS, FEWER)}  # fmt: skip
        pairs = [(record, runs[dataset, MANY_LABELS, SHIPPED, seed]) for seed, record in ours.items()
                 if (dataset, MANY_LABELS, SHIPPED, seed) in runs]  # fmt: skip
        shares[dataset] = sum(_train_seconds(a) for a, _ in pairs) / sum(_train_seconds(b) for _, b in pairs)
    verdict = "met" if judged and all(
        gaps[(dataset, MANY_LABELS, FEWER)] >= floor and shares[dataset] <= time_share for dataset in judged
    ) else "not met"  # fmt: skip
    if not judged:
        verdict = f"not judged, no real dataset ran at {MANY_LABELS} per class with both {FEWER} and {SHIPPED} folds"
    measured = ", ".join(f"{d} {gaps[(d, MANY_LABELS, FEWER)]:+.3f} in {shares[d]:.2f} of the time"
                         for d in sorted(judged))  # fmt: skip
    return (f"Rule (from {MANY_LABELS} per class, {FEWER} folds at most {-floor * 100:.1f} points below {SHIPPED} "
            f"in at most {time_share:.1f} of the train stage's time on every real dataset run): {verdict}"
            + (f" ({measured})." if measured else "."))  # fmt: skip


def _train_seconds(record: Mapping[str, Any]) -> float:
    return record["details"].get("train_seconds", record["seconds"])


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


def choice_rules(records: list[dict[str, Any]]) -> list[str]:
    """Per dataset, size and fold count: the undrawn score of what the best mean and the one-standard-error rule keep
    among the default's candidates, each scored by that candidate's own row on the same seed; then the rule."""
    own = {(r["dataset"], r["size"], r["params"]["split"]["folds"], r["seed"], r["setting"].split(" ")[0]): r
           for r in records if not r["setting"].startswith("default ")}  # fmt: skip
    seconds: dict[tuple[str, int, int, str], list[float]] = {}
    for (dataset, size, folds, _, strategy), record in own.items():
        seconds.setdefault((dataset, size, folds, strategy), []).append(_train_seconds(record))
    groups: dict[tuple[str, int, int], list[tuple[str, str, float, float]]] = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        if not record["setting"].startswith("default "):
            continue
        where = (record["dataset"], record["size"], record["params"]["split"]["folds"])
        scores = record["details"].get("cross_validation") or {}
        if not scores or not all((*where, record["seed"], strategy) in own for strategy in scores):
            continue
        cost = {strategy: statistics.fmean(seconds[(*where, strategy)]) for strategy in scores}
        best = max(scores, key=lambda strategy: scores[strategy]["mean"])
        bar = scores[best]["mean"] - scores[best]["std"] / len(scores[best]["fold_scores"]) ** 0.5
        cheapest = min((s for s in scores if scores[s]["mean"] >= bar), key=lambda strategy: cost[strategy])
        kept_without = max((s for s in scores if s != WITHOUT), key=lambda strategy: scores[strategy]["mean"])
        undrawn = {strategy: own[(*where, record["seed"], strategy)]["score"]["macro_f1"] for strategy in scores}
        rules = (best, cheapest, kept_without)
        groups.setdefault(where, []).append((*rules, *(undrawn[strategy] for strategy in rules)))
    if not groups:
        return []
    lines = ["## Which candidate to keep: the best mean fold score, or the cheapest within one standard error", "",
             "Undrawn macro-F1 of what each rule keeps (mean over seeds), each candidate scored by its own row. "
             f"The last two columns measure and decide nothing: what the best mean keeps when {WITHOUT} is not a "
             f"candidate, and how many times longer {WITHOUT}'s own row trains than the slowest other candidate's "
             "(each trained once on all labels).", "",
             "| dataset | per class | folds | seeds | best mean (kept) | one standard error (kept) | difference "
             f"| without {WITHOUT} (kept), minus best mean | seconds alone, {WITHOUT} / slowest other |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    differences: dict[str, list[float]] = {}
    for (dataset, size, folds), runs in sorted(groups.items()):
        best_mean, one_se, without = (statistics.fmean(r[rule] for r in runs) for rule in (3, 4, 5))
        if dataset in REAL:
            differences.setdefault(dataset, []).append(one_se - best_mean)
        kept = [", ".join(r[rule] for r in runs) for rule in (0, 1, 2)]
        alone = {s: statistics.fmean(t) for (d, z, k, s), t in seconds.items() if (d, z, k) == (dataset, size, folds)}
        others = max((t for s, t in alone.items() if s != WITHOUT), default=0.0)
        ratio = f"{alone[WITHOUT] / others:.1f}" if WITHOUT in alone and others else "-"
        lines.append(f"| {dataset} | {size} | {folds} | {len(runs)} | {best_mean:.3f} ({kept[0]}) "
                     f"| {one_se:.3f} ({kept[1]}) | {one_se - best_mean:+.3f} "
                     f"| {without:.3f} ({kept[2]}), {without - best_mean:+.3f} | {ratio} |")  # fmt: skip
    gaps = {dataset: statistics.fmean(values) for dataset, values in differences.items()}
    met = bool(gaps) and statistics.fmean(gaps.values()) >= 0 and min(gaps.values()) >= -0.01
    verdict = ("not judged, no real dataset ran every candidate alone" if not gaps else
               f"{'met' if met else 'not met'} (mean {statistics.fmean(gaps.values()):+.3f}, lowest "
               f"{min(gaps.values()):+.3f})")  # fmt: skip
    return [*lines, "", f"Rule (one standard error at least level with the best mean over the real datasets, and on "
            f"none more than 1 point below): {verdict}.", ""]  # fmt: skip


STUDY = Study(
    name="fold_count",
    title="Fold count: macro-F1 on the undrawn training rows",
    description=__doc__,
    worker="fold_count:cross_validated",
    datasets=(*DATASETS, *REAL),
    settings=SETTINGS,
    sizes=(8,),
    seeds=(0, 1, 2),
    reference={s.name: name(s.name.split(" ")[0], SHIPPED) for s in SETTINGS},
    default_settings=tuple(name(row, folds) for folds in (TRIED, SHIPPED) for row in ROWS),
    sections=report,
)

if __name__ == "__main__":
    raise SystemExit(main(STUDY))
