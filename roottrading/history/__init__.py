"""Historical candles: download from Binance REST, import Binance's monthly kline CSV files, to the store
and/or Parquet. `roottrading download-data` is `roottrading.history.cli.main`."""

from roottrading.history.download import DownloadResult, download, import_monthly_csv, read_parquet, write_parquet
from roottrading.history.timeparse import parse_time

__all__ = ["DownloadResult", "download", "import_monthly_csv", "parse_time", "read_parquet", "write_parquet"]
