"""Stage ``review_labels``: the training labels that look wrong, as a CSV to check in a spreadsheet.

After ``prepare`` and ``fetch-model``: the frozen body encodes every labelled training row (the prepared train and
validation tables, never the test split; features the linear probe cached are reused), a probe gives each row
out-of-fold probabilities, and cleanlab flags the rows whose given label they contradict (``tlpipe.label_review``).
Writes ``paths.label_review``: ``label_review.csv`` (the suspect rows, most suspect first: the input as the training
data gives it, the given and suggested labels, and their probabilities), ``conflicting_duplicates.csv``
(near-duplicate examples that carry different labels, numbered by set) and ``summary.json`` (counts, which the
model card shows). It never changes the data: fix the labels in the raw data and ``dvc repro`` reruns
what changed.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tlpipe.artifacts import atomic_directory, read_json, write_json, write_text
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, SplitConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.frozen_features import frozen_encoder
from tlpipe.label_review import (
    DUPLICATE_LABEL,
    DUPLICATE_SET,
    GIVEN,
    SUGGESTED,
    out_of_fold_probabilities,
    review_labels,
)
from tlpipe.modalities import get_modality
from tlpipe.sources import verify_snapshot
from tlpipe.stages.prepare import DATA_VERSION, LABELS, TRAIN, VALID
from tlpipe.transferability import fold_count

log = logging.getLogger(__name__)

SUSPECTS, DUPLICATES, SUMMARY = "label_review.csv", "conflicting_duplicates.csv", "summary.json"
MIN_PER_CLASS = 3  # out-of-fold probabilities with C chosen inside each fold (tlpipe.label_review)


def run(paths: PathsConfig, model: ModelConfig, preprocess: PreprocessConfig, split: SplitConfig) -> dict[str, Any]:
    """Review the labels of the prepared training rows; write the suspects and a summary; return the summary."""
    manifest = verify_snapshot(paths.snapshot)
    modality = get_modality(read_json(paths.prepared / DATA_VERSION, "prepare")["modality"])
    modality.check_snapshot(paths.snapshot, manifest["source"])
    class_names: list[str] = read_json(paths.prepared / LABELS, "prepare")
    labelled = pd.concat([read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / VALID)])
    inputs, labels = labelled[INPUT].tolist(), labelled[LABEL].tolist()
    if fold_count(labels) < MIN_PER_CLASS:
        return _skipped(paths, labels, class_names, modality.input_column)
    features = frozen_encoder(paths, model, preprocess, modality, manifest, len(class_names))(inputs)
    index = {name: position for position, name in enumerate(class_names)}
    probabilities = out_of_fold_probabilities(features, [index[label] for label in labels], split.seed)
    review = review_labels(
        inputs, labels, probabilities, class_names, modality.input_column, fold_count(labels), features
    )
    summary = {**review.summary(), "source": manifest["source"]}
    with atomic_directory(paths.label_review) as staging:
        write_text(staging / SUSPECTS, review.table.to_csv(index=False))
        write_text(staging / DUPLICATES, review.duplicates.to_csv(index=False))
        write_json(staging / SUMMARY, summary)
    log.info(
        "%d of %d training labels look wrong (%s): %s",
        len(review.table), review.examples,
        ", ".join(f"{name} {count}" for name, count in review.per_class.items() if count) or "none",
        paths.label_review / SUSPECTS,
    )  # fmt: skip
    if summary["conflicting_duplicate_sets"]:
        log.info(
            "%d sets of near-duplicate examples carry different labels: %s",
            summary["conflicting_duplicate_sets"], paths.label_review / DUPLICATES,
        )  # fmt: skip
    return summary


def _skipped(paths: PathsConfig, labels: list[str], class_names: list[str], input_column: str) -> dict[str, Any]:
    """An empty review that says why: a class too small to hold out (the stage must not stop the pipeline)."""
    fewest = min(labels.count(name) for name in class_names)
    reason = (
        f"skipped: a class has {fewest} training examples, and out-of-fold probabilities need at least "
        f"{MIN_PER_CLASS} in every class"
    )
    summary = {"examples": len(labels), "suspects": 0, "suspects_per_class": dict.fromkeys(class_names, 0),
               "skipped": reason}  # fmt: skip
    with atomic_directory(paths.label_review) as staging:
        write_text(staging / SUSPECTS, pd.DataFrame(columns=[input_column, GIVEN, SUGGESTED]).to_csv(index=False))
        write_text(
            staging / DUPLICATES,
            pd.DataFrame(columns=[DUPLICATE_SET, input_column, DUPLICATE_LABEL]).to_csv(index=False),
        )
        write_json(staging / SUMMARY, summary)
    log.warning("Label review %s.", reason)
    return summary
