"""Coordinates of the ReportJob custom resource."""

from typing import Final

GROUP: Final = "reportjobs.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ReportJob"
PLURAL: Final = "reportjobs"
SINGULAR: Final = "reportjob"
