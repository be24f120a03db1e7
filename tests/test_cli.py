"""The tlpipe command: help for every stage, and readable errors instead of tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlpipe.cli import build_parser, main
from tlpipe.stages import STAGES

COMMANDS = [s.replace("_", "-") for s in STAGES] + ["run", "models", "rank-models", "suggest-labels"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_explains_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([command, "--help"])

    assert exit_.value.code == 0
    assert len(capsys.readouterr().out.split()) > 20


def test_bad_params_exit_with_status_1_and_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epoch: 3\n")

    status = main(["--params", str(params), "train"])

    assert status == 1
    assert "unknown key 'epoch' in section 'train'" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_naming_the_traceback_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tlpipe.cli

    def boom(stage: str, params: Path) -> None:
        raise KeyError("label")

    monkeypatch.setattr(tlpipe.cli, "run_stage", boom)

    status = main(["prepare"])

    error = capsys.readouterr().err
    assert status == 1
    assert error.count("\n") == 1 and "unexpected KeyError: 'label'" in error
    trace = Path(error.split("traceback is in ")[1].split(";")[0])
    assert "raise KeyError" in trace.read_text()
    with pytest.raises(KeyError):
        main(["--debug", "prepare"])


def test_predict_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--help"])

    assert exit_.value.code == 0
    assert "--column" in capsys.readouterr().out


def test_train_help_lists_every_registered_strategy_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from tlpipe.strategies import STRATEGIES, get_strategy

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])

    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name in STRATEGIES:
        assert f"{name} ({get_strategy(name).summary}" in shown, name
    assert "bitfit (only the body's biases and the head train (BitFit); text only)" in shown


def test_models_lists_each_known_model_with_its_source_and_install_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tlpipe.model_zoo import KNOWN_MODELS, installed_here

    status = main(["models"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split() == [
        "name",
        "modality",
        "model.source",
        "parameters",
        "encodes/s",
        "licence",
        "installed",
        "install",
        "with",
    ]
    assert lines[1 + len(KNOWN_MODELS)] == "" and lines[-1].startswith("encodes/s: ")  # where the speeds come from
    for model, line in zip(KNOWN_MODELS, lines[1 : 1 + len(KNOWN_MODELS)], strict=True):
        cells = line.split()
        assert cells[:4] + cells[5:6] == [
            model.name,
            model.modality,
            model.source,
            f"{model.parameters / 1e6:.1f}M",
            model.licence,
        ]
        assert f"  {installed_here(model)}  " in line and line.endswith(model.install_command)
