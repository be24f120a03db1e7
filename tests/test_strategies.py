"""Each strategy's phases: exactly which parameters train, and the learning rate of every optimiser group."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tlpipe.config import TrainConfig
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.optimization import block_learning_rates, parameter_groups
from tlpipe.phases import Phase, apply_phase
from tlpipe.strategies import STRATEGIES, get_strategy
from tlpipe.training import Callbacks, fine_tune, seed_everything

# The tiny BERT's body blocks, bottom to top.
BLOCKS = ["body.embeddings.", "body.encoder.layer.0.", "body.encoder.layer.1."]
HEAD = {"head.weight", "head.bias"}
BASE = dict(epochs=6, learning_rate=1e-3, head_learning_rate=1e-2, weight_decay=0.05)


def config(strategy: str, **overrides) -> TrainConfig:
    settings = {**BASE, "strategy": strategy, **overrides}
    if strategy == "freeze_unfreeze":
        settings.setdefault("layer_decay", 0.5)
        settings.setdefault("freeze_unfreeze", {"head_epochs": 2})
    return TrainConfig(**settings)


@pytest.fixture
def model(tiny_model_dir: Path):
    seed_everything(0)
    return load_pretrained(tiny_model_dir, 3, dropout=0.0)


def expected_trainable(model, blocks: int) -> set[str]:
    prefixes = BLOCKS[len(BLOCKS) - blocks :] if blocks else []
    return HEAD | {name for name, _ in model.named_parameters() if name.startswith(tuple(prefixes))}


@pytest.mark.parametrize(
    ("strategy", "overrides", "plan"),
    [
        ("linear_probe", {}, [("head", 1, 6, 0)]),
        ("full", {}, [("all", 1, 6, 3)]),
        ("scratch", {}, [("all", 1, 6, 3)]),
        ("freeze_unfreeze", {}, [("head", 1, 2, 0), ("all", 3, 6, 3)]),
        ("gradual_unfreeze", {}, [("head", 1, 1, 0), ("top 1", 2, 2, 1), ("top 2", 3, 3, 2), ("all", 4, 6, 3)]),
        ("contrastive", {}, [("head", 1, 6, 0)]),
        ("lexical_probe", {}, [("head", 1, 6, 0)]),
        ("lexical_contrastive", {}, [("head", 1, 6, 0)]),
        ("bitfit", {}, [("biases", 1, 6, 3)]),
        (
            "gradual_unfreeze", {"gradual_unfreeze": {"epochs_per_block": 2}},
            [("head", 1, 2, 0), ("top 1", 3, 4, 1), ("top 2", 5, 6, 2)],
        ),
        ("gradual_unfreeze", {"epochs": 2}, [("head", 1, 1, 0), ("top 1", 2, 2, 1)]),
    ],
)  # fmt: skip
def test_each_strategy_plans_its_phases(strategy: str, overrides: dict, plan: list[tuple]) -> None:
    phases = get_strategy(strategy).phases(config(strategy, **overrides), blocks=3)

    assert [(p.name, p.first_epoch, p.last_epoch, p.trainable_blocks) for p in phases] == plan


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - {"bitfit"}))
def test_each_phase_trains_exactly_the_head_and_its_top_blocks(model, strategy: str) -> None:
    for phase in get_strategy(strategy).phases(config(strategy), blocks=3):
        get_strategy(strategy).apply_phase(model, phase)

        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        assert trainable == expected_trainable(model, phase.trainable_blocks), (strategy, phase.name)
        assert not any(name.startswith("body.pooler") for name in trainable)


def test_bitfit_trains_the_head_and_the_biases_of_every_block_only(model) -> None:
    strategy = get_strategy("bitfit")
    [phase] = strategy.phases(config("bitfit"), blocks=3)
    strategy.apply_phase(model, phase)

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    biases = {name for name in expected_trainable(model, 3) - HEAD if name.endswith("bias")}
    assert trainable == HEAD | biases
    assert "body.encoder.layer.0.attention.self.query.bias" in trainable
    assert "body.encoder.layer.0.attention.self.query.weight" not in trainable
    assert not any(name.startswith("body.pooler") for name in trainable)


def test_a_bitfit_run_changes_the_biases_and_leaves_every_other_body_weight(
    model, tiny_model_dir: Path, train_table, test_table
) -> None:
    preprocess = TextPreprocessor(load_tokenizer(tiny_model_dir), 32)
    labels = sorted(set(train_table["label"]))
    before = {name: p.detach().clone() for name, p in model.body.named_parameters()}

    fine_tune(
        model, preprocess,
        train_table["text"].tolist(), [labels.index(x) for x in train_table["label"]],
        test_table["text"].tolist(), [labels.index(x) for x in test_table["label"]],
        config("bitfit", epochs=2, batch_size=8),
    )  # fmt: skip

    after = dict(model.body.named_parameters())
    changed = {name for name in before if not torch.equal(before[name], after[name].detach())}
    blocks_biases = {name for name in before if name.endswith("bias") and not name.startswith("pooler")}
    assert changed == blocks_biases


def test_head_only_phase_trains_two_tensors(model) -> None:
    apply_phase(model, Phase("head", 1, 1, 0))

    assert {name for name, p in model.named_parameters() if p.requires_grad} == HEAD


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_optimiser_group_carries_its_learning_rate_in_every_phase(model, strategy: str) -> None:
    head_only = strategy in ("linear_probe", "lexical_probe")
    train = config(strategy) if head_only else config(strategy, layer_decay=0.5)
    decay = train.layer_decay
    for phase in get_strategy(strategy).phases(train, blocks=3):
        get_strategy(strategy).apply_phase(model, phase)

        groups = parameter_groups(model, train)

        expected_lr = {"head": 1e-2, "block2": 1e-3, "block1": 1e-3 * decay, "block0": 1e-3 * decay**2}
        training = {"head"} | {f"block{i}" for i in range(3 - phase.trainable_blocks, 3)}
        assert {g["name"].removesuffix(".no_decay") for g in groups} == training, (strategy, phase.name)
        for group in groups:
            assert group["lr"] == pytest.approx(expected_lr[group["name"].removesuffix(".no_decay")])
            assert group["weight_decay"] == (0.0 if group["name"].endswith(".no_decay") else 0.05)
        grouped = {id(p) for g in groups for p in g["params"]}
        assert grouped == {id(p) for p in model.parameters() if p.requires_grad}


def test_norms_and_biases_get_no_weight_decay(model) -> None:
    apply_phase(model, Phase("all", 1, 1, 3))

    groups = {g["name"]: g for g in parameter_groups(model, config("full"))}

    named = {id(p): n for n, p in model.named_parameters()}
    no_decay = {named[id(p)] for name, g in groups.items() if name.endswith(".no_decay") for p in g["params"]}
    assert "body.embeddings.LayerNorm.weight" in no_decay
    assert "head.bias" in no_decay
    assert "body.encoder.layer.0.attention.self.query.weight" not in no_decay


def test_layer_decay_gives_earlier_blocks_geometrically_smaller_rates() -> None:
    rates = block_learning_rates(TrainConfig(learning_rate=1e-3, layer_decay=0.8), blocks=4)

    assert rates == pytest.approx([1e-3 * 0.8**3, 1e-3 * 0.8**2, 1e-3 * 0.8, 1e-3])


def test_scratch_starts_from_random_weights_of_the_same_architecture(tiny_model_dir: Path) -> None:
    seed_everything(0)
    pretrained = load_pretrained(tiny_model_dir, 3, dropout=0.0)
    scratch = load_pretrained(tiny_model_dir, 3, dropout=0.0, pretrained=get_strategy("scratch").pretrained)

    assert [n for n, _ in scratch.named_parameters()] == [n for n, _ in pretrained.named_parameters()]
    word_embeddings = "body.embeddings.word_embeddings.weight"
    assert not torch.equal(
        dict(scratch.named_parameters())[word_embeddings], dict(pretrained.named_parameters())[word_embeddings]
    )


def test_freeze_unfreeze_run_uses_head_only_then_discriminative_groups(
    model, tiny_model_dir: Path, train_table, test_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[dict[str, float]] = []
    real_adamw = torch.optim.AdamW

    def recording_adamw(groups, *args, **kwargs):
        built.append({g["name"]: g["lr"] for g in groups})
        return real_adamw(groups, *args, **kwargs)

    monkeypatch.setattr("tlpipe.training.torch.optim.AdamW", recording_adamw)
    preprocess = TextPreprocessor(load_tokenizer(tiny_model_dir), 32)
    labels = sorted(set(train_table["label"]))
    train = config("freeze_unfreeze", epochs=3, layer_decay=0.5, freeze_unfreeze={"head_epochs": 1}, batch_size=8)
    body_before = {n: p.clone() for n, p in model.body.named_parameters()}
    after_phase_one: dict[str, torch.Tensor] = {}

    def snapshot_body(record):
        if record["epoch"] == 1:
            after_phase_one.update({n: p.detach().clone() for n, p in model.body.named_parameters()})

    fine_tune(
        model, preprocess,
        train_table["text"].tolist(), [labels.index(x) for x in train_table["label"]],
        test_table["text"].tolist(), [labels.index(x) for x in test_table["label"]],
        train, Callbacks(on_epoch_end=snapshot_body),
    )  # fmt: skip

    assert built[0] == {"head": 1e-2, "head.no_decay": 1e-2}
    assert built[1]["head"] == 1e-2
    assert built[1]["block2"] == pytest.approx(1e-3)
    assert built[1]["block1"] == pytest.approx(5e-4)
    assert built[1]["block0"] == pytest.approx(2.5e-4)
    assert all(torch.equal(body_before[n], after_phase_one[n]) for n in body_before)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_each_registered_strategy_module_holds_that_strategy_with_known_recipes(name: str) -> None:
    from tlpipe.modalities import MODALITIES
    from tlpipe.strategies.recipes import RECIPE_KEYS

    strategy = get_strategy(name)

    assert strategy.name == name and strategy.summary
    assert strategy.recipes and set(strategy.recipes) <= set(MODALITIES)
    for recipe in strategy.recipes.values():
        assert {key for key, value in recipe.items() if not isinstance(value, dict)} <= set(RECIPE_KEYS), name
        own = {key: value for key, value in recipe.items() if isinstance(value, dict)}
        assert set(own) <= {strategy.section}, name  # a recipe fills only its strategy's own section
        for values in own.values():
            assert strategy.settings_model is not None
            assert set(values) <= set(strategy.settings_model.model_fields), name


def test_a_strategy_applies_only_to_the_modalities_it_has_a_recipe_for() -> None:
    from tlpipe.errors import ConfigError
    from tlpipe.params import parse_params

    assert parse_params({"train": {"strategy": "bitfit"}}).train.strategy == "bitfit"
    with pytest.raises(ConfigError, match="train.strategy: bitfit does not apply to data.modality image: .*Use auto or "
                       "one of linear_probe, full, freeze_unfreeze, gradual_unfreeze, scratch"):  # fmt: skip
        parse_params({"data": {"modality": "image"}, "train": {"strategy": "bitfit"}})
