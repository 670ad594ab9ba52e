"""CanaryRollout's thinking, free of Kubernetes: analysis (metrics to verdict) and progress (steps)."""
