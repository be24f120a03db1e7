"""Where training runs and in which precision, chosen from what the machine really has, and said out loud.

bf16 autocast is used only on GPUs that compute in bf16 in hardware (compute capability 8.0 and
up: Ampere and later). ``torch.cuda.is_bf16_supported()`` is not asked, because it also answers
yes where bf16 is only emulated, slowly, and then the fp16 path, the one such GPUs need, would
never be taken. Other GPUs get fp16 autocast with a gradient scaler; a CPU trains in fp32, except
the contrastive phase (``pair_tuning_dtype``): on a CPU that computes bf16 in hardware (the
AVX512-BF16 or AMX-BF16 instructions) it runs in bf16 autocast, which is faster than fp32 for
MiniLM's forward and backward on a few CPU cores (``benchmarks/contrastive_step.py``,
``benchmarks/results/contrastive_step.json``), and which ``benchmarks/few_shot.py`` measured
against fp32 on the training folds of two datasets.
The weights stay fp32 throughout. ``train.deterministic`` sets the PyTorch and cuBLAS switches for
bit-equal reruns on a GPU; CPU runs are deterministic without them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from tlpipe.config import TrainConfig
from tlpipe.errors import ConfigError

log = logging.getLogger(__name__)

BF16_MIN_CAPABILITY = (8, 0)
NO_GPU_HINT = (
    "no CUDA GPU is visible. The usual reasons: no NVIDIA driver, a driver "
    "older than this torch build's CUDA {cuda} needs, CUDA_VISIBLE_DEVICES set to nothing, or a CPU-only "
    "torch build (docs/operations.md: GPU drivers)."
)


@dataclass(frozen=True)
class Runtime:
    """Where training runs and in which precision."""

    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def uses_scaler(self) -> bool:
        """fp16 needs loss scaling; bf16 and fp32 do not."""
        return self.autocast_dtype == torch.float16

    @property
    def precision(self) -> str:
        """``bf16``, ``fp16`` or ``fp32``, as recorded in checkpoints and training states."""
        return precision_name(self.autocast_dtype)


def precision_name(autocast_dtype: torch.dtype | None) -> str:
    """``bf16``, ``fp16`` or ``fp32`` (no autocast)."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(autocast_dtype, "fp32")


def encoding_device() -> torch.device:
    """Where frozen-body encoding outside training runs (ranking bodies, reviewing labels, ranking a pool): the GPU
    when one is visible, else the CPU. It reads no train settings, so those stages do not rerun when they change."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def select_runtime(train: TrainConfig, local_rank: int = 0) -> Runtime:
    """CUDA with bf16 where the hardware has it, fp16 with loss scaling on older GPUs, else CPU in fp32.

    ``local_rank``: the GPU of this process among several on one machine (``tlpipe.distributed``).
    """
    cuda_visible = torch.cuda.is_available()
    if train.device == "cuda" and not cuda_visible:
        raise ConfigError("train.device is 'cuda' but " + NO_GPU_HINT.format(cuda=torch.version.cuda))
    if train.device == "cpu" or not cuda_visible:
        return Runtime(torch.device("cpu"), None)
    device = torch.device("cuda", local_rank)
    if train.mixed_precision == "off":
        return Runtime(device, None)
    bf16 = torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY
    return Runtime(device, torch.bfloat16 if bf16 else torch.float16)


def pair_tuning_dtype(runtime: Runtime, train: TrainConfig) -> torch.dtype | None:
    """The contrastive phase's autocast dtype: the runtime's on a GPU; bf16 on a CPU that has it natively."""
    if runtime.device.type != "cpu":
        return runtime.autocast_dtype
    return torch.bfloat16 if train.mixed_precision == "auto" and cpu_computes_bf16() else None


def cpu_computes_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 instructions; torch's own check also says yes where AVX-512 emulates them, slower."""
    try:
        with cpuinfo.open(encoding="utf-8") as lines:
            flags = next((line.split() for line in lines if line.startswith("flags")), [])
    except OSError:  # not Linux: no way to ask without a dependency, and fp32 is never wrong
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def device_report(runtime: Runtime, train: TrainConfig) -> str:
    """One line on what training found and chose; with a hint when ``device: auto`` found no GPU."""
    if runtime.device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(runtime.device)
        return (
            f"Training on {torch.cuda.get_device_name(runtime.device)} (compute capability {major}.{minor}, "
            f"torch {torch.__version__} "
            f"built for CUDA {torch.version.cuda}) in {runtime.precision}"
            + (" with a gradient scaler" if runtime.uses_scaler else "")
        )
    line = f"Training on the CPU ({torch.get_num_threads()} threads) in fp32"
    if train.device == "auto":
        line += ": " + NO_GPU_HINT.format(cuda=torch.version.cuda or "none")
    return line


def make_deterministic(enabled: bool) -> None:
    """Switch PyTorch and cuBLAS to deterministic kernels (slower on a GPU; some ops then refuse to run)."""
    if not enabled:
        return
    # cuBLAS reads this when it creates its handle: it must be set before the first GPU matmul.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
