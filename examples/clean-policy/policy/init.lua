-- A small, correct KumoMTA policy: one relay listener, local spool and logs,
-- shaping, queue and sources helpers driven by data files.

local kumo = require 'kumo'
local shaping = require 'policy-extras.shaping'
local queue_module = require 'policy-extras.queue'
local sources = require 'policy-extras.sources'

sources:setup { '/opt/kumomta/etc/policy/sources.toml' }

local get_shaping_config = shaping:setup { '/opt/kumomta/etc/policy/shaping.toml' }

local queue_helper = queue_module:setup_with_options {
  file_names = { '/opt/kumomta/etc/policy/queues.toml' },
  invalidate_with_epoch = true,
}

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

  kumo.configure_local_logs {
    log_dir = '/var/log/kumomta',
    max_segment_duration = '1 minute',
  }

  kumo.start_http_listener {
    listen = '127.0.0.1:8000',
    trusted_hosts = { '127.0.0.1', '::1' },
  }

  kumo.start_esmtp_listener {
    listen = '0.0.0.0:25',
    hostname = 'relay.example.net',
    relay_hosts = { '127.0.0.1', '::1', '10.0.1.0/24' },
  }
end)

kumo.on('get_egress_path_config', get_shaping_config)

kumo.on('smtp_server_message_received', function(msg)
  queue_helper:apply(msg)
end)

kumo.on('http_message_generated', function(msg)
  queue_helper:apply(msg)
end)
