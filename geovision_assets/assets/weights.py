"""ported_weights: torchvision / timm weights mapped onto our architectures, once per port."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset
from dagster_aws.s3 import S3Resource

from geovision.models.port import PORT_VERSION
from geovision_assets import metadata as md
from geovision_assets.partitions import port_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=port_partitions, code_version=PORT_VERSION, group_name="weights",
       kinds={"pytorch", "safetensors"})
def ported_weights(context: AssetExecutionContext, home: GeovisionHome,
                   s3: S3Resource) -> MaterializeResult:
    """Map the source model's state dict onto ours, load it strictly, check both models give
    the same outputs, and write weights + manifest; an existing verified port is kept.

    The source is the published checkpoint the port names, read from torch.hub's cache
    (`$TORCH_HOME/hub/checkpoints/`) or the Hugging Face hub cache (timm), downloaded there
    when missing; offline, copy the file there first (the error says which file and where).

    With a remote artifact root the published port is fetched first (so one made on another
    machine is kept) and the port is published after it is written."""
    from geovision.models.port import port_folder, port_summary, port_weights

    sync = home.synced(s3)
    folder = port_folder(context.partition_key, home.root())
    sync.fetch(folder)
    spec = port_weights(context.partition_key, home.root())
    return MaterializeResult(
        data_version=DataVersion(spec.sha256),
        metadata={"path": md.path(spec.path), "manifest": md.path(spec.folder),
                  **sync.publish(folder),
                  "summary": MetadataValue.json(port_summary(spec)),
                  **md.provenance(source_version=spec.source_version)},
    )
