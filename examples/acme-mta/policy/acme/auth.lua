-- Credential checks for SMTP AUTH (port 587) and the HTTP injection API.
--
-- Relay users live in a sqlite database maintained by the customer portal:
--   relay_users(username TEXT PRIMARY KEY, salt TEXT, password_sha256 TEXT, enabled INTEGER)
-- Lookups are memoized so that a burst of connections does not turn into a
-- burst of queries; a disabled account stops working within the cache TTL.

local kumo = require 'kumo'
local sqlite = require 'sqlite'

local mod = {}

local AUTH_DB = '/var/lib/kumomta/relay-users.db'

-- Returns the stored credential record for a user, or a record with
-- found = false. Always returns a table so that misses are cached too.
local function lookup_user(username)
  local db = sqlite.open(AUTH_DB, 2000)
  local rows = db:execute(
    'SELECT salt, password_sha256 FROM relay_users WHERE username = ? AND enabled = 1',
    username
  )
  db:close()
  if type(rows) ~= 'table' or #rows == 0 then
    return { found = false }
  end
  return {
    found = true,
    salt = rows[1].salt,
    password_sha256 = rows[1].password_sha256,
  }
end

local cached_lookup_user = kumo.memoize(lookup_user, {
  name = 'user.acme_relay_users',
  ttl = '5 minutes',
  capacity = 5000,
})

-- True when the password matches the stored salted SHA-256 digest.
function mod.check_password(username, password)
  if username == nil or username == '' or password == nil or password == '' then
    return false
  end
  local record = cached_lookup_user(username)
  if not record.found then
    return false
  end
  local digest = kumo.digest.sha256(record.salt, password)
  return digest.hex == record.password_sha256
end

return mod
