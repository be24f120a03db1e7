"""Stage ``pseudo_label``: label the unlabelled examples the probe is sure of, for the train stage to add.

Off while ``paths.unlabelled`` holds no pool (the default): the stage records that in a second. With a pool
(``pool.csv``: a CSV of texts with the training data's text column, or an image manifest; for images also a
``pool/`` folder), read and checked as ``suggest-labels`` reads one, the frozen body encodes it and the labelled
training rows (through the feature cache), and ``tlpipe.self_training`` pseudo-labels it: a probe labels the rows
it is confident about and refits, at a threshold chosen on the labelled rows' folds, "off" among the candidates.
Pool examples that are already labelled, or in the test file, are left out.

The threshold is chosen once, on every labelled training row's folds. Under cross-validation (``prepare``'s folds)
each fold then gets rows from self-training at that threshold on its own training rows alone, so that no pseudo-label
a fold model trains on comes from a probe that saw the fold's held-out labels; with "off" chosen, no fold gets any.
The final model gets the rows of self-training on every labelled row. Choosing the threshold again inside every
fold would cost four times as much (about a minute a fold for 360 texts and 1,000 pool texts on 2 cores) for one
scalar chosen among five. Writes ``paths.pseudo_labels`` (``tlpipe.pseudo_labels``).

On five real datasets it helped on one and hurt on three (benchmarks/results/semi_supervised.md), and the folds
could not tell which, so ``auto`` never turns it on: it runs only where a pool is put.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tlpipe.artifacts import read_json
from tlpipe.config import DataConfig, ModelConfig, PathsConfig, PreprocessConfig, SplitConfig
from tlpipe.datasets import INPUT, LABEL, find_data, read_examples
from tlpipe.errors import DataValidationError
from tlpipe.modalities import get_modality
from tlpipe.modalities.base import Modality
from tlpipe.model_selection import Folds
from tlpipe.pseudo_labels import PseudoLabels, labelled_version
from tlpipe.self_training import SelfTraining, self_train, self_train_at
from tlpipe.stages.prepare import DATA_VERSION, FOLDS, LABELS, TEST, TRAIN, VALID

log = logging.getLogger(__name__)

POOL_FILES = ("pool.csv", "pool")


def run(
    paths: PathsConfig, data: DataConfig, model: ModelConfig, preprocess: PreprocessConfig, split: SplitConfig
) -> dict[str, Any]:
    """Pseudo-label the pool in ``paths.unlabelled`` into ``paths.pseudo_labels``; return the summary."""
    modality = get_modality(read_json(paths.prepared / DATA_VERSION, "prepare")["modality"])
    made_from = labelled_version(paths.prepared / TRAIN, paths.prepared / FOLDS)
    pool_path = find_data(paths.unlabelled, POOL_FILES, modality.reads_folders)
    if pool_path is None:
        reason = (
            f"{paths.unlabelled} has no unlabelled pool ({' or '.join(POOL_FILES)}), so nothing was pseudo-labelled. "
            "Put unlabelled examples there to self-train on them (docs/strategies.md: Unlabelled examples)."
        )
        PseudoLabels({"used": False, "reason": reason, "made_from": made_from}).write(paths.pseudo_labels)
        log.info("No unlabelled pool in %s: nothing to pseudo-label", paths.unlabelled)
        return {"used": False, "reason": reason}
    from tlpipe.frozen_features import frozen_encoder  # torch and the body: only when there is a pool to encode
    from tlpipe.sources import verify_snapshot

    manifest = verify_snapshot(paths.snapshot)
    modality.check_snapshot(paths.snapshot, manifest["source"])
    class_names: list[str] = read_json(paths.prepared / LABELS, "prepare")
    fit = read_examples(paths.prepared / TRAIN)
    known = pd.concat([fit, *(read_examples(paths.prepared / name) for name in (VALID, TEST))])[INPUT]
    pool, left_out = _new_examples(pool_path, modality, data, known.tolist())
    log.info("Self-training on %d unlabelled examples of %s (%d already labelled or in the test file left out)",
             len(pool), pool_path, left_out)  # fmt: skip
    encode = frozen_encoder(paths, model, preprocess, modality, manifest, len(class_names))
    features, pool_features = encode(fit[INPUT].tolist()), encode(pool)
    labels = np.array([class_names.index(label) for label in fit[LABEL]])
    final = self_train(features, labels.tolist(), pool_features, seed=split.seed)
    folds = Folds.read(paths.prepared / FOLDS)
    fold_results = []
    for fold in range(folds.folds if folds.cross_validates and final.threshold is not None else 0):
        rows = np.asarray(folds.fold_of_row) != fold
        log.info("Self-training for cross-validation fold %d of %d", fold + 1, folds.folds)
        fold_results.append(
            self_train_at(features[rows], labels[rows].tolist(), pool_features, final.threshold, seed=split.seed)
        )
    summary = {
        "used": True,
        "made_from": made_from,
        "pool": pool_path.as_posix(),
        "pool_examples": len(pool),
        "left_out": left_out,
        "threshold": final.threshold,
        "fold_scores": final.fold_scores,
        "pseudo_labels_per_class": {name: final.pseudo_labels.get(index, 0) for index, name in enumerate(class_names)},
        "folds": len(fold_results),
        "fold_pseudo_labels": [len(result.pseudo_labelled()) for result in fold_results],
        "description": final.describe(class_names),
    }
    tables = [_rows(result, pool, class_names) for result in fold_results]
    PseudoLabels(summary, _rows(final, pool, class_names), tuple(tables)).write(paths.pseudo_labels)
    log.info("%s -> %s", summary["description"], paths.pseudo_labels)
    return summary


def _new_examples(pool_path: Path, modality: Modality, data: DataConfig, known: list[Any]) -> tuple[list[Any], int]:
    """The pool's inputs, without those ``known`` holds (by content: the labelled and test inputs); how many were
    left out."""
    keys = {modality.content_key(item) for item in known}
    given = modality.read_pool(pool_path, data)
    pool = [item for item in given if modality.content_key(item) not in keys]
    if not pool:
        raise DataValidationError(
            f"{pool_path}: every example in it is already in the training or test data, so there is nothing to "
            "pseudo-label. Put examples without labels there, or remove the file to turn self-training off."
        )
    return pool, len(given) - len(pool)


def _rows(trained: SelfTraining, pool: list[Any], class_names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(pool[row], class_names[label]) for row, label in trained.pseudo_labelled()], columns=[INPUT, LABEL]
    )
