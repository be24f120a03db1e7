"""The text model family: a pretrained Hugging Face encoder (body), mean pooling and a linear head.

Mean pooling over the attention mask is how sentence encoders such as all-MiniLM-L6-v2 were
trained, so their frozen features are useful to a linear probe as they are; BERT's [CLS] pooler
would start from random weights for such models. The ``lexical_probe`` strategy adds a second
channel, a TF-IDF bag of the input's wordpieces (``tlpipe.modalities.text.lexicon``), that the
head reads next to the pooled embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from tlpipe.artifacts import read_json
from tlpipe.errors import ConfigError
from tlpipe.modalities.classifier import Classifier
from tlpipe.modalities.text.lexicon import WordpieceBag

TOKENIZER_FILE = "tokenizer.json"
INPUT_NAMES = ("input_ids", "attention_mask")
# Where Hugging Face encoders keep their stack of transformer blocks.
BLOCK_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


class TextClassifier(Classifier):
    """Encoder body + mean pooling + linear head; ``forward(input_ids, attention_mask) -> logits``.

    With a lexicon of ``lexicon_size`` wordpieces, the head reads the unit-length pooled embedding
    and the input's wordpiece TF-IDF row side by side (both unit length, so neither drowns the other).
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1, lexicon_size: int = 0) -> None:
        super().__init__(encoder, encoder.config.hidden_size + lexicon_size, num_labels, dropout)
        self.lexicon = WordpieceBag(lexicon_size) if lexicon_size else None

    def fit_lexicon(self, preprocess: Any, inputs: Sequence[str], batch_size: int) -> None:
        """Add the wordpiece channel, its idf fitted on ``inputs`` (the training texts), and a new head reading it."""
        vocab_size = self.body.get_input_embeddings().num_embeddings
        self.lexicon = WordpieceBag(vocab_size)
        batches = (preprocess(inputs[start : start + batch_size]) for start in range(0, len(inputs), batch_size))
        self.lexicon.fit(
            ((batch["input_ids"], batch["attention_mask"]) for batch in batches), preprocess.tokenizer.all_special_ids
        )
        self.head = nn.Linear(self.body.config.hidden_size + vocab_size, self.head.out_features)

    def body_blocks(self) -> list[nn.Module]:
        """The body split into blocks, bottom (embeddings) to top (last transformer layer).

        Strategies freeze and unfreeze whole blocks and give each its own learning rate. Body
        parameters outside these blocks (BERT's pooler) are not used by this classifier.
        """
        for path in BLOCK_PATHS:
            layers: Any = self.body
            for name in path.split("."):
                layers = getattr(layers, name, None)
            if isinstance(layers, nn.ModuleList) and hasattr(self.body, "embeddings"):
                return [self.body.embeddings, *layers]
        raise TypeError(
            f"{type(self.body).__name__}: no embeddings and transformer blocks at {', '.join(BLOCK_PATHS)}; "
            "add the architecture's block path to tlpipe.modalities.text.model.BLOCK_PATHS"
        )

    def embedding(  # type: ignore[override]
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean of the last hidden states over real (unpadded) tokens: (batch, hidden)."""
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """The ``embedding``: (batch, hidden); with a lexicon, the embedding made unit length, then the
        wordpiece TF-IDF row: (batch, hidden + lexicon size)."""
        return self._features_of(self.embedding(input_ids, attention_mask), input_ids, attention_mask)

    def features_from_embeddings(
        self, embeddings: torch.Tensor, preprocess: Any, inputs: Sequence[str], batch_size: int
    ) -> torch.Tensor:
        if self.lexicon is None:
            return embeddings
        device = self.lexicon.idf.device
        chunks = []
        for start in range(0, len(inputs), batch_size):
            batch = preprocess(inputs[start : start + batch_size])
            rows = embeddings[start : start + batch_size].to(device)
            chunks.append(self._features_of(rows, batch["input_ids"].to(device), batch["attention_mask"].to(device)))
        return torch.cat(chunks).to(embeddings.device)

    def logits_and_embedding(  # type: ignore[override]
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.embedding(input_ids, attention_mask)
        return self.classify(self._features_of(pooled, input_ids, attention_mask)), pooled

    def _features_of(self, pooled: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.lexicon is None:
            return pooled
        bag = self.lexicon(input_ids, attention_mask).to(pooled.dtype)
        return torch.cat([functional.normalize(pooled, dim=1), bag], dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(input_ids, attention_mask))


class TextPreprocessor:
    """Turns raw texts into the model's input tensors, padded to the longest text in the batch."""

    input_names = INPUT_NAMES

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(texts),
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {name: encoded[name] for name in INPUT_NAMES}

    def input_shapes(self) -> dict[str, list[str | int]]:
        """Each input's shape; names are dynamic axes."""
        return {name: ["batch", "sequence"] for name in INPUT_NAMES}

    def describe(self) -> dict[str, Any]:
        """The preprocessing a serving team must reproduce, as plain data."""
        return {
            "modality": "text",
            "tokenizer": TOKENIZER_FILE,
            "max_length": self.max_length,
            "truncation": "longest_first",
            "padding": "longest",
            "inputs": list(INPUT_NAMES),
            "input_dtype": "int64",
        }

    def save(self, folder: Path) -> None:
        """The tokenizer files, for a checkpoint."""
        self.tokenizer.save_pretrained(folder)

    def write_bundle_files(self, folder: Path) -> None:
        """``tokenizer.json``, all a server needs (with the ``tokenizers`` package)."""
        self.tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))


def load_pretrained(
    snapshot: Path, num_labels: int, dropout: float, trust_remote_code: bool = False, pretrained: bool = True
) -> TextClassifier:
    """A classifier with the snapshot's encoder as body (random weights if not ``pretrained``) and a new head."""
    from transformers import AutoConfig, AutoModel

    if pretrained:
        encoder = AutoModel.from_pretrained(snapshot, trust_remote_code=trust_remote_code)
    else:
        config = AutoConfig.from_pretrained(snapshot, trust_remote_code=trust_remote_code)
        encoder = AutoModel.from_config(config, trust_remote_code=trust_remote_code)
    return TextClassifier(encoder, num_labels, dropout)


def saved_lexicon_size(weights_file: Path) -> int:
    """The wordpiece channel's size in a checkpoint's safetensors weights (0: trained without one)."""
    from safetensors import safe_open

    with safe_open(str(weights_file), framework="pt") as weights:
        return weights.get_slice("lexicon.idf").get_shape()[0] if "lexicon.idf" in weights.keys() else 0


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> Any:
    """The fast tokenizer saved in a snapshot or checkpoint folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)


def check_max_length(folder: Path, tokenizer: Any, max_length: int) -> None:
    """Refuse a ``preprocess.max_length`` longer than the model's position embeddings (it fails on long texts only)."""
    positions = read_json(folder / "config.json", "fetch-model").get("max_position_embeddings")
    # The tokenizer's own limit is the tighter one where the embeddings keep a padding offset (RoBERTa: 514 -> 512).
    limits = [
        limit for limit in (positions, tokenizer.model_max_length) if isinstance(limit, int) and limit < 1_000_000
    ]
    if limits and max_length > min(limits):
        raise ConfigError(
            f"preprocess.max_length is {max_length}, but the model in {folder} reads at most {min(limits)} tokens "
            f"(its config.json and tokenizer); set preprocess.max_length in params.yaml to {min(limits)} or less."
        )
