"""The classifier shape every model family shares: a body that pools an input into features, dropout, a linear head."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class Classifier(nn.Module, ABC):
    """A body that pools an input into a feature vector, then dropout and a linear head.

    Subclasses define ``features`` and ``forward`` with the input names their preprocessor
    produces (ONNX takes its input names from ``forward``), and ``body_blocks``, the body split
    bottom to top into the units strategies freeze, unfreeze and give learning rates.
    """

    def __init__(self, body: nn.Module, num_features: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.body = body
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(num_features, num_labels)

    @abstractmethod
    def body_blocks(self) -> list[nn.Module]:
        """The body's blocks, bottom (input side) to top."""

    @abstractmethod
    def features(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Pooled body features: (batch, num_features)."""

    def embedding(self, **inputs: torch.Tensor) -> torch.Tensor:
        """What contrastive tuning pulls together and apart: the body's pooled features, without any channel
        fitted on the data (``features`` adds those)."""
        return self.features(**inputs)

    def features_from_embeddings(
        self, embeddings: torch.Tensor, preprocess: Any, inputs: Sequence[Any], batch_size: int
    ) -> torch.Tensor:
        """``features`` of ``inputs`` from their ``embedding`` rows, computed earlier (a feature cache holds
        embeddings, which no channel fitted on one run's data changes)."""
        return embeddings

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features: (batch, num_labels)."""
        return self.head(self.dropout(features))

    def logits_and_embedding(self, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward pass's logits and the ``embedding`` it computed on the way, the body run once: the
        exported graph's two outputs (the embedding is what a drift check compares)."""
        features = self.features(**inputs)
        return self.classify(features), features

    def fit_lexicon(self, preprocess: Any, inputs: Sequence[Any], batch_size: int) -> None:
        """Give the head a wordpiece channel fitted on the training ``inputs`` (``lexical_probe``; texts only)."""
        raise TypeError(f"{type(self).__name__} has no wordpieces: lexical_probe applies to texts only")
