"""Shared, pure vocabulary of reportjobs: CRD coordinates, labels, names, windows, phases."""
