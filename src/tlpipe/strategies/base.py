"""The interface every transfer strategy implements, and the phases most of them share.

The training loop (``tlpipe.training.fine_tune``) asks the strategy, at fixed points, what to do:
``prepare_inputs`` before a saved state loads, ``prepare_body`` before the first epoch, ``phases``
for the schedule, ``apply_phase`` for what trains. It holds no strategy's special case.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from tlpipe.config import TrainConfig
from tlpipe.phases import Phase, apply_phase
from tlpipe.run_estimate import Work

if TYPE_CHECKING:  # reading params.yaml imports every strategy: no torch at import time
    import torch

Preprocess = Callable[[Sequence[Any]], "dict[str, torch.Tensor]"]
Recipe = Mapping[str, Any]


class Strategy(ABC):
    """A transfer strategy: a policy over the body and head that any modality's model family offers.

    ``recipes``: per modality, the values of the recipe keys (``tlpipe.strategies.recipes.RECIPE_KEYS``, and
    keys of its own section) the strategy runs with unless params.yaml sets them; a strategy applies to the
    modalities it has one for. ``not_for``: why it applies to no other (said when params.yaml names it for one).
    ``settings_model``: its own settings, the section ``train.<section>`` of params.yaml, validated by it
    (``tlpipe.params``); ``section`` is its name unless it shares another strategy's section.
    """

    name: ClassVar[str]
    summary: ClassVar[str]  # one line on what trains: `tlpipe train --help` lists every strategy with it
    recipes: ClassVar[Mapping[str, Recipe]]
    not_for: ClassVar[str] = "no recipe has been measured for it there"
    pretrained: ClassVar[bool] = True  # False: a randomly initialised body of the same architecture
    trains_on_features: ClassVar[bool] = False  # the head trains on features the frozen body computes once
    changes_body: ClassVar[bool] = True  # False: the body ends as it began (pretraining with it would keep nothing)
    tunes_body_on_pairs: ClassVar[bool] = False  # its prepared body suits another strategy tuned alike
    reads_wordpieces: ClassVar[bool] = False  # the head reads a channel fitted on the training inputs
    settings_model: ClassVar[type[BaseModel] | None] = None
    settings_section: ClassVar[str | None] = None

    @property
    def section(self) -> str | None:
        """The key of its settings under ``train`` (None: it has none)."""
        if self.settings_model is None:
            return None
        return self.settings_section or self.name

    def settings(self, train: TrainConfig) -> Any:
        """Its section of ``train``, validated, with the defaults of what params.yaml leaves out."""
        if self.settings_model is None or self.section is None:
            raise TypeError(f"strategy {self.name} has no settings of its own")
        return self.settings_model.model_validate((train.model_extra or {}).get(self.section) or {})

    def card_lines(self, history: Mapping[str, Any]) -> list[str]:
        """What the model card says about the steps particular to this strategy, from the training history."""
        return []

    def applies_to(self, modality: str) -> bool:
        return modality in self.recipes

    def recipe(self, modality: str) -> Recipe:
        return self.recipes.get(modality, {})

    def refuses(self, train: TrainConfig) -> str | None:
        """Why these settings (recipe filled in) cannot run with this strategy, naming the keys; None if they can."""
        return None

    @abstractmethod
    def phases(self, train: TrainConfig, blocks: int) -> list[Phase]:
        """The phases covering epochs 1 .. ``train.epochs`` for a body of ``blocks`` blocks."""

    def work(self, train: TrainConfig, fit: int, valid: int, blocks: int) -> Work:
        """The passes of examples through the body one run with ``train`` makes on ``fit`` training and ``valid``
        validation examples (``tlpipe.run_estimate``): by default each phase's epochs, training where it trains
        blocks, and a validation pass each epoch."""
        trained = forward = 0
        for phase in self.phases(train, blocks):
            if phase.trainable_blocks:
                trained += phase.epochs * fit
            else:
                forward += phase.epochs * fit
            forward += phase.epochs * valid
        return Work(forward=forward, trained=trained)

    def apply_phase(self, model: Any, phase: Phase) -> None:
        """Set what trains in ``phase``: the head and the top ``phase.trainable_blocks`` blocks by default."""
        apply_phase(model, phase)

    def prepare_inputs(self, model: Any, preprocess: Preprocess, inputs: Sequence[Any], batch_size: int) -> None:
        """Fit what the model reads from the training inputs, before a saved state (which holds it) loads."""
        return None  # most strategies read the inputs as they are

    def prepare_body(self, tune: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Change the body before the first epoch (``tune`` tunes it on pairs); what was done, for the record."""
        return None


class ReadsWordpieces(Strategy):
    """The head also reads a TF-IDF bag of the input's wordpieces, fitted on the training texts
    (``tlpipe.modalities.text.lexicon``), for labels that hang on words the pretrained body never saw."""

    reads_wordpieces = True
    not_for = "its second channel is a bag of a text's wordpieces, which only texts have"

    def prepare_inputs(self, model: Any, preprocess: Preprocess, inputs: Sequence[Any], batch_size: int) -> None:
        model.fit_lexicon(preprocess, list(inputs), batch_size)


class HeadOnly(Strategy):
    """The body stays frozen and the head trains on its features, computed once (for all epochs)."""

    trains_on_features = True
    changes_body = False

    def phases(self, train: TrainConfig, blocks: int) -> list[Phase]:
        return [Phase("head", 1, train.epochs, 0)]

    def work(self, train: TrainConfig, fit: int, valid: int, blocks: int) -> Work:
        return Work(encoded=fit + valid)  # the frozen body runs once; the head's epochs on features cost little

    def refuses(self, train: TrainConfig) -> str | None:
        if not self.changes_body and train.layer_decay != 1.0:
            return f"layer_decay has no effect with {self.name} (the body is frozen); leave it at 1"
        return None


class AllBlocks(Strategy):
    """Every body block trains from the first epoch."""

    def phases(self, train: TrainConfig, blocks: int) -> list[Phase]:
        return [Phase("all", 1, train.epochs, blocks)]
