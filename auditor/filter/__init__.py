"""Which findings are reported: selection, inline suppressions, waivers, baseline."""
