"""Datasets written as shards (HDF5, MosaicML streaming) and read back as the same tuples."""

from geovision.data.shards.common import ShardWriteResult

__all__ = ["ShardWriteResult"]
