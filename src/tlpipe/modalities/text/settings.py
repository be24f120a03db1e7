"""The text modality's own keys of params.yaml: what ``data``, ``preprocess`` and ``evaluate`` say about texts.

Kept apart from the modality's code so that reading params.yaml never imports a model family.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tlpipe.config import DataConfig, EvaluateConfig, PreprocessConfig, Section, owned


class TextData(Section):
    """``data``: which CSV column holds the text, and what counts as a usable one."""

    text_column: str = Field("text", min_length=1)
    min_text_chars: int = Field(1, ge=1)
    # A long document is ordinary (the real suite's longest text is 58,760 characters, a newsgroup post; the
    # encoder reads the first preprocess.max_length tokens): the limit is there to catch a whole file pasted
    # into one cell (benchmarks/real_data).
    max_text_chars: int = Field(100_000, ge=1)

    @model_validator(mode="after")
    def _length_bounds_ordered(self) -> TextData:
        if self.min_text_chars > self.max_text_chars:
            raise ValueError(
                f"min_text_chars ({self.min_text_chars}) must not exceed max_text_chars ({self.max_text_chars})"
            )
        return self


class TextPreprocess(Section):
    """``preprocess``: tokens an encoder reads of each text; longer texts are cut."""

    max_length: int = Field(128, ge=8, le=4096)


class TextEvaluate(Section):
    """``evaluate``: the TF-IDF baseline's vocabulary."""

    baseline_max_features: int = Field(20000, ge=10, description="TF-IDF vocabulary size")


SETTINGS = {"data": TextData, "preprocess": TextPreprocess, "evaluate": TextEvaluate}


def data_of(data: DataConfig) -> TextData:
    return owned(TextData, data)


def preprocess_of(preprocess: PreprocessConfig) -> TextPreprocess:
    return owned(TextPreprocess, preprocess)


def evaluate_of(evaluate: EvaluateConfig) -> TextEvaluate:
    return owned(TextEvaluate, evaluate)
