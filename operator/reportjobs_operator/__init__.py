"""The operator: ReportJob -> batch Job -> status, reconciled from a watch-fed index."""
