-- Acme Mail outbound MTA policy.
--
-- Deployed to /opt/kumomta/etc/policy/init.lua on every node of the mta pool
-- (mta1..mta4.acme-mail.example) by the config-management pipeline, straight
-- from the main branch of this repository.
--
-- Data files live next to this file and are referenced by their deployed
-- absolute paths, as KumoMTA itself sees them.

local kumo = require 'kumo'

local shaping = require 'policy-extras.shaping'
local queue_module = require 'policy-extras.queue'
local listener_domains = require 'policy-extras.listener_domains'
local sources = require 'policy-extras.sources'
local dkim_sign = require 'policy-extras.dkim_sign'
local log_hooks = require 'policy-extras.log_hooks'

local auth = require 'acme.auth'
require 'acme.inbound'

local HOSTNAME = 'mta1.acme-mail.example'
local TLS_CERT = '/etc/ssl/acme/mta.acme-mail.example.crt'
local TLS_KEY = '/etc/ssl/acme/mta.acme-mail.example.key'

---------------------------------------------------------------------------
-- Helper setup. Order matters: webhooks and shaping come before the queue
-- helper, because the queue helper answers every get_queue_config call.
---------------------------------------------------------------------------

-- Sending IPs and pools.
sources:setup { '/opt/kumomta/etc/policy/sources.toml' }

-- DKIM signing; keys are deployed to /opt/kumomta/etc/dkim/<domain>/<selector>.key
-- by the secrets pipeline, never committed here.
local dkim_signer = dkim_sign:setup { '/opt/kumomta/etc/policy/dkim_data.toml' }

-- Traffic shaping with the Traffic Shaping Automation daemon running locally.
local shaper = shaping:setup_with_automation {
  publish = { 'http://127.0.0.1:8008' },
  subscribe = { 'http://127.0.0.1:8008' },
  extra_files = {
    '/opt/kumomta/etc/policy/shaping.toml',
    -- Generated nightly by the deliverability team's tooling.
    '/opt/kumomta/etc/policy/shaping-overrides.json',
  },
}

-- Delivery, bounce and feedback events go to the event collector.
log_hooks:new_json {
  name = 'acme-events',
  url = 'http://10.20.0.40:8090/kumomta/events',
  log_parameters = {
    headers = { 'Subject', 'X-Acme-Campaign', 'X-Acme-Message-Id' },
    meta = { 'tenant', 'campaign' },
  },
  queue_config = {
    retry_interval = '1 minute',
    max_retry_interval = '10 minutes',
  },
}

local queue_helper = queue_module:setup_with_options {
  file_names = { '/opt/kumomta/etc/policy/queues.toml' },
  invalidate_with_epoch = true,
}

-- DEMO: init-only call at file level (R101). The classifier can only be
-- configured once per process, but this line runs again every time KumoMTA
-- builds a new Lua context; it belongs inside the init handler below.
kumo.configure_bounce_classifier {
  files = { '/opt/kumomta/share/bounce_classifier/iana.toml' },
}

---------------------------------------------------------------------------
-- Process start-up
---------------------------------------------------------------------------

kumo.on('pre_init', function()
  kumo.set_spoolin_threads(8)
  kumo.set_httpinject_threads(4)
  kumo.set_readyq_threads(4)
  kumo.set_httpinject_recipient_rate_limit '5000/s'
end)

kumo.on('init', function()
  kumo.define_spool {
    name = 'data',
    path = '/var/spool/kumomta/data',
    kind = 'RocksDB',
  }
  kumo.define_spool {
    name = 'meta',
    path = '/var/spool/kumomta/meta',
    kind = 'RocksDB',
  }

  shaper.setup_publish()

  kumo.configure_local_logs {
    log_dir = '/var/log/kumomta',
    max_segment_duration = '5 minutes',
    headers = { 'Subject', 'X-Acme-Campaign' },
    meta = { 'tenant', 'campaign' },
  }

  -- Watch the policy and data files, plus the DKIM key directory so that a
  -- key rotation starts a new configuration epoch.
  kumo.set_config_monitor_globs {
    '/opt/kumomta/etc/**/*.{lua,json,toml,yaml}',
    '/opt/kumomta/etc/dkim/**/*.key',
  }

  -- Local admin API, plain HTTP on loopback only.
  kumo.start_http_listener {
    listen = '127.0.0.1:8000',
    trusted_hosts = { '127.0.0.1', '::1' },
  }

  -- Injection API for the application servers, TLS plus basic auth.
  kumo.start_http_listener {
    listen = '0.0.0.0:8001',
    hostname = HOSTNAME,
    use_tls = true,
    tls_certificate = TLS_CERT,
    tls_private_key = TLS_KEY,
    trusted_hosts = { '127.0.0.1', '::1' },
  }

  -- Port 25: relay for the application subnet, inbound bounces and FBL.
  kumo.start_esmtp_listener {
    listen = '0.0.0.0:25',
    hostname = HOSTNAME,
    relay_hosts = { '127.0.0.1', '::1', '10.20.0.0/24' },
    tls_certificate = TLS_CERT,
    tls_private_key = TLS_KEY,
    max_message_size = 20971520,
    max_recipients_per_message = 1000,
  }

  -- Port 587: authenticated submission for customers (AUTH PLAIN after STARTTLS).
  kumo.start_esmtp_listener {
    listen = '0.0.0.0:587',
    hostname = HOSTNAME,
    relay_hosts = { '127.0.0.1', '::1' },
    tls_certificate = TLS_CERT,
    tls_private_key = TLS_KEY,
    max_messages_per_connection = 500,
  }

  -- DEMO: open relay (S101). Added "temporarily" for the legacy billing
  -- servers during the data-centre move; anyone on the internet can relay.
  kumo.start_esmtp_listener {
    listen = '0.0.0.0:2525',
    hostname = HOSTNAME,
    relay_hosts = { '0.0.0.0/0' },
  }
end)

---------------------------------------------------------------------------
-- Realtime events
---------------------------------------------------------------------------

kumo.on('get_listener_domain', listener_domains:setup { '/opt/kumomta/etc/policy/listener_domains.toml' })

kumo.on('get_egress_path_config', shaper.get_egress_path_config)

kumo.on('smtp_server_auth_plain', function(authz, authc, password, conn_meta)
  -- Customers may only act as themselves.
  if authz ~= authc then
    kumo.log_warn(
      string.format('auth: %s tried to act as %s from %s', authc, authz, conn_meta:get_meta 'received_from')
    )
    return false
  end
  return auth.check_password(authc, password)
end)

kumo.on('http_server_validate_auth_basic', function(user, password)
  return auth.check_password(user, password)
end)

kumo.on('smtp_server_message_received', function(msg, conn_meta)
  local failed = msg:check_fix_conformance('NON_CANONICAL_LINE_ENDINGS', 'MISSING_MESSAGE_ID_HEADER')
  if failed then
    kumo.reject(552, string.format('5.6.0 %s', failed))
  end

  -- DEMO: global assignment in a handler (R103). Each pooled Lua context
  -- has its own copy, so this "counter" is neither global nor accurate.
  messages_received = (messages_received or 0) + 1

  queue_helper:apply(msg)

  -- Signing must come last: any later change to the message breaks the signature.
  dkim_signer(msg)
end)

kumo.on('http_message_generated', function(msg, auth_info)
  queue_helper:apply(msg)
  dkim_signer(msg)
end)
