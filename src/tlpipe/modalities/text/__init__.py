"""Texts: a CSV of texts and labels, a Hugging Face encoder, TF-IDF as the baseline."""

from tlpipe.modalities.text.modality import TextModality

MODALITY = TextModality()
