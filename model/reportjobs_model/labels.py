"""Label keys and values put on ReportJobs, Jobs and worker pods."""

from typing import Final

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
"""Key of the standard managed-by label."""

GATEWAY: Final = "reportjobs-gateway"
"""managed-by value on every ReportJob."""

OPERATOR: Final = "reportjobs-operator"
"""managed-by value on every Job (and its pod template)."""

OBJECT_HASH: Final = "reportjobs.io/object-hash"
"""Key of the label carrying object_hash(objectId) on every ReportJob."""

BUCKET: Final = "reportjobs.io/bucket"
"""Key of the label carrying a ReportJob's shard bucket (shards.bucket_of its name) on the
ReportJob, its Job and its worker pods."""

REPORTJOB: Final = "reportjobs.io/reportjob"
"""Key of the label naming the owning ReportJob on Jobs and worker pods."""

COMPONENT: Final = "app.kubernetes.io/component"
"""Key of the standard component label."""

DEDUP_WINDOWS: Final = "dedup-windows"
"""component value on every window shard (the operator lists them by it)."""
