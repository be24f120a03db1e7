"""The training loop: phases of a transfer strategy, model selection, and resumable epochs.

``fine_tune`` runs the phases a strategy plans (``tlpipe.strategies``), each with a fresh AdamW
(no weight decay on biases and norms) and a linear warm-up then decay over the phase. Within an
epoch it can balance classes (weighted loss or a weighted sampler), smooth labels, accumulate
gradients over several batches and clip their norm. After each epoch it scores validation
macro-F1, keeps the best epoch, stops early when patience runs out, and saves a resumable state.
Everything is seeded, so two CPU runs with the same seed give the same model, and a run resumed
after a kill ends where an uninterrupted one would. Under ``torchrun`` each process trains on its
shard of every epoch with DistributedDataParallel (``tlpipe.distributed``).

Decoded inputs (texts tokenised and padded to the batch's longest, images decoded and augmented)
are prepared in ``train.loader_workers`` DataLoader processes while the model computes, pinned
for the copy when training on a GPU. The workers start afresh each epoch, seeded from the loop's
saved generator, so a resumed run still draws the augmentations an uninterrupted one would.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tlpipe import metrics
from tlpipe.config import TrainConfig
from tlpipe.contrastive import tune_body
from tlpipe.distributed import Workers, join_process_group
from tlpipe.errors import ConfigError
from tlpipe.feature_cache import FeatureCache, encode_features
from tlpipe.modalities.classifier import Classifier
from tlpipe.optimization import StepRunner, adamw, optimizer_steps, warmup_then_linear_decay
from tlpipe.phases import Phase
from tlpipe.runtime import Runtime, device_report, make_deterministic, pair_tuning_dtype, select_runtime
from tlpipe.strategies import get_strategy
from tlpipe.strategies.base import Strategy
from tlpipe.train_state import Progress, Resumed, TrainStateStore, restore_rng
from tlpipe.tuned_bodies import TunedBodies

log = logging.getLogger(__name__)

Preprocess = Callable[[Sequence[Any]], dict[str, torch.Tensor]]
EpochRecord = dict[str, Any]


@dataclass
class TrainResult:
    """What training produced: the best epoch's validation score and per-epoch history."""

    best_epoch: int = 0
    best_macro_f1: float = -1.0
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False
    resumed_after_epoch: int = 0
    body_tuning: dict[str, Any] | None = None


@dataclass
class Callbacks:
    """Hooks for the stage: keep the best model, log each epoch (replayed for resumed epochs too)."""

    on_improvement: Callable[[Classifier, EpochRecord], None] = lambda model, record: None
    on_epoch_end: Callable[[EpochRecord], None] = lambda record: None
    saved_best_epoch: Callable[[], int | None] = lambda: None  # the epoch the kept best checkpoint holds


def _recover_best(model: Classifier, progress: Progress, callbacks: Callbacks) -> None:
    """Write the best checkpoint a kill prevented: the restored weights are it when the last epoch was the best."""
    if progress.best_epoch == progress.epoch and callbacks.saved_best_epoch() != progress.best_epoch:
        log.info("Writing the best checkpoint of epoch %d, which the interruption prevented", progress.best_epoch)
        callbacks.on_improvement(model, progress.history[-1])


def restore_scaler(scaler: torch.amp.GradScaler, trainer: dict[str, Any], runtime: Runtime) -> None:
    """Load the saved loss-scaler state, or restart the scaler when the precision changed since the save."""
    saved = trainer.get("scaler") or {}
    if runtime.uses_scaler and saved:
        scaler.load_state_dict(saved)
    elif runtime.uses_scaler:
        log.info("The training state was saved without fp16 loss scaling (%s); starting a fresh scaler",
                 trainer.get("precision", "unknown precision"))  # fmt: skip


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, ``n / (classes * count)``: 1 for every class when balanced."""
    counts = torch.bincount(labels, minlength=num_classes).clamp(min=1).float()
    return len(labels) / (num_classes * counts)


def fine_tune(
    model: Classifier,
    preprocess: Preprocess,
    train_inputs: Sequence[Any],
    train_labels: Sequence[int],
    valid_inputs: Sequence[Any],
    valid_labels: Sequence[int],
    train: TrainConfig,
    callbacks: Callbacks | None = None,
    state: TrainStateStore | None = None,
    feature_cache: FeatureCache | None = None,
    augment: Preprocess | None = None,
    tuned_bodies: TunedBodies | None = None,
    record_valid_logits: bool = False,
) -> TrainResult:
    """Train ``model`` with ``train.strategy``; resume from ``state`` when it holds this run's last epoch.

    ``augment`` preprocesses training batches when the strategy trains on raw inputs (image
    augmentation); validation, cached features and the contrastive pairs use ``preprocess``.
    ``tuned_bodies`` keeps the body a contrastive phase tuned, for another strategy tuning alike on the same data.
    Without validation examples (the final model of a cross-validation) the last epoch is kept, and
    early stopping is off. ``record_valid_logits`` keeps each epoch's validation logits in its history
    record (``valid_logits``): a cross-validation fold's, for calibrating on out-of-fold predictions.
    """
    callbacks = callbacks or Callbacks()
    workers = join_process_group()
    make_deterministic(train.deterministic)
    seed_everything(train.seed)
    runtime = select_runtime(train, workers.local_rank)
    log.info(device_report(runtime, train))
    if train.strategy == "auto":
        raise ConfigError("train.strategy auto must be resolved to a strategy first (tlpipe.auto)")
    strategy = get_strategy(train.strategy)
    strategy.prepare_inputs(model, preprocess, train_inputs, train.batch_size)  # before a saved state loads it
    if strategy.changes_body:
        feature_cache = None  # the cache holds the snapshot's body's embeddings, and those alone
    model.to(runtime.device)
    generator = torch.Generator().manual_seed(train.seed)
    if not workers.is_main:
        callbacks = Callbacks()  # rank 0 writes every output
    resumed, progress = _resume(model, train, state, workers, callbacks)
    resumed_after_epoch = progress.epoch
    if progress.epoch == 0:  # a resumed run restored a prepared body with its weights
        progress.body_tuning = _prepare_body(
            strategy, model, preprocess, train_inputs, train_labels, train, runtime, generator, tuned_bodies
        )
    phases = list(strategy.phases(train, len(model.body_blocks())))
    if strategy.trains_on_features:
        strategy.apply_phase(model, phases[0])
    train_set = _examples(
        strategy, model, augment or preprocess, train_inputs, train, runtime, feature_cache, preprocess
    )
    valid_set: RawExamples | CachedFeatures | None = None
    if len(valid_inputs):
        valid_set = _examples(strategy, model, preprocess, valid_inputs, train, runtime, feature_cache, preprocess)
    targets = torch.tensor(list(train_labels), dtype=torch.long)
    valid_targets = torch.tensor(list(valid_labels), dtype=torch.long)
    num_classes = model.head.out_features
    loss_weights, sample_weights = _class_balance(train, targets, num_classes, runtime.device)
    batch_size = workers.batch_size(train.batch_size)
    shard_size = len(workers.shard(torch.arange(len(train_set))))
    steps_per_epoch = optimizer_steps(shard_size, batch_size, train.gradient_accumulation)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.uses_scaler)
    stop = _patience_ran_out(train, progress, phases)

    for phase in phases:
        if stop or phase.last_epoch <= progress.epoch:
            continue
        strategy.apply_phase(model, phase)
        _log_phase(model, phase, runtime)
        step = workers.wrap(TrainingStep(model, train_set), runtime.device)  # DDP over what trains in this phase
        optimizer = adamw(model, train)
        scheduler = warmup_then_linear_decay(optimizer, train.warmup_ratio, steps_per_epoch * phase.epochs)
        if resumed and phase.first_epoch <= progress.epoch:
            optimizer.load_state_dict(resumed.trainer["optimizer"])
            scheduler.load_state_dict(resumed.trainer["scheduler"])
            restore_scaler(scaler, resumed.trainer, runtime)
        if resumed:
            restore_rng(resumed.trainer, generator)
            resumed = None

        for epoch in range(max(phase.first_epoch, progress.epoch + 1), phase.last_epoch + 1):
            started = time.perf_counter()
            order = _epoch_order(len(train_set), sample_weights, generator)
            model.train()
            if strategy.trains_on_features:
                model.body.eval()
            keep_frozen_norms_in_eval(model)
            train_loss = train_epoch(
                step, train_set, targets, workers.shard(order), batch_size, optimizer, scheduler, scaler,
                train, runtime, loss_weights, workers, generator,
            )  # fmt: skip
            valid_logits = valid_set.logits(model, train.batch_size).float() if valid_set is not None else None
            macro_f1 = (
                metrics.macro_f1(valid_logits.argmax(dim=1), valid_targets, num_classes)
                if valid_logits is not None
                else None
            )
            record = {
                "epoch": epoch,
                "phase": phase.name,
                "train_loss": train_loss,
                "valid_macro_f1": macro_f1,
                "seconds": time.perf_counter() - started,
            }
            if record_valid_logits and valid_logits is not None:
                record["valid_logits"] = valid_logits.cpu().tolist()
            last_epoch = epoch == phases[-1].last_epoch
            improved = _note_epoch(progress, record, last_epoch)
            callbacks.on_epoch_end(record)
            _log_epoch(record, train.epochs, improved)
            stop = _patience_ran_out(train, progress, phases)
            if state and workers.is_main and (state.every_epoch or stop or last_epoch):
                state.save(model, progress, optimizer, scheduler, scaler, generator, runtime.precision)
            # After the state: a kill between the two leaves a state that knows its best epoch, and a resume
            # writes the best checkpoint from it (_recover_best); never a best checkpoint the state disowns.
            if improved:
                callbacks.on_improvement(model, record)
            if stop:
                log.info(
                    "Early stopping: no better validation macro-F1 for %d epochs", progress.epochs_without_improvement
                )
                break
    model.to("cpu")
    return TrainResult(
        best_epoch=progress.best_epoch,
        best_macro_f1=progress.best_macro_f1,
        history=progress.history,
        stopped_early=stop,
        resumed_after_epoch=resumed_after_epoch,
        body_tuning=progress.body_tuning,
    )


def _prepare_body(
    strategy: Strategy,
    model: Classifier,
    preprocess: Preprocess,
    inputs: Sequence[Any],
    labels: Sequence[int],
    train: TrainConfig,
    runtime: Runtime,
    generator: torch.Generator,
    tuned_bodies: TunedBodies | None,
) -> dict[str, Any] | None:
    """What ``strategy`` does to the body before the first epoch, for the record: tuning it on pairs of
    ``inputs``, or taking a body tuned alike from ``tuned_bodies``."""

    def tune_now() -> dict[str, Any]:
        return tune_body(
            model, preprocess, inputs, labels, train, runtime.device, pair_tuning_dtype(runtime, train), generator
        ).to_dict()

    def tune() -> dict[str, Any]:
        if tuned_bodies:
            return tuned_bodies.load_or_tune(model.body, inputs, labels, train, tune_now)
        return tune_now()

    return strategy.prepare_body(tune)


def _class_balance(
    train: TrainConfig, targets: torch.Tensor, num_classes: int, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``train.class_balance`` as (the loss's class weights, each example's sampling weight); None where off."""
    if train.class_balance == "weighted_loss":
        return class_weights(targets, num_classes).to(device), None
    if train.class_balance == "sampler":
        return None, class_weights(targets, num_classes)[targets]
    return None, None


def _epoch_order(examples: int, sample_weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """The order of an epoch's examples: a permutation, or a weighted draw with replacement (class sampler)."""
    if sample_weights is not None:
        return torch.multinomial(sample_weights, examples, replacement=True, generator=generator)
    return torch.randperm(examples, generator=generator)


def _resume(
    model: Classifier, train: TrainConfig, state: TrainStateStore | None, workers: Workers, callbacks: Callbacks
) -> tuple[Resumed | None, Progress]:
    """The saved state of this run, if any, loaded into ``model``, and the progress to go on from.

    Resumed epochs are replayed to ``callbacks``, and a best checkpoint a kill prevented is written.
    """
    resumed = state.load(model) if state else None
    workers.barrier()  # every process has read the state before rank 0 writes the next one
    progress = resumed.progress if resumed else Progress()
    for record in progress.history:
        callbacks.on_epoch_end(record)
    if resumed:
        log.info(
            "Resuming after epoch %d of %d (best macro-F1 so far %.4f)",
            progress.epoch,
            train.epochs,
            progress.best_macro_f1,
        )
        if workers.is_main:
            _recover_best(model, progress, callbacks)
    return resumed, progress


def _note_epoch(progress: Progress, record: EpochRecord, last_epoch: bool) -> bool:
    """Add ``record`` to ``progress``; whether it is the best epoch so far."""
    macro_f1 = record["valid_macro_f1"]
    # Without validation the last epoch is the one kept, and patience never runs out.
    improved = last_epoch if macro_f1 is None else macro_f1 > progress.best_macro_f1
    progress.epoch = record["epoch"]
    progress.history.append(record)
    if improved:
        progress.best_epoch, progress.epochs_without_improvement = record["epoch"], 0
        progress.best_macro_f1 = macro_f1 if macro_f1 is not None else progress.best_macro_f1
    elif macro_f1 is not None:
        progress.epochs_without_improvement += 1
    return improved


def _log_epoch(record: EpochRecord, epochs: int, improved: bool) -> None:
    macro_f1 = record["valid_macro_f1"]
    log.info(
        "epoch %d/%d [%s]  train loss %.4f  %s  (%.1fs)",
        record["epoch"], epochs, record["phase"], record["train_loss"],
        "(no validation)" if macro_f1 is None else f"valid macro-F1 {macro_f1:.4f}" + " best so far" * improved,
        record["seconds"],
    )  # fmt: skip


def _patience_ran_out(train: TrainConfig, progress: Progress, phases: list[Phase]) -> bool:
    """Early stopping's verdict, never before the last phase has started: the head-only epochs that
    precede unfreezing must not end a run whose gains come after them."""
    last_phase_started = progress.epoch >= phases[-1].first_epoch
    return last_phase_started and 0 < train.early_stopping_patience <= progress.epochs_without_improvement


def train_epoch(
    step: nn.Module,
    examples: RawExamples | CachedFeatures,
    targets: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    train: TrainConfig,
    runtime: Runtime,
    loss_weights: torch.Tensor | None,
    workers: Workers,
    generator: torch.Generator,
) -> float:
    """One pass over ``order`` in batches; returns the mean training loss (over every process)."""
    trainable = [p for p in step.parameters() if p.requires_grad]
    runner = StepRunner(optimizer, scheduler, scaler, trainable, train, runtime.device, runtime.autocast_dtype)
    total_loss = torch.zeros((), dtype=torch.float64, device=runtime.device)  # summed on the device: no sync per step

    def loss_of(batch_and_index: tuple[Any, torch.Tensor]) -> torch.Tensor:
        batch, index = batch_and_index
        return nn.functional.cross_entropy(
            step(batch).float(),
            targets[index].to(runtime.device),
            weight=loss_weights,
            label_smoothing=train.label_smoothing,
        )

    batches = examples.batches(order, batch_size, generator)
    accumulating = functools.partial(workers.accumulating, step)
    for (_, index), loss, _ in runner.epoch(batches, math.ceil(len(order) / batch_size), loss_of, accumulating):
        total_loss += loss.detach() * len(index)
    return workers.mean(total_loss.item(), len(order))


class TrainingStep(nn.Module):
    """The forward pass of a training batch as one module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: Classifier, examples: RawExamples | CachedFeatures) -> None:
        super().__init__()
        self.model, self.examples = model, examples

    def forward(self, batch: Any) -> torch.Tensor:
        return self.examples.forward(self.model, batch)


def _log_phase(model: Classifier, phase: Phase, runtime: Runtime) -> None:
    log.info(
        "Phase '%s' (epochs %d-%d) on %s%s: %d trainable of %d parameters",
        phase.name,
        phase.first_epoch,
        phase.last_epoch,
        runtime.device,
        f" ({runtime.autocast_dtype})" if runtime.autocast_dtype else "",
        sum(p.numel() for p in model.parameters() if p.requires_grad),
        sum(p.numel() for p in model.parameters()),
    )


def keep_frozen_norms_in_eval(model: Classifier) -> None:
    """Batch-norm layers whose parameters do not train keep their running statistics (eval mode).

    A frozen pretrained block must compute what it computed in pretraining; in train mode its
    batch norms would normalise with each small batch's statistics and overwrite the running ones.
    Norms without running statistics (LayerNorm) behave the same in both modes and are left alone.
    """
    for module in model.body.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in module.parameters()
        ):
            module.eval()


def _examples(
    strategy: Strategy,
    model: Classifier,
    preprocess: Preprocess,
    inputs: Sequence[Any],
    train: TrainConfig,
    runtime: Runtime,
    cache: FeatureCache | None,
    encode_preprocess: Preprocess,
) -> RawExamples | CachedFeatures:
    if strategy.trains_on_features:
        return CachedFeatures(model, inputs, encode_preprocess, train.batch_size, runtime.device, cache)
    return RawExamples(inputs, preprocess, runtime.device, loader_workers(train, runtime))


def loader_workers(train: TrainConfig, runtime: Runtime) -> int:
    """DataLoader processes preparing batches: ``train.loader_workers``, or with ``auto`` none on a CPU
    (the cores are busy computing) and up to 4 per GPU process on a GPU."""
    if train.loader_workers != "auto":
        return train.loader_workers
    if runtime.device.type != "cuda":
        return 0
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(4, (os.cpu_count() or 1) // processes_here - 1))


def predict_logits(
    model: Classifier,
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


class RawExamples:
    """Full fine-tune: inputs are preprocessed batch by batch and run through body and head."""

    def __init__(self, inputs: Sequence[Any], preprocess: Preprocess, device: torch.device, workers: int = 0) -> None:
        self.inputs, self.preprocess, self.device, self.workers = list(inputs), preprocess, device, workers

    def __len__(self) -> int:
        return len(self.inputs)

    def batches(
        self, order: torch.Tensor, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """Preprocessed batches of ``order`` with their indices; prepared by worker processes when there are any."""
        index_batches = order.split(batch_size)
        if self.workers == 0:
            for index in index_batches:
                yield self.preprocess([self.inputs[i] for i in index.tolist()]), index
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(
            self.inputs,
            batch_sampler=[index.tolist() for index in index_batches],
            collate_fn=self.preprocess,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,  # seeds the workers' augmentation draws, resumably
        )
        yield from zip(loader, index_batches, strict=True)

    def forward(self, model: Classifier, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**{name: tensor.to(self.device, non_blocking=True) for name, tensor in batch.items()})

    def logits(self, model: Classifier, batch_size: int) -> torch.Tensor:
        return predict_logits(model, self.preprocess, self.inputs, batch_size)


class CachedFeatures:
    """Linear probe: the frozen body's pooled features, computed once; only the head runs."""

    def __init__(
        self,
        model: Classifier,
        inputs: Sequence[Any],
        preprocess: Preprocess,
        batch_size: int,
        device: torch.device,
        cache: FeatureCache | None,
    ) -> None:
        def encode() -> torch.Tensor:
            return encode_features(model, preprocess, inputs, batch_size, device)

        embeddings = cache.load_or_compute(inputs, encode) if cache else encode()
        features = model.features_from_embeddings(embeddings, preprocess, inputs, batch_size)
        self.features, self.device = features.to(device), device

    def __len__(self) -> int:
        return len(self.features)

    def batches(
        self, order: torch.Tensor, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of cached features in ``order``, with their indices."""
        for index in order.split(batch_size):
            yield self.features[index.to(self.device)], index

    def forward(self, model: Classifier, batch: torch.Tensor) -> torch.Tensor:
        return model.classify(batch)

    def logits(self, model: Classifier, batch_size: int) -> torch.Tensor:
        model.eval()
        with torch.inference_mode():
            return model.classify(self.features).float().cpu()
