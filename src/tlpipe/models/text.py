"""The text model family: a pretrained Hugging Face encoder (body), mean pooling and a linear head.

Mean pooling over the attention mask is how sentence encoders such as all-MiniLM-L6-v2 were
trained, so their frozen features are useful to a linear probe as they are; BERT's [CLS] pooler
would start from random weights for such models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlpipe.artifacts import read_json, write_json

FAMILY = "text"
WEIGHTS = "model.safetensors"
CLASSIFIER_CONFIG = "classifier.json"
INPUT_NAMES = ("input_ids", "attention_mask")
# Where Hugging Face encoders keep their stack of transformer blocks.
BLOCK_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


class TextClassifier(nn.Module):
    """Encoder body + linear head; ``forward(input_ids, attention_mask) -> logits``."""

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

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
            "add the architecture's block path to tlpipe.models.text.BLOCK_PATHS"
        )

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the last hidden states over real (unpadded) tokens: (batch, hidden)."""
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from pooled features: (batch, num_labels)."""
        return self.head(self.dropout(features))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(input_ids, attention_mask))


class TextPreprocessor:
    """Turns raw texts into the model's input tensors, padded to the longest text in the batch."""

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

    def describe(self) -> dict[str, Any]:
        """The preprocessing a serving team must reproduce, as plain data."""
        return {
            "tokenizer": "tokenizer.json",
            "max_length": self.max_length,
            "truncation": "longest_first",
            "padding": "longest",
            "inputs": list(INPUT_NAMES),
            "input_dtype": "int64",
        }


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


def load_tokenizer(folder: Path, trust_remote_code: bool = False) -> Any:
    """The fast tokenizer saved in a snapshot or checkpoint folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)


def save_checkpoint(
    model: TextClassifier, tokenizer: Any, labels: list[str], folder: Path, metadata: dict[str, Any]
) -> None:
    """Write weights (safetensors), encoder config, tokenizer and labels into ``folder``."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / WEIGHTS))
    model.body.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_json(
        folder / CLASSIFIER_CONFIG,
        {
            "family": FAMILY,
            "labels": labels,
            "dropout": model.dropout.p,
            **metadata,
        },
    )


def load_checkpoint(folder: Path, trust_remote_code: bool = False) -> tuple[TextClassifier, Any, dict[str, Any]]:
    """Rebuild a trained classifier from ``folder``: (model in eval mode, tokenizer, classifier config)."""
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModel

    config = read_json(folder / CLASSIFIER_CONFIG, "train")
    encoder = AutoModel.from_config(
        AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code),
        trust_remote_code=trust_remote_code,
    )
    model = TextClassifier(encoder, len(config["labels"]), config["dropout"])
    load_model(model, str(folder / WEIGHTS))
    return model.eval(), load_tokenizer(folder, trust_remote_code), config
