"""Contrastive tuning of the body on labelled pairs: the first half of the SetFit method.

Pairs are drawn from the training examples, half from the same class (similar) and half from
different classes (dissimilar), and a sentence-transformers pair loss pulls the pooled features of
similar pairs together and pushes dissimilar ones apart. The head is then trained on the tuned
body's features by the ordinary head-only phase (``tlpipe.training``), so the checkpoint, its
pooling and its export are those of every other strategy.

The number of pairs scales with the data, ``pairs_per_example`` per example up to ``max_pairs``,
because with a few examples per class many pairs per example are what makes the method work, and
with hundreds the cap keeps one pass practical on a CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tlpipe.config import TrainConfig
from tlpipe.errors import DataError
from tlpipe.optimization import StepRunner, adamw, optimizer_steps, warmup_then_linear_decay
from tlpipe.phases import Phase, apply_phase
from tlpipe.runtime import precision_name
from tlpipe.strategies.contrastive import ContrastiveSettings, pair_settings

log = logging.getLogger(__name__)

Preprocess = Callable[[Sequence[Any]], dict[str, torch.Tensor]]
LOG_EVERY_FRACTION = 0.1


@dataclass(frozen=True)
class Pair:
    """Two training examples by index, and whether they share a class."""

    first: int
    second: int
    similar: bool


@dataclass(frozen=True)
class ContrastiveSummary:
    """What the contrastive phase did, for the training history and the model card."""

    pairs: int
    similar_pairs: int
    epochs: int
    steps: int
    loss: str
    final_loss: float
    seconds: float
    precision: str = "fp32"  # of the forward and backward passes (autocast); the weights are fp32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_count(examples: int, settings: ContrastiveSettings) -> int:
    """Pairs per epoch: ``pairs_per_example`` for each example, capped at ``max_pairs``, even."""
    return max(2, min(settings.pairs_per_example * examples, settings.max_pairs) // 2 * 2)


def make_pairs(labels: Sequence[int], count: int, seed: int) -> list[Pair]:
    """``count`` pairs, half similar and half dissimilar, shuffled; every example anchors about as many as any other.

    Anchors run through seeded permutations of the examples; each anchor's partner is drawn at
    random from its own class (never itself) or from the other classes. Examples alone in their
    class anchor only dissimilar pairs.
    """
    labels_array = np.asarray(labels)
    classes = np.unique(labels_array)
    if len(classes) < 2:
        raise DataError("contrastive training needs at least two classes in the training split")
    members = {label: np.flatnonzero(labels_array == label) for label in classes}
    can_pair_similar = np.array([len(members[label]) >= 2 for label in labels_array])
    if not can_pair_similar.any():
        raise DataError(
            "contrastive training needs a class with at least two training examples; "
            "every class has one. Add examples or use train.strategy: linear_probe."
        )
    rng = np.random.default_rng(seed)
    pairs: list[Pair] = []
    anchors = _anchor_stream(len(labels_array), rng)
    while len(pairs) < count // 2 * 2:
        anchor = next(anchors)
        label = labels_array[anchor]
        similar = len(pairs) % 2 == 0
        if similar:
            if not can_pair_similar[anchor]:
                continue
            candidates = members[label][members[label] != anchor]
        else:
            candidates = np.flatnonzero(labels_array != label)
        pairs.append(Pair(int(anchor), int(rng.choice(candidates)), similar))
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order]


def _anchor_stream(examples: int, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from (int(index) for index in rng.permutation(examples))


class BatchEmbeddings(nn.Module):
    """One batch's sentence embeddings, served to a sentence-transformers pair loss by row: ``{"rows"} -> embedding``.

    A pair loss calls its model once per side of the pairs. With many pairs per example most of a
    batch's examples sit on both sides or in several pairs, so ``encode`` runs the classifier's body
    and pooling once over the batch's distinct examples and each side looks its rows up: the same
    loss and gradients (with dropout on, one draw per example and batch instead of one per side)
    for fewer encodings by the body (``benchmarks/contrastive_step.py``, ``benchmarks/results/contrastive_step.json``).
    The embedding the loss tunes is what the head will be trained and served on (``lexical_contrastive``'s head
    also reads a wordpiece channel, which no body weight changes).
    """

    def __init__(self, classifier: Any) -> None:
        super().__init__()
        self.classifier = classifier
        self.embeddings: torch.Tensor | None = None

    def encode(self, features: dict[str, torch.Tensor]) -> None:
        self.embeddings = self.classifier.embedding(**features)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.embeddings is None:
            raise RuntimeError("BatchEmbeddings.encode must run before the loss reads a batch")
        return {"sentence_embedding": self.embeddings[features["rows"]]}


@dataclass(frozen=True)
class PairBatch:
    """Pairs as a pair loss reads them: the distinct examples' features, each side's rows of them, the targets."""

    features: dict[str, torch.Tensor]
    sides: list[dict[str, torch.Tensor]]
    targets: torch.Tensor
    pairs: int
    examples: int


def pair_batch(
    chosen: Sequence[Pair], inputs: Sequence[Any], preprocess: Preprocess, device: torch.device
) -> PairBatch:
    """``chosen`` pairs of ``inputs`` on ``device``, each distinct example preprocessed once (``BatchEmbeddings``)."""
    distinct = sorted({p.first for p in chosen} | {p.second for p in chosen})
    row_of = {example: row for row, example in enumerate(distinct)}
    features = {k: v.to(device) for k, v in preprocess([inputs[i] for i in distinct]).items()}
    sides = [
        {"rows": torch.tensor([row_of[getattr(p, side)] for p in chosen], device=device)}
        for side in ("first", "second")
    ]
    targets = torch.tensor([float(p.similar) for p in chosen], device=device)
    return PairBatch(features, sides, targets, pairs=len(chosen), examples=len(distinct))


def pair_loss(name: str, embedder: nn.Module) -> nn.Module:
    """The sentence-transformers loss called ``name``, over ``embedder``."""
    from sentence_transformers.sentence_transformer import losses

    factories: dict[str, Callable[[Any], nn.Module]] = {
        "cosine_similarity": losses.CosineSimilarityLoss,
        "contrastive": losses.ContrastiveLoss,
        "online_contrastive": losses.OnlineContrastiveLoss,
    }
    return factories[name](embedder)


def tune_body(
    model: Any,
    preprocess: Preprocess,
    inputs: Sequence[Any],
    labels: Sequence[int],
    train: TrainConfig,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    generator: torch.Generator,
) -> ContrastiveSummary:
    """Tune every body block on pairs of ``inputs`` with ``train.contrastive.loss``; the head does not train.

    Learning rates are the strategies' usual ones: ``learning_rate`` for the top block, decaying by
    ``layer_decay`` downwards. Dropout is on, gradients accumulate over ``gradient_accumulation``
    batches of pairs and their norm is clipped, and the schedule warms up then decays over all steps.
    """
    settings = pair_settings(train)
    started = time.perf_counter()
    pairs = make_pairs(labels, pair_count(len(inputs), settings), train.seed)
    apply_phase(model, Phase("pairs", 1, settings.epochs, len(model.body_blocks())))
    for parameter in model.head.parameters():
        parameter.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    embedder = BatchEmbeddings(model)
    loss_fn = pair_loss(settings.loss, embedder).to(device)
    optimizer = adamw(model, train)
    steps_per_epoch = optimizer_steps(len(pairs), train.batch_size, train.gradient_accumulation)
    total_steps = steps_per_epoch * settings.epochs
    scheduler = warmup_then_linear_decay(optimizer, train.warmup_ratio, total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    runner = StepRunner(optimizer, scheduler, scaler, trainable, train, device, autocast_dtype)
    precision = precision_name(autocast_dtype)
    log.info(
        "Contrastive phase: %d pairs (%d similar) from %d examples, %d epoch(s) of %d steps, %s loss, on %s in %s",
        len(pairs), sum(p.similar for p in pairs), len(inputs), settings.epochs, steps_per_epoch, settings.loss, device,
        precision,
    )  # fmt: skip

    def loss_of(batch: PairBatch) -> torch.Tensor:
        embedder.encode(batch.features)
        return loss_fn(batch.sides, batch.targets)

    model.train()
    step, pairs_seen, encoded, recent_loss = 0, 0, 0, float("nan")
    log_every = max(1, int(total_steps * LOG_EVERY_FRACTION))
    for _ in range(settings.epochs):
        index_batches = torch.randperm(len(pairs), generator=generator).split(train.batch_size)
        batches = (
            pair_batch([pairs[i] for i in index.tolist()], inputs, preprocess, device) for index in index_batches
        )
        for batch, loss, stepped in runner.epoch(batches, len(index_batches), loss_of):
            encoded, pairs_seen, recent_loss = encoded + batch.examples, pairs_seen + batch.pairs, loss.item()
            step += stepped
            if stepped and (step % log_every == 0 or step == total_steps):
                log.info(
                    "contrastive step %d/%d  loss %.4f  (%.0f pairs/s)",
                    step, total_steps, recent_loss, pairs_seen / (time.perf_counter() - started),
                )  # fmt: skip
    summary = ContrastiveSummary(
        pairs=len(pairs),
        similar_pairs=sum(p.similar for p in pairs),
        epochs=settings.epochs,
        steps=step,
        loss=settings.loss,
        final_loss=recent_loss,
        seconds=time.perf_counter() - started,
        precision=precision,
    )
    embedder.embeddings = None
    log.info(
        "Contrastive phase done in %.1fs (the body encoded %d examples for %d pair sides)",
        summary.seconds, encoded, 2 * pairs_seen,
    )  # fmt: skip
    return summary
