"""torch's process-wide precision switches, and the IEEE arithmetic nnspec's own torch code runs in.

PyTorch lets a session trade float32 accuracy for speed, for every float32 operation that follows:
``torch.backends.cuda.matmul.allow_tf32 = True`` (nanoGPT's training script sets it) or
``torch.set_float32_matmul_precision("high")`` runs cuBLAS matmuls in TF32 (10 mantissa bits, not
23); ``"medium"`` lets oneDNN run CPU matmuls in bfloat16 (8 bits) on processors with AMX or
AVX512-BF16; cuDNN runs convolutions and RNNs (``nn.LSTM``) in TF32 unless told otherwise.

Two consequences for a verifier:

1. The tolerance rule for low precision (``nnspec.verify.tolerances``, rule 2) measures an
   implementation against the error of ``torch_ref`` at the same dtype. If that baseline ran in TF32
   its error would be thousands of times a float32 one, and a float32 implementation would be let off
   by as much: the yardstick must not depend on the session. :func:`ieee_float32` pins it.
2. The bundled ``torch:*:float32`` implementation is nnspec's float32 reference, and a clause it fails
   under a session's TF32 would not fail in a fresh ``nnspec verify``. It runs under
   :func:`ieee_float32` too, so ``torch:cuda:float32`` always means IEEE float32.

A third-party implementation runs in whatever the session set: that is the code being verified, and
TF32 where float32 is declared is something a clause should be able to find. What the session set
is reported (:func:`session_modes`): in the pytest header, the report's metadata, and on the
reproduce line of every failure of a low-precision implementation.

torch >= 2.9 has per-backend ``fp32_precision`` switches and refuses to answer the older getters
(``allow_tf32``, ``get_float32_matmul_precision``) once the two styles are mixed, so only one style
is ever read: the new one where it exists.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# torch >= 2.9: the operator-level float32 switches ("ieee", "tf32", "bf16"; "none" inherits from
# the backend, then from torch.backends.fp32_precision). Setting a parent writes its value into the
# children that say "none", so they are restored parents first.
FP32_PARENTS = ("fp32_precision", "cudnn.fp32_precision", "mkldnn.fp32_precision")
FP32_LEAVES = (
    "cuda.matmul.fp32_precision",
    "cudnn.conv.fp32_precision",
    "cudnn.rnn.fp32_precision",
    "mkldnn.matmul.fp32_precision",
    "mkldnn.conv.fp32_precision",
    "mkldnn.rnn.fp32_precision",
)
# What each backend can do; it treats anything else as IEEE.
VALID = {"cuda": ("ieee", "tf32"), "cudnn": ("ieee", "tf32"), "mkldnn": ("ieee", "tf32", "bf16")}
# Older torch: the same choices, fewer of them.
LEGACY = ("cuda.matmul.allow_tf32", "cudnn.allow_tf32")
# How float16/bfloat16 matmuls accumulate in cuBLAS (the low-precision baseline's own arithmetic).
REDUCTIONS = (
    "cuda.matmul.allow_fp16_reduced_precision_reduction",
    "cuda.matmul.allow_bf16_reduced_precision_reduction",
    "cuda.matmul.allow_fp16_accumulation",
)

# A fresh ``import torch``: cuBLAS and oneDNN in IEEE float32, cuDNN in TF32 (PyTorch's documented
# defaults since 1.12; tests/test_numerics.py reads them off a fresh interpreter), float16/bfloat16
# matmuls with cuBLAS's reduced-precision reductions, accumulation in float32.
FRESH: dict[str, Any] = {
    "fp32_precision": "none",
    "cudnn.fp32_precision": "none",
    "mkldnn.fp32_precision": "none",
    "cuda.matmul.fp32_precision": "none",
    "cudnn.conv.fp32_precision": "tf32",
    "cudnn.rnn.fp32_precision": "tf32",
    "mkldnn.matmul.fp32_precision": "none",
    "mkldnn.conv.fp32_precision": "none",
    "mkldnn.rnn.fp32_precision": "none",
    "cuda.matmul.allow_tf32": False,
    "cudnn.allow_tf32": True,
    "float32_matmul_precision": "highest",
    "cuda.matmul.allow_fp16_reduced_precision_reduction": True,
    "cuda.matmul.allow_bf16_reduced_precision_reduction": True,
    "cuda.matmul.allow_fp16_accumulation": False,
}
# What nnspec's own torch code runs in. torch_ref's arithmetic is matmuls and elementwise operations
# (no convolution, no cuDNN RNN), and matmuls are what the switches round: IEEE float32 matmuls in
# cuBLAS and oneDNN, float16/bfloat16 matmuls as in a fresh torch. cuDNN's switches are left alone.
IEEE = {
    "cuda.matmul.fp32_precision": "ieee",
    "mkldnn.matmul.fp32_precision": "ieee",
    "cuda.matmul.allow_tf32": False,
    "float32_matmul_precision": "highest",
    **{flag: FRESH[flag] for flag in REDUCTIONS},
}


def _torch() -> Any:
    import torch

    return torch


@functools.cache
def _owner(path: str) -> tuple[Any, str]:
    obj = _torch().backends
    *parents, name = path.split(".")
    for part in parents:
        obj = getattr(obj, part)
    return obj, name


def _has(path: str) -> bool:
    try:
        owner, name = _owner(path)
        getattr(owner, name)
    except (AttributeError, RuntimeError):
        return False
    return True


@functools.cache
def _style() -> str:
    """``"fp32_precision"`` (torch >= 2.9) or ``"legacy"``."""
    return "fp32_precision" if all(_has(p) for p in FP32_PARENTS + FP32_LEAVES) else "legacy"


@functools.cache
def _switches(style: str | None = None) -> tuple[str, ...]:
    """The switches to read and write, parents before children, in one API style only."""
    style = style or _style()
    if style == "fp32_precision":
        switches: tuple[str, ...] = FP32_PARENTS + FP32_LEAVES
    else:
        switches = (*LEGACY, "float32_matmul_precision")
    return switches + tuple(flag for flag in REDUCTIONS if _has(flag))


def _get(path: str) -> Any:
    if path == "float32_matmul_precision":
        return _torch().get_float32_matmul_precision()
    owner, name = _owner(path)
    return getattr(owner, name)


def _set(path: str, value: Any) -> None:
    if path == "float32_matmul_precision":
        _torch().set_float32_matmul_precision(value)
    else:
        owner, name = _owner(path)
        setattr(owner, name, value)


def snapshot(*, style: str | None = None) -> dict[str, Any]:
    """Every precision switch of this process, by its path under ``torch.backends``."""
    return {path: _get(path) for path in _switches(style)}


def restore(saved: dict[str, Any]) -> None:
    """Set the switches of a :func:`snapshot` again. Parents come first in it, and one is written only
    where it differs (writing a parent rewrites its children, which come after)."""
    for path, value in saved.items():
        if _get(path) != value:
            _set(path, value)


def _effective(saved: dict[str, Any], leaf: str) -> str:
    """What a leaf switch means: its own value, else its backend's, else the global one; "none"
    all the way up, or a value the backend cannot do (bfloat16 in cuBLAS or cuDNN), is IEEE."""
    backend = leaf.split(".")[0]
    for path in (leaf, f"{backend}.fp32_precision", "fp32_precision"):
        value = saved.get(path, "none")
        if value != "none":
            return value if value in VALID[backend] else "ieee"
    return "ieee"


def _pinned(saved: dict[str, Any]) -> list[tuple[str, Any]]:
    """The switches :func:`ieee_float32` changes, with the session's values."""
    return [
        (path, value)
        for path, value in saved.items()
        if path in IEEE
        and value != IEEE[path]
        and not (path in FP32_LEAVES and _effective(saved, path) == "ieee")
    ]


@contextmanager
def ieee_float32(*, style: str | None = None) -> Iterator[None]:
    """Run the block's matmuls in IEEE float32 (no TF32 in cuBLAS, no bfloat16 passes in oneDNN) and
    its float16/bfloat16 matmuls as a fresh torch runs them; the session's switches come back
    after, also when the block raises or a time limit interrupts it. Only operator-level switches
    are written, never a parent, so putting back the changed ones restores the session exactly.
    (Inside the block torch's older getters, ``allow_tf32``, may refuse to answer, as after any mix
    of the two API styles; the kernels read the operator-level switch.) ``style`` picks the API
    (tests)."""
    if "torch" not in sys.modules:
        yield
        return
    changed = _pinned(snapshot(style=style))
    try:
        for path, _ in changed:
            _set(path, IEEE[path])
        yield
    finally:
        for path, value in changed:
            _set(path, value)


def session_modes(*, style: str | None = None) -> dict[str, Any]:
    """This process's precision switches that act differently from a fresh ``import torch``'s, by
    their ``torch.backends`` path (``{"cuda.matmul.fp32_precision": "tf32"}``, each operator's
    switch with what it inherits resolved); empty when torch was never imported, or nothing that
    matters was changed."""
    if "torch" not in sys.modules:
        return {}
    saved = snapshot(style=style)
    modes = {}
    for path, value in saved.items():
        if path in FP32_PARENTS:
            continue  # a parent acts through its leaves
        if path in FP32_LEAVES:
            value = _effective(saved, path)
            if value != _effective(FRESH, path):
                modes[path] = value
        elif value != FRESH.get(path, value):
            modes[path] = value
    return modes


def describe(modes: dict[str, Any]) -> str:
    """The switches as the Python statements that set them (for a reproduce line)."""
    return "; ".join(
        f"torch.set_float32_matmul_precision({value!r})"
        if path == "float32_matmul_precision"
        else f"torch.backends.{path} = {value!r}"
        for path, value in modes.items()
    )


# NumPy's floating-point error handling in a fresh interpreter (``np.geterr()``). A session may
# change it for everything after (``np.seterr(all="raise")`` in a conftest, to catch numerical
# trouble early), and the oracle's harmless underflows (exp of a large negative score, the masked
# logits of a softmax) would then raise inside the yardstick. nnspec's own arithmetic, the oracle's
# and the checks', runs in these; a third-party implementation in the session's.
NUMPY_FRESH = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


def numpy_session_errors() -> dict[str, str]:
    """This process's ``np.seterr`` settings that differ from a fresh NumPy's."""
    import numpy as np

    return {k: v for k, v in np.geterr().items() if NUMPY_FRESH.get(k) != v}


def describe_numpy_errors(errors: dict[str, str]) -> str:
    """The settings as the call that makes them (for a reproduce line)."""
    return "np.seterr(" + ", ".join(f"{k}={v!r}" for k, v in errors.items()) + ")" if errors else ""


# Subnormal numbers. ``torch.set_flush_denormal(True)`` (PyTorch's advice for faster CPU inference)
# or a shared library built with -ffast-math sets the processor's flush-to-zero and
# denormals-are-zero modes for the thread: subnormal results become 0 and subnormal inputs read as
# 0. Hypothesis refuses to draw floats then ("we can't represent subnormal floats right now"), and
# the oracle would no longer be IEEE arithmetic. The clause, the oracle and the checks run with
# subnormals; a third-party implementation in the session's mode, like the switches above.


def flushes_subnormals() -> bool:
    """Whether this thread's floating-point unit flushes subnormals to zero (FTZ or DAZ)."""
    tiny = sys.float_info.min
    half = tiny / 2.0  # a subnormal, or 0 under FTZ
    return half == 0.0 or half * 1.0 == 0.0  # 0 under DAZ, which reads the subnormal as 0


@contextmanager
def subnormals(*, flush: bool) -> Iterator[None]:
    """Run the block with subnormals flushed (``flush=True``) or kept, through
    ``torch.set_flush_denormal``, and put this thread's mode back after (a mode set by -ffast-math
    code comes back as torch sets it, FTZ and DAZ together). Where the processor has no such mode,
    or torch cannot change it, the block runs as it is."""
    if flushes_subnormals() == flush:
        yield
        return
    import torch

    changed = bool(torch.set_flush_denormal(flush))
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(not flush)


def describe_subnormals(flushing: bool) -> str:
    """The session's mode as the call that sets it (for a reproduce line), or ""."""
    return "torch.set_flush_denormal(True)" if flushing else ""
