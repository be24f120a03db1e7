"""A bag of the encoder's own wordpieces, TF-IDF weighted, for the head to read next to the pooled embedding.

Labels that hang on in-house names (part numbers, site codes, product names) defeat a public
encoder's embedding: it has never seen the words, and mean pooling blurs the few wordpieces that
carry them. A TF-IDF model reads exactly those words. This channel gives the head both: the
weights are sklearn's ``TfidfVectorizer(sublinear_tf=True)`` over the tokenizer's wordpieces
(``1 + ln(count)``, smooth idf fitted on the training texts, L2-normalised rows), computed from
``input_ids`` inside the model, so the exported ONNX graph needs nothing a server does not
already send it. Wordpieces never seen in training, and the special tokens, weigh nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class WordpieceBag(nn.Module):
    """``forward(input_ids, attention_mask) -> (batch, vocab_size)`` L2-normalised sublinear TF-IDF rows."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.register_buffer("idf", torch.zeros(vocab_size))

    @property
    def vocab_size(self) -> int:
        return self.idf.numel()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(input_ids.shape[0], self.vocab_size, dtype=self.idf.dtype, device=input_ids.device)
        counts = counts.scatter_add(1, input_ids, attention_mask.to(counts.dtype))
        present = counts > 0
        term = torch.where(present, torch.log(counts.clamp(min=1.0)) + 1.0, torch.zeros_like(counts))
        weights = term * self.idf
        return weights / weights.norm(dim=1, keepdim=True).clamp(min=1e-12)

    @torch.no_grad()
    def fit(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], special_ids: Iterable[int]) -> None:
        """Set the idf from training batches of ``(input_ids, attention_mask)``: ``ln((1 + n) / (1 + df)) + 1``
        for every wordpiece in at least one training text, 0 for the rest and for ``special_ids``."""
        documents = torch.zeros(self.vocab_size, dtype=torch.float64)
        texts = 0
        for input_ids, attention_mask in batches:
            counts = torch.zeros(input_ids.shape[0], self.vocab_size, dtype=torch.float64)
            counts.scatter_add_(1, input_ids.cpu(), attention_mask.cpu().to(torch.float64))
            documents += (counts > 0).sum(dim=0)
            texts += input_ids.shape[0]
        idf = torch.log((1.0 + texts) / (1.0 + documents)) + 1.0
        idf[documents == 0] = 0.0
        idf[list(special_ids)] = 0.0
        self.idf.copy_(idf.to(self.idf.dtype))
