"""Counts in sentences people read (the model card, the reasons for a choice): "1 fold", "3 folds"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, made plural unless ``count`` is 1 (``noun + "s"`` unless ``plural`` says otherwise)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
