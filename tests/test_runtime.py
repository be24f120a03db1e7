"""Device and precision: decided from what the hardware has, faked here for every kind of device."""

from __future__ import annotations

import pytest
import torch

from tlpipe.config import TrainConfig
from tlpipe.errors import ConfigError
from tlpipe.runtime import (
    Runtime,
    cpu_computes_bf16,
    device_report,
    make_deterministic,
    pair_tuning_dtype,
    select_runtime,
)
from tlpipe.training import restore_scaler


def fake_gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int] | None) -> None:
    """A GPU of ``capability`` (None: none); bf16 'support' is claimed everywhere, as emulation does"""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: capability is not None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")


@pytest.mark.parametrize(
    ("capability", "settings", "device", "precision", "scaler"),
    [
        (None, {}, "cpu", "fp32", False),
        ((9, 0), {}, "cuda", "bf16", False),  # Hopper
        ((8, 0), {}, "cuda", "bf16", False),  # Ampere: the first with bf16 in hardware
        ((7, 5), {}, "cuda", "fp16", True),  # Turing: bf16 only emulated, so fp16 with loss scaling
        ((6, 1), {}, "cuda", "fp16", True),
        ((8, 6), {"mixed_precision": "off"}, "cuda", "fp32", False),
        ((8, 6), {"device": "cpu"}, "cpu", "fp32", False),
    ],
    ids=["no gpu", "sm90", "sm80", "sm75", "sm61", "precision off", "cpu asked"],
)
def test_precision_follows_the_hardware_not_bf16_emulation(
    monkeypatch: pytest.MonkeyPatch, capability, settings: dict, device: str, precision: str, scaler: bool
) -> None:
    fake_gpu(monkeypatch, capability)

    runtime = select_runtime(TrainConfig(**settings))

    assert (runtime.device.type, runtime.precision, runtime.uses_scaler) == (device, precision, scaler)


@pytest.mark.parametrize(
    ("capability", "settings", "cpu_bf16", "dtype"),
    [
        (None, {}, True, torch.bfloat16),  # a CPU with bf16 instructions
        (None, {}, False, None),  # AVX-512 alone would emulate bf16, slower than fp32
        (None, {"mixed_precision": "off"}, True, None),
        ((8, 6), {"device": "cpu"}, True, torch.bfloat16),
        ((8, 6), {}, False, torch.bfloat16),  # a GPU: the epochs' precision
        ((7, 5), {}, True, torch.float16),
        ((8, 6), {"mixed_precision": "off"}, True, None),
    ],
    ids=["cpu bf16", "cpu without", "cpu off", "cpu asked", "sm86", "sm75", "gpu off"],
)
def test_the_contrastive_phase_runs_in_bf16_on_cpus_that_compute_it_and_as_the_epochs_on_gpus(
    monkeypatch: pytest.MonkeyPatch, capability, settings: dict, cpu_bf16: bool, dtype
) -> None:
    import tlpipe.runtime

    fake_gpu(monkeypatch, capability)
    monkeypatch.setattr(tlpipe.runtime, "cpu_computes_bf16", lambda: cpu_bf16)
    train = TrainConfig(**settings)

    assert pair_tuning_dtype(select_runtime(train), train) == dtype


@pytest.mark.parametrize(
    ("flags", "computes"),
    [("fpu sse2 avx2 avx512f avx512_bf16", True), ("fpu avx512f amx_tile amx_bf16", True), ("fpu avx2 avx512f", False)],
)
def test_bf16_instructions_are_read_from_the_cpu_flags(tmp_path, flags: str, computes: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")

    assert cpu_computes_bf16(cpuinfo) is computes
    assert cpu_computes_bf16(tmp_path / "missing") is False


def test_cuda_asked_for_without_a_gpu_says_why_it_may_be_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, None)

    with pytest.raises(ConfigError, match="a driver older than this torch build's CUDA"):
        select_runtime(TrainConfig(device="cuda"))


def test_device_report_names_the_gpu_and_precision_or_hints_why_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpu(monkeypatch, (7, 5))
    train = TrainConfig()
    assert "Fake GPU (compute capability 7.5" in device_report(select_runtime(train), train)
    assert "fp16 with a gradient scaler" in device_report(select_runtime(train), train)

    fake_gpu(monkeypatch, None)
    assert "no CUDA GPU is visible" in device_report(select_runtime(train), train)
    assert "no CUDA GPU" not in device_report(select_runtime(TrainConfig(device="cpu")), TrainConfig(device="cpu"))


def test_a_resume_in_fp16_after_a_save_without_scaling_starts_a_fresh_scaler() -> None:
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    fp16 = Runtime(torch.device("cuda"), torch.float16)

    restore_scaler(scaler, {"scaler": {}, "precision": "bf16"}, fp16)  # the old code called load_state_dict({})

    saved = {
        "scale": 1024.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2000,
        "_growth_tracker": 3,
    }
    loaded: list[dict] = []
    scaler.load_state_dict = loaded.append  # type: ignore[method-assign]
    restore_scaler(scaler, {"scaler": saved, "precision": "fp16"}, fp16)
    assert loaded == [saved]


def test_deterministic_switches_torch_to_deterministic_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        make_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


def test_the_suite_runs_on_the_cpu_whatever_the_machine_has() -> None:
    assert select_runtime(TrainConfig()).device.type == "cpu"


def test_a_saved_training_state_is_loaded_onto_the_cpu_weights_only(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from tlpipe import train_state
    from tlpipe.train_state import Progress, TrainStateStore

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    store = TrainStateStore(tmp_path, "run")
    store.save(model, Progress(epoch=1), optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=False),
               torch.Generator(), "bf16")  # fmt: skip
    calls: list[dict] = []
    real_load = torch.load
    monkeypatch.setattr(train_state.torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))

    resumed = store.load(torch.nn.Linear(2, 2))

    assert resumed is not None and resumed.trainer["precision"] == "bf16"
    assert calls == [{"map_location": "cpu", "weights_only": True}]
