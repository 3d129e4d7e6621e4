"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is a torch.save'd dict of tensors and plain values, loaded with weights_only=True.
G's weights are also exported as .safetensors for sharing and sampling.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..errors import GanforgeError

FORMAT_VERSION = 1


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, fsync it, then rename it over `path`.

    Readers see the old file or the new one, never a partial one. On failure the temporary file
    is removed, the old file is untouched, and a GanforgeError says what happened.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise GanforgeError(f"could not write {path} ({e.strerror or e}); the previous file is kept") from None


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    state = {"format": FORMAT_VERSION, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with torch's weights-only unpickler; anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise GanforgeError(f"{path}: refused to load a checkpoint that is not plain weights ({_first_line(e, 'unsafe content')})") from None
    except Exception as e:  # noqa: BLE001 - a damaged file makes torch.load raise many types (EOFError, KeyError, ...)
        raise GanforgeError(f"{path}: not a readable checkpoint ({_first_line(e, type(e).__name__)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise GanforgeError(f"{path}: not a ganforge checkpoint (format {FORMAT_VERSION} expected)")
    return state


def _first_line(e: BaseException, default: str) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else default


def save_weights(module_state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """Export a state dict as .safetensors (atomic)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in module_state.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a .safetensors file: (tensors, metadata). A corrupt file is a GanforgeError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no weights file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for a bad header
        raise GanforgeError(f"{path}: not a valid safetensors file ({_first_line(e, type(e).__name__)})") from None


def weights_step(path: str | Path) -> Optional[int]:
    """The step recorded in a .safetensors file written by the trainer; None if missing or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return int((f.metadata() or {})["step"])
    except Exception:  # noqa: BLE001 - missing, corrupt, or not ours: all mean "rewrite it"
        return None


def load_module_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict with a one-line error naming missing, unexpected and mis-shaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{'...' if len(extra) > 3 else ''}")
        if shapes:
            parts.append(f"shape {'; '.join(shapes[:3])}")
        raise GanforgeError(f"{what} does not match the configured architecture: {'; '.join(parts)}")
    module.load_state_dict(state)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
