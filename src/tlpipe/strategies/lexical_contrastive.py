"""``lexical_contrastive``: ``contrastive`` whose head also reads the wordpiece channel of
``lexical_probe``; the pairs tune the pooled embedding alone, since the channel is fixed."""

from __future__ import annotations

from tlpipe.strategies.base import ReadsWordpieces
from tlpipe.strategies.contrastive import PAIR_TUNED_RECIPE, Contrastive


class LexicalContrastive(ReadsWordpieces, Contrastive):
    name = "lexical_contrastive"
    summary = "contrastive, then a head that also reads the wordpiece bag"
    recipes = {"text": PAIR_TUNED_RECIPE}
    not_for = "it is contrastive tuning with a second channel of a text's wordpieces, which only texts have"


STRATEGY = LexicalContrastive()
