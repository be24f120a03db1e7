"""The model card: what the model is, how it was trained and why that way, and how well it does.

Rendered as Markdown with Hugging Face model-card metadata (YAML front matter), from what the
stages recorded: the checkpoint's ``classifier.json`` (source, strategy, the ``auto`` choice and
its reason, settings) and ``history.json``, the prepared data's version and class counts, and the
evaluation metrics with the verdict on whether transfer helped (``tlpipe.transfer_verdict``). The
export bundle ships it as its ``README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import yaml

from tlpipe.modalities.base import Modality
from tlpipe.strategies import STRATEGIES, get_strategy
from tlpipe.wording import counted

VERSIONED_PACKAGES = (
    "tlpipe", "torch", "torchvision", "timm", "transformers", "sentence-transformers", "tokenizers", "onnx",
    "onnxruntime",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide what the model computes, for the card and the bundle."""
    return {name: version(name) for name in VERSIONED_PACKAGES}


def render_model_card(
    classifier: Mapping[str, Any],
    history: Mapping[str, Any],
    metrics: Mapping[str, Any],
    class_counts: Mapping[str, Mapping[str, int]],
    data_version: str,
    versions: Mapping[str, str],
    modality: Modality,
    label_review: Mapping[str, Any] | None = None,
) -> str:
    """The card as Markdown; ``class_counts`` maps split name (train, validation, test) to examples per label;
    ``label_review``: the review_labels stage's summary, if it ran."""
    finetuned, baseline = metrics["finetuned"], metrics["baseline"]
    front_matter = {
        "pipeline_tag": modality.task,
        "base_model": classifier["source_resolved"],
        "library_name": "tlpipe",
        "tags": ["tlpipe", f"strategy:{classifier['strategy']}", "onnx"],
        "model-index": [
            {
                "name": f"tlpipe {modality.name} classifier",
                "results": [
                    {
                        "task": {"type": modality.task},
                        "dataset": {"name": "held-out test split", "type": "custom", "revision": data_version},
                        "metrics": [
                            {"type": "f1", "name": "macro-F1", "value": round(finetuned["macro_f1"], 4)},
                            {"type": "accuracy", "name": "accuracy", "value": round(finetuned["accuracy"], 4)},
                        ],
                    }
                ],
            }
        ],
    }
    labels = list(classifier["labels"])
    lines = [
        "---",
        yaml.safe_dump(front_matter, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {modality.name.capitalize()} classifier",
        "",
        f"Classifies {modality.name}s into one of {counted(len(labels), 'label')}: "
        + ", ".join(f"`{label}`" for label in labels)
        + ".",
        f"Fine-tuned by tlpipe from `{classifier['source']}` (`{classifier['source_resolved']}`): "
        "the pretrained body, its pooled features and a linear head. Weights it started from (sha256): "
        + ", ".join(f"`{name}` `{digest}`" for name, digest in classifier["source_weights_sha256"].items())
        + ".",
        *_pretraining_lines(classifier.get("pretraining")),
        *_ranking_lines(classifier.get("body_ranking")),
        "",
        "## How it was trained",
        "",
        *_strategy_lines(classifier, history),
        "",
        *_self_training_lines((classifier.get("strategy_choice") or {}).get("self_training")),
        f"Data version (sha256 of the data manifests validate wrote): `{data_version}`.",
        "",
        "| label | " + " | ".join(class_counts) + " |",
        "|---|" + "---:|" * len(class_counts),
        *(
            f"| {label} | " + " | ".join(str(counts.get(label, 0)) for counts in class_counts.values()) + " |"
            for label in labels
        ),
        "",
        *_label_review_lines(label_review),
        f"## Evaluation on the test split ({counted(metrics['test_examples'], 'example')})",
        "",
        "| model | macro-F1 | accuracy |",
        "|---|---:|---:|",
        f"| this model ({classifier['strategy']}) | {finetuned['macro_f1']:.4f} | {finetuned['accuracy']:.4f} |",
        f"| baseline: {modality.baseline_title} | {baseline['macro_f1']:.4f} | {baseline['accuracy']:.4f} |",
        "",
        "| label | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | {scores['f1']:.3f} "
            f"| {scores['support']} |"
            for label, scores in finetuned["per_class"].items()
        ),
        "",
        "## Did transfer help?",
        "",
        metrics["transfer"]["over_baseline"]["message"],
        "",
        *_calibration_lines(metrics, modality),
        "## Use and limits",
        "",
        modality.card_usage(classifier) + "`preprocessing.json` says exactly how, and `model.onnx` runs with "
        "onnxruntime alone.",
        "The test split is small and comes from the same source as the training data: expect lower scores on "
        f"{modality.name}s unlike these, and check the per-label rows before trusting a label the data rarely shows.",
        "",
        "## Versions",
        "",
        ", ".join(f"{name} {number}" for name, number in versions.items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _strategy_lines(classifier: Mapping[str, Any], history: Mapping[str, Any]) -> list[str]:
    strategy = classifier["strategy"]
    choice = classifier.get("strategy_choice") or {}
    settings = classifier.get("train_settings") or {}
    if choice.get("requested") == "auto":
        lines = [f"Strategy: **{strategy}**, chosen by `train.strategy: auto`. {choice['reason']}"]
    else:
        lines = [f"Strategy: **{strategy}**, set in params.yaml."]
    if settings:
        keys = ("epochs", "batch_size", "learning_rate", "head_learning_rate", "layer_decay", "seed")
        marks = {key: " (recipe)" for key in classifier.get("settings_from_recipe") or []}
        if choice.get("cross_validation"):
            marks["epochs"] = " (cross-validated)"
        shown = ", ".join(f"{key} {settings[key]}{marks.get(key, '')}" for key in keys if key in settings)
        lines += ["", f"Settings: {shown}. (recipe): the strategy's own default, not set in params.yaml."]
    if strategy in STRATEGIES and (own := get_strategy(strategy).card_lines(history)):
        lines += ["", *own]
    tuning = history.get("body_tuning")
    selection = choice.get("model_selection") or {}
    if selection.get("method") == "cross_validation":
        lines += ["", selection["reason"], "", *_cross_validation_table(choice["cross_validation"], strategy)]
        lines += [
            "",
            "The final model trained on every labelled example for the chosen "
            f"{counted(settings.get('epochs'), 'epoch')}; "
            + (
                "the folds' models were scored, and their encoders averaged into its encoder."
                if tuning and tuning.get("method") == "fold_average"
                else "the fold models were only scored."
            ),
        ]
        return lines
    if selection:
        lines += ["", selection["reason"]]
    best = history.get("best_epoch")
    if best:
        lines += ["", f"Kept the epoch with the best validation macro-F1: epoch {best} of {len(history['epochs'])}."]
    return lines


def _cross_validation_table(scores: Mapping[str, Any], chosen: str) -> list[str]:
    """Each candidate's cross-validated macro-F1 (mean and spread over the folds) at its chosen epochs."""
    lines = [
        "| Strategy | Cross-validated macro-F1 | Folds | Epochs chosen |",
        "|---|---|---|---|",
    ]
    for name, score in scores.items():
        folds = ", ".join(f"{value:.3f}" for value in score["fold_scores"])
        marker = " (chosen)" if name == chosen else ""
        lines.append(f"| {name}{marker} | {score['mean']:.4f} ± {score['std']:.4f} | {folds} | {score['epochs']} |")
    return lines


def _self_training_lines(summary: Mapping[str, Any] | None) -> list[str]:
    """With an unlabelled pool (stage ``pseudo_label``): how many pseudo-labels the final model trained on, per
    class, and how the folds got theirs."""
    if not summary or not summary.get("used"):
        return []
    given = {label: count for label, count in summary["pseudo_labels_per_class"].items() if count}
    total = sum(given.values())
    left_out = f" ({summary['left_out']} more were already labelled or in the test file)" if summary["left_out"] else ""
    if summary["threshold"] is None:
        outcome = (
            "No confidence threshold beat the labelled examples alone on their cross-validation folds, so the final "
            "model trained on no pseudo-label."
        )
    else:
        outcome = (
            f"At the confidence threshold the labelled examples' folds chose ({summary['threshold']}), the final "
            f"model also trained on {counted(total, 'pseudo-labelled example')}"
            + (f": {', '.join(f'`{label}` {count}' for label, count in given.items())}." if given else ".")
        )
    folds = ""
    if summary["folds"]:
        folds = (
            " Each cross-validation fold self-trained at that threshold on its own training rows only ("
            f"{', '.join(map(str, summary['fold_pseudo_labels']))} pseudo-labels), so the scores above include it."
        )
    return [
        "## Unlabelled examples",
        "",
        f"Self-training used the unlabelled pool `{summary['pool']}`: "
        f"{counted(summary['pool_examples'], 'example')}{left_out}. {outcome}{folds} The folds' macro-F1 per "
        "threshold: " + ", ".join(f"{name} {score:.3f}" for name, score in summary["fold_scores"].items()) + ".",
        "",
    ]


def _label_review_lines(review: Mapping[str, Any] | None) -> list[str]:
    """How many training labels the review flagged, per class, and where the rows are."""
    if review is None:
        return []
    if review.get("skipped"):
        return ["## Labels to check", "", f"The label review was {review['skipped']}.", ""]
    flagged = {label: count for label, count in review["suspects_per_class"].items() if count}
    per_class = ", ".join(f"`{label}` {count}" for label, count in flagged.items())
    return [
        "## Labels to check",
        "",
        f"{review['suspects']} of the {counted(review['examples'], 'training label')} "
        f"{'looks' if review['suspects'] == 1 else 'look'} wrong"
        + (f" ({per_class})" if per_class else "")
        + ": their out-of-fold probabilities contradict them (cleanlab's confident learning on a probe of the "
        "frozen body's features). `label_review.csv` under `paths.label_review` lists them, most suspect first, "
        "with the suggested label; nothing was changed. Correct what is wrong and rerun.",
        *_duplicate_lines(review),
        "",
    ]


def _duplicate_lines(review: Mapping[str, Any]) -> list[str]:
    sets = review.get("conflicting_duplicate_sets")
    if not sets:
        return []
    return [
        "",
        f"{counted(sets, 'set')} of near-duplicate examples ({review['conflicting_duplicate_examples']} examples) "
        f"{'carries' if sets == 1 else 'carry'} different labels (cleanlab's Datalab on the same features): "
        "`conflicting_duplicates.csv` lists them by set. Give each set one label, or remove the copies.",
    ]


def _ranking_lines(ranking: Mapping[str, Any] | None) -> list[str]:
    """With ``model.source: auto``: the bodies ranked on the training data, and why this one was kept."""
    if not ranking:
        return []
    rows = [
        f"| `{body['source']}` | {body['macro_f1']:.4f} ± {body['standard_error']:.4f} | "
        f"{body['parameters'] / 1e6:.1f}M |"
        for body in ranking["bodies"]
    ]
    return [
        "",
        f"`model.source: auto` chose this body. {ranking['reason']} Score: {ranking['method']}.",
        "",
        "| body | probe macro-F1 (± standard error) | parameters |",
        "|---|---:|---:|",
        *rows,
    ]


def _pretraining_lines(pretraining: Mapping[str, Any] | None) -> list[str]:
    """What an own-domain snapshot (``tlpipe pretrain``) was trained on, when the model started from one."""
    if not pretraining or not pretraining.get("pretrained"):
        return []
    examples = pretraining["source_examples"]
    return [
        "",
        f"That body was pretrained on the team's own source data, `{pretraining['source_data']}` (sha256 "
        f"`{pretraining['source_data_sha256']}`): {counted(examples['train'], 'training example')} and "
        f"{counted(examples['validation'], 'validation example')} in "
        f"{counted(len(pretraining['source_classes']), 'class', 'classes')} "
        f"({', '.join(f'`{label}`' for label in pretraining['source_classes'])}), starting from "
        f"`{pretraining['start_from']}` with {pretraining['strategy']} for "
        f"{counted(pretraining['settings']['epochs'], 'epoch')}; "
        f"source validation macro-F1 {pretraining['source_validation_macro_f1']:.4f} at epoch "
        f"{pretraining['best_epoch']}. Its head was dropped.",
    ]


def _calibration_lines(metrics: Mapping[str, Any], modality: Modality) -> list[str]:
    calibration, sets = metrics.get("calibration"), metrics.get("prediction_sets")
    if not calibration or not sets:
        return []
    test, covered = calibration["test"], sets["test"]
    if calibration.get("applied"):
        how = (
            f"The bundle divides the logits by a temperature of {calibration['temperature']:.3f}, fitted on "
            f"{calibration['fitted_on']} (not the test split)"
        )
    elif calibration.get("refused"):
        how = f"The bundle serves the raw softmax: {calibration['refused']}"
    else:
        chosen = (
            " (auto: this modality's choice, benchmarks/calibration.py)" if calibration.get("setting") == "auto" else ""
        )
        how = f"The bundle serves the raw softmax (`serving.calibration: none`{chosen})"
    lines = [
        "## Can I trust the probabilities?",
        "",
        f"{how}. Expected calibration error on the test split (the gap between confidence and accuracy; 0 is "
        f"perfect): {test['ece_before']:.4f} with the raw softmax, {test['ece_after']:.4f} as served; "
        f"negative log-likelihood {test['nll_before']:.4f} and {test['nll_after']:.4f}. The reliability diagram is "
        "`reports/evaluation/calibration.png`.",
        "",
        f"Prediction sets (`predict.py --sets`) promise to hold the true label for {sets['coverage_target']:.0%} of "
        f"inputs like the training data (split-conformal, threshold {sets['threshold']:.4f} on one minus the label's "
        f"probability). On the test split they held it for {covered['coverage']:.1%} of {modality.name}s, with "
        f"{covered['mean_set_size']:.2f} labels per set on average; {covered['singleton_share']:.1%} were a single "
        f"label and {covered['empty_share']:.1%} empty (no label likely enough: worth a human look).",
    ]
    if sets["all_labels"]:
        lines += [
            "",
            "Too few examples were held out to promise that coverage, so every set holds every label: label more "
            "examples, or lower `serving.coverage`.",
        ]
    return [*lines, ""]
