"""Pure statistics: samples or histogram buckets in, drift verdicts out (numpy and scipy only)."""
