"""Domain errors: each message says what went wrong, where, and what to do about it."""

EX_TEMPFAIL = 75  # sysexits.h: a temporary failure; the same command may succeed later


class TlpipeError(Exception):
    """Base class for errors the CLI reports as a message rather than a traceback."""

    exit_status = 1


class ConfigError(TlpipeError):
    """``params.yaml`` has an unknown key or a value out of range."""


class DataValidationError(TlpipeError):
    """The raw data failed the quality suite; the message lists each failed check."""


class DataError(TlpipeError):
    """The prepared data cannot be used the way the training settings ask."""


class ModelSourceError(TlpipeError):
    """A pretrained model reference cannot be resolved into a local snapshot."""


class SourceUnavailableError(ModelSourceError):
    """The model source could not be reached just now (network, timeout, server error): a retry may succeed."""

    exit_status = EX_TEMPFAIL


class ChecksumError(TlpipeError):
    """A file no longer matches the sha256 recorded when it was fetched."""


class ArtifactError(TlpipeError):
    """An input artifact another stage should have written is missing or malformed."""


class ExportParityError(TlpipeError):
    """The exported ONNX model disagrees with PyTorch beyond the configured tolerance."""


class WorkspaceBusyError(TlpipeError):
    """Another tlpipe run holds the workspace lock."""


class TrainingError(TlpipeError):
    """Training could not run to its end (the processes it started failed)."""
