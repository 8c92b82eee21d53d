-- The pass's screening of one SSCAN batch with every TTL read, read-only,
-- in one call (reaper.track_expiry): neither the members nor their socket
-- keys cross the socket, only the few worth a look.
--
-- KEYS[1]  the online set
-- ARGV[1]  SSCAN cursor
-- ARGV[2]  SSCAN COUNT
-- ARGV[3]  horizon, ms: report the socket sets that expire sooner
-- ARGV[4]  socket key prefix
-- ARGV[5]  socket key suffix
--
-- Returns { cursor, scanned, { id... }, { pttl... } }: the members whose
-- socket set is gone (-2), has no TTL (-1) or expires within the horizon,
-- each with its PTTL. Its socket keys share the online set's slot on a
-- Cluster (the configuration is checked for it), so they are local.

-- Name the command a refusal is about (redis.acl_check_cmd: Redis 7.0).
if redis.acl_check_cmd then
  for _, c in ipairs({ { 'sscan', KEYS[1] }, { 'pttl', ARGV[4] .. ARGV[5] } }) do
    local ok, allowed = pcall(redis.acl_check_cmd, c[1], c[2])
    if ok and not allowed then
      return redis.error_reply('NOPERM this user may not run ' .. string.upper(c[1]) ..
        ' on ' .. (c[1] == 'sscan' and 'the online set' or 'a socket set'))
    end
  end
end

local res = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local horizon = tonumber(ARGV[3])
local pre, suf = ARGV[4], ARGV[5]
local call = redis.call
local members = res[2]
local ids, ttls, k = {}, {}, 0
for i = 1, #members do
  local ttl = call('PTTL', pre .. members[i] .. suf)
  if ttl < horizon then
    k = k + 1
    ids[k] = members[i]
    ttls[k] = ttl
  end
end
return { res[1], #members, ids, ttls }
