"""E1xx: the policy cannot be loaded. The loading stage (auditor.kumo.loader) produces them; their
metadata is in auditor.core.load_codes."""

from auditor.core import load_codes
from auditor.rules.registry import register_all

register_all(load_codes)
