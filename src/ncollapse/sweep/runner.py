"""Plan, show and execute a sweep: ``run_sweep(spec, executor="local" | "ray")``.

Layout of a sweep directory::

    SWEEP_DIR/sweep.json            the spec and every planned run (id, seed, factors, group)
    SWEEP_DIR/runs/<RUN_ID>/        one trainer run directory per run (config.yaml, metrics.jsonl,
                                    checkpoint.pt, summary.json when finished) plus run.log

Both executors start the same worker process per run (:mod:`ncollapse.sweep.worker`) with the same
thread count, so their results are identical; finished runs (``summary.json``) are skipped and
interrupted ones resume from their checkpoint.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ncollapse.config import dump_config
from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_json, atomic_write_text
from ncollapse.sweep.layout import LOG_NAME, run_state
from ncollapse.sweep.spec import SweepRun, SweepSpec

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
TAIL_LINES = 15
EXECUTORS = ("local", "ray")


@dataclass
class Plan:
    """Where each run lives and in which state it is now."""

    spec: SweepSpec
    dirs: list[Path]
    states: list[str]

    @property
    def pending(self) -> list[int]:
        return [i for i, s in enumerate(self.states) if s != "done"]


@dataclass
class SweepOutcome:
    sweep_dir: Path
    total: int
    skipped: int
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_dir": str(self.sweep_dir),
            "total": self.total,
            "skipped": self.skipped,
            "done": self.done,
            "failed": self.failed,
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------- planning


def run_dir_of(spec: SweepSpec, run: SweepRun) -> Path:
    return spec.out_dir / RUNS_DIR / run.run_id


def plan(spec: SweepSpec) -> Plan:
    dirs = [run_dir_of(spec, r) for r in spec.runs]
    states = [
        run_state(d, r.config.train.epochs) if d.is_dir() else "new"
        for d, r in zip(dirs, spec.runs)
    ]
    return Plan(spec, dirs, states)


def epochs_done(run_dir: Path) -> int:
    p = run_dir / "metrics.jsonl"
    return sum(1 for line in p.read_text().splitlines() if line.strip()) if p.is_file() else 0


def describe(p: Plan) -> list[dict[str, Any]]:
    """One row per run for ``--dry-run``: id, seed, state and epochs already done."""
    rows = []
    for run, d, s in zip(p.spec.runs, p.dirs, p.states):
        rows.append(
            {
                "run_id": run.run_id,
                "seed": run.seed,
                "state": s,
                "epochs_done": epochs_done(d),
                "epochs": run.config.train.epochs,
                "run_dir": str(d),
            }
        )
    return rows


def write_plan(p: Plan) -> None:
    """Write ``sweep.json`` and each new run's resolved ``config.yaml`` (atomically)."""
    spec = p.spec
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        spec.out_dir / SWEEP_FILE,
        {
            "name": spec.name,
            "spec_path": str(spec.path) if spec.path else None,
            "spec": spec.raw,
            "seed_key": spec.seed_key,
            "runs": [r.to_dict() for r in spec.runs],
        },
    )
    for run, d in zip(spec.runs, p.dirs):
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "config.yaml").is_file():
            cfg = run.config
            cfg.run.out_dir = str(d.parent)
            cfg.run.name = run.run_id
            atomic_write_text(d / "config.yaml", dump_config(cfg))


# --------------------------------------------------------------------------- resources


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def gpu_count() -> int:
    """GPUs visible to this process: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``."""
    vis = os.environ.get("CUDA_VISIBLE_DEVICES")
    if vis is not None:
        return len([v for v in vis.split(",") if v.strip() and v.strip() != "-1"])
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


@dataclass
class Resources:
    """How many runs go at once, with how many threads each, on which GPU slots."""

    workers: int
    threads: int
    gpu_slots: list[str | None]  # one entry per worker: a CUDA_VISIBLE_DEVICES value, or None
    gpus_per_run: float = 0.0

    def describe(self) -> str:
        gpu = ""
        if any(s is not None for s in self.gpu_slots):
            gpu = f", GPU slots {','.join(str(s) for s in self.gpu_slots)}"
        return f"{self.workers} runs at a time, {self.threads} thread(s) each{gpu}"


def plan_resources(
    spec: SweepSpec,
    workers: int | None = None,
    threads: int | None = None,
    gpus: int | None = None,
    runs_per_gpu: int = 1,
) -> Resources:
    """Size the pool to the machine. CPU runs: one per core, one thread each. GPU runs (when the
    runs' ``train.device`` is not ``cpu`` and GPUs are visible): ``runs_per_gpu`` per GPU, the
    cores shared evenly. The thread count never depends on how many runs are left, so a resumed
    run computes with the same thread count as it started with."""
    cores = cpu_count()
    if runs_per_gpu < 1:
        raise NCollapseError(f"--runs-per-gpu={runs_per_gpu} must be >= 1")
    wants_gpu = any(r.config.train.device != "cpu" for r in spec.runs)
    n_gpu = (gpu_count() if gpus is None else gpus) if wants_gpu else 0
    if workers is not None and workers < 1:
        raise NCollapseError(f"--workers={workers} must be >= 1")
    if threads is not None and threads < 1:
        raise NCollapseError(f"--threads={threads} must be >= 1")
    if n_gpu > 0:
        w = workers or n_gpu * runs_per_gpu
        slots: list[str | None] = [str(i % n_gpu) for i in range(w)]
        t = threads or max(1, cores // w)
        return Resources(w, t, slots, gpus_per_run=1.0 / runs_per_gpu)
    w = workers or cores
    t = threads or max(1, cores // w)
    return Resources(w, t, [None] * w)


# --------------------------------------------------------------------------- one run


def _child_env(threads: int, gpu: str | None) -> dict[str, str]:
    import ncollapse

    env = os.environ.copy()
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    src = str(Path(ncollapse.__file__).resolve().parents[1])  # the worker imports this package
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([src, *[p for p in parts if p != src]])
    return env


def log_tail(run_dir: Path, n: int = TAIL_LINES) -> str:
    p = Path(run_dir) / LOG_NAME
    if not p.is_file():
        return "(no log)"
    with open(p, errors="replace") as f:
        return "".join(deque(f, maxlen=n)).rstrip()


def launch(
    run_dir: str | Path,
    threads: int,
    gpu: str | None = None,
    procs: set | None = None,
    cwd: str | None = None,
) -> tuple[int, float]:
    """Run the worker for ``run_dir`` in its own process, appending to ``run_dir/run.log``
    (``cwd``: the working directory for relative data paths, if it exists here).
    Returns (exit code, seconds)."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    with open(run_dir / LOG_NAME, "a") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ncollapse.sweep.worker",
                str(run_dir),
                "--threads",
                str(threads),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_child_env(threads, gpu),
            cwd=cwd if cwd and os.path.isdir(cwd) else None,
        )
        if procs is not None:
            procs.add(proc)
        try:
            rc = proc.wait()
        finally:
            if procs is not None:
                procs.discard(proc)
    return rc, time.perf_counter() - t0


# --------------------------------------------------------------------------- executors


def _report_failure(progress, run_id: str, rc: int, secs: float, run_dir: Path) -> None:
    tail = log_tail(run_dir)
    progress.finished(run_id, secs, ok=False, detail=f" exit code {rc}; log {run_dir / LOG_NAME}")
    progress.write("  | " + tail.replace("\n", "\n  | "))


def _run_local(p: Plan, res: Resources, progress, fail_fast: bool, outcome: SweepOutcome) -> None:
    slots: queue.Queue = queue.Queue()
    for s in res.gpu_slots:
        slots.put(s)
    stop = threading.Event()
    procs: set = set()

    def task(i: int) -> tuple[int, int, float]:
        if stop.is_set():
            return i, -1, 0.0
        gpu = slots.get()
        try:
            if stop.is_set():
                return i, -1, 0.0
            progress.started(
                p.spec.runs[i].run_id, "resume" if p.states[i] == "partial" else "start"
            )
            rc, secs = launch(p.dirs[i], res.threads, gpu, procs)
            if stop.is_set() and rc != 0:  # stopped by --fail-fast: resumable, not a failure
                progress.stopped(p.spec.runs[i].run_id)
            else:
                _record(p, i, rc, secs, progress, outcome)
            return i, rc, secs
        finally:
            slots.put(gpu)

    def stop_all(futures) -> None:
        stop.set()
        for f in futures:
            f.cancel()
        for proc in list(procs):
            proc.terminate()

    with ThreadPoolExecutor(max_workers=res.workers, thread_name_prefix="sweep") as pool:
        futures = {pool.submit(task, i) for i in p.pending}
        try:
            _drain(futures, stop, fail_fast, stop_all)
        except BaseException:  # Ctrl-C: start nothing new, stop the running runs (they resume)
            stop_all(futures)
            raise


def _drain(futures, stop, fail_fast, stop_all) -> None:
    while futures:
        finished, futures = wait(futures, return_when=FIRST_COMPLETED)
        for fut in finished:
            if fut.cancelled():
                continue
            _, rc, _ = fut.result()
            if rc != 0 and fail_fast and not stop.is_set():
                stop_all(futures)


def _record(p: Plan, i: int, rc: int, secs: float, progress, outcome: SweepOutcome) -> None:
    run_id = p.spec.runs[i].run_id
    if rc == 0:
        outcome.done.append(run_id)
        progress.finished(run_id, secs, ok=True)
    else:
        outcome.failed.append(run_id)
        _report_failure(progress, run_id, rc, secs, p.dirs[i])


def _ray_task(run_dir: str, threads: int, cwd: str) -> tuple[int, float]:
    # Ray has set CUDA_VISIBLE_DEVICES for this task from its num_gpus; the child inherits it.
    # Ray workers run in their own folder: start the run in the sweep's working directory
    # (where relative data paths point) when this node has it.
    return launch(run_dir, threads, None, cwd=cwd)


def _run_ray(
    p: Plan,
    res: Resources,
    progress,
    fail_fast: bool,
    outcome: SweepOutcome,
    address: str | None,
) -> None:
    try:
        import ray
    except ImportError:
        raise NCollapseError(
            "--executor ray needs Ray; install the extra: pip install 'ncollapse[ray]'"
        ) from None
    import ncollapse

    src = str(Path(ncollapse.__file__).resolve().parents[1])
    init_kw: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    if address:
        init_kw["address"] = address
    else:
        # a private local instance with exactly the cores and GPUs the local pool would use
        init_kw.update(
            num_cpus=res.workers * res.threads,
            num_gpus=len({s for s in res.gpu_slots if s is not None}),
        )
        # the local instance's workers inherit this environment: make them import this package
        parts = [q for q in os.environ.get("PYTHONPATH", "").split(os.pathsep) if q and q != src]
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *parts])
    started_here = not ray.is_initialized()
    try:
        ray.init(**init_kw)
    except Exception as exc:  # connection errors etc.: one line
        raise NCollapseError(
            f"could not start or join Ray ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check --address (e.g. ray://host:10001 or auto)"
        ) from None
    try:
        remote = ray.remote(_ray_task).options(
            num_cpus=res.threads, num_gpus=res.gpus_per_run, max_retries=0
        )
        refs = {}
        for i in p.pending:
            refs[remote.remote(str(p.dirs[i].resolve()), res.threads, os.getcwd())] = i
        # Ray decides when a task starts; count submitted tasks up to the cluster's slots
        waiting = list(refs)
        shown = 0
        while waiting:
            while shown < min(len(waiting), res.workers):
                i = refs[waiting[shown]]
                progress.started(p.spec.runs[i].run_id)
                shown += 1
            ready, waiting = ray.wait(waiting, num_returns=1)
            shown -= 1
            for ref in ready:
                i = refs[ref]
                try:
                    rc, secs = ray.get(ref)
                except Exception as exc:  # the task itself died (worker lost, cancelled)
                    rc, secs = 1, 0.0
                    progress.write(f"ray task for {p.spec.runs[i].run_id} failed: {exc!r}"[:300])
                _record(p, i, rc, secs, progress, outcome)
                if rc != 0 and fail_fast:
                    for r in waiting:
                        ray.cancel(r, force=True)
                    waiting = []
    finally:
        if started_here:
            ray.shutdown()


def check_data(p: Plan) -> None:
    """Every data set a pending run reads is on disk (presence only); otherwise the one
    :class:`~ncollapse.errors.DataNotFoundError` that names where it looked and how to get it,
    before any run starts (rather than one failure per run)."""
    from ncollapse.data import require_dataset

    seen = set()
    for i in p.pending:
        d = p.spec.runs[i].config.data
        opts = dict(getattr(d, "options", None) or {})
        key = (d.name, str(d.root), repr(sorted(opts.items())))
        if key not in seen:
            seen.add(key)
            require_dataset(d.name, d.root, "train", **opts)


def run_sweep(
    spec: SweepSpec,
    *,
    executor: str = "local",
    workers: int | None = None,
    threads: int | None = None,
    gpus: int | None = None,
    runs_per_gpu: int = 1,
    address: str | None = None,
    fail_fast: bool = False,
    stream=None,
    bar: bool | None = None,
) -> SweepOutcome:
    """Run every unfinished run of ``spec``; finished runs are skipped, interrupted ones resumed."""
    from ncollapse.sweep.progress import SweepProgress

    if executor not in EXECUTORS:
        raise NCollapseError(
            f"--executor {executor!r} is unknown; use one of {', '.join(EXECUTORS)}"
        )
    if address and executor != "ray":
        raise NCollapseError("--address joins a Ray cluster; use it with --executor ray")
    res = plan_resources(spec, workers, threads, gpus, runs_per_gpu)
    p = plan(spec)
    check_data(p)
    write_plan(p)
    t0 = time.perf_counter()
    outcome = SweepOutcome(spec.out_dir, len(spec.runs), len(spec.runs) - len(p.pending))
    stream = stream or sys.stderr
    print(
        f"sweep {spec.name}: {len(spec.runs)} runs ({outcome.skipped} finished already, "
        f"{sum(s == 'partial' for s in p.states)} to resume) in {spec.out_dir}; "
        f"executor {executor}: {res.describe()}",
        file=stream,
        flush=True,
    )
    progress = SweepProgress(len(spec.runs), outcome.skipped, res.workers, stream=stream, bar=bar)
    try:
        if p.pending:
            if executor == "local":
                _run_local(p, res, progress, fail_fast, outcome)
            else:
                _run_ray(p, res, progress, fail_fast, outcome, address)
    finally:
        progress.close()
    outcome.seconds = time.perf_counter() - t0
    return outcome
