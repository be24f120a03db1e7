"""Fine-tuning a classifier: the strategies, the optimiser, the loop and model selection.

Two strategies exist so far:

- ``full``: every parameter trains; the pretrained body at ``learning_rate`` and the new head
  at the larger ``head_learning_rate`` (a random head needs bigger steps than weights that
  already encode language).
- ``linear_probe``: the body is frozen, so its pooled features are computed once and only the
  head trains on them. This is the strong, cheap baseline for very small datasets.

Both use AdamW (no weight decay on biases and norms) with linear warm-up then linear decay, and
keep the epoch with the best validation macro-F1. Everything is seeded, so two CPU runs with the
same seed give the same model.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tlpipe.config import TrainConfig
from tlpipe.errors import ConfigError
from tlpipe.models.text import TextClassifier

log = logging.getLogger(__name__)

Preprocess = Callable[[Sequence[Any]], dict[str, torch.Tensor]]
OnImprovement = Callable[[TextClassifier, dict[str, Any]], None]
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass
class TrainResult:
    """What training produced: the best epoch's validation score and per-epoch history."""

    best_epoch: int = 0
    best_macro_f1: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Runtime:
    """Where training runs and in which precision."""

    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def uses_scaler(self) -> bool:
        return self.autocast_dtype == torch.float16


def select_runtime(train: TrainConfig) -> Runtime:
    """CUDA with bf16 (or fp16 + loss scaling) when present and allowed, else CPU in fp32."""
    use_cuda = train.device == "cuda" or (train.device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'.")
    if not use_cuda:
        return Runtime(torch.device("cpu"), None)
    if train.mixed_precision == "off":
        return Runtime(torch.device("cuda"), None)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Runtime(torch.device("cuda"), dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def freeze(module: nn.Module) -> None:
    """Stop gradients through every parameter of ``module``."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def parameter_groups(model: TextClassifier, train: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: body and head at their own learning rates, no decay on biases and norms."""
    groups = []
    for part, lr in ((model.body, train.learning_rate), (model.head, train.head_learning_rate)):
        named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]
        decay = [p for n, p in named if not n.endswith(NO_DECAY)]
        no_decay = [p for n, p in named if n.endswith(NO_DECAY)]
        groups += [
            {"params": decay, "lr": lr, "weight_decay": train.weight_decay},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0},
        ]
    return [group for group in groups if group["params"]]


def fine_tune(
    model: TextClassifier,
    preprocess: Preprocess,
    train_inputs: Sequence[Any],
    train_labels: Sequence[int],
    valid_inputs: Sequence[Any],
    valid_labels: Sequence[int],
    train: TrainConfig,
    on_improvement: OnImprovement,
) -> TrainResult:
    """Train ``model`` with ``train.strategy``; call ``on_improvement`` each time validation macro-F1 improves."""
    seed_everything(train.seed)
    runtime = select_runtime(train)
    model.to(runtime.device)
    if train.strategy == "linear_probe":
        freeze(model.body)
    train_set = _examples(model, preprocess, train_inputs, train, runtime)
    valid_set = _examples(model, preprocess, valid_inputs, train, runtime)
    log.info(
        "Training with strategy=%s on %s%s: %d trainable of %d parameters",
        train.strategy,
        runtime.device,
        f" ({runtime.autocast_dtype})" if runtime.autocast_dtype else "",
        sum(p.numel() for p in model.parameters() if p.requires_grad),
        sum(p.numel() for p in model.parameters()),
    )
    optimizer = torch.optim.AdamW(parameter_groups(model, train))
    steps_per_epoch = -(-len(train_set) // train.batch_size)
    scheduler = _warmup_then_linear_decay(optimizer, train, steps_per_epoch * train.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.uses_scaler)
    targets = torch.tensor(list(train_labels), dtype=torch.long)
    valid_targets = torch.tensor(list(valid_labels), dtype=torch.long)
    generator = torch.Generator().manual_seed(train.seed)
    result = TrainResult()

    for epoch in range(1, train.epochs + 1):
        started = time.perf_counter()
        model.train()
        if train.strategy == "linear_probe":
            model.body.eval()
        total_loss = 0.0
        for index in torch.randperm(len(train_set), generator=generator).split(train.batch_size):
            with torch.autocast(
                runtime.device.type, dtype=runtime.autocast_dtype, enabled=runtime.autocast_dtype is not None
            ):
                logits = train_set.forward(model, train_set.select(index))
                loss = nn.functional.cross_entropy(logits, targets[index].to(runtime.device))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total_loss += loss.item() * len(index)
        macro_f1 = macro_f1_score(valid_set.logits(model, train.batch_size), valid_targets, model.head.out_features)
        record = {
            "epoch": epoch,
            "train_loss": total_loss / len(train_set),
            "valid_macro_f1": macro_f1,
            "seconds": time.perf_counter() - started,
        }
        result.history.append(record)
        improved = macro_f1 > result.best_macro_f1
        log.info(
            "epoch %d/%d  train loss %.4f  valid macro-F1 %.4f%s  (%.1fs)",
            epoch,
            train.epochs,
            record["train_loss"],
            macro_f1,
            "  best so far" if improved else "",
            record["seconds"],
        )
        if improved:
            result.best_epoch, result.best_macro_f1 = epoch, macro_f1
            on_improvement(model, record)
    model.to("cpu")
    return result


def predict_logits(
    model: TextClassifier,
    preprocess: Preprocess,
    inputs: Sequence[Any],
    batch_size: int,
    runtime: Runtime | None = None,
) -> torch.Tensor:
    """Logits for ``inputs`` in eval mode, batched: (len(inputs), num_labels) float32 on CPU."""
    device = runtime.device if runtime else next(model.parameters()).device
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = preprocess(inputs[start : start + batch_size])
            outputs.append(model(**{k: v.to(device) for k, v in batch.items()}).float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0, model.head.out_features)


def macro_f1_score(logits: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Macro-averaged F1 of argmax predictions."""
    from torchmetrics.functional.classification import multiclass_f1_score

    return float(multiclass_f1_score(logits.argmax(dim=1), targets, num_classes=num_classes, average="macro"))


class _RawExamples:
    """Full fine-tune: inputs are preprocessed batch by batch and run through body and head."""

    def __init__(self, inputs: Sequence[Any], preprocess: Preprocess, device: torch.device) -> None:
        self.inputs, self.preprocess, self.device = list(inputs), preprocess, device

    def __len__(self) -> int:
        return len(self.inputs)

    def select(self, index: torch.Tensor) -> list[Any]:
        return [self.inputs[i] for i in index.tolist()]

    def forward(self, model: TextClassifier, batch: list[Any]) -> torch.Tensor:
        return model(**{name: tensor.to(self.device) for name, tensor in self.preprocess(batch).items()})

    def logits(self, model: TextClassifier, batch_size: int) -> torch.Tensor:
        return predict_logits(model, self.preprocess, self.inputs, batch_size)


class _CachedFeatures:
    """Linear probe: the frozen body's pooled features, computed once; only the head runs."""

    def __init__(
        self,
        model: TextClassifier,
        inputs: Sequence[Any],
        preprocess: Preprocess,
        batch_size: int,
        device: torch.device,
    ) -> None:
        started = time.perf_counter()
        model.eval()
        chunks = []
        with torch.no_grad():  # not inference_mode: the head trains on these tensors
            for start in range(0, len(inputs), batch_size):
                batch = preprocess(inputs[start : start + batch_size])
                chunks.append(model.features(**{k: v.to(device) for k, v in batch.items()}).float())
        self.features, self.device = torch.cat(chunks), device
        log.info("Encoded %d examples with the frozen body in %.1fs", len(inputs), time.perf_counter() - started)

    def __len__(self) -> int:
        return len(self.features)

    def select(self, index: torch.Tensor) -> torch.Tensor:
        return self.features[index.to(self.device)]

    def forward(self, model: TextClassifier, batch: torch.Tensor) -> torch.Tensor:
        return model.classify(batch)

    def logits(self, model: TextClassifier, batch_size: int) -> torch.Tensor:
        model.eval()
        with torch.inference_mode():
            return model.classify(self.features).float().cpu()


def _examples(
    model: TextClassifier, preprocess: Preprocess, inputs: Sequence[Any], train: TrainConfig, runtime: Runtime
) -> _RawExamples | _CachedFeatures:
    if train.strategy == "linear_probe":
        return _CachedFeatures(model, inputs, preprocess, train.batch_size, runtime.device)
    return _RawExamples(inputs, preprocess, runtime.device)


def _warmup_then_linear_decay(
    optimizer: torch.optim.Optimizer, train: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    from transformers import get_linear_schedule_with_warmup

    warmup = int(train.warmup_ratio * total_steps)
    return get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
