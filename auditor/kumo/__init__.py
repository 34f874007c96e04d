"""KumoMTA knowledge: the Lua API table and helpers to read it."""
