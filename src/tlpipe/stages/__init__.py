"""Pipeline stages: one module each, one ``run()`` each.

A stage reads and writes files only. ``run()`` takes ``paths`` plus the params.yaml sections it
depends on, by their section names; ``dvc.yaml`` lists exactly those sections under ``params:``
(tests/test_contract.py keeps the two in agreement).
"""

STAGES = (
    "validate", "prepare", "pretrain", "fetch_model", "review_labels", "pseudo_label", "train", "calibrate", "evaluate",
    "export",
)  # fmt: skip
