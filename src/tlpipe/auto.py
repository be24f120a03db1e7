"""``train.strategy: auto``: choose the transfer strategy from the data, and say why.

The rule is measured on training labels only, on two datasets (the demo's support tickets and
the transfer demo's work requests): ``benchmarks/few_shot.py`` reports the scores the train stage
chose with, and contrastive tuning of the body (SetFit) was favoured over a linear probe and a
full fine-tune at 8, 16 and 32 examples per class on both; ``benchmarks/recipes.py``
cross-validates each recipe at 64 per class, where freeze-then-unfreeze (with its learning rate
from that script) matched a full fine-tune's recipe on the tickets and beat it and the linear
probe on the work requests. So the fewest training examples any class has decides between the
two. Where it is cheap and the validation split is large enough to tell strategies apart, the
strategies in ``auto.compare`` (null: the rule's ``compare``; for texts the linear probe and the
lexical probe, seconds each on cached features) are trained too and the best on validation
macro-F1 is kept; ties go to the rule's choice. The lexical probe is there for labels that hang
on words the public encoder never saw: cross-validated at 64 per class (``recipes.py``) it scored
above the linear probe on both datasets (beyond the folds' spread on the work requests) and above
freeze_unfreeze on the work requests. With contrastive, its companion ``lexical_contrastive`` is
scored too: it reuses each fold's tuned body (``tlpipe.tuned_bodies``), so it costs a head, and
on both datasets the folds chose it on 1 to 3 seeds of 3 at 16 and 32 per class and ranked it
below contrastive at 8 (``few_shot.py``), so neither is the rule's alone: the folds decide.

Each strategy runs with its recipe, whether ``auto`` chose it or params.yaml names it: the epochs
and learning rates it was benchmarked with, since a head-only strategy wants many more epochs
and a higher learning rate than one that trains the body. A recipe key set in params.yaml (not
null) overrides the recipe; every other setting (batch size, seed, regularisation, pairs,
device) is the user's. The train stage records the settings it ran with and which came from the
recipe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tlpipe.config import TrainConfig

RECIPES: dict[str, dict[str, Any]] = {
    "linear_probe": {"epochs": 30, "head_learning_rate": 1e-2, "layer_decay": 1.0},
    "lexical_probe": {"epochs": 30, "head_learning_rate": 1e-2, "layer_decay": 1.0},
    "contrastive": {"epochs": 30, "learning_rate": 2e-5, "head_learning_rate": 1e-2, "layer_decay": 1.0},
    "lexical_contrastive": {"epochs": 30, "learning_rate": 2e-5, "head_learning_rate": 1e-2, "layer_decay": 1.0},
    "freeze_unfreeze": {
        "epochs": 5,
        "learning_rate": 1e-4,  # beat 5e-5 beyond the folds' spread on both datasets (recipes.py seed 0; seed 1 agreed)
        "head_learning_rate": 1e-3,
        "layer_decay": 0.8,
        "freeze_unfreeze": {"head_epochs": 1},
    },
    "full": {"epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "layer_decay": 1.0},
    "gradual_unfreeze": {"epochs": 8, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "layer_decay": 1.0},
    "scratch": {"epochs": 5, "learning_rate": 5e-5, "head_learning_rate": 1e-3, "layer_decay": 1.0},
}


# The settings whose good values depend on the strategy: a head-only strategy wants many more epochs and a
# higher learning rate than one that trains the body.
RECIPE_KEYS = ("epochs", "learning_rate", "head_learning_rate", "layer_decay", "freeze_unfreeze.head_epochs")


@dataclass(frozen=True)
class AutoRule:
    """What ``auto`` picks for one modality: ``few`` when a class has fewer than ``auto.few_labels_below``
    training examples, else ``many``; each strategy with its measured recipe. ``evidence`` names the benchmark.
    ``compare``: what else is trained and scored, unless params.yaml names its own ``auto.compare``;
    ``companions``: per choice, strategies scored with it because they reuse its costly part (the tuned body)."""

    few: str
    many: str
    recipes: dict[str, dict[str, Any]]
    evidence: str
    compare: tuple[str, ...] = ("linear_probe",)
    companions: dict[str, tuple[str, ...]] = field(default_factory=dict)


TEXT_RULE = AutoRule(
    few="contrastive",
    many="freeze_unfreeze",
    recipes=RECIPES,
    evidence="cross-validated on training labels of two datasets: benchmarks/few_shot.py, benchmarks/recipes.py",
    compare=("linear_probe", "lexical_probe"),
    companions={"contrastive": ("lexical_contrastive",)},
)


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
    train: TrainConfig, train_labels: Sequence[Any], valid_labels: Sequence[Any], rule: AutoRule = TEXT_RULE
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
            f"The smallest class has {fewest_train} training examples, fewer than auto.few_labels_below "
            f"({settings.few_labels_below}): {main} did best with so few labels ({rule.evidence})."
        )
    else:
        main = rule.many
        reason = (
            f"Every class has at least {fewest_train} training examples (auto.few_labels_below is "
            f"{settings.few_labels_below}): {main} did best with this many ({rule.evidence})."
        )
    compare = (*rule.companions.get(main, ()), *rule.compare) if settings.compare is None else settings.compare
    extra = [name for name in dict.fromkeys(compare) if name != main]
    if extra and fewest_valid < settings.compare_min_valid_per_class:
        reason += (
            f" Not compared with {', '.join(extra)}: the smallest class has {fewest_valid} validation examples, "
            f"fewer than auto.compare_min_valid_per_class ({settings.compare_min_valid_per_class})."
        )
        extra = []
    return StrategyPlan("auto", [main, *extra], reason, fewest_train, fewest_valid)


def settings_for(train: TrainConfig, strategy: str, rule: AutoRule = TEXT_RULE) -> TrainConfig:
    """``train`` as it runs ``strategy``: the strategy's recipe under every recipe key ``train`` leaves to it.

    A key is left to the recipe when it is null, or was not given at all (a ``TrainConfig`` built in
    code); a value given overrides the recipe, under ``auto`` too. A strategy without a recipe in
    ``rule`` keeps the generic defaults.
    """
    recipe = rule.recipes.get(strategy, {})
    settings = {**train.model_dump(), "strategy": strategy}
    for key in RECIPE_KEYS:
        section, _, nested = key.partition(".")
        if nested:
            given = getattr(train, section)
            if _left_to_recipe(train, section) or _left_to_recipe(given, nested):
                default = type(given).model_fields[nested].default
                settings[section] = {**settings[section], nested: recipe.get(section, {}).get(nested, default)}
        elif _left_to_recipe(train, key):
            settings[key] = recipe.get(key, TrainConfig.model_fields[key].default)
    return TrainConfig.model_validate(settings)


def recipe_keys_used(train: TrainConfig) -> list[str]:
    """The recipe keys ``train`` (as the user gave it) leaves to the strategy's recipe."""
    used = []
    for key in RECIPE_KEYS:
        section, _, nested = key.partition(".")
        owner = getattr(train, section) if nested else train
        if (nested and _left_to_recipe(train, section)) or _left_to_recipe(owner, nested or key):
            used.append(key)
    return used


def _left_to_recipe(settings: Any, key: str) -> bool:
    return key not in settings.model_fields_set or getattr(settings, key) is None
