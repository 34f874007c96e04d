"""E103, E3xx: data files. The data stage (auditor.data.validate) produces them; their metadata is in
auditor.core.data_codes."""

from auditor.core import data_codes
from auditor.rules.registry import register_all

register_all(data_codes)
