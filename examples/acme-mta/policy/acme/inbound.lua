-- SMTP session checks for the inbound listeners. Required once from init.lua;
-- the handlers are registered while the policy loads, not inside an event.

local kumo = require 'kumo'

-- Hosts that keep trying to relay through us with forged EHLO names.
local BLOCKED_EHLO = {
  ['localhost'] = true,
  ['localhost.localdomain'] = true,
  ['mta1.acme-mail.example'] = true,
}

-- Bounce and feedback-loop mailboxes only accept reports, never replies.
local REPORT_ONLY_LOCALPARTS = {
  ['bounces'] = true,
  ['fbl'] = true,
}

kumo.on('smtp_server_ehlo', function(domain, conn_meta, extensions)
  if BLOCKED_EHLO[string.lower(domain)] then
    kumo.reject(550, '5.7.1 EHLO name not accepted')
  end
end)

kumo.on('smtp_server_mail_from', function(sender, conn_meta)
  -- Our own bounce domain never originates mail; only forgeries claim it.
  if sender.domain == 'bounce.acme-mail.example' then
    kumo.reject(550, '5.7.1 sender address rejected')
  end
end)

-- DEMO: misspelled event name (E205). KumoMTA has no such event, so this
-- check never runs; the real event is smtp_server_rcpt_to.
kumo.on('smtp_server_mail_rcpt_to', function(recipient, conn_meta)
  if REPORT_ONLY_LOCALPARTS[recipient.user] and recipient.domain == 'acme-mail.example' then
    kumo.reject(550, '5.1.1 this mailbox does not accept mail')
  end
end)
