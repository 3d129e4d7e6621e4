"""A progress bar on a terminal (tqdm); nothing otherwise (log lines carry the progress there)."""

from __future__ import annotations

from typing import Any, Optional


class Progress:
    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, leave=True)
        self.last = start

    def update(self, step: int, record: Optional[dict[str, Any]]) -> None:
        if self.bar is None:
            return
        self.bar.update(step - self.last)
        self.last = step
        if record:
            short = {"D": "loss/D", "G": "loss/G", "D(x)": "D(x)", "D(G(z))": "D(G(z))", "img/s": "images_per_s"}
            self.bar.set_postfix({k: f"{record[v]:.3g}" for k, v in short.items() if v in record}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
