"""Which training labels look wrong: cleanlab's confident learning on out-of-fold probabilities.

Every labelled example gets a probability per class from a model that never saw it: a linear probe (logistic
regression on the L2-normalised frozen features, ``C`` chosen by inner cross-validation on the rows it trains on)
fitted on the other folds. ``cleanlab.filter.find_label_issues`` then flags the examples whose given label the
out-of-fold model finds implausible, given how confused each pair of classes is overall (Northcutt, Jiang and
Chuang, "Confident Learning", JAIR 2021), ranked by the probability of the given label, lowest first.

Near-duplicates that carry different labels are found by cleanlab's ``Datalab`` (its near-duplicate check on the
same normalised features: examples far closer to each other than examples usually are to their nearest
neighbour); exact duplicates never get this far, since ``validate`` refuses them.

Nothing here changes the data: the review is a list for a person to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tlpipe.transferability import fold_count, normalised, probe

GIVEN, SUGGESTED = "given_label", "suggested_label"
GIVEN_PROBABILITY, SUGGESTED_PROBABILITY = "given_label_probability", "suggested_label_probability"
DUPLICATE_SET, DUPLICATE_LABEL = "duplicate_set", "label"
NEIGHBOURS = 10  # Datalab's default k for its nearest-neighbour graph; fewer when there are fewer examples


@dataclass(frozen=True)
class LabelReview:
    """The suspect rows, most suspect first, and the counts behind them."""

    table: pd.DataFrame  # one row per suspect example: the input column, GIVEN, SUGGESTED and both probabilities
    examples: int
    per_class: dict[str, int]  # suspects per given label, every class listed
    folds: int
    # Near-duplicates labelled apart (DUPLICATE_SET, the input column, DUPLICATE_LABEL); None when not looked for.
    duplicates: pd.DataFrame | None = None

    def summary(self) -> dict[str, object]:
        conflicts = {} if self.duplicates is None else {
            "conflicting_duplicate_sets": int(self.duplicates[DUPLICATE_SET].nunique()),
            "conflicting_duplicate_examples": len(self.duplicates),
        }  # fmt: skip
        return {
            "examples": self.examples,
            "suspects": len(self.table),
            "suspects_per_class": self.per_class,
            "folds": self.folds,
            **conflicts,
            "method": "cleanlab.filter.find_label_issues on out-of-fold probabilities of a linear probe on the "
            "frozen body's normalised features; near-duplicates by cleanlab's Datalab on the same features "
            "(tlpipe.label_review)",
        }


def out_of_fold_probabilities(features: np.ndarray, labels: Sequence[int], seed: int = 0) -> np.ndarray:
    """(rows, classes) probabilities, each row's from a probe fitted on the folds it is not in.

    Raises ``ValueError`` when a class has fewer than 3 examples: each outer fold's training rows must hold at
    least 2 of every class for the inner folds that choose ``C``.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = np.asarray(labels)
    folds = fold_count(y)
    if folds < 3:
        raise ValueError("reviewing labels needs at least 3 examples in every class")
    inner = probe(max(2, min(3, folds - 1)), seed)
    outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(inner, normalised(features), y, cv=outer, method="predict_proba")


def conflicting_near_duplicates(features: np.ndarray, labels: Sequence[str]) -> list[tuple[int, ...]]:
    """The sets of rows cleanlab's ``Datalab`` finds to be near-duplicates of each other (on the normalised
    ``features``) whose ``labels`` are not all the same; each set's rows ascending, the sets by their first row."""
    import datasets
    import pyarrow as pa
    from cleanlab import Datalab

    label_ids = np.unique(np.asarray(labels), return_inverse=True)[1]
    # Given its fingerprint, the Dataset is not hashed: datasets 5.2 fails to hash one Datalab builds (pyproject.toml).
    table = datasets.Dataset(pa.table({DUPLICATE_LABEL: label_ids}), fingerprint="tlpipe-label-review")
    lab = Datalab(data=table, label_name=DUPLICATE_LABEL, verbosity=0)
    neighbours = min(NEIGHBOURS, len(label_ids) - 1)
    lab.find_issues(features=normalised(features), issue_types={"near_duplicate": {"k": neighbours}})
    issues = lab.get_issues("near_duplicate")
    sets = set()
    for row in np.flatnonzero(issues["is_near_duplicate_issue"].to_numpy()):
        members = tuple(sorted({int(row), *(int(other) for other in issues["near_duplicate_sets"].iloc[row])}))
        if len({labels[member] for member in members}) > 1:
            sets.add(members)
    return sorted(sets)


def review_labels(
    inputs: Sequence[str],
    labels: Sequence[str],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    input_column: str,
    folds: int,
    features: np.ndarray | None = None,
) -> LabelReview:
    """The examples cleanlab flags, most suspect first; ``probabilities`` columns follow ``class_names``. With
    ``features`` (one row per example), also the near-duplicates labelled apart (``conflicting_near_duplicates``)."""
    from cleanlab.filter import find_label_issues

    index = {name: position for position, name in enumerate(class_names)}
    given = np.array([index[label] for label in labels])
    # n_jobs=1: a few thousand rows take milliseconds, and a process pool forked inside the pipeline's process
    # (or a test worker's) is a hazard for what forks after it (DataLoader workers).
    flagged = find_label_issues(given, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    suggested = probabilities.argmax(axis=1)
    table = pd.DataFrame(
        {
            input_column: [inputs[i] for i in flagged],
            GIVEN: [labels[i] for i in flagged],
            SUGGESTED: [class_names[suggested[i]] for i in flagged],
            GIVEN_PROBABILITY: [round(float(probabilities[i, given[i]]), 4) for i in flagged],
            SUGGESTED_PROBABILITY: [round(float(probabilities[i, suggested[i]]), 4) for i in flagged],
        }
    )
    counts = table[GIVEN].value_counts()
    per_class = {name: int(counts.get(name, 0)) for name in class_names}
    duplicates = None
    if features is not None:
        sets = conflicting_near_duplicates(features, labels)
        duplicates = pd.DataFrame(
            [(number, inputs[row], labels[row]) for number, rows in enumerate(sets, 1) for row in rows],
            columns=[DUPLICATE_SET, input_column, DUPLICATE_LABEL],
        )
    return LabelReview(table, len(labels), per_class, folds, duplicates)
