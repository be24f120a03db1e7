"""Contrastive strategy (SetFit): balanced seeded pairs, a sentence-transformers loss on the body, then the head."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from test_training import FAST, build, encode, train_once

from tlpipe.contrastive import BatchEmbeddings, make_pairs, pair_count, pair_loss, tune_body
from tlpipe.errors import DataError
from tlpipe.strategies.contrastive import ContrastiveSettings, pair_settings
from tlpipe.train_state import TrainStateStore
from tlpipe.training import Callbacks, fine_tune

CONTRASTIVE = FAST.model_copy(
    update={
        "strategy": "contrastive",
        "learning_rate": 1e-2,  # the tiny body starts random: it needs a large step to learn in 27 steps
        "contrastive": ContrastiveSettings(pairs_per_example=6, max_pairs=400),
    }
)
LABELS_12 = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("examples", "per_example", "cap", "expected"),
    [(10, 20, 2000, 200), (300, 20, 2000, 2000), (7, 3, 2000, 20), (1, 2, 2000, 2), (50, 20, 999, 998)],
)
def test_pairs_scale_with_the_data_up_to_the_cap(examples: int, per_example: int, cap: int, expected: int) -> None:
    settings = ContrastiveSettings(pairs_per_example=per_example, max_pairs=cap)

    assert pair_count(examples, settings) == expected


def test_pairs_are_half_similar_half_dissimilar_and_labelled_by_class() -> None:
    pairs = make_pairs(LABELS_12, 240, seed=0)

    assert len(pairs) == 240
    assert sum(pair.similar for pair in pairs) == 120
    for pair in pairs:
        assert pair.first != pair.second
        assert (LABELS_12[pair.first] == LABELS_12[pair.second]) == pair.similar


def test_every_example_anchors_about_as_many_pairs_as_any_other() -> None:
    anchors = Counter(pair.first for pair in make_pairs(LABELS_12, 240, seed=0))

    assert set(anchors) == set(range(len(LABELS_12)))
    assert max(anchors.values()) - min(anchors.values()) <= 2


def test_pairs_are_seeded() -> None:
    assert make_pairs(LABELS_12, 60, seed=1) == make_pairs(LABELS_12, 60, seed=1)
    assert make_pairs(LABELS_12, 60, seed=1) != make_pairs(LABELS_12, 60, seed=2)


def test_an_example_alone_in_its_class_anchors_only_dissimilar_pairs() -> None:
    labels = [0, 0, 0, 1]
    pairs = make_pairs(labels, 40, seed=0)

    assert all(not pair.similar for pair in pairs if pair.first == 3)
    assert sum(pair.similar for pair in pairs) == 20


@pytest.mark.parametrize(("labels", "message"), [([0, 0, 0], "two classes"), ([0, 1, 2], "at least two training")])
def test_data_that_cannot_make_pairs_is_refused_with_what_to_do(labels: list[int], message: str) -> None:
    with pytest.raises(DataError, match=message):
        make_pairs(labels, 10, seed=0)


class SideBySide(torch.nn.Module):
    """The classic pattern: the loss encodes each side of the pairs with the classifier's body and pooling."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, features):
        return {"sentence_embedding": self.model.features(**features)}


@pytest.mark.parametrize("loss", ["cosine_similarity", "contrastive", "online_contrastive"])
def test_encoding_a_batchs_distinct_examples_once_gives_the_sentence_transformers_loss_and_gradients(
    tiny_model_dir: Path, loss: str
) -> None:
    model, preprocess = build(tiny_model_dir)
    model.eval()  # no dropout: both ways must agree exactly
    texts = ["my invoice is late", "reset my password", "refund the charge", "cannot log in"]
    firsts, seconds, similar = [0, 1, 0, 3], [2, 3, 1, 0], torch.tensor([1.0, 1.0, 0.0, 0.0])

    def loss_and_gradient(value: torch.Tensor) -> tuple[float, torch.Tensor]:
        model.zero_grad()
        value.backward()
        return value.item(), model.body.encoder.layer[0].output.dense.weight.grad.clone()

    reference = pair_loss(loss, SideBySide(model))
    expected = loss_and_gradient(
        reference([preprocess([texts[i] for i in firsts]), preprocess([texts[i] for i in seconds])], similar)
    )
    embedder = BatchEmbeddings(model)
    embedder.encode(preprocess(texts))
    rows = [{"rows": torch.tensor(firsts)}, {"rows": torch.tensor(seconds)}]
    actual = loss_and_gradient(pair_loss(loss, embedder)(rows, similar))

    assert actual[0] == pytest.approx(expected[0], rel=1e-5)
    torch.testing.assert_close(actual[1], expected[1], rtol=1e-4, atol=1e-7)


def test_the_body_encodes_each_distinct_example_of_a_batch_once(tiny_model_dir: Path, train_table) -> None:
    model, preprocess = build(tiny_model_dir)
    encoded: list[int] = []
    real_embedding = model.embedding
    model.embedding = lambda **features: encoded.append(len(features["input_ids"])) or real_embedding(**features)
    settings = CONTRASTIVE.model_copy(update={"batch_size": 27})  # a batch has 54 pair sides, 24 examples at most

    summary = tune_body(
        model, preprocess, *encode(train_table), settings, torch.device("cpu"), None, torch.Generator().manual_seed(0)
    )

    assert len(encoded) == 8 and summary.pairs == 216
    assert all(size <= len(train_table) < 2 * settings.batch_size for size in encoded)


def class_separation(model, preprocess, texts: list[str], labels: list[int]) -> float:
    """Mean cosine similarity of same-class pairs minus that of different-class pairs."""
    model.eval()
    with torch.no_grad():
        embeddings = torch.nn.functional.normalize(model.features(**preprocess(texts)), dim=1)
    similarity = embeddings @ embeddings.T
    same = torch.tensor(labels)[:, None] == torch.tensor(labels)[None, :]
    off_diagonal = ~torch.eye(len(labels), dtype=torch.bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


@pytest.mark.parametrize(("autocast_dtype", "precision"), [(None, "fp32"), (torch.bfloat16, "bf16")])
def test_tuning_pulls_classes_apart_in_the_body_and_leaves_the_head_alone(
    tiny_model_dir: Path, train_table, test_table, autocast_dtype: torch.dtype | None, precision: str
) -> None:
    model, preprocess = build(tiny_model_dir)
    head_before = model.head.weight.detach().clone()
    texts, labels = encode(test_table)  # held-out texts: the separation must generalise
    before = class_separation(model, preprocess, texts, labels)

    summary = tune_body(
        model,
        preprocess,
        *encode(train_table),
        CONTRASTIVE,
        torch.device("cpu"),
        autocast_dtype,  # bf16: how a CPU with bf16 instructions tunes (tlpipe.runtime.pair_tuning_dtype)
        torch.Generator().manual_seed(0),
    )

    after = class_separation(model, preprocess, texts, labels)
    assert after > before + 0.1, (before, after)
    assert torch.equal(model.head.weight, head_before)
    assert summary.precision == precision
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}  # autocast leaves weights fp32
    assert summary.pairs == pair_count(len(train_table), pair_settings(CONTRASTIVE)) == 216
    assert summary.similar_pairs == 108
    assert summary.steps == 27  # 216 pairs in batches of 8


def test_contrastive_run_tunes_the_body_then_trains_only_the_head(
    tiny_model_dir: Path, train_table, test_table
) -> None:
    before, _ = build(tiny_model_dir)
    model, _, result, _ = train_once(tiny_model_dir, train_table, test_table, CONTRASTIVE)

    assert {name for name, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    assert not torch.equal(
        before.body.encoder.layer[0].output.dense.weight, model.body.encoder.layer[0].output.dense.weight
    )
    assert [record["phase"] for record in result.history] == ["head"] * CONTRASTIVE.epochs
    assert result.body_tuning is not None and result.body_tuning["pairs"] == 216
    assert result.best_macro_f1 > 0.6  # chance is 1/3


def test_a_resumed_contrastive_run_keeps_its_tuned_body_and_does_not_tune_again(
    tiny_model_dir: Path, train_table, test_table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tlpipe.training as training

    def run(store: TrainStateStore, callbacks: Callbacks | None = None):
        model, preprocess = build(tiny_model_dir)
        return fine_tune(
            model, preprocess, *encode(train_table), *encode(test_table), CONTRASTIVE, callbacks, state=store
        )

    reference = run(TrainStateStore(tmp_path / "a", "same"))
    store = TrainStateStore(tmp_path / "b", "same")

    def crash_at_epoch_2(record) -> None:
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(store, Callbacks(on_epoch_end=crash_at_epoch_2))
    tunings: list[int] = []
    real_tune = training.tune_body
    monkeypatch.setattr(training, "tune_body", lambda *a, **k: tunings.append(1) or real_tune(*a, **k))
    resumed = run(store)

    assert tunings == []
    assert resumed.resumed_after_epoch == 1
    assert resumed.body_tuning == {**reference.body_tuning, "seconds": resumed.body_tuning["seconds"]}
    strip = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]  # noqa: E731
    assert strip(resumed.history) == strip(reference.history)


def test_the_contrastive_phase_accumulates_gradients_over_batches_of_pairs(tiny_model_dir: Path, train_table) -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    model, preprocess = build(tiny_model_dir)
    steps: list[int] = []
    handle = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
    try:
        summary = tune_body(
            model,
            preprocess,
            *encode(train_table),
            CONTRASTIVE.model_copy(update={"gradient_accumulation": 4}),
            torch.device("cpu"),
            None,
            torch.Generator().manual_seed(0),
        )
    finally:
        handle.remove()

    assert len(steps) == summary.steps == 7  # 27 batches of 8 pairs, 4 per step, the last step takes 3
