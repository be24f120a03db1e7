"""Prefect tasks that publish what a stage wrote (validation, pretraining, label review, metrics, model card, parity)
and what a drift check found as artifacts."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE


@task(cache_policy=NO_CACHE)
def publish_validation(report_path: Path) -> None:
    """A table of every data check with its outcome and first offending rows."""
    if not report_path.is_file():
        return
    report = json.loads(report_path.read_text())
    rows = [
        {
            "file": check["file"],
            "check": check["description"],
            "passed": check["success"],
            "failing": check["failed_count"],
            "examples": json.dumps(check["examples"][:3]),
        }
        for check in report["checks"]
    ]
    verdict = "passed" if report["success"] else f"FAILED ({report['checks_failed']} checks)"
    create_table_artifact(key="data-validation", table=rows, description=f"Data validation {verdict}")


@task(cache_policy=NO_CACHE)
def publish_pretraining(record_path: Path) -> None:
    """What the own-domain snapshot was pretrained on and how well it did on the source task; nothing without one."""
    if not record_path.is_file():
        return
    record = json.loads(record_path.read_text())
    if not record.get("pretrained"):
        get_run_logger().info(record.get("reason", "No own-domain pretraining."))
        return
    examples = record["source_examples"]
    rows = [
        {"what": "source data", "value": f"{record['source_data']} (sha256 {record['source_data_sha256'][:12]})"},
        {"what": "examples (train / validation)", "value": f"{examples['train']} / {examples['validation']}"},
        {"what": "classes", "value": ", ".join(record["source_classes"])},
        {"what": "started from", "value": record["start_from"]},
        {"what": "strategy, epochs", "value": f"{record['strategy']}, {record['settings']['epochs']}"},
        {
            "what": "source validation macro-F1",
            "value": f"{record['source_validation_macro_f1']:.4f} (epoch {record['best_epoch']})",
        },
    ]
    create_table_artifact(
        key="own-domain-pretraining", table=rows, description="Own-domain pretraining (stage pretrain)"
    )


@task(cache_policy=NO_CACHE)
def publish_label_review(review: Path, shown: int = 20) -> None:
    """The most suspect training labels (the first ``shown`` rows of the review), and how many there are."""
    summary_path, table_path = review / "summary.json", review / "label_review.csv"
    if not summary_path.is_file() or not table_path.is_file():
        return
    summary = json.loads(summary_path.read_text())
    with table_path.open(newline="", encoding="utf-8") as rows:
        table = list(itertools.islice(csv.DictReader(rows), shown))
    create_table_artifact(
        key="label-review",
        table=table or [{"result": "no suspect label"}],
        description=f"Label review: {summary['suspects']} of {summary['examples']} training labels look wrong "
        f"(first {min(shown, summary['suspects'])} shown; the whole list is in {table_path})"
        + (
            f"; {sets} sets of near-duplicate examples carry different labels ({review / 'conflicting_duplicates.csv'})"
            if (sets := summary.get("conflicting_duplicate_sets"))
            else ""
        ),
    )


@task(cache_policy=NO_CACHE)
def publish_metrics(metrics_path: Path) -> None:
    """Test accuracy and macro-F1 of the fine-tuned model and the baseline side by side; did transfer help?"""
    metrics = json.loads(metrics_path.read_text())
    gain = metrics["transfer"]["over_baseline"]
    logger = get_run_logger()
    if gain["verdict"] == "helped":
        logger.info(gain["message"])
    else:
        logger.warning(gain["message"])
    rows = [
        {
            "model": name,
            "accuracy": round(metrics[name]["accuracy"], 4),
            "macro_f1": round(metrics[name]["macro_f1"], 4),
        }
        for name in ("finetuned", "baseline")
    ]
    create_table_artifact(
        key="test-metrics",
        table=rows,
        description=(
            f"Test set ({metrics['test_examples']} examples), strategy {metrics['strategy']}. {gain['message']}"
        ),
    )


@task(cache_policy=NO_CACHE)
def publish_model_card(card_path: Path) -> None:
    """The model card: how the model was trained, why that strategy, and its scores."""
    create_markdown_artifact(key="model-card", markdown=card_path.read_text(encoding="utf-8"))


@task(cache_policy=NO_CACHE)
def publish_parity(parity_path: Path, bundle: Path) -> None:
    """The ONNX parity verdict and where the bundle is."""
    parity = json.loads(parity_path.read_text())
    verdict = "passed" if parity["passed"] else "FAILED"
    create_markdown_artifact(
        key="onnx-parity",
        markdown=(
            f"## ONNX parity {verdict}\n\n"
            f"| examples | max abs logit diff | atol | top-1 agreement | ONNX accuracy |\n|---|---|---|---|---|\n"
            f"| {parity['examples']} | {parity['max_abs_logit_diff']:.2e} | {parity['atol']:.0e} "
            f"| {parity['top1_agreement']:.4f} | {parity['onnx_accuracy']:.4f} |\n\n"
            f"Bundle: `{bundle}`"
        ),
    )


@task(cache_policy=NO_CACHE)
def publish_drift_check(report: dict[str, Any], inputs: Path, new_data: list[str], decision: str) -> None:
    """The drift check (``check_drift``'s report), whether new labelled data arrived, and what the flow decided."""
    rows = [("inputs", f"{report['inputs']} in `{inputs}`")]
    if report["checked"]:
        test, predictions = report["embedding_test"], report["predictions"]
        low, usual = predictions["low_confidence_share"], predictions["reference_low_confidence_share"]
        rows += [
            ("tested", f"{report['tested']} inputs against {report['reference']} reference examples"),
            ("p-value", f"{test['p_value']:.4f} (drift below alpha {report['alpha']})"),
            ("MMD²", f"{test['mmd2']:.4g}"),
            ("label shift (total variation)", f"{predictions['label_shift']:.4f}"),
            ("low-confidence share", f"{low:.4f} (reference {usual})"),
        ]
    rows += [
        ("verdict", report["verdict"]),
        ("new labelled data", ", ".join(f"`{path}`" for path in new_data) or "none"),
        ("decision", decision),
    ]
    table = "\n".join(f"| {what} | {value} |" for what, value in rows)
    create_markdown_artifact(
        key="drift-check",
        markdown=f"## Drift check: {decision}\n\n| | |\n|---|---|\n{table}",
        description=f"Drift check: {decision}",
    )
