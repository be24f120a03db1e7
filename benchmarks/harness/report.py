"""From cell records to the study's report: means and spreads over seeds, and paired bootstrap intervals.

The interval of a setting against its reference pools the seeds both ran, per dataset and size: every
(seed, row) pair where both predicted is one paired observation. Each resample draws those pairs with
replacement, the same draw for both settings, and takes the difference of their macro-F1
(``sklearn.metrics.f1_score``'s average="macro" over the classes of the pooled rows, computed from counts).
The percentile interval measures how much the scored rows alone could move the gap, not how much the seeds could.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


def by_dataset_and_size(
    rows: Iterable[tuple[str, int, dict[str, Any]]],
) -> list[tuple[tuple[str, int], list[dict[str, Any]]]]:
    """(dataset, size, figures) rows grouped by dataset and size, sorted: what a study's own report section reads."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for dataset, size, figures in rows:
        groups.setdefault((dataset, size), []).append(figures)
    return sorted(groups.items())


def summarise(records: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per dataset, size and setting: the seeds that ran, mean and std over them of ``metric``, mean seconds."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["size"], record["setting"]), []).append(record)
    summary = []
    for (dataset, size, setting), members in groups.items():
        done = [m for m in members if m["status"] == "ok"]
        scores = [m["score"][metric] for m in done]
        summary.append({
            "dataset": dataset, "size": size, "setting": setting, "seeds": [m["seed"] for m in done],
            "failed_seeds": [m["seed"] for m in members if m["status"] != "ok"],
            "mean": statistics.fmean(scores) if scores else None,
            "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
            "seconds_mean": statistics.fmean(m["seconds"] for m in done) if done else None,
        })  # fmt: skip
    return summary


def paired_bootstrap(
    actual: Sequence[Any],
    predicted: Sequence[Any],
    reference: Sequence[Any],
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Macro-F1 of ``predicted`` minus that of ``reference`` on the same rows, and its paired bootstrap
    percentile interval at ``confidence``: (difference, low, high)."""
    truth, ours, theirs = (np.asarray(values) for values in (actual, predicted, reference))
    labels = np.unique(truth)
    truth_ids, our_ids, their_ids = (_class_ids(values, labels) for values in (truth, ours, theirs))

    def difference(rows: np.ndarray) -> float:
        return _macro_f1(truth_ids[rows], our_ids[rows], len(labels)) - _macro_f1(
            truth_ids[rows], their_ids[rows], len(labels)
        )

    rng = np.random.default_rng(seed)
    draws = [difference(rng.integers(0, len(truth), len(truth))) for _ in range(resamples)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return difference(np.arange(len(truth))), float(low), float(high)


def compare(
    records: Sequence[dict[str, Any]],
    reference_of: Callable[[str], str],
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> list[dict[str, Any]]:
    """Per dataset, size and setting other than its reference: the paired bootstrap over the pooled rows of the
    seeds where both ran and kept predictions."""
    kept = {(r["dataset"], r["size"], r["setting"], r["seed"]): r for r in records if _predicted(r)}
    comparisons = []
    for dataset, size, setting in dict.fromkeys(key[:3] for key in kept):
        reference = reference_of(setting)
        seeds = sorted(s for d, z, name, s in kept if (d, z, name) == (dataset, size, setting)
                       and (dataset, size, reference, s) in kept)  # fmt: skip
        if setting == reference or not seeds:
            continue
        pairs = [(kept[(dataset, size, setting, s)], kept[(dataset, size, reference, s)]) for s in seeds]
        if any(ours["actual"] != theirs["actual"] for ours, theirs in pairs):
            raise ValueError(f"{dataset} {size}/class: {setting} and {reference} were scored on different rows")
        actual = [label for ours, _ in pairs for label in ours["actual"]]
        ours = [label for record, _ in pairs for label in record["predictions"]]
        theirs = [label for _, record in pairs for label in record["predictions"]]
        point, low, high = paired_bootstrap(actual, ours, theirs, resamples, confidence)
        comparisons.append({"dataset": dataset, "size": size, "setting": setting, "reference": reference,
                            "seeds": seeds, "rows": len(actual), "difference": point, "low": low, "high": high,
                            "confidence": confidence, "resamples": resamples})  # fmt: skip
    return comparisons


def markdown(
    title: str,
    metric: str,
    summary: Sequence[dict[str, Any]],
    comparisons: Sequence[dict[str, Any]],
    failures: Sequence[dict[str, Any]],
    reference_of: Callable[[str], str],
    sections: Iterable[str] = (),
) -> str:
    """One table per dataset: each size and setting's mean ± std over seeds, seconds, and the difference to its
    reference with the paired interval (``*`` where it excludes 0); then failures and the study's sections."""
    lines = [f"# {title}", ""]
    found = {(c["dataset"], c["size"], c["setting"]): c for c in comparisons}
    means = {(s["dataset"], s["size"], s["setting"]): s["mean"] for s in summary}
    for dataset in dict.fromkeys(item["dataset"] for item in summary):
        level = next((c["confidence"] for c in comparisons), CONFIDENCE)
        lines += [
            f"## {dataset}", "",
            f"{metric}: mean ± std over seeds; seconds: the worker's mean wall time; difference: points of "
            f"macro-F1 against the reference, paired bootstrap {level:.0%} interval over the pooled rows.", "",
            "| per class | setting | seeds | " + metric + " | seconds | reference | difference [interval] |",
            "|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for item in sorted((s for s in summary if s["dataset"] == dataset), key=lambda s: s["size"]):
            key = (dataset, item["size"], item["setting"])
            reference = reference_of(item["setting"])
            if reference == item["setting"]:
                versus = "- | -"
            else:
                reference_mean = means.get((dataset, item["size"], reference))
                versus = f"{reference} | {_difference(found.get(key), means.get(key), reference_mean)}"
            lines.append(
                f"| {item['size']} | {item['setting']} | {_seeds(item)} | {_mean(item)} | "
                f"{_number(item['seconds_mean'], '.1f')} | {versus} |"
            )
        lines.append("")
    if failures:
        lines += ["## Failed cells", "", "| dataset | per class | setting | seed | error |", "|---|---|---|---|---|"]
        lines += [f"| {f['dataset']} | {f['size']} | {f['setting']} | {f['seed']} | {f['error']} |" for f in failures]
        lines.append("")
    return "\n".join([*lines, *sections]).rstrip("\n") + "\n"


def _class_ids(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each value's index in the sorted ``labels``, or ``len(labels)`` for a value that is not one of them."""
    index = np.clip(np.searchsorted(labels, values), 0, len(labels) - 1)
    return np.where(labels[index] == values, index, len(labels))


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """``f1_score(average="macro", zero_division=0)`` over classes ``0 .. classes - 1`` of class ids, in counts:
    the bootstrap calls it thousands of times per comparison, where scikit-learn's checks cost minutes."""
    hits = np.bincount(truth[truth == predicted], minlength=classes + 1)[:classes]
    support = (
        np.bincount(truth, minlength=classes + 1)[:classes] + np.bincount(predicted, minlength=classes + 1)[:classes]
    )
    scores = np.divide(2 * hits, support, out=np.zeros(classes), where=support > 0)
    return float(scores.mean())


def _predicted(record: Mapping[str, Any]) -> bool:
    return record["status"] == "ok" and bool(record.get("predictions"))


def _seeds(item: Mapping[str, Any]) -> str:
    failed = f" ({len(item['failed_seeds'])} failed)" if item["failed_seeds"] else ""
    return f"{len(item['seeds'])}{failed}"


def _mean(item: Mapping[str, Any]) -> str:
    return "-" if item["mean"] is None else f"{item['mean']:.3f} ± {item['std']:.3f}"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _difference(found: Mapping[str, Any] | None, mean: float | None, reference_mean: float | None) -> str:
    if found:
        mark = "*" if found["low"] > 0 or found["high"] < 0 else ""
        return f"{100 * found['difference']:+.1f} [{100 * found['low']:+.1f}, {100 * found['high']:+.1f}]{mark}"
    if mean is None or reference_mean is None:
        return "-"
    return f"{100 * (mean - reference_mean):+.1f} (means; no predictions to pair)"
