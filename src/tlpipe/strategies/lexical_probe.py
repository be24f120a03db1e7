"""``lexical_probe``: ``linear_probe`` with a second channel for the head, a TF-IDF bag of the input's
wordpieces fitted on the training texts (``tlpipe.modalities.text.lexicon``), for labels that hang on
words the pretrained body never saw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tlpipe.strategies.base import HeadOnly, Preprocess
from tlpipe.strategies.linear_probe import HEAD_ONLY_RECIPE


class LexicalProbe(HeadOnly):
    name = "lexical_probe"
    summary = "texts: the head also reads a TF-IDF bag of the text's wordpieces"
    recipes = {"text": HEAD_ONLY_RECIPE}
    not_for = "its second channel is a bag of a text's wordpieces, which only texts have"
    reads_wordpieces = True

    def prepare_inputs(self, model: Any, preprocess: Preprocess, inputs: Sequence[Any], batch_size: int) -> None:
        model.fit_lexicon(preprocess, list(inputs), batch_size)


STRATEGY = LexicalProbe()
