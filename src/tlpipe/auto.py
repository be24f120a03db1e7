"""``train.strategy: auto``: choose the transfer strategy from the data, and say why.

Each modality measures its own rule (``Modality.auto_rule``: the text one in
``tlpipe.modalities.text.modality``, with its evidence). The fewest training examples any class has
decides between the rule's two picks. Where it is cheap and the validation split is large enough to
tell strategies apart, the strategies in ``auto.compare`` (null: the rule's ``compare``, and the
companions of its pick) are trained too, and the best on validation macro-F1 (or cross-validated
macro-F1, with few labels) is kept; ties go to the rule's choice. Each strategy runs with its recipe
for the modality (``tlpipe.strategies.recipes``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tlpipe.config import TrainConfig
from tlpipe.wording import counted


@dataclass(frozen=True)
class AutoRule:
    """What ``auto`` picks for one modality: ``few`` when a class has fewer than ``auto.few_labels_below``
    training examples, else ``many``. ``evidence`` names the benchmark.
    ``compare``: what else is trained and scored, unless params.yaml names its own ``auto.compare``;
    ``companions``: per choice, strategies scored with it because they reuse its costly part (the tuned body)."""

    few: str
    many: str
    evidence: str
    compare: tuple[str, ...] = ()
    companions: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class StrategyPlan:
    """The strategies to train, the rule's choice first, and why (``rule``; ``reason`` adds the comparison)."""

    requested: str
    candidates: list[str]
    rule: str
    fewest_train_per_class: int
    fewest_valid_per_class: int
    validation_macro_f1: dict[str, float] = field(default_factory=dict)
    chosen: str = ""
    reason: str = ""
    cross_validation: dict[str, Any] = field(default_factory=dict)  # per strategy, when folds chose (model_selection)

    def __post_init__(self) -> None:
        self.reason = self.reason or self.rule

    def settle(self, scores: dict[str, float], scored_by: str = "Validation macro-F1") -> str:
        """Record each candidate's validation macro-F1 (best epoch, or cross-validated) and choose the highest;
        ties go to the earlier."""
        self.validation_macro_f1 = dict(scores)
        self.chosen = max(self.candidates, key=lambda name: (scores[name], -self.candidates.index(name)))
        if len(self.candidates) > 1:
            ranked = ", ".join(f"{name} {scores[name]:.4f}" for name in self.candidates)
            self.reason = f"{self.rule} {scored_by}: {ranked}; kept {self.chosen}."
        return self.chosen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_strategy(
    train: TrainConfig, train_labels: Sequence[Any], valid_labels: Sequence[Any], rule: AutoRule
) -> StrategyPlan:
    """Which strategies to train for ``train.strategy`` on data with these labels; a named strategy is kept as is."""
    fewest_train = min(Counter(train_labels).values())
    valid_counts = Counter(valid_labels)
    fewest_valid = min(valid_counts.get(label, 0) for label in set(train_labels))
    if train.strategy != "auto":
        return StrategyPlan(
            train.strategy, [train.strategy], "set in params.yaml", fewest_train, fewest_valid, chosen=train.strategy
        )
    settings = train.auto
    if fewest_train < settings.few_labels_below:
        main = rule.few
        reason = (
            f"The smallest class has {counted(fewest_train, 'training example')}, fewer than auto.few_labels_below "
            f"({settings.few_labels_below}): {main} did best with so few labels ({rule.evidence})."
        )
    else:
        main = rule.many
        reason = (
            f"Every class has at least {counted(fewest_train, 'training example')} (auto.few_labels_below is "
            f"{settings.few_labels_below}): {main} did best with this many ({rule.evidence})."
        )
    compare = (*rule.companions.get(main, ()), *rule.compare) if settings.compare is None else settings.compare
    extra = [name for name in dict.fromkeys(compare) if name != main]
    if extra and fewest_valid < settings.compare_min_valid_per_class:
        reason += (
            f" Not compared with {', '.join(extra)}: the smallest class has "
            f"{counted(fewest_valid, 'validation example')}, fewer than auto.compare_min_valid_per_class "
            f"({settings.compare_min_valid_per_class})."
        )
        extra = []
    return StrategyPlan("auto", [main, *extra], reason, fewest_train, fewest_valid)
