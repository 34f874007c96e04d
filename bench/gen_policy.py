"""Generate a synthetic but realistic KumoMTA policy repository of a given size.

The layout mirrors `/opt/kumomta/etc`: `policy/init.lua`, modules under `policy/gen/` (required as
`gen.<name>`) and the five policy-extras data files under `policy/`. Output is deterministic for a
given seed and size, every Lua file compiles under Lua 5.4, and the data files are consistent with
each other (pools name defined sources, tenants name defined pools, ...), so a correct auditor
reports nothing beyond what the shapes themselves imply.

    python bench/gen_policy.py OUT_DIR --lines 2000 [--seed 7]
    python bench/gen_policy.py OUT_DIR --preset typical|2k|20k
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

PRESETS = {"typical": 300, "2k": 2_000, "20k": 20_000}
INIT_TARGET = 300  # lines in init.lua; modules make up the rest
MODULE_TARGET = 480  # approximate lines per generated module
LOCAL_MODULES = 150  # modules bound to locals of init.lua (Lua's limit is 200 locals)

DEST_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "outlook.com", "hotmail.com", "live.com",
    "aol.com", "icloud.com", "me.com", "comcast.net", "verizon.net", "att.net", "t-online.de", "web.de",
    "gmx.net", "gmx.de", "freenet.de", "orange.fr", "laposte.net", "free.fr", "libero.it", "virgilio.it",
    "seznam.cz", "wp.pl", "o2.pl", "onet.pl", "mail.ru", "yandex.ru", "qq.com", "163.com", "naver.com",
)  # fmt: skip
WORDS = (
    "alpha", "bravo", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "indigo", "juniper",
    "kestrel", "lumen", "meridian", "nimbus", "onyx", "pioneer", "quartz", "raven", "summit", "tundra",
    "umber", "vector", "willow", "xenon", "yonder", "zephyr",
)  # fmt: skip
HEADERS = (
    "Subject",
    "X-Campaign",
    "X-Tenant",
    "List-Unsubscribe",
    "X-Mailer",
    "Precedence",
    "X-Priority",
)
POLICY_ETC = "/opt/kumomta/etc/policy"


@dataclass
class Repo:
    """What the data files define; the Lua code refers only to these names."""

    sources: list[str] = field(default_factory=list)
    pools: dict[str, list[str]] = field(default_factory=dict)
    tenants: dict[str, str] = field(default_factory=dict)  # tenant -> pool
    sending_domains: list[str] = field(default_factory=list)


class Writer:
    """Accumulates Lua source with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        self.lines.append(("  " * self.depth + text) if text else "")

    def block(self, opener: str, body, closer: str = "end") -> None:
        self.line(opener)
        self.depth += 1
        body()
        self.depth -= 1
        self.line(closer)

    def __len__(self) -> int:
        return len(self.lines)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def lua_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------------------------


def build_repo(rng: random.Random, scale: int) -> Repo:
    repo = Repo()
    n_sources = 4 + 2 * scale
    for i in range(n_sources):
        repo.sources.append(f"ip-{i + 1:03d}")
    pool_names = ["transactional", "marketing", "warmup"] + [
        f"dedicated-{w}" for w in WORDS[:scale]
    ]
    for idx, pool in enumerate(pool_names):
        members = rng.sample(repo.sources, k=min(len(repo.sources), 2 + (idx % 3)))
        repo.pools[pool] = sorted(members)
    for i in range(3 + 2 * scale):
        tenant = f"{WORDS[i % len(WORDS)]}-{i // len(WORDS) + 1}"
        repo.tenants[tenant] = pool_names[i % len(pool_names)]
    repo.sending_domains = [f"mail.{w}.example" for w in WORDS[: 4 + scale]]
    return repo


def sources_toml(rng: random.Random, repo: Repo) -> str:
    out = ["# Sending IPs and pools (policy-extras.sources).", ""]
    for i, name in enumerate(repo.sources):
        octet = 10 + i
        net = ("192.0.2", "198.51.100", "203.0.113")[i % 3]
        out += [f'[source."{name}"]', f'source_address = "{net}.{octet % 250 + 1}"']
        out.append(f'ehlo_domain = "{name}.mta.example.net"')
        if rng.random() < 0.2:
            out.append('ttl = "5 minutes"')
        out.append("")
    for pool, members in repo.pools.items():
        out.append(f'[pool."{pool}"]')
        for member in members:
            out += [f'[pool."{pool}"."{member}"]', f"weight = {rng.choice((1, 2, 5, 10))}"]
        out.append("")
    return "\n".join(out)


def queues_toml(rng: random.Random, repo: Repo) -> str:
    first = next(iter(repo.tenants))
    out = [
        "# Queue management (policy-extras.queue).",
        'scheduling_header = "X-Schedule"',
        'tenant_header = "X-Tenant"',
        "remove_tenant_header = true",
        'campaign_header = "X-Campaign"',
        "remove_campaign_header = true",
        f'default_tenant = "{first}"',
        "",
    ]
    for tenant, pool in repo.tenants.items():
        out += [f"[tenant.'{tenant}']", f'egress_pool = "{pool}"']
        out.append(f'max_age = "{rng.choice(("1 day", "2 days", "3 days"))}"')
        if rng.random() < 0.4:
            out.append(f'max_message_rate = "{rng.choice((50, 100, 250))}/s"')
        if rng.random() < 0.3:
            out.append(f'require_authz = ["{tenant}-relay"]')
        out.append("")
    out += ["[queue.default]", 'max_age = "3 days"', 'retry_interval = "10 minutes"']
    out += ['max_retry_interval = "4 hours"', ""]
    for domain in rng.sample(DEST_DOMAINS, k=8):
        minutes = rng.choice((5, 10, 15, 20))
        out += [f"[queue.'{domain}']", f'retry_interval = "{minutes} minutes"']
        out += [f'max_retry_interval = "{rng.choice((2, 4, 6))} hours"', ""]
    return "\n".join(out)


def shaping_toml(rng: random.Random, repo: Repo) -> str:
    out = [
        "# Traffic shaping on top of the bundled defaults.",
        '["default"]',
        "connection_limit = 10",
        "max_deliveries_per_connection = 100",
        'max_message_rate = "100/s"',
        'enable_tls = "Opportunistic"',
        "",
        '[["default".automation]]',
        "regex = 'blocked using Spamhaus'",
        'action = "Suspend"',
        'trigger = { Threshold = "3/hr" }',
        'duration = "1 hour"',
        "",
        '[provider."proofpoint"]',
        'match = [{ MXSuffix = ".pphosted.com" }]',
        "provider_connection_limit = 20",
        "connection_limit = 4",
        "",
        '[[provider."proofpoint".automation]]',
        "regex = '4\\.7\\.1 .*rate limited'",
        'action = { SetConfig = { name = "max_message_rate", value = "10/minute" } }',
        'trigger = { Threshold = "10/hr" }',
        'duration = "2 hours"',
        "",
    ]
    for domain in rng.sample(DEST_DOMAINS, k=10):
        out += [f'["{domain}"]', f"connection_limit = {rng.choice((2, 3, 5, 8, 20))}"]
        out.append(f'max_message_rate = "{rng.choice((10, 20, 50, 200))}/s"')
        out.append(f"max_deliveries_per_connection = {rng.choice((20, 50, 100))}")
        if rng.random() < 0.3:
            source = rng.choice(repo.sources)
            out += ["", f'["{domain}".sources."{source}"]', 'max_message_rate = "500/h"']
        out.append("")
    return "\n".join(out)


def shaping_json(rng: random.Random, repo: Repo) -> str:
    data: dict[str, dict] = {}
    for domain in rng.sample(DEST_DOMAINS, k=4):
        data[domain] = {"connection_limit": rng.choice((2, 3)), "max_message_rate": "20/s"}
    return json.dumps(data, indent=2) + "\n"


def listener_domains_toml(rng: random.Random, repo: Repo) -> str:
    out = [
        "# Listener domains (policy-extras.listener_domains).",
        '["bounce.mta.example.net"]',
        "log_oob = true",
        "",
        '["fbl.mta.example.net"]',
        "log_arf = true",
        "",
    ]
    for i, domain in enumerate(repo.sending_domains):
        out.append(f'["{domain}"]')
        if i % 2:
            out.append(f'relay_from = ["10.{i}.0.0/24"]')
        else:
            out.append(f'relay_from_authz = ["{domain.split(".")[1]}-relay"]')
        out.append("")
    return "\n".join(out)


def dkim_toml(rng: random.Random, repo: Repo) -> str:
    out = [
        "# DKIM signing (policy-extras.dkim_sign).",
        "[base]",
        'selector = "s2024"',
        'headers = ["From", "To", "Subject", "Date", "Message-ID"]',
        'header_canonicalization = "relaxed"',
        'body_canonicalization = "relaxed"',
        "",
    ]
    for domain in repo.sending_domains:
        out.append(f'[domain."{domain}"]')
        if rng.random() < 0.5:
            out.append(f'selector = "{domain.split(".")[1][:4]}1"')
        if rng.random() < 0.3:
            out.append('algo = "sha256"')
        out.append("")
    return "\n".join(out)


DATA_FILES = {
    "sources.toml": sources_toml,
    "queues.toml": queues_toml,
    "shaping.toml": shaping_toml,
    "shaping-extra.json": shaping_json,
    "listener_domains.toml": listener_domains_toml,
    "dkim_data.toml": dkim_toml,
}


# ---------------------------------------------------------------------------------------------
# Lua: modules
# ---------------------------------------------------------------------------------------------


class ModuleGen:
    """Emits one module of helper functions, lookup tables and multi-handler registrations."""

    def __init__(self, rng: random.Random, repo: Repo, name: str, index: int) -> None:
        self.rng, self.repo, self.name, self.index = rng, repo, name, index
        self.w = Writer()
        self.counter = 0
        self.exports: list[str] = []

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def generate(self, target: int) -> tuple[str, list[str]]:
        w = self.w
        w.line(f"-- {self.name}: generated policy module {self.index}.")
        w.line("local kumo = require 'kumo'")
        w.line()
        w.line("local M = {}")
        w.line()
        makers = (
            self.lookup_table,
            self.classifier,
            self.header_scan,
            self.rate_calc,
            self.memoized_lookup,
            self.domain_router,
            self.retry_policy,
        )
        while len(w) < target - 12:
            self.rng.choice(makers)()
            w.line()
        self.apply_function()
        if self.index % 3 == 0:
            self.multi_handler()
        w.line("return M")
        return w.text(), self.exports

    def export(self, fn: str) -> str:
        self.exports.append(fn)
        return f"function M.{fn}"

    def lookup_table(self) -> None:
        name = self.fresh("TABLE").upper()
        domains = self.rng.sample(DEST_DOMAINS, k=self.rng.randint(6, 14))

        def body() -> None:
            for d in domains:
                limit = self.rng.choice((2, 5, 10, 20, 50))
                rate = self.rng.choice(("10/s", "50/s", "100/s", "500/min"))
                self.w.line(
                    f"[{lua_str(d)}] = {{ limit = {limit}, rate = {lua_str(rate)}, weight = {self.rng.randint(1, 9)} }},"
                )

        self.w.block(f"local {name} <const> = {{", body, "}")
        fn = self.fresh("limits_for")

        def getter() -> None:
            self.w.line(f"local entry = {name}[string.lower(domain)]")
            self.w.block("if entry == nil then", lambda: self.w.line("return nil"))
            self.w.line("return entry.limit, entry.rate")

        self.w.block(f"{self.export(fn)}(domain)", getter)

    def classifier(self) -> None:
        fn = self.fresh("classify")
        branches = self.rng.sample(WORDS, k=self.rng.randint(4, 9))

        def body() -> None:
            self.w.line(
                f"local value = msg:get_first_named_header_value({lua_str(self.rng.choice(HEADERS))})"
            )
            self.w.block("if value == nil then", lambda: self.w.line("return 'default'"))
            self.w.line("value = string.lower(value)")
            for i, word in enumerate(branches):
                kw = "if" if i == 0 else "elseif"
                self.w.line(f"{kw} string.find(value, {lua_str(word)}, 1, true) then")
                self.w.depth += 1
                self.w.line(f"msg:set_meta('classification', {lua_str(word)})")
                self.w.line(f"return {lua_str(word + '-' + str(i))}")
                self.w.depth -= 1
            self.w.line("end")
            self.w.line("return 'other'")

        self.w.block(f"{self.export(fn)}(msg)", body)

    def header_scan(self) -> None:
        fn = self.fresh("scan_headers")
        wanted = self.rng.sample(HEADERS, k=3)

        def body() -> None:
            self.w.line("local found = {}")
            self.w.line(f"local wanted = {{ {', '.join(lua_str(h) for h in wanted)} }}")

            def loop() -> None:
                self.w.line("local value = msg:get_first_named_header_value(name)")
                self.w.block(
                    "if value == nil or #value == 0 then", lambda: self.w.line("goto continue")
                )
                self.w.line("found[#found + 1] = string.format('%s=%s', name, value)")
                self.w.line("::continue::")

            self.w.block("for _, name in ipairs(wanted) do", loop)
            self.w.line("return table.concat(found, ';')")

        self.w.block(f"{self.export(fn)}(msg)", body)

    def rate_calc(self) -> None:
        fn = self.fresh("scaled_rate")
        base = self.rng.choice((100, 250, 1000, 5000))

        def body() -> None:
            self.w.line(f"local base = {base}")
            self.w.line("local per_source = base // math.max(1, sources)")
            self.w.block(
                "if reputation < 0.5 then", lambda: self.w.line("per_source = per_source // 4")
            )
            self.w.line("local bucket = (per_source >> 2) << 2")
            self.w.line("return string.format('%d/s', math.max(1, bucket))")

        self.w.block(f"{self.export(fn)}(sources, reputation)", body)

    def memoized_lookup(self) -> None:
        raw = self.fresh("fetch_suppression")
        cached = self.fresh("cached_suppression")
        cache_name = f"user.{self.name}.{raw}"

        def body() -> None:
            self.w.line("local sqlite = require 'sqlite'")
            self.w.line(f"local db = sqlite.open('/var/lib/kumomta/{self.name}.db', 1000)")
            self.w.line(
                "local rows = db:execute('SELECT reason FROM suppression WHERE address = ?', address)"
            )
            self.w.line("db:close()")
            self.w.block(
                "if type(rows) ~= 'table' or #rows == 0 then", lambda: self.w.line("return ''")
            )
            self.w.line("return rows[1]")

        self.w.block(f"local function {raw}(address)", body)
        self.w.line()
        self.w.line(f"local {cached} = kumo.memoize({raw}, {{")
        self.w.depth += 1
        self.w.line(f"name = {lua_str(cache_name)},")
        self.w.line(f"ttl = {lua_str(self.rng.choice(('1 minute', '5 minutes', '1 hour')))},")
        self.w.line(f"capacity = {self.rng.choice((1000, 10000, 50000))},")
        self.w.depth -= 1
        self.w.line("})")
        self.w.line()
        fn = self.fresh("is_suppressed")
        self.w.block(
            f"{self.export(fn)}(recipient)",
            lambda: self.w.line(f"return {cached}(tostring(recipient)) ~= ''"),
        )

    def domain_router(self) -> None:
        fn = self.fresh("route")
        pools = list(self.repo.pools)

        def body() -> None:
            self.w.line("local tenant = msg:get_meta('tenant') or 'default'")
            self.w.line("local domain = msg:recipient().domain")
            for i, d in enumerate(self.rng.sample(DEST_DOMAINS, k=self.rng.randint(3, 7))):
                kw = "if" if i == 0 else "elseif"
                self.w.line(f"{kw} domain == {lua_str(d)} then")
                self.w.depth += 1
                self.w.line(f"return {lua_str(self.rng.choice(pools))}, tenant")
                self.w.depth -= 1
            self.w.line("end")
            self.w.line(f"return {lua_str(pools[0])}, tenant")

        self.w.block(f"{self.export(fn)}(msg)", body)

    def retry_policy(self) -> None:
        fn = self.fresh("retry_after")

        def body() -> None:
            self.w.line("local delay = 60")
            self.w.block(
                "for _ = 1, math.min(attempts, 8) do",
                lambda: self.w.line("delay = delay * 2"),
            )
            self.w.block(
                "if string.match(response, '^4%.7%.%d') then",
                lambda: self.w.line("delay = delay + 900"),
            )
            self.w.line(f"return math.min(delay, {self.rng.choice((3600, 7200, 14400))})")

        self.w.block(f"{self.export(fn)}(attempts, response)", body)

    def apply_function(self) -> None:
        """`M.apply(msg)`: the module's entry point, called from the reception handlers."""
        calls = [c for c in self.exports if not c.startswith(("scaled_rate", "retry_after"))]

        def body() -> None:
            for fn in calls[:8]:
                self.w.line(module_call("M", fn))

        self.w.block(f"{self.export('apply')}(msg)", body)
        self.w.line()

    def multi_handler(self) -> None:
        def body() -> None:
            self.w.line("local tenant = msg:get_meta('tenant')")
            self.w.block(
                f"if tenant == {lua_str(next(iter(self.repo.tenants)))} and hook_name == 'events' then",
                lambda: self.w.line("return true"),
            )

        self.w.block("kumo.on('should_enqueue_log_record', function(msg, hook_name)", body, "end)")
        self.w.line()


# ---------------------------------------------------------------------------------------------
# Lua: init.lua
# ---------------------------------------------------------------------------------------------


def init_lua(rng: random.Random, repo: Repo, modules: dict[str, list[str]], target: int) -> str:
    w = Writer()
    w.line("-- Generated KumoMTA policy entry point.")
    w.line("local kumo = require 'kumo'")
    for helper in ("shaping", "queue", "listener_domains", "sources", "dkim_sign", "log_hooks"):
        alias = "queue_module" if helper == "queue" else helper
        w.line(f"local {alias} = require 'policy-extras.{helper}'")
    # Lua allows 200 locals per function: past LOCAL_MODULES, modules are fields of one table.
    for mod in list(modules)[:LOCAL_MODULES]:
        w.line(f"local {mod} = require 'gen.{mod}'")
    if len(modules) > LOCAL_MODULES:
        w.line("local more = {}")
        for mod in list(modules)[LOCAL_MODULES:]:
            w.line(f"more.{mod} = require 'gen.{mod}'")
    w.line()
    w.line(f"sources:setup {{ '{POLICY_ETC}/sources.toml' }}")
    w.line(f"local dkim_signer = dkim_sign:setup {{ '{POLICY_ETC}/dkim_data.toml' }}")
    w.line("local shaper = shaping:setup_with_automation {")
    w.line("  publish = { 'http://127.0.0.1:8008' },")
    w.line("  subscribe = { 'http://127.0.0.1:8008' },")
    w.line(f"  extra_files = {{ '{POLICY_ETC}/shaping.toml', '{POLICY_ETC}/shaping-extra.json' }},")
    w.line("}")
    w.line("log_hooks:new_json {")
    w.line("  name = 'events',")
    w.line("  url = 'http://10.0.0.40:8090/events',")
    w.line("  log_parameters = { headers = { 'Subject', 'X-Campaign' } },")
    w.line("}")
    w.line("local queue_helper = queue_module:setup_with_options {")
    w.line(f"  file_names = {{ '{POLICY_ETC}/queues.toml' }},")
    w.line("  invalidate_with_epoch = true,")
    w.line("}")
    w.line()

    # Local tables and helpers: the bulk of a hand-written init.lua.
    blocked = rng.sample(WORDS, k=8)
    w.block(
        "local BLOCKED_EHLO <const> = {",
        lambda: [w.line(f"[{lua_str(b + '.invalid')}] = true,") for b in blocked],
        "}",
    )
    w.line()
    w.block(
        "local TENANT_POOLS <const> = {",
        lambda: [w.line(f"[{lua_str(t)}] = {lua_str(p)},") for t, p in repo.tenants.items()],
        "}",
    )
    w.line()
    w.block(
        "local function tenant_pool(tenant)",
        lambda: w.line("return TENANT_POOLS[tenant] or 'transactional'"),
    )
    w.line()

    def pre_init() -> None:
        w.line(f"kumo.set_spoolin_threads({rng.choice((4, 8, 12))})")
        w.line(f"kumo.set_httpinject_threads({rng.choice((2, 4))})")
        w.line(f"kumo.set_readyq_threads({rng.choice((2, 4))})")

    w.block("kumo.on('pre_init', function()", pre_init, "end)")
    w.line()

    def init() -> None:
        for spool in ("data", "meta"):
            w.line("kumo.define_spool {")
            w.line(f"  name = '{spool}',")
            w.line(f"  path = '/var/spool/kumomta/{spool}',")
            w.line("  kind = 'RocksDB',")
            w.line("}")
        w.line("shaper.setup_publish()")
        w.line("kumo.configure_local_logs {")
        w.line("  log_dir = '/var/log/kumomta',")
        w.line("  max_segment_duration = '1 minute',")
        w.line("}")
        w.line("kumo.configure_bounce_classifier {")
        w.line("  files = { '/opt/kumomta/share/bounce_classifier/iana.toml' },")
        w.line("}")
        w.line("kumo.start_http_listener {")
        w.line("  listen = '127.0.0.1:8000',")
        w.line("  trusted_hosts = { '127.0.0.1', '::1' },")
        w.line("}")
        w.line("kumo.start_esmtp_listener {")
        w.line("  listen = '0.0.0.0:25',")
        w.line("  hostname = 'mta.example.net',")
        w.line("  relay_hosts = { '127.0.0.1', '::1', '10.0.0.0/24' },")
        w.line("  max_messages_per_connection = 1000,")
        w.line("}")

    w.block("kumo.on('init', function()", init, "end)")
    w.line()
    w.line(
        f"kumo.on('get_listener_domain', listener_domains:setup {{ '{POLICY_ETC}/listener_domains.toml' }})"
    )
    w.line("kumo.on('get_egress_path_config', shaper.get_egress_path_config)")
    w.line()

    w.block(
        "kumo.on('smtp_server_ehlo', function(domain, conn_meta, extensions)",
        lambda: w.block(
            "if BLOCKED_EHLO[string.lower(domain)] then",
            lambda: w.line("kumo.reject(550, '5.7.1 EHLO name not accepted')"),
        ),
        "end)",
    )
    w.line()

    w.block(
        "kumo.on('smtp_server_mail_from', function(sender, conn_meta)",
        lambda: w.block(
            "if sender.domain == 'bounce.mta.example.net' then",
            lambda: w.line("kumo.reject(550, '5.7.1 sender address rejected')"),
        ),
        "end)",
    )
    w.line()
    w.block(
        "kumo.on('smtp_server_rcpt_to', function(recipient, conn_meta)",
        lambda: w.block(
            "if recipient.user == 'postmaster' and recipient.domain == 'mta.example.net' then",
            lambda: w.line("conn_meta:set_meta('postmaster', true)"),
        ),
        "end)",
    )
    w.line()

    def auth_lookup() -> None:
        w.line("local db = sqlite.open('/var/lib/kumomta/relay-users.db', 2000)")
        w.line("local rows = db:execute('SELECT salt, digest FROM users WHERE name = ?', user)")
        w.line("db:close()")
        w.block(
            "if type(rows) ~= 'table' or #rows == 0 then",
            lambda: w.line("return { found = false }"),
        )
        w.line("return { found = true, salt = rows[1].salt, digest = rows[1].digest }")

    w.line("local sqlite = require 'sqlite'")
    w.block("local function lookup_user(user)", auth_lookup)
    w.line("local cached_lookup_user = kumo.memoize(lookup_user, {")
    w.line("  name = 'user.relay_users',")
    w.line("  ttl = '5 minutes',")
    w.line("  capacity = 5000,")
    w.line("})")
    w.line()

    def auth_plain() -> None:
        w.block("if authz ~= authc or password == '' then", lambda: w.line("return false"))
        w.line("local record = cached_lookup_user(authc)")
        w.line(
            "return record.found and kumo.digest.sha256(record.salt, password).hex == record.digest"
        )

    w.block(
        "kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)",
        auth_plain,
        "end)",
    )
    w.line()

    # Each module's entry point is called from one of the reception handlers.
    calls = [(m if i < LOCAL_MODULES else f"more.{m}", "apply") for i, m in enumerate(modules)]

    def received() -> None:
        w.line("local tenant = msg:get_meta('tenant') or 'default'")
        w.line("msg:set_meta('pool_hint', tenant_pool(tenant))")
        for m, fn in calls[: len(calls) // 2]:
            w.line(module_call(m, fn))
        w.line("queue_helper:apply(msg)")
        w.line("dkim_signer(msg)")

    def generated() -> None:
        for m, fn in calls[len(calls) // 2 :]:
            w.line(module_call(m, fn))
        w.line("queue_helper:apply(msg)")
        w.line("dkim_signer(msg)")

    # Pad a stand-alone init.lua to its target with more local helpers before the handlers.
    pad = 0
    while len(w) + 24 + len(calls) < target:
        pad += 1
        name = f"check_{rng.choice(WORDS)}_{pad}"
        header = rng.choice(HEADERS)

        def helper(header: str = header) -> None:
            w.line(f"local value = msg:get_first_named_header_value({lua_str(header)})")
            w.block("if value == nil then", lambda: w.line("return false"))
            w.line(f"return #value > {rng.randint(10, 200)}")

        w.block(f"local function {name}(msg)", helper)
        w.line()
        calls.append(("", name))

    w.block("kumo.on('smtp_server_message_received', function(msg, conn_meta)", received, "end)")
    w.line()
    w.block("kumo.on('http_message_generated', function(msg, auth_info)", generated, "end)")
    return w.text()


def module_call(module: str, fn: str) -> str:
    target = f"{module}.{fn}" if module else fn
    if fn.startswith(("classify", "scan_headers", "route", "check_", "apply")):
        return f"{target}(msg)"
    if fn.startswith("is_suppressed"):
        return f"if {target}(msg:recipient()) then kumo.reject(550, '5.7.1 suppressed') end"
    if fn.startswith("limits_for"):
        return f"{target}(msg:recipient().domain)"
    if fn.startswith("scaled_rate"):
        return f"{target}(4, 0.9)"
    return f"{target}(1, '451 4.7.1 try later')"


# ---------------------------------------------------------------------------------------------


def generate(out_dir: Path, lines: int, seed: int = 7) -> list[Path]:
    """Write a policy of about `lines` Lua lines under `out_dir`; return the Lua files written."""
    rng = random.Random(f"{seed}:{lines}")
    scale = max(1, lines // 2000)
    repo = build_repo(rng, min(scale, len(WORDS)))
    policy = out_dir / "policy"
    (policy / "gen").mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    modules: dict[str, list[str]] = {}
    # Small policies are one init.lua, as most real ones are; larger ones split into modules.
    remaining = 0 if lines <= INIT_TARGET * 3 // 2 else lines - INIT_TARGET // 2
    index = 0
    while remaining > MODULE_TARGET // 4:
        index += 1
        name = f"mod_{index:03d}"
        size = min(MODULE_TARGET, remaining)
        text, exports = ModuleGen(rng, repo, name, index).generate(size)
        path = policy / "gen" / f"{name}.lua"
        path.write_text(text)
        written.append(path)
        modules[name] = exports
        remaining -= text.count("\n")

    init_target = lines if not modules else INIT_TARGET // 2
    init_path = policy / "init.lua"
    init_path.write_text(init_lua(rng, repo, modules, init_target))
    written.insert(0, init_path)

    for filename, builder in DATA_FILES.items():
        (policy / filename).write_text(builder(rng, repo))
    return written


def count_lines(paths: list[Path]) -> int:
    return sum(p.read_text().count("\n") for p in paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--lines", type=int, help="approximate number of Lua lines")
    size.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    lines = args.lines if args.lines is not None else PRESETS[args.preset]
    if lines < 150:
        parser.error("--lines must be at least 150 (the fixed part of init.lua)")
    files = generate(args.out_dir, lines, args.seed)
    print(f"{args.out_dir}: {len(files)} Lua files, {count_lines(files)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
