"""The kumo-audit configuration: its types, and loading it from an audited snapshot."""
