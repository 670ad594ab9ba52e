"""Model registries: turn a registry URI into a version and the storage location of its weights."""
