"""How training settings are chosen without the test split: k-fold cross-validation when labels are few.

With a few examples per class, a held-out validation split leaves one or two examples of a class
to choose the epoch and the strategy (mostly noise) and keeps a fifth of the labels out of the
final model. So when the smallest class has fewer than ``split.cross_validate_below`` labelled
examples, ``prepare`` assigns every example to one of ``split.folds`` stratified, seeded folds
instead of holding some out; ``train`` trains each candidate strategy once per fold (the other
folds train, the fold validates), chooses the strategy and the number of epochs with the best
mean validation macro-F1 over the folds, and trains the final model on every example with them.
With enough labels the held-out split stays, because one run is cheaper.

How many folds: ``split.folds``, or with ``auto`` (the default) 3, and 2 once the smallest class has
``FEWER_FOLDS_FROM`` (40) labelled examples. From there ``auto`` fine-tunes the whole body in every fold, and the
folds are most of the train stage; each of 2 folds still validates on 20 or more examples a class. On the real
texts at 64 per class, 2 folds chose as well as 3 on the training rows the samples left out, in less of the
time (``benchmarks/fold_count.py``, ``benchmarks/results/fold_count_many_labels.md``).

The threshold is the modality's unless params.yaml sets one. For texts it is 100, which puts the
whole few-shot range under cross-validation. Where it could fall, ``benchmarks/cross_validate_below.py``
runs the default both ways on the same labelled sample and scores each on the training rows that
the sample left out: holding out a fifth of the labels cost the final model several points on the
work requests at 64 per class and little on the tickets at 48 per class, while cross-validation
made the train stage longer (``benchmarks/results/cross_validate_below.md``). Images keep 20,
unmeasured: each of their folds + 1 runs fine-tunes a CNN.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sklearn.model_selection import StratifiedKFold

from tlpipe.artifacts import read_json, write_json
from tlpipe.config import SplitConfig
from tlpipe.datasets import LABEL, stratified_split
from tlpipe.errors import DataError
from tlpipe.wording import counted

EpochRecord = dict[str, Any]


@dataclass(frozen=True)
class Folds:
    """How ``prepare`` left the labelled data for model selection, and why.

    ``fold_of_row[i]`` is the fold of row ``i`` of the prepared train table (cross-validation), or
    empty when a held-out validation table chooses (holdout).
    """

    method: Literal["cross_validation", "holdout"]
    folds: int
    cross_validate_below: int
    smallest_class: int
    seed: int
    fold_of_row: list[int] = field(default_factory=list)

    @property
    def cross_validates(self) -> bool:
        return self.method == "cross_validation"

    @property
    def reason(self) -> str:
        if self.cross_validates:
            return (
                f"The smallest class has {counted(self.smallest_class, 'labelled example')}, fewer than "
                f"split.cross_validate_below ({self.cross_validate_below}): settings were chosen by {self.folds}-fold "
                "cross-validation, and the final model trained on every example."
            )
        return (
            f"The smallest class has {counted(self.smallest_class, 'labelled example')} (split.cross_validate_below is "
            f"{self.cross_validate_below}): settings were chosen on a held-out validation split."
        )

    def split(self, table: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(training rows, validation rows) of ``table`` for ``fold``: the fold validates, the others train."""
        held_out = pd.Series(self.fold_of_row, index=table.index) == fold
        return table[~held_out].reset_index(drop=True), table[held_out].reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """Everything but the per-row assignment: for data.json, the metrics and the model card."""
        return {key: value for key, value in asdict(self).items() if key != "fold_of_row"} | {"reason": self.reason}

    def write(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> Folds:
        return cls(**read_json(path, "prepare"))


def with_threshold(split: SplitConfig, modality_threshold: int) -> SplitConfig:
    """``split`` as it applies: a null ``cross_validate_below`` is the modality's threshold."""
    if split.cross_validate_below is not None:
        return split
    return split.model_copy(update={"cross_validate_below": modality_threshold})


FEWER_FOLDS_FROM = 40  # smallest class from which split.folds auto is 2 rather than 3 (benchmarks/fold_count.py)


def fold_count(split: SplitConfig, smallest_class: int) -> int:
    """k for ``split``: ``split.folds``, or under ``auto`` 3 below ``FEWER_FOLDS_FROM`` labels a class, else 2."""
    if split.folds != "auto":
        return split.folds
    return 2 if smallest_class >= FEWER_FOLDS_FROM else 3


def assign_folds(train: pd.DataFrame, split: SplitConfig) -> Folds:
    """Cross-validation folds for ``train`` when its smallest class is below the threshold, else holdout.

    Raises ``DataError`` when a class has fewer examples than folds: some fold would not see it.
    """
    if split.cross_validate_below is None:
        raise ValueError("split.cross_validate_below is null: resolve it with with_threshold() first")
    counts = train[LABEL].value_counts()
    smallest = int(counts.min())
    folds = fold_count(split, smallest)
    settings = {"folds": folds, "cross_validate_below": split.cross_validate_below, "seed": split.seed}
    if smallest >= split.cross_validate_below:
        return Folds("holdout", smallest_class=smallest, **settings)
    if smallest < folds:
        few = ", ".join(f"'{label}' ({count})" for label, count in counts[counts < folds].items())
        raise DataError(
            f"split.folds is {split.folds}" + (f" ({folds} folds)" if split.folds == "auto" else "") + f", but {few} "
            "have fewer labelled examples than that, so some fold would not see them. Lower split.folds in params.yaml "
            "(at least 2), or add examples to those classes."
        )
    fold_of_row = [0] * len(train)
    stratified = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split.seed)
    for fold, (_, held_out) in enumerate(stratified.split(train, train[LABEL])):
        for row in held_out:
            fold_of_row[row] = fold
    return Folds("cross_validation", smallest_class=smallest, fold_of_row=fold_of_row, **settings)


def selection_tables(train: pd.DataFrame, split: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame, Folds]:
    """The train and validation tables ``prepare`` writes, and the folds: under cross-validation every labelled
    example is in the train table and the validation table is empty."""
    folds = assign_folds(train, split)
    if folds.cross_validates:
        return train, train.iloc[:0], folds
    fit, valid = stratified_split(train, split)
    return fit, valid, folds


@dataclass(frozen=True)
class CrossValidated:
    """One strategy's cross-validation: the epochs chosen, and the folds' validation macro-F1 at them."""

    strategy: str
    epochs: int
    fold_scores: list[float]
    mean_by_epoch: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.fold_scores)

    @property
    def std(self) -> float:
        return statistics.stdev(self.fold_scores) if len(self.fold_scores) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "std": self.std}


def choose_epochs(strategy: str, fold_histories: Sequence[Sequence[EpochRecord]]) -> CrossValidated:
    """The epoch count with the best mean validation macro-F1 over the folds; ties go to fewer epochs.

    Only epochs every fold reached count (early stopping can end folds at different epochs), and
    only those of the last phase every fold started: a freeze-then-unfreeze run stopped before it
    unfreezes would be another strategy (the linear probe) under this one's name.
    """
    if not fold_histories or not all(fold_histories):
        raise ValueError(f"{strategy}: every fold needs at least one trained epoch to choose from")
    reached = min(len(history) for history in fold_histories)
    mean_by_epoch = [
        statistics.fmean(history[epoch]["valid_macro_f1"] for history in fold_histories) for epoch in range(reached)
    ]
    last_phase = fold_histories[0][reached - 1]["phase"]
    allowed = [epoch for epoch in range(reached) if fold_histories[0][epoch]["phase"] == last_phase]
    best = max(allowed, key=lambda epoch: (mean_by_epoch[epoch], -epoch))
    return CrossValidated(
        strategy=strategy,
        epochs=best + 1,
        fold_scores=[history[best]["valid_macro_f1"] for history in fold_histories],
        mean_by_epoch=mean_by_epoch,
    )
