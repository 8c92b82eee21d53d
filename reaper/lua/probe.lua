-- Check the socket sets of the guard's sample, read-only, in one call.
--
-- KEYS[1..]  socket set of each sampled user
--
-- Returns { missing, ghost_index... }: how many socket sets are gone, and
-- the positions in KEYS of those that exist without a TTL ("ghosts": they
-- would never expire). PTTL answers both: -2 = gone, -1 = no TTL.

-- Redis's refusal of a call inside a script does not name the command;
-- this does (redis.acl_check_cmd: Redis 7.0, skipped before; an unknown
-- command is left to PTTL's own error).
if redis.acl_check_cmd and #KEYS > 0 then
  local ok, allowed = pcall(redis.acl_check_cmd, 'pttl', KEYS[1])
  if ok and not allowed then
    return redis.error_reply('NOPERM this user may not run PTTL on a socket set')
  end
end

local out = { 0 }
for i = 1, #KEYS do
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl == -2 then
    out[1] = out[1] + 1
  elseif ttl == -1 then
    out[#out + 1] = i
  end
end
return out
