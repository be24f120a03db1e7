"""Transfer strategies: one module each, behind one interface (``tlpipe.strategies.base.Strategy``).

A strategy decides what trains in each stretch of epochs (its phases), what the loop trains on
(the raw inputs, or features the frozen body computes once), what it prepares first (a wordpiece
channel, a body tuned on pairs), the settings it refuses, its own section of settings, its lines in
the model card, and its recipe per modality. It applies to the modalities it has a recipe for. Adding a
strategy is a new module and one line in ``STRATEGIES``; ``train.strategy`` and ``train.auto.compare`` in
params.yaml name the entries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tlpipe.auto import AutoRule
    from tlpipe.strategies.base import Strategy

STRATEGIES = {
    "linear_probe": "tlpipe.strategies.linear_probe",
    "lexical_probe": "tlpipe.strategies.lexical_probe",
    "contrastive": "tlpipe.strategies.contrastive",
    "lexical_contrastive": "tlpipe.strategies.lexical_contrastive",
    "full": "tlpipe.strategies.full",
    "freeze_unfreeze": "tlpipe.strategies.freeze_unfreeze",
    "gradual_unfreeze": "tlpipe.strategies.gradual_unfreeze",
    "bitfit": "tlpipe.strategies.bitfit",
    "scratch": "tlpipe.strategies.scratch",
}


def get_strategy(name: str) -> Strategy:
    """The strategy registered as ``name``."""
    if name not in STRATEGIES:
        from tlpipe.errors import ConfigError

        raise ConfigError(f"unknown strategy {name!r}; known: auto, {', '.join(STRATEGIES)}")
    return importlib.import_module(STRATEGIES[name]).STRATEGY


def frozen_body_rule(modality: str) -> AutoRule:
    """``auto``'s rule when only the frozen body may serve (``train.auto.frozen_body_only``, the fast preset): the
    first registered strategy for ``modality`` that leaves the body as it began, compared with the others that do."""
    from tlpipe.auto import AutoRule

    frozen = [name for name in strategies_for(modality) if not get_strategy(name).changes_body]
    if not frozen:
        from tlpipe.errors import ConfigError

        raise ConfigError(f"no strategy keeps the body frozen for data.modality {modality}")
    return AutoRule(
        few=frozen[0],
        many=frozen[0],
        evidence="train.auto.frozen_body_only: heads on the frozen body's features only",
        compare=tuple(frozen[1:]),
    )


def strategies_for(modality: str) -> list[str]:
    """The strategies with a recipe for ``modality``, in registry order."""
    return [name for name in STRATEGIES if get_strategy(name).applies_to(modality)]


def strategy_sections() -> dict[str, type[BaseModel]]:
    """The strategies' own sections of ``train`` (``train.<section>``) and the model that validates each."""
    sections: dict[str, type[BaseModel]] = {}
    for name in STRATEGIES:
        strategy = get_strategy(name)
        if strategy.section is not None and strategy.settings_model is not None:
            sections.setdefault(strategy.section, strategy.settings_model)
    return sections
