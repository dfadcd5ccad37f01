"""Optional adapters to other libraries (each imports its library lazily, on first use).

* :mod:`ncollapse.integrations.torchmetrics`: :class:`NCTorchMetric`, NC statistics as a
  ``torchmetrics.Metric`` (extra ``ncollapse[torchmetrics]``);
* :mod:`ncollapse.integrations.lightning`: :class:`NeuralCollapseCallback`, ``ncollapse.measure``
  every few epochs inside a PyTorch Lightning ``Trainer`` (extra ``ncollapse[lightning]``).
"""

__all__ = ["NCTorchMetric", "NeuralCollapseCallback"]


def __getattr__(name: str):
    if name == "NCTorchMetric":
        from ncollapse.integrations.torchmetrics import NCTorchMetric

        return NCTorchMetric
    if name == "NeuralCollapseCallback":
        from ncollapse.integrations.lightning import NeuralCollapseCallback

        return NeuralCollapseCallback
    raise AttributeError(f"module 'ncollapse.integrations' has no attribute {name!r}")
