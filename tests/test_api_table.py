"""Consistency checks for the KumoMTA API table (auditor/kumo/api.toml)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.kumo.api import (
    DATA_FORMATS,
    FILES_FROM,
    HANDLER_KINDS,
    PACKAGED_TABLE,
    PHASES,
    RESTART_SCOPES,
    SETUP_RETURNS,
    WHERE_VALUES,
    api_bytes,
    cache_dir,
    load_api,
    parse_api,
    render_packaged_table,
)
from auditor.kumo.types import parse as parse_type

# Every function documented under docs/reference/kumo/, docs/reference/kumo.<module>/ and the
# module pages (kumo.string, kumo.regex, redis, sqlite, tsa, proxy) of KumoMTA 2026.06.23
# (commit 3ebc1e85), generated once from the docs tree: object pages and methods excluded.
DOCUMENTED_FUNCTIONS = frozenset(
    {
        "kumo.aaa.configure_acct_log",
        "kumo.aaa.load_acl_map",
        "kumo.aaa.make_access_control_list",
        "kumo.aaa.make_http_url_resource",
        "kumo.aaa.query_resource_access",
        "kumo.aaa.set_acl_cache_ttl",
        "kumo.aaa.set_check_cache_ttl",
        "kumo.aaa.set_fall_back_to_acl_map",
        "kumo.amqp.basic_publish",
        "kumo.amqp.build_client",
        "kumo.api.inject.inject_v1",
        "kumo.apply_supplemental_trace_header",
        "kumo.available_parallelism",
        "kumo.bump_config_epoch",
        "kumo.cidr.make_map",
        "kumo.compute_egress_path_config_constraints",
        "kumo.compute_queue_config_constraints",
        "kumo.configure_accounting_db_path",
        "kumo.configure_bounce_classifier",
        "kumo.configure_local_logs",
        "kumo.configure_log_hook",
        "kumo.configure_redis_throttles",
        "kumo.counter_series.define",
        "kumo.crypto.aes_decrypt_block",
        "kumo.crypto.aes_encrypt_block",
        "kumo.crypto.aws_sign_v4",
        "kumo.define_spool",
        "kumo.digest.crc32",
        "kumo.digest.hmac_sha1",
        "kumo.digest.hmac_sha224",
        "kumo.digest.hmac_sha256",
        "kumo.digest.hmac_sha384",
        "kumo.digest.hmac_sha512",
        "kumo.digest.sha1",
        "kumo.digest.sha224",
        "kumo.digest.sha256",
        "kumo.digest.sha384",
        "kumo.digest.sha3_256",
        "kumo.digest.sha3_384",
        "kumo.digest.sha3_512",
        "kumo.digest.sha512",
        "kumo.digest.sha512_256",
        "kumo.disconnect",
        "kumo.dkim.ed25519_signer",
        "kumo.dkim.rsa_sha256_signer",
        "kumo.dkim.set_signing_threads",
        "kumo.dns.configure_resolver",
        "kumo.dns.configure_unbound_resolver",
        "kumo.dns.define_resolver",
        "kumo.dns.load_resolv_conf",
        "kumo.dns.lookup_addr",
        "kumo.dns.lookup_mx",
        "kumo.dns.lookup_ptr",
        "kumo.dns.lookup_txt",
        "kumo.dns.ptr_host",
        "kumo.dns.rbl_lookup",
        "kumo.dns.reverse_ip",
        "kumo.dns.set_mta_sts_enabled",
        "kumo.dns.set_mx_concurrency_limit",
        "kumo.dns.set_mx_negative_cache_ttl",
        "kumo.dns.set_mx_timeout",
        "kumo.domain_map.new",
        "kumo.encode.base32_decode",
        "kumo.encode.base32_encode",
        "kumo.encode.base32_nopad_decode",
        "kumo.encode.base32_nopad_encode",
        "kumo.encode.base32hex_decode",
        "kumo.encode.base32hex_encode",
        "kumo.encode.base32hex_nopad_decode",
        "kumo.encode.base32hex_nopad_encode",
        "kumo.encode.base64_decode",
        "kumo.encode.base64_encode",
        "kumo.encode.base64_nopad_decode",
        "kumo.encode.base64_nopad_encode",
        "kumo.encode.base64url_decode",
        "kumo.encode.base64url_encode",
        "kumo.encode.base64url_nopad_decode",
        "kumo.encode.base64url_nopad_encode",
        "kumo.encode.charset_decode",
        "kumo.encode.charset_encode",
        "kumo.encode.hex_decode",
        "kumo.encode.hex_encode",
        "kumo.eval_config_monitor_globs",
        "kumo.file_type.from_bytes",
        "kumo.file_type.from_extension",
        "kumo.file_type.from_media_type",
        "kumo.format_egress_path_config_constraints",
        "kumo.format_egress_path_config_toml",
        "kumo.format_queue_config_toml",
        "kumo.fs.glob",
        "kumo.fs.metadata_for_path",
        "kumo.fs.open",
        "kumo.fs.read_dir",
        "kumo.fs.symlink_metadata_for_path",
        "kumo.fs.uncached_glob",
        "kumo.generate_rfc3464_message",
        "kumo.get_memory_hard_limit",
        "kumo.get_memory_low_thresh",
        "kumo.get_memory_soft_limit",
        "kumo.glob",
        "kumo.http.build_client",
        "kumo.http.build_url",
        "kumo.http.connect_websocket",
        "kumo.inject_message",
        "kumo.invoke_get_egress_path_config",
        "kumo.invoke_get_egress_pool",
        "kumo.invoke_get_egress_source",
        "kumo.invoke_get_queue_config",
        "kumo.json_encode",
        "kumo.json_encode_pretty",
        "kumo.json_load",
        "kumo.json_parse",
        "kumo.jsonl.new_multi_tailer",
        "kumo.jsonl.new_tailer",
        "kumo.jsonl.new_writer",
        "kumo.kafka.build_producer",
        "kumo.log_debug",
        "kumo.log_error",
        "kumo.log_info",
        "kumo.log_warn",
        "kumo.make_egress_path",
        "kumo.make_egress_pool",
        "kumo.make_egress_source",
        "kumo.make_listener_domain",
        "kumo.make_message",
        "kumo.make_queue_config",
        "kumo.make_throttle",
        "kumo.memoize",
        "kumo.mimepart.builder",
        "kumo.mimepart.new_binary",
        "kumo.mimepart.new_html",
        "kumo.mimepart.new_multipart",
        "kumo.mimepart.new_text",
        "kumo.mimepart.new_text_plain",
        "kumo.mimepart.parse",
        "kumo.mpsc.define",
        "kumo.nats.connect",
        "kumo.on",
        "kumo.read_dir",
        "kumo.regex.compile",
        "kumo.regex.escape",
        "kumo.regex_set_map.new",
        "kumo.reject",
        "kumo.secrets.load",
        "kumo.serde.json_encode",
        "kumo.serde.json_encode_pretty",
        "kumo.serde.json_load",
        "kumo.serde.json_parse",
        "kumo.serde.toml_encode",
        "kumo.serde.toml_encode_pretty",
        "kumo.serde.toml_encode_pretty_compact",
        "kumo.serde.toml_load",
        "kumo.serde.toml_parse",
        "kumo.serde.yaml_encode",
        "kumo.serde.yaml_load",
        "kumo.serde.yaml_parse",
        "kumo.set_config_monitor_globs",
        "kumo.set_diagnostic_log_filter",
        "kumo.set_httpinject_recipient_rate_limit",
        "kumo.set_httpinject_threads",
        "kumo.set_logging_threads",
        "kumo.set_lruttl_cache_capacity",
        "kumo.set_max_lua_context_age",
        "kumo.set_max_lua_context_use_count",
        "kumo.set_max_spare_lua_contexts",
        "kumo.set_memory_hard_limit",
        "kumo.set_memory_low_thresh",
        "kumo.set_memory_soft_limit",
        "kumo.set_qmaint_threads",
        "kumo.set_ready_qmaint_threads",
        "kumo.set_readyq_threads",
        "kumo.set_smtpsrv_threads",
        "kumo.set_spoolin_threads",
        "kumo.shaping.load",
        "kumo.sleep",
        "kumo.spawn_task",
        "kumo.spf.check_host",
        "kumo.spf.check_msg",
        "kumo.start_esmtp_listener",
        "kumo.start_http_listener",
        "kumo.string.ends_with",
        "kumo.string.eval_template",
        "kumo.string.normalize_smtp_response",
        "kumo.string.psl_domain",
        "kumo.string.psl_suffix",
        "kumo.string.replace",
        "kumo.string.replacen",
        "kumo.string.rsplit",
        "kumo.string.rsplitn",
        "kumo.string.split",
        "kumo.string.split_ascii_whitespace",
        "kumo.string.split_whitespace",
        "kumo.string.splitn",
        "kumo.string.starts_with",
        "kumo.string.trim",
        "kumo.string.trim_end",
        "kumo.string.trim_start",
        "kumo.string.wrap",
        "kumo.suspend_delivery_when_spool_unhealthy",
        "kumo.time.from_unix_timestamp",
        "kumo.time.now",
        "kumo.time.parse_duration",
        "kumo.time.parse_rfc2822",
        "kumo.time.parse_rfc3339",
        "kumo.time.sleep",
        "kumo.time.start_timer",
        "kumo.time.with_ymd_hms",
        "kumo.toml_encode",
        "kumo.toml_encode_pretty",
        "kumo.toml_load",
        "kumo.toml_parse",
        "kumo.uncached_glob",
        "kumo.uuid.new_v1",
        "kumo.uuid.new_v4",
        "kumo.uuid.new_v6",
        "kumo.uuid.new_v7",
        "kumo.uuid.parse",
        "kumo.version",
        "kumo.xfer.cancel_xfer",
        "kumo.xfer.get_xfer_target",
        "kumo.xfer.xfer",
        "kumo.xfer.xfer_in_requeue",
        "proxy.start_http_listener",
        "proxy.start_proxy_listener",
        "redis.open",
        "sqlite.open",
        "tsa.configure_tsa_db_path",
        "tsa.start_http_listener",
    }
)

# KUMOMTA.md §3: "Multi-handler sets in source (the complete list)".
MULTI_HANDLER_EVENTS = frozenset(
    {
        "pre_init",
        "validate_config",
        "get_queue_config",
        "throttle_insert_ready_queue",
        "requeue_message",
        "should_enqueue_log_record",
        "get_acl_definition",
    }
)

API = load_api()


def _check_type(expr: str) -> None:
    head, args = parse_type(expr)
    if head in ("list", "map"):
        assert len(args) == 1


def test_meta_describes_the_release():
    assert API.release == "2026.06.23-f3af1cd0"
    assert API.commit == "3ebc1e8585e0e989cfcf50a93c94a803610249e8"
    assert API.table_version == 1


def test_every_documented_function_is_present():
    missing = sorted(DOCUMENTED_FUNCTIONS - set(API.functions))
    assert not missing
    for name in DOCUMENTED_FUNCTIONS:
        assert API.functions[name].doc, name


def test_undocumented_functions_name_their_source():
    for spec in API.functions.values():
        assert spec.doc or spec.source, spec.name
    for name in (
        "kumo.validation_failed",
        "kumo.get_event_registrars",
        "kumo.traceback",
        "kumo.spawn_thread_pool",
        "kumo.configure_log_disposition_hook",
        "kumo.set_lua_gc_on_put",
        "kumo.enable_memory_callstack_tracking",
    ):
        spec = API.function(name)
        assert spec is not None and not spec.documented, name


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("kumo.json_load", "kumo.serde.json_load"),
        ("kumo.toml_load", "kumo.serde.toml_load"),
        ("kumo.glob", "kumo.fs.glob"),
        ("kumo.uncached_glob", "kumo.fs.uncached_glob"),
        ("kumo.read_dir", "kumo.fs.read_dir"),
        ("kumo.sleep", "kumo.time.sleep"),
    ],
)
def test_deprecated_aliases_name_a_real_replacement(old, new):
    assert API.functions[old].deprecated_by == new
    assert API.function(new) is not None and not API.functions[new].deprecated
    assert API.closest_function(old) == new


def test_deprecated_by_is_a_function_or_no_replacement():
    for spec in API.functions.values():
        if spec.deprecated_by:
            assert spec.deprecated_by in API.functions or spec.deprecated_by == "(no replacement)"


def test_enumerated_fields_use_allowed_values():
    for spec in API.functions.values():
        assert spec.where in WHERE_VALUES, spec.name
        assert spec.restart_scope in RESTART_SCOPES, spec.name
        assert spec.table_arg >= 1, spec.name
        assert spec.since == "" or spec.since == "dev" or len(spec.since) == 10, spec.name
    for event in API.events.values():
        assert event.handlers in HANDLER_KINDS, event.name
        assert event.phase in PHASES, event.name
    for helper in API.helpers.values():
        assert helper.setup_returns in SETUP_RETURNS, helper.key
        assert set(helper.returns_by_method.values()) <= SETUP_RETURNS, helper.key
        assert set(helper.returns_by_method) <= set(helper.setup_methods), helper.key
        assert helper.data_format in DATA_FORMATS, helper.key
        assert helper.files_from in FILES_FROM, helper.key


def test_every_param_type_parses_and_structs_exist():
    params = [p for f in API.functions.values() for p in f.params.values()]
    params += [p for s in API.structs.values() for p in s.params.values()]
    assert params
    for param in params:
        _check_type(param.type)
        if param.struct:
            assert param.struct in API.structs, param.name
            assert parse_type(param.type)[0] in ("table", "list", "map"), param.name


@pytest.mark.parametrize(
    "expr",
    ["strin", "list()", "list(string", "enum()", "enum(A|)", "map(bogus)", "tuple(string)", ""],
)
def test_type_grammar_rejects_garbage(expr):
    with pytest.raises(ValueError):
        parse_type(expr)


def test_type_grammar_nests():
    assert parse_type("list(map(rate))") == ("list", (("map", (("rate", ()),)),))
    assert parse_type("enum(Ttl|Epoch)") == ("enum", ("Ttl", "Epoch"))


def test_strict_functions_have_params():
    strict = [f for f in API.functions.values() if f.strict]
    for spec in strict:
        assert spec.params, spec.name
    for name in (
        "kumo.start_esmtp_listener",
        "kumo.start_http_listener",
        "kumo.define_spool",
        "kumo.configure_local_logs",
        "kumo.configure_log_hook",
        "kumo.configure_bounce_classifier",
        "kumo.make_queue_config",
        "kumo.make_egress_path",
        "kumo.make_egress_source",
        "kumo.make_egress_pool",
        "kumo.make_listener_domain",
        "kumo.memoize",
        "kumo.shaping.load",
    ):
        assert API.functions[name].strict, name


def test_key_struct_facts():
    esmtp = API.functions["kumo.start_esmtp_listener"]
    assert {"listen", "max_connections", "relay_hosts", "peer", "via", "trace_headers"} <= set(
        esmtp.params
    )
    assert esmtp.where == "init" and esmtp.restart_scope == "listener"
    assert esmtp.params["relay_hosts"].type == "cidr_list"
    path = API.functions["kumo.make_egress_path"].params
    # flattened SmtpClientTimeouts fields are accepted at the top level
    assert {"connect_timeout", "idle_timeout", "auth_timeout", "data_dot_timeout"} <= set(path)
    assert path["connection_limit"].type == "limit"
    assert path["max_message_rate"].type == "rate"
    assert "tls" not in path
    spool = API.functions["kumo.define_spool"].params
    assert spool["name"].required and spool["path"].required
    assert API.functions["kumo.configure_local_logs"].params["log_dir"].required
    assert API.functions["kumo.make_egress_source"].params["name"].required
    assert API.functions["kumo.memoize"].table_arg == 2
    assert API.functions["kumo.shaping.load"].table_arg == 2
    pool = API.functions["kumo.make_egress_pool"].params["entries"]
    entry = API.struct(pool.struct)
    assert entry is not None and set(entry.params) == {"name", "weight"}
    assert API.functions["kumo.uncached_glob"].blocking
    assert API.functions["kumo.on"].where == "top_level"
    assert API.functions["kumo.reject"].where == "realtime"


def test_multi_handler_events_match_kumomta_md():
    multi = {name for name, e in API.events.items() if e.multi}
    assert multi == MULTI_HANDLER_EVENTS
    assert API.is_multi("get_queue_config")
    assert not API.is_multi("get_egress_path_config")
    assert not API.is_multi("no_such_event")


def test_documented_events_are_present():
    for name in (
        "init",
        "pre_init",
        "get_queue_config",
        "smtp_server_message_received",
        "http_message_generated",
        "requeue_message",
        "tsa_load_shaping_data",
        "proxy_server_auth_rfc1929",
    ):
        spec = API.event(name)
        assert spec is not None and spec.doc.startswith("docs/reference/events/"), name
    assert API.event("get_queue_config").params == (
        "domain",
        "tenant",
        "campaign",
        "routing_domain",
    )


def test_obsolete_events_point_at_live_replacements():
    obsolete = [e for e in API.events.values() if e.obsolete]
    assert {e.name for e in obsolete} >= {"message_requeued"}
    for event in obsolete:
        replacement = API.events[event.replaced_by]
        assert not replacement.obsolete
        assert API.closest_event(event.name) == event.replaced_by


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("message_requeued", "requeue_message"),
        ("smtp_server_mail_rcpt_to", "smtp_server_rcpt_to"),
        ("get_queue_cfg", "get_queue_config"),
        ("smtp_server_message_recieved", "smtp_server_message_received"),
        ("get_egress_paht_config", "get_egress_path_config"),
    ],
)
def test_closest_event_suggestions(typo, expected):
    assert API.closest_event(typo) == expected


def test_closest_event_gives_up_on_nonsense():
    assert API.closest_event("zzzz") is None


def test_closest_function_suggestions():
    assert API.closest_function("kumo.start_esmtp_listner") == "kumo.start_esmtp_listener"
    assert API.closest_function("kumo.completely_unrelated_thing") is None


def test_event_families_match_dynamic_names():
    assert API.event("make.webhook.log_hook").name == "make.*"
    assert API.event("log_disposition_audit").name == "log_disposition_*"
    assert API.event("kumo.tsa.config.monitor").name == "kumo.tsa.config.monitor"
    assert API.event("unknown_event") is None


def test_helper_registrations_name_events():
    for helper in API.helpers.values():
        for event in (*helper.registers, *helper.registers_on_require):
            spec = API.event(event)
            assert spec is not None and not spec.obsolete, (helper.key, event)
        dynamic = {t for m in helper.setup_methods for t in helper.dynamic_for(m)}
        for template in {*helper.registers_dynamic, *dynamic}:
            sample = template.replace("{name}", "x").replace("{publish}", "http://tsa")
            assert API.event(sample) is not None, (helper.key, template)


def test_helper_memoize_names_are_listed_caches():
    helper_caches = set(API.helper_caches)
    for helper in API.helpers.values():
        assert set(helper.memoize_names) <= helper_caches, helper.key
    assert not helper_caches & set(API.builtin_caches)
    assert len(API.builtin_caches) == 17
    assert "rustls_client_config" in API.builtin_caches


def test_helper_facts():
    sources = API.helper_for_module("policy-extras.sources")
    assert sources is not None
    assert set(sources.registers) == {"get_egress_source", "get_egress_pool"}
    shaping = API.helper_for_module("policy-extras/shaping")
    assert shaping is not None
    assert shaping.returns_for("setup") == "handler"
    assert shaping.returns_for("setup_with_automation") == "object"
    assert "should_enqueue_log_record" in shaping.removed_members
    assert shaping.default_files == ("/opt/kumomta/share/policy-extras/shaping.toml",)
    queue = API.helper_for_module("policy-extras.queue")
    assert queue is not None
    assert {"apply", "resolve_config"} <= set(queue.object_members)
    assert "resolve_provider" in queue.module_members
    assert not queue.invalidate_with_epoch
    listener = API.helper_for_module("policy-extras.listener_domains")
    assert listener is not None and listener.setup_returns == "handler"
    for module in ("policy_utils", "typing", "rollup", "mail_auth", "docker_utils"):
        helper = API.helper_for_module(f"policy-extras.{module}")
        assert helper is not None and helper.module_members, module
    assert API.helper_for_module("policy-extras.nope") is None


def test_api_hash_is_sha256_of_the_file():
    assert API.api_hash() == hashlib.sha256(api_bytes()).hexdigest()
    assert load_api() is API


def test_parse_cache_round_trip_and_corruption(tmp_path, monkeypatch):
    """A table the packaged JSON was not made from (an edited api.toml) is parsed once, then kept."""
    monkeypatch.setenv("KUMO_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    data = api_bytes() + b"\n# edited after api_table.json was generated\n"
    first = parse_api(data, use_cache=True)
    files = list(cache_dir().iterdir())
    assert len(files) == 1
    second = parse_api(data, use_cache=True)
    assert second.functions == first.functions
    assert second.events == first.events
    files[0].write_bytes(b"\x00garbage")
    third = parse_api(data, use_cache=True)
    assert third.functions == first.functions
    assert third.api_hash() == hashlib.sha256(data).hexdigest() != API.api_hash()


def test_packaged_table_is_current():
    assert PACKAGED_TABLE.read_text(encoding="utf-8") == render_packaged_table(), (
        "regenerate: python -m auditor.kumo.api > auditor/kumo/api_table.json"
    )


def test_packaged_table_equals_the_parsed_toml(tmp_path, monkeypatch):
    monkeypatch.setenv("KUMO_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    packaged = parse_api(api_bytes(), use_cache=True)
    parsed = parse_api(api_bytes(), use_cache=False)
    for name in ("release", "commit", "functions", "events", "helpers", "structs", "digest"):
        assert getattr(packaged, name) == getattr(parsed, name), name
    assert not (tmp_path / "cache").exists()  # nothing parsed, nothing stored


def test_unwritable_cache_dir_falls_back(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KUMO_AUDIT_CACHE_DIR", str(blocker / "cache"))
    api = parse_api(api_bytes(), use_cache=True)
    assert "kumo.on" in api.functions


def test_a_fresh_process_loads_the_table_without_parsing_toml(tmp_path):
    """The packaged JSON spares even a fresh install (empty cache) the TOML parse."""
    env = {**os.environ, "KUMO_AUDIT_CACHE_DIR": str(tmp_path)}
    code = (
        "import sys\n"
        "from auditor.kumo.api import load_api; api = load_api()\n"
        "print('tomllib' in sys.modules, 'kumo.on' in api.functions)\n"
    )
    root = Path(__file__).resolve().parent.parent
    run = [sys.executable, "-c", code]
    first = subprocess.run(run, cwd=root, env=env, check=True, capture_output=True, text=True)
    assert first.stdout.split() == ["False", "True"]
