"""What nnspec's adapters for Hugging Face models share (:mod:`nnspec.verify.hf_gpt2`,
:mod:`nnspec.verify.hf_marian`): the implementation object's identity on one device and dtype,
weights crossing into the model's format, and ``generate`` set to draw from the documents'
softmax(l / T) with a seed that leaves the caller's random state alone.

A model built from a config is a fresh ``torch.nn.Module``: nothing here downloads anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from nnspec.reference.torch_ref import to_torch  # nnspec's one NumPy <-> torch copy

from .implementations import DTYPES, torch_dtype

DEVICES = ("cpu", "cuda")


def transformers_version() -> str:
    """The installed ``transformers``' version, or "" where it is missing."""
    try:
        import transformers
    except ImportError:
        return ""
    return transformers.__version__


def identify(impl: Any, family: str, device: str, dtype: str) -> None:
    """Give ``impl`` (an adapter's implementation object) its nnspec identity: name, device, dtype,
    version, and why it cannot run here, if it cannot (its clauses are then not applicable)."""
    owner = type(impl).__name__
    if device not in DEVICES:
        raise ValueError(f"{owner}(device={device!r}): choose one of {DEVICES}")
    if dtype not in DTYPES:
        raise ValueError(f"{owner}(dtype={dtype!r}): choose one of {DTYPES}")
    impl.nnspec_name = f"{family}:{device}:{dtype}"
    impl.nnspec_device = device
    impl.nnspec_dtype = dtype
    version = transformers_version()
    impl.__version__ = f"transformers {version}" if version else "transformers not installed"
    reasons = []
    if not version:
        reasons.append("transformers is not installed (pip install transformers)")
    if device == "cuda" and not torch.cuda.is_available():
        reasons.append("no CUDA device is available")
    impl.nnspec_unavailable = "; ".join(reasons)


def on_device(network: type, name: str, device: str, dtype: str) -> type:
    """``network`` (a class taking ``(config, params)``) bound to one device and dtype."""
    return type(name, (network,), {"device": torch.device(device), "dtype": torch_dtype(dtype)})


class HuggingFaceNetwork:
    """The part of a network adapter that is the same for every Hugging Face model."""

    device: torch.device
    dtype: torch.dtype

    def _tensor(self, array: Any) -> torch.Tensor:
        return to_torch(np.asarray(array, dtype=np.float64), device=self.device, dtype=self.dtype)

    @contextlib.contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        """``generate`` samples from torch's global generator: seeded inside ``fork_rng``, so the
        caller's random state is as it was afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            self._seed(seed)
            yield

    def _seed(self, seed: int) -> None:
        """Sampling draws from torch's global generator (inside ``fork_rng``, so only here)."""
        torch.manual_seed(seed)


def generation_config(temperature: float, **fixed: Any) -> Any:
    """A ``GenerationConfig`` that searches greedily at T = 0 and otherwise samples from the whole
    of softmax(l / T): Hugging Face's defaults (``top_k`` 50, ``top_p``) would truncate it."""
    from transformers import GenerationConfig

    sampling = temperature != 0
    # (the sampling flags only where it samples: greedy search warns that they do nothing)
    warping = {"temperature": float(temperature), "top_k": 0, "top_p": 1.0} if sampling else {}
    return GenerationConfig(do_sample=sampling, **warping, **fixed)
