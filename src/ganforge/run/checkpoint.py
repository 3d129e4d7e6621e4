"""Checkpoints: written atomically, read without unpickling arbitrary objects.

A checkpoint is a torch.save'd dict of tensors and plain values, loaded with weights_only=True.
G's weights are also exported as .safetensors for sharing and sampling.

Every file of a run directory is written through atomic_write (whole files) or
layout.append_jsonl (records): a failed write is one GanforgeError line naming the file and the
cause, never a traceback, and never a half-written file in place of the previous one.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..errors import GanforgeError

FORMAT_VERSION = 1
NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
# OS errors that libraries quote in their own messages, said as the OS says them
_KNOWN_ERRNOS = (errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO, errno.ENOENT, errno.ENOTDIR, errno.EFBIG)
_NEARLY_FULL = 64 * 1024  # free bytes below which a write failure without an errno is taken for a full disk

# Run directories held by this process (RunDir.lock): absolute path -> (as given, st_dev, st_ino).
_claimed: dict[Path, tuple[Path, int, int]] = {}


def claim_run_dir(path: str | Path) -> None:
    """Remember a run directory this process writes, so that its removal is recognised (RunDir.lock)."""
    st = os.stat(path)
    _claimed[Path(os.path.abspath(path))] = (Path(path), st.st_dev, st.st_ino)


def release_run_dir(path: str | Path) -> None:
    _claimed.pop(Path(os.path.abspath(path)), None)


def _claimed_root(path: str | Path) -> Optional[tuple[Path, Path, int, int]]:
    """(absolute root, root as given, st_dev, st_ino) of the claimed run directory holding `path`."""
    target = Path(os.path.abspath(path))
    for root, (given, dev, ino) in list(_claimed.items()):
        if root == target or root in target.parents:
            return root, given, dev, ino
    return None


def removed_run_dir(path: str | Path) -> Optional[Path]:
    """The claimed run directory holding `path` if it was removed (or replaced) since it was claimed."""
    claimed = _claimed_root(path)
    if claimed is None:
        return None
    root, given, dev, ino = claimed
    try:
        st = os.stat(root)
    except OSError:
        return given
    return given if (st.st_dev, st.st_ino) != (dev, ino) else None


def run_dir_removed_error(run_dir: Path) -> GanforgeError:
    return GanforgeError(f"run directory {run_dir} was removed while training; nothing more can be saved")


def check_run_dir(path: str | Path) -> None:
    """Refuse to write `path` when its run directory was removed: writing would only recreate parts of it."""
    gone = removed_run_dir(path)
    if gone is not None:
        raise run_dir_removed_error(gone)


def _no_space_left(directory: Path) -> bool:
    """Whether the file system holding `directory` is (nearly) full, for errors that carry no errno."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use the reserved blocks
    return blocks * st.f_frsize < _NEARLY_FULL


def write_cause(e: BaseException, directory: Optional[Path] = None) -> str:
    """A short cause for a failed write: the OS's words, or the first line of a library's message.

    torch.save and safetensors report OS errors as RuntimeError / SafetensorError: the OS's words are
    found in their message, and a full disk (torch: "unexpected pos ...") by ENOSPC, by the message,
    or, for an error without errno, by the file system having (nearly) no space left.
    """
    code = getattr(e, "errno", None)
    text = _first_line(e, type(e).__name__)
    if code == errno.ENOSPC or "no space left" in text.lower() or "os error 28" in text.lower():
        return NO_SPACE
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    known = [os.strerror(c) for c in _KNOWN_ERRNOS if os.strerror(c).lower() in text.lower()]
    if known:  # a library quoting the OS ("open file failed with strerror: Read-only file system")
        return known[0]
    if code is None and directory is not None and _no_space_left(directory):
        return NO_SPACE
    text = re.sub(r"^\[enforce fail at [^\]]*\][\s.]*", "", text)  # torch's C++ prefix says nothing to a user
    return text[:160] or type(e).__name__


def write_error(path: str | Path, e: BaseException, directory: Optional[Path] = None) -> GanforgeError:
    """The one-line error for a failed write of `path` (the run directory's removal said as such)."""
    gone = removed_run_dir(path)
    if gone is not None:
        return run_dir_removed_error(gone)
    return GanforgeError(f"could not write {path} ({write_cause(e, directory)}); the previous file is kept")


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


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, fsync it, then rename it over `path`.

    Readers see the old file or the new one, never a partial one. On any failure of the writer,
    the fsync or the rename (a full disk makes torch.save raise RuntimeError, safetensors its own
    error) the temporary file is removed, the old file is untouched, and a one-line GanforgeError
    names the file and the cause. KeyboardInterrupt and SystemExit also remove it, and go on.
    """
    path = Path(path)
    check_run_dir(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except GanforgeError:
        _remove(tmp)
        raise
    except Exception as e:  # noqa: BLE001 - libraries report write failures as many types
        cause = write_error(path, e, path.parent)  # before the removal frees the space it measures
        _remove(tmp)
        raise cause from None
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)


def make_parent_dir(path: str | Path) -> None:
    """Create the folder of `path` (and its parents) for a write; a failure is a one-line GanforgeError.
    Inside a claimed run directory only the folders below it are made: a removed run is not made again."""
    path = Path(path)
    check_run_dir(path)
    claimed = _claimed_root(path)
    folder = Path(os.path.abspath(path.parent))
    try:
        if claimed is None:
            folder.mkdir(parents=True, exist_ok=True)
            return
        for part in [*reversed(folder.parents), folder]:
            if claimed[0] in part.parents:  # below the run directory, never the run directory itself
                part.mkdir(exist_ok=True)
    except OSError as e:
        check_run_dir(path)
        raise GanforgeError(f"could not create the folder {path.parent} for {path.name} ({write_cause(e)})") from None


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
