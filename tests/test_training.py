"""Strategies train exactly the parameters they should, reproducibly, and keep the best epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from tlpipe.checkpoint import load_checkpoint, save_checkpoint
from tlpipe.config import PreprocessConfig, TrainConfig
from tlpipe.feature_cache import FeatureCache
from tlpipe.modalities import get_modality
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.optimization import StepRunner, optimizer_steps
from tlpipe.strategies.freeze_unfreeze import FreezeUnfreezeSettings
from tlpipe.train_state import TrainStateStore
from tlpipe.training import Callbacks, class_weights, fine_tune, predict_logits, seed_everything

LABELS = ["access", "billing", "shipping"]
FAST = TrainConfig(epochs=4, batch_size=8, learning_rate=1e-3, head_learning_rate=1e-2, warmup_ratio=0.0, seed=3)


def build(tiny_model_dir: Path, seed: int = 0):
    seed_everything(seed)
    model = load_pretrained(tiny_model_dir, len(LABELS), dropout=0.0)
    return model, TextPreprocessor(load_tokenizer(tiny_model_dir), max_length=32)


def encode(table: pd.DataFrame) -> tuple[list[str], list[int]]:
    return table["text"].tolist(), [LABELS.index(label) for label in table["label"]]


def train_once(tiny_model_dir: Path, train_table, test_table, config: TrainConfig, seed: int = 0):
    model, preprocess = build(tiny_model_dir, seed)
    improvements: list[int] = []
    result = fine_tune(
        model,
        preprocess,
        *encode(train_table),
        *encode(test_table),
        config,
        Callbacks(on_improvement=lambda m, record: improvements.append(record["epoch"])),
    )
    return model, preprocess, result, improvements


def test_linear_probe_trains_only_the_head(tiny_model_dir, train_table, test_table) -> None:
    model, _, _, _ = train_once(
        tiny_model_dir,
        train_table,
        test_table,
        FAST.model_copy(update={"strategy": "linear_probe", "epochs": 1}),
    )

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}


def test_linear_probe_leaves_the_body_weights_untouched(tiny_model_dir, train_table, test_table) -> None:
    before, _ = build(tiny_model_dir)
    after, _, _, _ = train_once(
        tiny_model_dir, train_table, test_table, FAST.model_copy(update={"strategy": "linear_probe"})
    )

    for (name, p_before), p_after in zip(before.body.named_parameters(), after.body.parameters(), strict=True):
        assert torch.equal(p_before, p_after), name
    assert not torch.equal(before.head.weight, after.head.weight)


def test_full_fine_tune_trains_every_parameter(tiny_model_dir, train_table, test_table) -> None:
    before, _ = build(tiny_model_dir)
    after, _, _, _ = train_once(tiny_model_dir, train_table, test_table, FAST)

    frozen = {name for name, p in after.named_parameters() if not p.requires_grad}
    assert frozen == {"body.pooler.dense.weight", "body.pooler.dense.bias"}  # unused by the classifier
    assert not torch.equal(before.body.embeddings.word_embeddings.weight, after.body.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("strategy", ["full", "linear_probe"])
def test_same_seed_gives_identical_training_on_cpu(tiny_model_dir, train_table, test_table, strategy) -> None:
    config = FAST.model_copy(update={"strategy": strategy, "epochs": 2})

    first = train_once(tiny_model_dir, train_table, test_table, config)[2]
    second = train_once(tiny_model_dir, train_table, test_table, config)[2]

    strip = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]  # noqa: E731
    assert strip(first.history) == strip(second.history)


def test_full_fine_tune_learns_the_toy_task_and_reports_each_improvement(
    tiny_model_dir, train_table, test_table
) -> None:
    model, _, result, improvements = train_once(
        tiny_model_dir, train_table, test_table, FAST.model_copy(update={"epochs": 8})
    )

    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_macro_f1 > 0.6  # chance is 1/3
    assert improvements[-1] == result.best_epoch
    assert improvements == sorted(improvements)


def test_checkpoint_round_trip_gives_the_same_logits(tiny_model_dir, tmp_path, train_table) -> None:
    model, preprocess = build(tiny_model_dir)
    metadata = {"preprocess": PreprocessConfig(max_length=32).model_dump(mode="json")}
    save_checkpoint(model, preprocess, get_modality("text"), LABELS, tmp_path, metadata)

    loaded, loaded_preprocess, config, modality = load_checkpoint(tmp_path)

    texts = train_table["text"].tolist()[:5]
    assert config["labels"] == LABELS and modality.name == "text"
    assert torch.allclose(
        predict_logits(model, preprocess, texts, 2), predict_logits(loaded, loaded_preprocess, texts, 2)
    )
    assert not list(tmp_path.glob("*.bin"))


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def test_early_stopping_ends_training_after_patience_epochs_without_improvement(
    tiny_model_dir, train_table, test_table
) -> None:
    frozen_in_place = FAST.model_copy(update={"epochs": 6, "learning_rate": 1e-12, "head_learning_rate": 1e-12})

    result = train_once(
        tiny_model_dir, train_table, test_table, frozen_in_place.model_copy(update={"early_stopping_patience": 2})
    )[2]

    assert result.stopped_early
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.best_epoch == 1


def test_early_stopping_never_ends_a_run_before_its_last_phase_has_started(
    tiny_model_dir, train_table, test_table
) -> None:
    # The head cannot improve (learning rate ~0), so patience runs out during the head-only phase.
    config = FAST.model_copy(
        update={
            "strategy": "freeze_unfreeze",
            "epochs": 6,
            "layer_decay": 0.8,
            "head_learning_rate": 1e-12,
            "early_stopping_patience": 1,
            "freeze_unfreeze": FreezeUnfreezeSettings(head_epochs=3),
        }
    )

    result = train_once(tiny_model_dir, train_table, test_table, config)[2]

    phases = [record["phase"] for record in result.history]
    assert phases[:3] == ["head", "head", "head"]
    assert "all" in phases  # the unfreezing phase ran although patience was spent by epoch 2


def test_without_validation_every_epoch_trains_and_the_last_is_kept(tiny_model_dir, train_table) -> None:
    model, preprocess = build(tiny_model_dir)
    kept: list[int] = []
    config = FAST.model_copy(update={"early_stopping_patience": 1})

    result = fine_tune(
        model, preprocess, *encode(train_table), [], [], config,
        Callbacks(on_improvement=lambda m, record: kept.append(record["epoch"])),
    )  # fmt: skip

    assert [record["epoch"] for record in result.history] == [1, 2, 3, 4]  # patience cannot run out
    assert all(record["valid_macro_f1"] is None for record in result.history)
    assert kept == [4] and result.best_epoch == 4 and not result.stopped_early


def test_class_weights_are_inverse_frequency() -> None:
    weights = class_weights(torch.tensor([0, 0, 0, 1]), num_classes=2)

    assert weights.tolist() == pytest.approx([4 / 6, 2.0])


@pytest.mark.parametrize("class_balance", ["weighted_loss", "sampler"])
def test_class_balancing_changes_training_on_imbalanced_data(
    tiny_model_dir, train_table, test_table, class_balance
) -> None:
    imbalanced = train_table.drop(train_table.index[train_table["label"] == "shipping"][:9]).reset_index(drop=True)
    config = FAST.model_copy(update={"epochs": 2, "label_smoothing": 0.1})

    plain = train_once(tiny_model_dir, imbalanced, test_table, config)[2]
    balanced = train_once(
        tiny_model_dir, imbalanced, test_table, config.model_copy(update={"class_balance": class_balance})
    )[2]

    assert without_timing(plain.history) != without_timing(balanced.history)


def test_gradient_accumulation_steps_the_optimiser_once_per_n_batches(tiny_model_dir, train_table, test_table) -> None:
    steps: list[int] = []
    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
    try:
        train_once(
            tiny_model_dir,
            train_table,
            test_table,
            FAST.model_copy(update={"epochs": 1, "batch_size": 4, "gradient_accumulation": 3}),
        )
    finally:
        handle.remove()

    assert len(steps) == 3  # 36 examples / 4 per batch = 9 batches, 3 per step


def test_the_step_runner_steps_every_n_batches_and_after_the_last_with_clipped_gradients_in_autocast() -> None:
    layer = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    train = FAST.model_copy(update={"gradient_accumulation": 3, "max_grad_norm": 0.5})
    runner = StepRunner(
        optimizer, scheduler, scaler, list(layer.parameters()), train, torch.device("cpu"), torch.bfloat16
    )
    in_autocast: list[bool] = []

    def loss_of(batch: torch.Tensor) -> torch.Tensor:
        in_autocast.append(torch.is_autocast_enabled("cpu"))
        return layer(batch).float().square().mean()

    moves = []
    before = torch.cat([p.detach().flatten() for p in layer.parameters()])
    for _, _, stepped in runner.epoch((100 * torch.ones(7, 2, 3)).unbind(), 7, loss_of):
        after = torch.cat([p.detach().flatten() for p in layer.parameters()])
        moves.append((stepped, float((after - before).norm())))
        before = after

    assert [stepped for stepped, _ in moves] == [False, False, True, False, False, True, True]
    assert all(move == 0 for stepped, move in moves if not stepped)
    assert all(move == pytest.approx(0.5) for stepped, move in moves if stepped)  # lr 1 times the clipped norm
    assert optimizer_steps(7 * 2, 2, 3) == 3 == scheduler.last_epoch
    assert in_autocast == [True] * 7
    assert all(parameter.grad is None for parameter in layer.parameters())  # nothing left over for the next epoch


@pytest.mark.parametrize("loader_workers", [0, 2])
def test_interrupted_run_resumes_from_its_last_epoch_and_ends_like_an_uninterrupted_one(
    tiny_model_dir, train_table, test_table, tmp_path, loader_workers
) -> None:
    config = FAST.model_copy(update={"epochs": 5, "dropout": 0.1, "loader_workers": loader_workers})
    fingerprint = "same-settings"
    reference = train_once_with_state(
        tiny_model_dir, train_table, test_table, config, TrainStateStore(tmp_path / "a", fingerprint)
    )

    store = TrainStateStore(tmp_path / "b", fingerprint)

    def crash_during_epoch_3(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_once_with_state(
            tiny_model_dir, train_table, test_table, config, store, Callbacks(on_epoch_end=crash_during_epoch_3)
        )
    replayed: list[int] = []
    resumed = train_once_with_state(
        tiny_model_dir,
        train_table,
        test_table,
        config,
        store,
        Callbacks(on_epoch_end=lambda r: replayed.append(r["epoch"])),
    )

    assert resumed.resumed_after_epoch == 2
    assert replayed == [1, 2, 3, 4, 5]
    assert without_timing(resumed.history) == without_timing(reference.history)


def test_batches_prepared_by_loader_workers_train_the_same_model_as_in_process_ones(
    tiny_model_dir, train_table, test_table
) -> None:
    # One epoch: its order is drawn before the loader seeds its workers, so the batches are the same.
    config = FAST.model_copy(update={"epochs": 1, "dropout": 0.1})
    in_process, preprocess, _, _ = train_once(tiny_model_dir, train_table, test_table, config)
    with_workers, _, _, _ = train_once(
        tiny_model_dir, train_table, test_table, config.model_copy(update={"loader_workers": 2})
    )

    texts = test_table["text"].tolist()
    assert torch.equal(
        predict_logits(in_process, preprocess, texts, 8), predict_logits(with_workers, preprocess, texts, 8)
    )


def test_a_kill_between_the_state_and_the_best_checkpoint_is_repaired_on_resume(
    tiny_model_dir, train_table, test_table, tmp_path
) -> None:
    config = FAST.model_copy(update={"epochs": 3})
    store = TrainStateStore(tmp_path / "state", "same-settings")
    saved: dict[str, int] = {}

    def keep(model, record) -> None:
        saved["epoch"] = record["epoch"]

    def killed_while_keeping_epoch_2(model, record) -> None:
        if record["epoch"] == 2:
            raise KeyboardInterrupt  # the state of epoch 2 is already on disk; its best checkpoint is not
        keep(model, record)

    with pytest.raises(KeyboardInterrupt):
        first = Callbacks(on_improvement=killed_while_keeping_epoch_2, saved_best_epoch=lambda: saved.get("epoch"))
        train_once_with_state(tiny_model_dir, train_table, test_table, config, store, first)
    assert saved == {"epoch": 1} and store.load(build(tiny_model_dir)[0]).progress.best_epoch == 2

    written: list[int] = []

    def keep_and_note(model, record) -> None:
        written.append(record["epoch"])
        keep(model, record)

    result = train_once_with_state(
        tiny_model_dir, train_table, test_table, config, store,
        Callbacks(on_improvement=keep_and_note, saved_best_epoch=lambda: saved.get("epoch")),
    )  # fmt: skip

    assert written[0] == 2  # written from the restored state before training went on
    assert saved["epoch"] == result.best_epoch


def test_state_saved_with_other_settings_is_not_resumed(tiny_model_dir, train_table, test_table, tmp_path) -> None:
    config = FAST.model_copy(update={"epochs": 2})
    train_once_with_state(tiny_model_dir, train_table, test_table, config, TrainStateStore(tmp_path, "first"))

    result = train_once_with_state(tiny_model_dir, train_table, test_table, config, TrainStateStore(tmp_path, "second"))

    assert result.resumed_after_epoch == 0
    assert len(result.history) == 2


def counted_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time training encodes inputs with the frozen body."""
    import tlpipe.training as training

    calls: list[int] = []
    real_encode = training.encode_features
    monkeypatch.setattr(training, "encode_features", lambda *a, **k: calls.append(1) or real_encode(*a, **k))
    return calls


def test_linear_probe_encodes_once_and_reuses_cached_features_for_other_head_settings(
    tiny_model_dir, train_table, test_table, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counted_encodes(monkeypatch)
    cache = FeatureCache(tmp_path, snapshot_key="tiny", preprocessing={"max_length": 32})
    probe = FAST.model_copy(update={"strategy": "linear_probe", "epochs": 2})

    first = train_once_with_state(tiny_model_dir, train_table, test_table, probe, None, feature_cache=cache)
    assert len(calls) == 2  # train and validation
    second = train_once_with_state(
        tiny_model_dir,
        train_table,
        test_table,
        probe.model_copy(update={"head_learning_rate": 5e-3}),
        None,
        feature_cache=cache,
    )

    assert len(calls) == 2
    assert without_timing(first.history) != without_timing(second.history)


def test_lexical_probe_reads_the_body_embeddings_from_the_cache_and_trains_as_without_it(
    tiny_model_dir, train_table, test_table, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache holds the body's embeddings; the wordpiece channel, fitted on each run's texts, is added after.
    calls = counted_encodes(monkeypatch)
    cache = FeatureCache(tmp_path, snapshot_key="tiny", preprocessing={"max_length": 32})
    probe = FAST.model_copy(update={"strategy": "linear_probe", "epochs": 2})
    lexical = FAST.model_copy(update={"strategy": "lexical_probe", "epochs": 2})

    train_once_with_state(tiny_model_dir, train_table, test_table, probe, None, feature_cache=cache)
    cached = train_once_with_state(tiny_model_dir, train_table, test_table, lexical, None, feature_cache=cache)
    assert len(calls) == 2  # the probe's train and validation embeddings, read again by the lexical probe
    uncached = train_once_with_state(tiny_model_dir, train_table, test_table, lexical, None)

    assert len(calls) == 4
    assert without_timing(cached.history) == without_timing(uncached.history)


def train_once_with_state(tiny_model_dir, train_table, test_table, config, state, callbacks=None, feature_cache=None):
    model, preprocess = build(tiny_model_dir)
    return fine_tune(
        model,
        preprocess,
        *encode(train_table),
        *encode(test_table),
        config,
        callbacks,
        state=state,
        feature_cache=feature_cache,
    )
