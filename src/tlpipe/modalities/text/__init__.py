"""Texts: a CSV of texts and labels, a Hugging Face encoder, TF-IDF as the baseline (``modality.MODALITY``)."""
