"""DriftMonitor's thinking, free of Kubernetes: windows, queries, the verdict, the retraining Job."""
