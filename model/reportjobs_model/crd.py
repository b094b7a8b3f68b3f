"""Coordinates of the ReportJob custom resource."""

from typing import Final

GROUP: Final = "reportjobs.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ReportJob"
PLURAL: Final = "reportjobs"
SINGULAR: Final = "reportjob"

FINALIZER: Final = f"{GROUP}/claim"
"""Held by every ReportJob while its claim may still be in its window shard: a deleted ReportJob
stays (Terminating, its work stopped) until the operator's sweep has removed its claim, so no
one can create it again from the claim (a create of its name meets the object that is still
there). docs/design.md, "Deleting a job"."""
