"""Helper data files: position-keeping TOML/JSON parsing and schema validation (E103, E301-E303)."""
