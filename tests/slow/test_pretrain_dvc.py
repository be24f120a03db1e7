"""`dvc repro` and the pretrain stage: a no-op without source data, and only what depends on it reruns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from factories import make_table

from .repo import dvc, order_broken, stages_run

pytestmark = pytest.mark.slow


def set_params(root: Path, **sections: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_dvc_repro_pretrains_on_source_data_and_reruns_only_what_depends_on_it(
    dvc_project: Path, tiny_model_dir: Path
) -> None:
    first = dvc(dvc_project, "repro", "fetch_model").stdout
    # fetch_model reads the prepared training rows (model.source auto ranks bodies on them) and the pretrained
    # body, so both come first; pretrain reads only the source data, so DVC may run it before validate
    ran = stages_run(first)
    assert sorted(ran) == ["fetch_model", "prepare", "pretrain", "validate"]
    assert not order_broken(dvc_project, ran) and ran[-1] == "fetch_model", ran
    assert not (dvc_project / "models/source/model.safetensors").exists()  # no source data: nothing trained

    source = make_table(10, offset=700)
    source["label"] = source["label"].map({"billing": "money", "access": "money", "shipping": "parcel"})
    source.to_csv(dvc_project / "data/source/train.csv", index=False)
    set_params(
        dvc_project,
        pretrain={"start_from": str(tiny_model_dir), "train": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3}},
        model={"source": "models/source"},
    )
    second = dvc(dvc_project, "repro", "fetch_model").stdout
    assert stages_run(second) == ["pretrain", "fetch_model"]
    assert (dvc_project / "data/pretrained/tlpipe-pretraining.json").is_file()

    assert stages_run(dvc(dvc_project, "repro", "fetch_model").stdout) == []
    set_params(dvc_project, train={"epochs": 2})
    assert stages_run(dvc(dvc_project, "repro", "fetch_model").stdout) == []  # train settings are not pretrain's

    source.loc[0, "text"] = "my invoice was paid twice please refund the card"
    source.to_csv(dvc_project / "data/source/train.csv", index=False)
    assert stages_run(dvc(dvc_project, "repro", "fetch_model").stdout) == ["pretrain", "fetch_model"]
