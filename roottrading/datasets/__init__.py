"""Small real market data shipped with the package, plus a seeded synthetic market.

Why: the offline demo, the fake exchange and the tests need candles without network access or the
shared data folder. Everything bundled comes from Apache-2.0 sources (see ATTRIBUTION.md).
"""

from roottrading.datasets.bundled import DatasetInfo, available, dataset_info, load_candles
from roottrading.datasets.demo import demo_candles
from roottrading.datasets.synthetic import synthetic_candles

__all__ = ["DatasetInfo", "available", "dataset_info", "demo_candles", "load_candles", "synthetic_candles"]
