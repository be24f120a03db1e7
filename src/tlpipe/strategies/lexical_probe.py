"""``lexical_probe``: ``linear_probe`` with a second channel for the head, a TF-IDF bag of the
input's wordpieces fitted on the training texts (``tlpipe.modalities.text.lexicon``), for labels that
hang on words the pretrained body never saw."""

from __future__ import annotations

from tlpipe.strategies.base import HeadOnly, ReadsWordpieces
from tlpipe.strategies.linear_probe import HEAD_ONLY_RECIPE


class LexicalProbe(ReadsWordpieces, HeadOnly):
    name = "lexical_probe"
    summary = "the head also reads a TF-IDF bag of the text's wordpieces, for labels that hang on in-house words"
    recipes = {"text": HEAD_ONLY_RECIPE}


STRATEGY = LexicalProbe()
