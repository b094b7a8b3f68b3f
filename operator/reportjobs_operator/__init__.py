"""kopf operator: ReportJob -> batch Job -> status."""
