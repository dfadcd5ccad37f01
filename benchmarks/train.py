"""Training-engine benchmarks (issue: training engine §8).

(a) overhead: one epoch of the trainer's full training step (device-resident loader, on-device
    augmentation, loss, optimizer, accuracy and NC-statistics bookkeeping) against pure
    forward + backward + optimizer step on one fixed batch, same model and batch size (ResNet-32,
    32x32x3 synthetic data, CPU). Goal: overhead <= 15 %.
(b) against a reference-style loop: a torch DataLoader with per-sample transforms (random crop with
    padding 4, flip, normalise) and the same model / optimizer, one full epoch. Goal: >= 1.5x.
    Reported twice: with identical numerics (fp32, contiguous), and with the trainer's CPU fast
    path (channels_last + bf16 autocast, train.channels_last / train.amp).
(c) GPU: ResNet-32, 200 epochs on 12,406 CIFAR-shaped images; only when CUDA is present.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ncollapse.config import load_config
from ncollapse.data import ArrayDataset
from ncollapse.train import Trainer

N_IMG = 12406  # CIFAR-10-LT at rho = 100


def _datasets(n: int, seed: int = 0):
    g = np.random.default_rng(seed)
    x = g.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = np.arange(n) % 10
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    tr = ArrayDataset(x, y, 10, "synthetic-cifar", mean=mean, std=std)
    te = ArrayDataset(x[:256], y[:256], 10, "synthetic-cifar", mean=mean, std=std)
    return tr, te


def _trainer(n: int, *extra: str, device: str = "cpu") -> Trainer:
    cfg = load_config(
        None,
        [
            "data.profile=none",
            "data.batch_size=128",
            "data.augment=true",
            "data.flip=true",
            "model.backbone=resnet32",
            "model.head=linear",
            "train.epochs=1",
            "train.progress=false",
            "run.tensorboard=false",
            "run.out_dir=/tmp/ncollapse-bench",
            f"train.device={device}",
            *extra,
        ],
    )
    return Trainer(cfg, datasets=_datasets(n))


def _pure_steps(tr: Trainer, steps: int) -> float:
    """forward + backward + step on one fixed batch, nothing else."""
    x = torch.randn(128, 3, 32, 32, device=tr.device)
    if tr.cfg.train.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.arange(128, device=tr.device) % 10
    model, loss_fn, opt = tr.model, tr.loss_fn, tr.optimizer
    model.train()
    for _ in range(2):  # warm-up
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        with tr._autocast():
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def _trainer_epoch(tr: Trainer) -> float:
    tr.train_epoch(0)  # warm-up epoch (allocations, oneDNN primitives)
    t0 = time.perf_counter()
    tr.train_epoch(1)
    return time.perf_counter() - t0


class _PerSample(torch.utils.data.Dataset):
    """Reference-style dataset: per-sample crop / flip / normalise in Python."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean, std, seed: int = 0):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y).long()
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.g = np.random.default_rng(seed)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = self.x[i].float().div_(255)
        img = torch.nn.functional.pad(img, (4, 4, 4, 4))
        dy, dx = self.g.integers(0, 9, size=2)
        img = img[:, dy : dy + 32, dx : dx + 32]
        if self.g.random() < 0.5:
            img = img.flip(2)
        return (img - self.mean) / self.std, self.y[i]


def _reference_epoch(tr: Trainer, n: int) -> float:
    train, _ = _datasets(n)
    ds = _PerSample(np.asarray(train.images), np.asarray(train.labels), train.mean, train.std)
    dl = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True, num_workers=0)
    model, loss_fn, opt = tr.model, tr.loss_fn, tr.optimizer
    model.train()
    t0 = time.perf_counter()
    for x, y in dl:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _ = loss.item()  # reference loops log every step
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    torch.manual_seed(0)
    n = 1024 if quick else 2048
    steps = n // 128
    rows = []
    # (a) overhead, fp32
    tr = _trainer(n)
    t_full = _trainer_epoch(tr)
    t_pure = _pure_steps(tr, steps)
    overhead = t_full / t_pure - 1
    rows.append(
        {
            "case": f"(a) trainer step vs pure fwd+bwd+step, ResNet-32, {steps} steps of 128",
            "value": round(100 * overhead, 1),
            "unit": "% overhead",
            "goal": "<= 15",
            "ok": overhead <= 0.15,
        }
    )
    # (b) reference loop, identical numerics
    t_ref = _reference_epoch(tr, n)
    rows.append(
        {
            "case": "(b) epoch: reference DataLoader loop / trainer (fp32, same numerics)",
            "value": round(t_ref / t_full, 2),
            "unit": "x faster",
            "goal": ">= 1.5",
            "ok": t_ref / t_full >= 1.5,
        }
    )
    # (b') trainer CPU fast path
    tr_fast = _trainer(n, "train.channels_last=true", "train.amp=true")
    t_fast = _trainer_epoch(tr_fast)
    rows.append(
        {
            "case": "(b) epoch: reference loop (fp32) / trainer (channels_last + bf16 autocast)",
            "value": round(t_ref / t_fast, 2),
            "unit": "x faster",
            "goal": ">= 1.5",
            "ok": t_ref / t_fast >= 1.5,
        }
    )
    extra = {
        "seconds": {
            "trainer_epoch_fp32": t_full,
            "pure_steps_fp32": t_pure,
            "reference_epoch_fp32": t_ref,
            "trainer_epoch_fast": t_fast,
        },
        "images": n,
    }
    # (c) GPU
    if torch.cuda.is_available():
        trg = _trainer(
            N_IMG,
            "train.epochs=200",
            "train.amp=true",
            "train.channels_last=true",
            "train.nc_every=10",
            device="cuda",
        )
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        trg.fit()
        torch.cuda.synchronize()
        t_gpu = time.perf_counter() - t0
        rows.append(
            {
                "case": f"(c) GPU: ResNet-32, 200 epochs, {N_IMG} images ({torch.cuda.get_device_name()})",
                "value": round(t_gpu, 1),
                "unit": "s",
                "goal": "<= 60 (H100)",
                "ok": t_gpu <= 60,
            }
        )
    else:
        rows.append(
            {
                "case": "(c) GPU: ResNet-32, 200 epochs, 12,406 images",
                "value": "skipped",
                "unit": "",
                "goal": "<= 60 s on an H100",
                "ok": None,
            }
        )
    return {"name": "train", "rows": rows, **extra}


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _common import print_rows, save

    r = run(quick="--quick" in sys.argv)
    save(r)
    print_rows(r)
