"""The trainer: one loop for every method, with NC tracking, atomic checkpoints, resume and DDP.

A run directory holds ``config.yaml`` (resolved), ``manifest.json`` (the long-tailed subset),
``env.json`` (versions, device), ``metrics.jsonl`` (one JSON object per epoch), ``checkpoint.pt``
(the last good epoch, written atomically, checked finite first), ``resumes.jsonl`` (one line per resume;
the first three files are never rewritten), ``.lock`` (one process owns the folder) and TensorBoard
event files under ``tb/``.

Determinism: the loader order and mixup draws of epoch ``e`` depend only on (train.seed, e), so a run
resumed from the checkpoint of epoch ``e`` replays epochs ``e+1..`` exactly like an uninterrupted run
on CPU.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncollapse import assembly
from ncollapse.assembly import resolve_device  # noqa: F401  (re-export: older imports)
from ncollapse.config import Config, dump_config, load_config
from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_json, atomic_write_text, to_jsonable
from ncollapse.train.checkpoint import CKPT_NAME, checkpoint_status, find_bad_value, save_checkpoint
from ncollapse.train.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    cleanup,
    explain_failure,
    init_distributed,
    valid_rows,
)
from ncollapse.train.resume import claim_new_run_dir, prepare_resume, record_resume
from ncollapse.train.schedule import lr_factor


class TrainingDiverged(NCollapseError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    def summary(self) -> dict[str, Any]:
        f = self.final
        keys = [
            "epoch",
            "train_loss",
            "train_acc",
            "test_acc",
            "balanced_acc",
            "group_acc",
            "posthoc_acc",
            "nc",
        ]
        out = {k: f.get(k) for k in keys if k in f}
        out["run_dir"] = str(self.run_dir)
        return out


# ----------------------------------------------------------------------------- helpers


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """Create a fresh run directory; an existing one is never reused or overwritten."""
    base = Path(out_dir)
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        cand = base / (f"{name}-{stamp}" + (f"-{i}" if i else ""))
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            continue
    raise NCollapseError(f"could not create a new run directory under {base}")


def env_info(device: torch.device, dist_info: DistInfo) -> dict[str, Any]:
    from ncollapse import __version__

    return {
        "ncollapse": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "world_size": dist_info.world_size,
        "argv": sys.argv,
    }


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed((int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63 - 1))
    return g


def _build_train_data(cfg: Config, datasets=None):
    dc = cfg.data
    train, test = assembly.load_datasets(dc, datasets)
    indices, counts, manifest = assembly.long_tailed_subset(
        train.labels,
        int(train.num_classes),
        profile=dc.profile,
        rho=dc.rho,
        counts=dc.counts,
        k_maj=dc.k_maj,
        k_min=dc.k_min,
        R=dc.R,
        seed=dc.seed,
        dataset=dc.name,
        keep_order=True,
    )
    return train, test, indices, counts, manifest


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Train one configuration. ``Trainer(cfg).fit()`` or ``Trainer.resume(run_dir).fit()``."""

    def __init__(
        self,
        cfg: Config,
        run_dir: str | Path | None = None,
        *,
        resume_state=None,
        datasets=None,
        lock=None,
    ):
        """``datasets=(train, test)`` trains on two map-style datasets (an
        :class:`~ncollapse.data.ArrayDataset`, a :class:`~ncollapse.data.LazyImageDataset` or any
        ``torch.utils.data.Dataset`` returning ``(x, y)``) instead of ``data.name``; the
        long-tailed profile of ``cfg.data`` is still applied."""
        self.cfg = cfg
        self._datasets = datasets
        assembly.import_modules(cfg.imports)
        self.dist = init_distributed(
            assembly.process_backend(cfg.train.device), cfg.train.dist_timeout
        )
        if cfg.train.threads:
            torch.set_num_threads(int(cfg.train.threads))
        self.device = assembly.resolve_device(
            cfg.train.device, self.dist.local_rank if self.dist.enabled else None
        )
        torch.manual_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)

        self._setup_data()
        self._setup_model()
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []
        if resume_state is not None:
            self._load_state(resume_state)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.dist.is_main and self.run_dir is None:
            name = cfg.run.name or f"{cfg.data.name}-{cfg.loss.name}-{cfg.model.head}"
            self.run_dir = new_run_dir(cfg.run.out_dir, name)
        if self.dist.enabled:
            # share rank 0's run directory name so logs agree
            obj = [str(self.run_dir) if self.run_dir else None]
            torch.distributed.broadcast_object_list(obj, src=0)
            self.run_dir = Path(obj[0])
        self.tb = None
        self._resume_changes: dict[str, Any] | None = None
        # one process owns a run folder at a time (reliability: ncollapse.train.lock)
        self._lock = lock
        if lock is None and self.dist.is_main and resume_state is None:
            self._lock = claim_new_run_dir(self.run_dir)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: list[str] | None = None) -> Trainer:
        # lock, allowed overrides only, a good checkpoint of the same world size
        cfg, state, lock, changes = prepare_resume(run_dir, overrides)
        try:
            tr = cls(cfg, run_dir=Path(run_dir), resume_state=state, lock=lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        tr._resume_changes = {"overrides": list(overrides or []), "changes": changes}
        return tr

    @classmethod
    def load(cls, run_dir: str | Path, overrides: list[str] | None = None) -> Trainer:
        """A run's trainer at its last checkpoint, for reading only (measure, evaluate, export):
        no lock is taken and nothing in the folder is written, so a run still training elsewhere
        can be measured. ``overrides`` may change what a resume may change (e.g. the device)."""
        from ncollapse.train.checkpoint import load_checkpoint
        from ncollapse.train.resume import resume_config

        cfg, _ = resume_config(run_dir, overrides)
        state = load_checkpoint(Path(run_dir) / CKPT_NAME)
        return cls(cfg, run_dir=Path(run_dir), resume_state=state)

    def _setup_data(self) -> None:
        from ncollapse.data import make_train_loaders

        cfg = self.cfg
        train, test, idx, counts, manifest = _build_train_data(cfg, self._datasets)
        self.num_classes = int(train.num_classes)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.manifest = manifest
        self.train_set, self.test_set = train, test
        aug = None
        if cfg.data.augment:
            from ncollapse.data import Augment

            aug = Augment(crop_padding=cfg.data.crop_padding, flip=cfg.data.flip)
        bs = cfg.data.batch_size
        if self.dist.enabled:
            if bs % self.dist.world_size:
                raise NCollapseError(
                    f"data.batch_size={bs} must be divisible by the number of "
                    f"processes ({self.dist.world_size})"
                )
        # under DDP each process takes batch_size / world_size samples of every global batch;
        # evaluation passes are not sharded: every process sees all samples once (exact counts)
        self.loaders = make_train_loaders(
            train,
            test,
            idx,
            batch_size=bs // self.dist.world_size,
            test_batch_size=cfg.data.test_batch_size,
            sampler=cfg.data.sampler,
            augment=aug,
            seed=cfg.train.seed,
            device=self.device,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            limit_test=cfg.data.limit_test,
            num_workers=cfg.data.num_workers,
        )
        self.train_loader = self.loaders.train
        self.nc_loader, self.test_loader = self.loaders.nc, self.loaders.test
        self.in_shape = self.loaders.in_shape
        self.groups = assembly.class_groups(self.counts, cfg.eval)

    def _setup_model(self) -> None:
        cfg = self.cfg
        self.model = assembly.build_model(
            cfg.model, self.in_shape, self.num_classes, self.counts
        ).to(self.device)
        if cfg.train.channels_last and len(self.in_shape) == 3:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn = assembly.build_loss(
            cfg.loss, cfg.model.head, self.counts, self.model, self.device
        )
        # "standard" = forward + loss (+ mixup); gbbn etc. bring their own step
        self.method = assembly.build_method(cfg.method, cfg.model.head)
        self.aux_loader = None
        aux = self.method.aux_sampler
        if aux:
            self.aux_loader = self.loaders.aux(aux, cfg.train.seed + 1)
        params = [p for p in self.model.parameters() if p.requires_grad]
        params += [p for p in self.loss_fn.parameters() if p.requires_grad]
        self.optimizer = assembly.build_optimizer(cfg.optim, params)
        self.ddp_model = self.model
        if self.dist.enabled:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.forward = self.ddp_model
        if cfg.train.compile:
            self.forward = torch.compile(self.ddp_model)

    # -- state -----------------------------------------------------------------------------

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "history_json": json.dumps(to_jsonable(self.history)),
            "torch_rng": torch.get_rng_state(),
            "world_size": self.dist.world_size,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "loss" in state:
            self.loss_fn.load_state_dict(state["loss"])
        self.history = json.loads(state.get("history_json", "[]"))
        self.start_epoch = int(state["epoch"]) + 1
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])

    # -- the loop --------------------------------------------------------------------------

    def _set_lr(self, epoch_float: float) -> float:
        sc, oc = self.cfg.sched, self.cfg.optim
        lr = oc.lr * lr_factor(
            epoch_float,
            name=sc.name,
            epochs=self.cfg.train.epochs,
            warmup_epochs=sc.warmup_epochs,
            milestones=sc.milestones,
            gamma=sc.gamma,
        )
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        return lr

    def _autocast(self):
        """``train.amp``: bf16 autocast on CUDA, and on CPUs (fast where they have AMX/AVX512-BF16)."""
        if self.cfg.train.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    def _new_stats(self, dim: int):
        from ncollapse.methods import nc_frame
        from ncollapse.metrics import NCStats

        kw = {}
        centers, w0 = nc_frame(self.model)
        if centers is not None:
            kw = {"centers": centers.detach().double(), "w0": w0.detach().double()}
        return NCStats(self.num_classes, dim, device=self.device, **kw)

    def train_epoch(self, epoch: int, progress=None) -> tuple[dict[str, Any], Any]:
        """One training epoch; returns the logged scalars and the NC statistics collected in the
        pass (None when they must come from a clean pass)."""
        cfg = self.cfg
        self.model.train()
        self.loss_fn.set_epoch(epoch, cfg.train.epochs)
        self.train_loader.set_epoch(epoch)
        gen = epoch_generator(cfg.train.seed, epoch)
        steps = len(self.train_loader)
        # with mixup the training features are mixtures: the clean pass collects the statistics
        collect = (
            cfg.train.nc_pass == "train"
            and (epoch + 1) % cfg.train.nc_every == 0
            and cfg.train.mixup_alpha <= 0
        )
        stats = None
        tot_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        tot_correct = torch.zeros((), dtype=torch.float64, device=self.device)
        tot_n = torch.zeros((), dtype=torch.float64, device=self.device)
        lr = 0.0
        aux_iter = None
        if self.aux_loader is not None:
            self.aux_loader.set_epoch(epoch)
            aux_iter = iter(self.aux_loader)
        # DDP pads an epoch with repeated samples: they train but never enter the statistics
        valid = torch.from_numpy(self.train_loader.plan(epoch)["valid"]).to(self.device)
        bs = self.train_loader.batch_size
        for step, (x, y) in enumerate(self.train_loader):
            lr = self._set_lr(epoch + step / max(steps, 1))
            if cfg.train.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            progress_frac = (epoch + step / max(steps, 1)) / max(cfg.train.epochs, 1)
            aux = next(aux_iter) if aux_iter is not None else None
            with self._autocast():
                so = self.method.step(
                    self.forward,
                    self.loss_fn,
                    x,
                    y,
                    aux,
                    progress_frac,
                    mixup_alpha=cfg.train.mixup_alpha,
                    generator=gen,
                )
            loss, out, y, y_b, lam = so.loss, so.output, so.y, so.y_b, float(so.lam)
            mixed = y_b is not None
            if not torch.isfinite(loss.detach()):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch} step {step}; "
                    f"{checkpoint_status(self.run_dir)}; lower the "
                    f"learning rate (optim.lr={cfg.optim.lr:g} now) or enable warm-up "
                    f"(sched.warmup_epochs=5)"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                m = valid[step * bs : step * bs + y.shape[0]]
                if not bool(m.all()):
                    out, y, y_b, loss = valid_rows(so, m, self.loss_fn)
                n = y.shape[0]
                tot_loss += loss.detach().double() * n
                tot_n += n
                pred = out.logits.argmax(1)
                if mixed:  # mixup accuracy: lam * acc(y_a) + (1 - lam) * acc(y_b)
                    tot_correct += (
                        lam * (pred == y).sum() + (1 - lam) * (pred == y_b).sum()
                    ).double()
                else:
                    tot_correct += (pred == y).sum().double()
                if collect:
                    emb = out.embedding.detach()
                    if stats is None:
                        stats = self._new_stats(emb.shape[1])
                    stats.update(emb.float(), y)
            if progress is not None:
                progress.update(1)
        agg = torch.stack([tot_loss, tot_correct, tot_n])
        all_reduce_sum(agg, self.dist)
        res = {
            "train_loss": (agg[0] / agg[2]).item(),
            "train_acc": (agg[1] / agg[2]).item(),
            "lr": lr,
        }
        return res, stats

    @torch.no_grad()
    def _feature_pass(self) -> Any:
        self.model.eval()
        stats = None
        for x, y in self.nc_loader:
            out = self.model(x)
            emb = out.embedding
            if stats is None:
                stats = self._new_stats(emb.shape[1])
            stats.update(emb.float(), y)
        return stats

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        from ncollapse.losses import posthoc_logit_adjust

        self.model.eval()
        K = self.num_classes
        conf = torch.zeros(K, K, dtype=torch.float64, device=self.device)
        conf_pa = torch.zeros_like(conf)
        tau = self.cfg.eval.posthoc_tau
        for x, y in self.test_loader:
            with self._autocast():
                logits = self.method.predict_logits(self.model, x).float()
            pred = logits.argmax(1)
            conf.index_put_((y, pred), torch.ones_like(y, dtype=torch.float64), accumulate=True)
            if tau is not None:
                pa = posthoc_logit_adjust(logits, self.counts, tau=tau).argmax(1)
                conf_pa.index_put_(
                    (y, pa), torch.ones_like(y, dtype=torch.float64), accumulate=True
                )
        res = _accuracy_summary(conf.cpu().numpy(), self.groups)
        if tau is not None:
            res["posthoc_acc"] = _accuracy_summary(conf_pa.cpu().numpy(), self.groups)
        return res

    def nc_metrics(self, stats, sharded: bool) -> dict[str, Any]:
        if stats is None:
            return {}
        if sharded and self.dist.enabled:
            stats.all_reduce()
        # uncentred Grams each NC epoch: the deep-net reproductions compare any theory later
        return assembly.nc_measures(stats.snapshot(), self.model.head, self.groups, grams=True)

    def _log(self, rec: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        line = json.dumps(to_jsonable(rec))
        path = self.run_dir / "metrics.jsonl"
        # append by rewriting atomically: the file always holds whole lines
        old = path.read_text() if path.exists() else ""
        atomic_write_text(path, old + line + "\n")
        if self.tb is not None:
            for k, v in _flatten(rec).items():
                if isinstance(v, (int, float)) and math.isfinite(v) and k != "epoch":
                    self.tb.add_scalar(k, v, rec["epoch"])
            self.tb.flush()

    def _write_run_files(self) -> None:
        if not self.dist.is_main:
            return
        if self.start_epoch == 0:
            atomic_write_text(self.run_dir / "config.yaml", dump_config(self.cfg))
            atomic_write_json(self.run_dir / "manifest.json", self.manifest)
            atomic_write_json(self.run_dir / "env.json", env_info(self.device, self.dist))
        else:
            # a resumed run: the record of what was run stays; the resume is logged apart
            rc = self._resume_changes or {"overrides": [], "changes": {}}
            record_resume(
                self.run_dir,
                self.start_epoch,
                rc["overrides"],
                rc["changes"],
                env_info(self.device, self.dist),
            )
            # keep metrics.jsonl in step with the checkpoint's history
            atomic_write_text(
                self.run_dir / "metrics.jsonl",
                "".join(json.dumps(to_jsonable(r)) + "\n" for r in self.history),
            )

    def fit(self, stop_after: int | None = None) -> TrainResult:
        """Train to ``train.epochs``; ``stop_after=e`` stops after ``e`` epochs in total as if the
        process were interrupted there (the schedule still follows ``train.epochs``)."""
        cfg = self.cfg
        if self._lock is not None:
            self._lock.acquire()  # no-op when held; again after an earlier fit() released it
        self._write_run_files()
        if self.dist.is_main and cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.run_dir / "tb"))
            except ImportError:  # pragma: no cover
                self.tb = None
        bar = None
        total_steps = max(cfg.train.epochs - self.start_epoch, 0) * len(self.train_loader)
        if cfg.train.progress and self.dist.is_main and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True, leave=False)
        lines = cfg.train.progress and self.dist.is_main and bar is None  # not a terminal
        epoch = self.start_epoch
        try:
            last = cfg.train.epochs if stop_after is None else min(stop_after, cfg.train.epochs)
            for epoch in range(self.start_epoch, last):
                t0 = time.perf_counter()
                if bar is not None:
                    bar.set_description(f"epoch {epoch + 1}/{cfg.train.epochs}")
                tr, stats = self.train_epoch(epoch, bar)
                t_train = time.perf_counter() - t0
                bad = find_bad_value(self._state(epoch))  # diverged with a finite loss?
                if bad is not None:
                    raise TrainingDiverged(
                        f"training diverged in epoch {epoch}: {bad}; the epoch was not saved; "
                        f"{checkpoint_status(self.run_dir)}; lower the learning rate "
                        f"(optim.lr={cfg.optim.lr:g} now) or enable warm-up (sched.warmup_epochs=5)"
                    )
                rec: dict[str, Any] = {"epoch": epoch, **tr}
                rec.update(self.evaluate())
                if (epoch + 1) % cfg.train.nc_every == 0 or epoch == cfg.train.epochs - 1:
                    sharded = stats is not None
                    if stats is None:
                        stats = self._feature_pass()
                    rec["nc"] = self.nc_metrics(stats, sharded)
                    if self.dist.is_main and rec["nc"]:  # Grams for the report, TensorBoard images
                        from ncollapse.report.views import class_names, record_nc_views

                        names = class_names(self.train_set, self.num_classes)
                        record_nc_views(self.run_dir, self.tb, rec, stats,
                                        self.model.head.classifier_weight(), names,
                                        "train" if sharded else "eval")  # fmt: skip
                rec["time_train_s"] = t_train
                rec["time_epoch_s"] = time.perf_counter() - t0
                self.history.append(to_jsonable(rec))
                if self.dist.is_main:
                    save_checkpoint(self.run_dir / CKPT_NAME, self._state(epoch))
                self._log(rec)
                if lines:
                    print(_epoch_line(rec, cfg.train.epochs), file=sys.stderr, flush=True)
                barrier(self.dist)
            if self.tb is not None and self.history and last == cfg.train.epochs:  # HParams view
                from ncollapse.report.tensorboard import log_hparams

                log_hparams(self.tb, cfg, self.history[-1])
        except RuntimeError as exc:
            lost = explain_failure(exc, self.dist, f"in epoch {epoch}")
            if lost is None:
                raise
            raise lost from exc
        finally:
            if bar is not None:
                bar.close()
            if self.tb is not None:
                self.tb.close()
            if self._lock is not None:
                self._lock.release()
        if self.dist.is_main:
            atomic_write_json(
                self.run_dir / "summary.json",
                TrainResult(self.run_dir, len(self.history), self.history).summary(),
            )
        res = TrainResult(self.run_dir, len(self.history), self.history)
        cleanup(self.dist)
        return res


def _epoch_line(rec: dict[str, Any], epochs: int) -> str:
    """One progress line per epoch when stderr is not a terminal (logs, nohup, CI)."""
    parts = [f"epoch {rec['epoch'] + 1}/{epochs}", f"loss {rec['train_loss']:.4f}"]
    parts.append(f"train_acc {rec['train_acc']:.4f}")
    if rec.get("test_acc") is not None:
        parts.append(f"test_acc {rec['test_acc']:.4f}")
    parts.append(f"{rec.get('time_epoch_s', 0.0):.1f}s")
    return "  ".join(parts)


def _accuracy_summary(conf: np.ndarray, groups: dict[str, np.ndarray]) -> dict[str, Any]:
    per_class_n = conf.sum(1)
    correct = np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(per_class_n > 0, correct / np.maximum(per_class_n, 1), np.nan)
    total = per_class_n.sum()
    out: dict[str, Any] = {
        "test_acc": float(correct.sum() / total) if total else float("nan"),
        "balanced_acc": float(np.nanmean(per_class)),
        "per_class_acc": per_class.tolist(),
        "group_acc": {},
        "group_sizes": {},
    }
    for name, idx in groups.items():
        idx = np.asarray(idx, dtype=int)
        out["group_sizes"][name] = int(idx.size)
        n = per_class_n[idx].sum() if idx.size else 0
        out["group_acc"][name] = float(correct[idx].sum() / n) if n else None
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out


def train_from_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainResult:
    if path is not None:
        from ncollapse.recipes import resolve_recipe

        path = resolve_recipe(path)
    cfg = load_config(path, overrides)
    if cfg.run.name is None and path is not None:
        cfg.run.name = Path(path).stem
    return Trainer(cfg).fit()


def resume_run(run_dir: str | Path, overrides: list[str] | None = None) -> TrainResult:
    return Trainer.resume(run_dir, overrides).fit()
