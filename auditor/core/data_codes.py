"""Rules for helper data files (E103, E301-E303); their findings come from auditor.data.validate."""

from __future__ import annotations

from auditor.core.codes import stage_code

DATA_SYNTAX_ERROR = stage_code(
    "E103",
    "data-syntax-error",
    "error",
    "A TOML or JSON data file does not parse.",
    doc="""
A data file loaded by a policy-extras helper (shaping, queues, sources, listener_domains,
dkim_sign) or by `kumo.toml_load` / `kumo.json_load` is not valid TOML or JSON. KumoMTA reads
these files when the helper's cache is populated, so the error surfaces at run time: the helper
raises, the event that needed the data (for example `get_egress_path_config` or
`get_queue_config`) fails, and messages are deferred until the file is fixed. Files whose name
ends in `.toml` are parsed as TOML, every other name as JSON (comments are allowed in JSON).
Also reported: a UTF-8 byte order mark at the start of a JSON file, duplicate JSON keys (only the
last one is kept), and JSON nested more than 128 levels deep, which KumoMTA's JSON reader refuses.
""",
    bad="""
["gmail.com"]
connection_limit = 10
max_message_rate = "100/s
""",
    good="""
["gmail.com"]
connection_limit = 10
max_message_rate = "100/s"
""",
    fix="Correct the syntax at the reported line and column, then run kumo-audit again.",
    suppressible=False,
)

DATA_UNKNOWN_FIELD = stage_code(
    "E301",
    "data-unknown-field",
    "error",
    "A key in a helper data file that the helper's schema does not allow.",
    doc="""
The policy-extras helpers check their data files against typed records (and KumoMTA's Rust
structs deny unknown fields), so one misspelled or misplaced key makes the helper reject the
whole file when it loads it at run time: no domain, tenant or source in that file gets its
configuration. Typical causes are typos (`max_message_rates`), keys placed in the wrong section
(`routing_domain` under `[tenant.X]`, `algo` under dkim `[base]`) and keys from other products.
The message names the closest valid key. In shaping automation rules, where KumoMTA ignores
unknown keys, the finding says so: the setting silently has no effect.
""",
    bad="""
["gmail.com"]
max_message_rates = "100/s"
""",
    good="""
["gmail.com"]
max_message_rate = "100/s"
""",
    fix="Rename the key to the valid key the message suggests, or move it to the section that accepts it.",
)

DATA_INVALID_VALUE = stage_code(
    "E302",
    "data-invalid-value",
    "error",
    "A value in a helper data file of the wrong type or outside its enum.",
    doc="""
A value that KumoMTA cannot deserialize: a string where a number is expected, an enum value that
does not exist (dkim `policy = "TempFailIfNotInDNS"`, `enable_tls = "Sometimes"`, an unknown
automation action), a malformed duration, rate or CIDR (`192.168.1.1/24` has host bits set), or a
missing required field (an automation rule without `duration`). The helper rejects the whole file
at run time, exactly as for an unknown key. The message says what is expected; it never repeats
the value itself, which may be a secret.
""",
    bad="""
[domain."example.com"]
policy = "TempFailIfNotInDNS"
""",
    good="""
[domain."example.com"]
policy = "Always"
""",
    fix="Use a value of the type or one of the choices the message lists.",
)

DATA_UNQUOTED_DOMAIN = stage_code(
    "E303",
    "data-unquoted-domain",
    "error",
    "A TOML section like [gmail.com] that TOML reads as nested tables instead of one domain.",
    doc="""
In TOML a dot in an unquoted key separates nested tables, so `[gmail.com]` defines a table
`gmail` containing a table `com`, not the domain `gmail.com`. The shaping helper then sees a
domain named `gmail` with an unknown key `com` and fails the load (or, for single-label
names, only warns), and the intended domain gets no configuration. Domain names in section
headers must be quoted.
""",
    bad="""
[gmail.com]
max_message_rate = "100/s"
""",
    good="""
["gmail.com"]
max_message_rate = "100/s"
""",
    fix='Quote the domain in the header: ["gmail.com"], [queue."example.com"], [domain."example.com"].',
)
