"""The evaluation gate: a dataset, scorers, the paired comparison with the stable, and the Job."""
