"""``NeuralCollapseCallback``: :func:`ncollapse.measure` inside a PyTorch Lightning ``Trainer``.

Every ``every_n_epochs`` training epochs (at ``on_train_epoch_end``) the callback measures the
LightningModule on ``dataloader`` (default: the trainer's training dataloader -- pass an
unaugmented, unshuffled one for clean statistics) and, with ``test=``, on held-out data against the
training class means; it logs :meth:`MeasureResult.scalars` under ``prefix`` (``nc/train/nc1``,
``nc/test/nc4``, ...) and keeps every result in ``callback.results`` (``(epoch, MeasureResult)``).

Works with ``lightning`` (``lightning.pytorch``) or ``pytorch_lightning``, whichever is installed
(``lightning`` first). Install with ``pip install ncollapse[lightning]``.
"""

from __future__ import annotations

import importlib

from ncollapse.errors import NCollapseError

__all__ = ["NeuralCollapseCallback"]


def _lightning():
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise NCollapseError(
        "PyTorch Lightning is not installed; install it with `pip install ncollapse[lightning]` "
        "(or `pip install lightning`)"
    )


_pl = _lightning()


class NeuralCollapseCallback(_pl.Callback):
    """Measure NC during training; ``**measure_kwargs`` go to :func:`ncollapse.measure`
    (``layer=``, ``features=``, ``counts=``, ``minority=``, ...)."""

    def __init__(
        self,
        dataloader=None,
        *,
        test=None,
        every_n_epochs: int = 1,
        prefix: str = "nc/",
        log: bool = True,
        **measure_kwargs,
    ):
        super().__init__()
        if (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or every_n_epochs < 1
        ):
            raise NCollapseError(f"every_n_epochs={every_n_epochs!r} must be a positive integer")
        self.dataloader, self.test = dataloader, test
        self.every_n_epochs, self.prefix, self.log = every_n_epochs, prefix, log
        measure_kwargs.setdefault("progress", False)
        measure_kwargs.setdefault("verbose", False)
        self.measure_kwargs = measure_kwargs
        self.results: list = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        from ncollapse.measuring import measure

        epoch = int(trainer.current_epoch)
        if (epoch + 1) % self.every_n_epochs:
            return
        data = self.dataloader if self.dataloader is not None else trainer.train_dataloader
        if data is None:
            raise NCollapseError(
                "NeuralCollapseCallback has no data: pass NeuralCollapseCallback(dataloader=...)"
            )
        res = measure(pl_module, data, test=self.test, **self.measure_kwargs)
        self.results.append((epoch, res))
        if self.log:
            pl_module.log_dict(
                {f"{self.prefix}{k}": v for k, v in res.scalars().items()},
                on_step=False,
                on_epoch=True,
            )
