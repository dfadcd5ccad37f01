"""One progress display over a sweep's runs: done / running / failed / skipped and an ETA.

On a terminal it is a tqdm bar; otherwise (logs, CI, docs) one line per event.
"""

from __future__ import annotations

import sys
import threading
import time


def _hms(seconds: float) -> str:
    s = int(round(max(seconds, 0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SweepProgress:
    def __init__(self, total: int, skipped: int, slots: int, stream=None, bar: bool | None = None):
        self.total, self.skipped, self.slots = total, skipped, max(slots, 1)
        self.done = self.failed = self.running = 0
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.durations: list[float] = []
        self._lock = threading.Lock()
        use_bar = self.stream.isatty() if bar is None else bar
        self.bar = None
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=skipped, unit="run", file=self.stream, dynamic_ncols=True
            )
            self._refresh()

    # -- text ---------------------------------------------------------------------------------

    def counts(self) -> str:
        return (
            f"done {self.done} | running {self.running} | failed {self.failed} | "
            f"skipped {self.skipped}"
        )

    def eta(self) -> str:
        left = self.total - self.skipped - self.done - self.failed
        if not self.durations:
            return "?"
        per = sum(self.durations) / len(self.durations)
        return _hms(per * left / self.slots)

    def _refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.counts(), refresh=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _line(self, what: str, run_id: str, extra: str = "") -> None:
        n = self.skipped + self.done + self.failed
        width = len(str(self.total))
        self.write(
            f"[{n:>{width}}/{self.total}] {what:<7} {run_id}{extra}  | {self.counts()} | "
            f"elapsed {_hms(time.perf_counter() - self.t0)} | ETA {self.eta()}"
        )

    # -- events -------------------------------------------------------------------------------

    def started(self, run_id: str, how: str = "start") -> None:
        with self._lock:
            self.running += 1
            if self.bar is None:
                self._line(how, run_id)
            self._refresh()

    def finished(self, run_id: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self._lock:
            self.running = max(self.running - 1, 0)
            if ok:
                self.done += 1
                self.durations.append(seconds)
            else:
                self.failed += 1
            if self.bar is not None:
                self.bar.update(1)
                self._refresh()
            if self.bar is None or not ok:
                self._line("done" if ok else "FAILED", run_id, f" ({seconds:.1f} s){detail}")

    def stopped(self, run_id: str) -> None:
        with self._lock:
            self.running = max(self.running - 1, 0)
            self._line("stopped", run_id, " (--fail-fast; resumes on the next start)")
            self._refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
