"""Measure neural collapse of a trained network in one call (also exposed as ``ncollapse.measure``).

>>> import ncollapse
>>> result = ncollapse.measure(model, train_loader, test=test_loader)  # doctest: +SKIP
>>> print(result)  # doctest: +SKIP

Modules: :mod:`~ncollapse.measuring.locate` (where the features are), :mod:`.batches` (what data
is accepted), :mod:`.core` (the passes), :mod:`.result` (theory, verdicts, table, plots),
:mod:`.runs` (a finished ncollapse run: model, data, features, accuracy). See docs/measure.md.
"""

from ncollapse.measuring.core import HeldOut, measure
from ncollapse.measuring.locate import FeatureSource, locate_features
from ncollapse.measuring.result import MeasureResult

__all__ = ["FeatureSource", "HeldOut", "MeasureResult", "locate_features", "measure"]
