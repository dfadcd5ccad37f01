"""torchmetrics adapter and Lightning callback (optional extras; skipped only when absent)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ncollapse.errors import NCollapseError
from ncollapse.metrics import NCStats, compute_all

K, D = 4, 6


def _data(n=(30, 15, 8, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    mu = 3 * torch.randn(K, D, generator=g)
    y = torch.cat([torch.full((c,), k) for k, c in enumerate(n)])
    return mu[y] + 0.5 * torch.randn(len(y), D, generator=g), y


# ---------------------------------------------------------------------------- torchmetrics


def test_torchmetrics_adapter_equals_ncstats():
    pytest.importorskip(
        "torchmetrics", reason="torchmetrics not installed (ncollapse[torchmetrics])"
    )
    from ncollapse.integrations.torchmetrics import NCTorchMetric

    x, y = _data()
    W = torch.randn(K, D)
    z = x @ W.T
    m = NCTorchMetric(K, D, W=W.double().numpy(), logits=True)
    xg = x.clone().requires_grad_(True)  # grad-requiring features, as in a training loop
    for s in range(0, len(y), 7):
        m.update(xg[s : s + 7], y[s : s + 7], (xg[s : s + 7] @ W.T))
    got = m.compute()
    ref = compute_all(NCStats(K).update(x, y, z).snapshot(), W.double().numpy())
    assert got["nc1"]["nc1"] == pytest.approx(ref["nc1"]["nc1"], rel=1e-10)
    assert got["logits"]["accuracy"] == pytest.approx(ref["logits"]["accuracy"])
    assert got["nc3"]["self_duality"] == pytest.approx(ref["nc3"]["self_duality"], rel=1e-10)
    m.reset()
    assert float(m.counts.sum()) == 0
    with pytest.raises(NCollapseError, match="logits=True"):
        m.update(x, y)


def test_torchmetrics_synced_states_merge_exactly():
    """After a DDP sync torchmetrics stacks each worker's state (dist_reduce_fx=None); compute
    merges them with the parallel-axis update. Simulated with two metrics' states stacked."""
    pytest.importorskip(
        "torchmetrics", reason="torchmetrics not installed (ncollapse[torchmetrics])"
    )
    from ncollapse.integrations.torchmetrics import NCTorchMetric

    x, y = _data()
    a, b = NCTorchMetric(K, D), NCTorchMetric(K, D)
    a.update(x[::2], y[::2])
    b.update(x[1::2], y[1::2])
    merged = NCTorchMetric(K, D)
    for name in ("counts", "sums", "scatter", "class_ss"):
        setattr(merged, name, torch.stack([getattr(a, name), getattr(b, name)]))
    merged._update_count = 2  # as after two updates (silences torchmetrics' warning)
    got = merged.compute()
    ref = compute_all(NCStats(K).update(x, y).snapshot())
    assert got["nc1"]["nc1"] == pytest.approx(ref["nc1"]["nc1"], rel=1e-10)
    assert got["nc1"]["tr_within"] == pytest.approx(ref["nc1"]["tr_within"], rel=1e-10)
    # a naive sum of the per-worker scatters would be wrong (each is centred at its own means)
    naive = (a.scatter + b.scatter).trace().item() / len(y)
    assert abs(naive - ref["nc1"]["tr_within"]) > 1e-3


def test_torchmetrics_missing_is_named(monkeypatch):
    import sys

    from ncollapse.integrations._optional import require

    monkeypatch.setitem(sys.modules, "torchmetrics", None)
    with pytest.raises(NCollapseError, match=r"pip install ncollapse\[torchmetrics\]"):
        require("torchmetrics", "torchmetrics", "torchmetrics")


# ---------------------------------------------------------------------------- Lightning


def _pl():
    try:
        import lightning.pytorch as pl

        return pl
    except ImportError:
        return pytest.importorskip(
            "pytorch_lightning", reason="PyTorch Lightning not installed (ncollapse[lightning])"
        )


def test_lightning_callback_logs_nc(tmp_path):
    pl = _pl()
    from torch.utils.data import DataLoader, TensorDataset

    from ncollapse.integrations.lightning import NeuralCollapseCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(D, 16), nn.ReLU())
            self.fc = nn.Linear(16, K)

        def forward(self, x):
            return self.fc(self.body(x))

        def training_step(self, batch, _i):
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = _data()
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    clean = DataLoader(TensorDataset(x, y), batch_size=64)
    cb = NeuralCollapseCallback(clean, test=clean, every_n_epochs=2)
    module = Module()
    trainer = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
        default_root_dir=tmp_path,
    )
    trainer.fit(module, train)
    assert [e for e, _ in cb.results] == [1, 3]
    last = cb.results[-1][1]
    assert last.layer == "fc"
    assert "nc/train/nc1" in trainer.callback_metrics
    assert float(trainer.callback_metrics["nc/train/nc1"]) == pytest.approx(
        last.train["nc1"]["nc1"], rel=1e-5
    )
    assert "nc/test/nc4" in trainer.callback_metrics
    # the measurement equals one made after training on the same model
    import ncollapse

    again = ncollapse.measure(module, clean, progress=False, verbose=False)
    assert again.train["nc1"]["nc1"] == pytest.approx(last.train["nc1"]["nc1"], rel=1e-10)
    assert module.training  # flags restored
    with pytest.raises(NCollapseError, match="every_n_epochs"):
        NeuralCollapseCallback(every_n_epochs=0)
