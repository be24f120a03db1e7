"""``lexical_contrastive``: ``contrastive`` whose head also reads the wordpiece channel of
``lexical_probe``; the pairs tune the pooled embedding alone, since the channel is fixed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tlpipe.strategies.base import Preprocess
from tlpipe.strategies.contrastive import PAIR_TUNED_RECIPE, Contrastive


class LexicalContrastive(Contrastive):
    name = "lexical_contrastive"
    summary = "texts: contrastive, then a head that also reads the wordpiece bag"
    recipes = {"text": PAIR_TUNED_RECIPE}
    not_for = "it is contrastive tuning with a second channel of a text's wordpieces, which only texts have"
    reads_wordpieces = True

    def prepare_inputs(self, model: Any, preprocess: Preprocess, inputs: Sequence[Any], batch_size: int) -> None:
        model.fit_lexicon(preprocess, list(inputs), batch_size)


STRATEGY = LexicalContrastive()
