"""The interface every modality implements (the classifier shape every model family shares is ``classifier.py``).

Everything after a modality's reader works on one canonical table with two columns, ``input``
(a text, or an image path relative to the project) and ``label``. A modality supplies:

- data: ``read_raw`` (the user's files to a raw table, which ``check_quality`` validates and the
  validate stage writes as the manifest, the data version), ``to_examples`` (raw table to
  canonical table) and ``content_key`` (what identifies an input's content, for the feature cache);
- the model family: ``load_pretrained`` / ``build_classifier`` give a ``Classifier`` (body
  blocks, pooled features, linear head), ``preprocessor`` turns inputs into tensors and describes
  itself for the bundle, ``augmenter`` perturbs training inputs;
- evaluation: ``fit_baseline`` (the classic model every run must beat) and the model card's words.

The training loop, strategies, export and stages are written against this module only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import pandas as pd

from tlpipe.auto import AutoRule
from tlpipe.config import CalibrationMethod, DataConfig, EvaluateConfig, PreprocessConfig, QuantizeForm
from tlpipe.quality import QualityReport

if TYPE_CHECKING:  # torch only for the annotations: validate and prepare read data and never load a model
    import torch

    from tlpipe.modalities.classifier import Classifier


class Preprocessor(Protocol):
    """Turns a list of inputs into the model's named tensors; what a server must redo, as data."""

    input_names: tuple[str, ...]

    def __call__(self, inputs: Sequence[Any]) -> dict[str, torch.Tensor]: ...

    def input_shapes(self) -> dict[str, list[str | int]]:
        """Each input's shape, a name for each axis that varies (``["batch", 3, 224, 224]``)."""
        ...

    def describe(self) -> dict[str, Any]:
        """The preprocessing record the bundle carries (``preprocessing.json``)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the files this preprocessor is rebuilt from, next to a checkpoint."""
        ...

    def write_bundle_files(self, folder: Path) -> None:
        """Write the files a server needs besides ``preprocessing.json`` (a tokenizer; nothing for images)."""
        ...


class Baseline(Protocol):
    """A fitted classic model: class ids for inputs."""

    def predict(self, inputs: Sequence[Any]) -> Sequence[int]: ...


class Modality(ABC):
    """One kind of input, end to end. Subclasses live in ``tlpipe.modalities.<name>``."""

    name: ClassVar[str]
    task: ClassVar[str]  # Hugging Face pipeline tag, for the model card and the bundle
    input_column: ClassVar[str]  # how predictions.csv names an input ("text", "path")
    serving_packages: ClassVar[tuple[str, ...]]  # what the bundle's predict.py needs besides onnxruntime, numpy
    baseline_name: ClassVar[str]  # the evaluate.baseline value this modality implements
    baseline_title: ClassVar[str]  # how reports name it
    auto_rule: ClassVar[AutoRule]  # what train.strategy auto picks, from this modality's benchmark
    default_source: ClassVar[str]  # the body model.source null names under the fast and balanced presets
    reads_folders: ClassVar[bool] = False  # a folder of class folders is a dataset (images), besides a CSV
    cross_validate_below: ClassVar[int]  # split.cross_validate_below when params.yaml leaves it null
    quantize: ClassVar[QuantizeForm]  # export.quantize under auto, as benchmarks/serving.py found
    calibration: ClassVar[CalibrationMethod]  # serving.calibration under auto, as benchmarks/calibration.py found

    # data

    @abstractmethod
    def read_raw(self, path: Path, data: DataConfig) -> pd.DataFrame:
        """The user's raw file or folder as a table for the data checks (the manifest)."""

    @abstractmethod
    def check_quality(
        self, train: pd.DataFrame, test: pd.DataFrame, data: DataConfig, train_name: str, test_name: str
    ) -> QualityReport:
        """Run the modality's data checks on raw train and test tables."""

    @abstractmethod
    def to_examples(self, raw: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
        """The canonical ``input``/``label`` table of the usable rows of a checked raw table."""

    @abstractmethod
    def read_pool(self, path: Path, data: DataConfig) -> list[Any]:
        """The inputs of an unlabelled pool (a file or folder like the training data's, without labels), checked as
        training data is; raises ``DataValidationError`` naming the bad rows or files."""

    @abstractmethod
    def raw_input_column(self, data: DataConfig) -> str:
        """The column that holds an input in the user's labelled CSV (the text column; a manifest's path column)."""

    @abstractmethod
    def content_key(self, item: Any) -> str:
        """What identifies an input's content (the text itself; an image file's sha256)."""

    # model family

    @abstractmethod
    def load_pretrained(
        self, snapshot: Path, num_labels: int, dropout: float, trust_remote_code: bool, pretrained: bool
    ) -> Classifier:
        """A classifier with the snapshot's body (random weights unless ``pretrained``) and a new head."""

    @abstractmethod
    def build_classifier(self, folder: Path, weights: Path, num_labels: int, dropout: float) -> Classifier:
        """An untrained classifier of the architecture saved in a checkpoint ``folder``.

        ``weights`` is the checkpoint's safetensors file, loaded after; a modality whose architecture has a
        data-dependent size (the text lexicon) reads that size from the file's tensor shapes.
        """

    @abstractmethod
    def save_body_config(self, model: Classifier, folder: Path) -> None:
        """Write what ``build_classifier`` needs to rebuild the architecture."""

    @abstractmethod
    def save_body_snapshot(self, model: Classifier, preprocessor: Preprocessor, folder: Path) -> None:
        """Write ``model``'s body without its head as a snapshot ``load_pretrained`` reads (own-domain pretraining)."""

    @abstractmethod
    def preprocessor(self, folder: Path, preprocess: PreprocessConfig, trust_remote_code: bool) -> Preprocessor:
        """The evaluation preprocessor of a snapshot or checkpoint ``folder``."""

    def augmenter(self, folder: Path, preprocess: PreprocessConfig) -> Preprocessor | None:
        """A training-time preprocessor that perturbs inputs, or ``None`` when the modality has none."""
        return None

    def check_snapshot(self, snapshot: Path, source: str) -> None:
        """Raise ``ModelSourceError`` if the snapshot is not a model of this modality."""
        return None

    # evaluation

    @abstractmethod
    def fit_baseline(
        self, inputs: Sequence[Any], labels: Sequence[int], evaluate: EvaluateConfig, seed: int
    ) -> Baseline:
        """The fitted classic baseline."""

    @abstractmethod
    def card_usage(self, classifier: dict[str, Any]) -> str:
        """The model card's sentence on what a server must do to an input before ``model.onnx``."""
