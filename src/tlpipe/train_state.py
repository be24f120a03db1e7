"""Per-epoch training state on disk, so that a killed training run resumes where it stopped.

After every epoch the store holds the model weights (safetensors) and everything else that
decides what happens next: optimiser, scheduler and loss-scaler states, every RNG state (torch,
CUDA, the data-order generator, Python, NumPy), the epoch, the best score and the history. The
state is written to a staging folder and swapped in with a rename, so a kill during the write
leaves the previous epoch's state. A fingerprint of the settings and inputs guards against
resuming a run that was started with different ones.
"""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tlpipe.artifacts import atomic_directory

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"
TRAINER = "trainer.pt"
LAST, BEST = "last", "best"


@dataclass
class Progress:
    """Where a run stands after ``epoch`` epochs."""

    epoch: int = 0
    best_epoch: int = 0
    best_macro_f1: float = -1.0
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    body_tuning: dict[str, Any] | None = None  # the contrastive phase's summary, once it has run


@dataclass
class Resumed:
    """A saved state that matches the current run."""

    progress: Progress
    trainer: dict[str, Any]


class TrainStateStore:
    """The folder holding the last epoch's state (``last/``) and the best checkpoint so far (``best/``).

    ``every_epoch=False`` keeps only a finished run's state: for a cross-validation fold, where a
    kill mid-fold costs one short rerun, and saving the whole model every epoch would cost more.
    """

    def __init__(self, folder: Path, fingerprint: str, every_epoch: bool = True) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self.every_epoch = every_epoch

    @property
    def best_dir(self) -> Path:
        return self.folder / BEST

    def save(
        self,
        model: nn.Module,
        progress: Progress,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: torch.amp.GradScaler,
        generator: torch.Generator,
        precision: str = "fp32",
    ) -> None:
        """Write the state after ``progress.epoch``, replacing the previous one atomically."""
        from safetensors.torch import save_model

        trainer = {
            "fingerprint": self.fingerprint,
            "progress": progress.__dict__,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "precision": precision,
            "rng": _rng_states(generator),
        }
        with atomic_directory(self.folder / LAST) as staging:
            save_model(model, str(staging / WEIGHTS))
            torch.save(trainer, staging / TRAINER)

    def load(self, model: nn.Module) -> Resumed | None:
        """Load the last state into ``model`` if it belongs to this run; ``None`` to start afresh."""
        from safetensors.torch import load_model

        path = self.folder / LAST / TRAINER
        if not path.is_file():
            return None
        # map_location: a state saved on a GPU (or another device index) resumes on whatever this machine has.
        trainer = torch.load(path, map_location="cpu", weights_only=True)
        if trainer["fingerprint"] != self.fingerprint:
            log.info("Discarding the training state in %s: settings or inputs changed since it was saved", self.folder)
            self.clear()
            return None
        load_model(model, str(self.folder / LAST / WEIGHTS))
        return Resumed(Progress(**trainer["progress"]), trainer)

    def clear(self) -> None:
        """Remove every saved state (after a finished run, or a stale one)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def restore_rng(trainer: dict[str, Any], generator: torch.Generator) -> None:
    """Put every RNG back where it was when the state was saved."""
    states = trainer["rng"]
    torch.set_rng_state(states["torch"])
    generator.set_state(states["generator"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))


def _rng_states(generator: torch.Generator) -> dict[str, Any]:
    # Stored as tensors and plain Python values only, so torch.load(weights_only=True) reads them.
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), position, has_gauss, cached),
    }
