"""Datasets, splits, statistics and shards."""

from geovision.data.registry import UnknownDatasetError, get_dataset, list_datasets

__all__ = ["UnknownDatasetError", "get_dataset", "list_datasets"]
