"""The bottom layer of ganforge: a run directory's layout (every file name), checkpoint and weights
I/O (atomic writes; weights-only reads), the JSONL reader and writers, device choice, and the data
spec a config records. It imports nothing of ganforge but config and errors; everything above reads
and writes runs through it. Every write failure (full disk, read-only, run directory removed while
training) is one GanforgeError line naming the file and the cause; the previous file is kept."""

from .checkpoint import (
    atomic_write,
    check_run_dir,
    load_checkpoint,
    load_module_state,
    load_weights,
    make_parent_dir,
    rng_state,
    save_checkpoint,
    save_weights,
    set_rng_state,
    weights_step,
    write_error,
)
from .device import pick_device
from .layout import RunDir, append_jsonl, read_jsonl, read_stats, write_jsonl
from .spec import Spec, is_points, spec_from_config

__all__ = [
    "RunDir", "Spec", "append_jsonl", "atomic_write", "check_run_dir", "is_points", "load_checkpoint",
    "load_module_state", "load_weights", "make_parent_dir", "pick_device", "read_jsonl", "read_stats", "rng_state",
    "save_checkpoint", "save_weights", "set_rng_state", "spec_from_config", "weights_step", "write_error", "write_jsonl",
]
