-- The replicas that share the shards (keys.shards): one sorted set, each
-- replica a member whose score is when it expires (Redis's clock, ms).
-- KEYS[1] leader.members_key; ARGV[1] this replica's token; ARGV[2] its
-- lease in ms; ARGV[3] "join" (add or renew) or "leave".
-- Returns the number of live replicas after the change.
--
-- Redis does not roll a script back, so what could refuse a write is
-- checked before the first: the key's type, and (Redis 7.0) every call
-- against the caller's ACL, which also names the command refused.
local function denied(what, cmd, ...)
  local ok, allowed = pcall(redis.acl_check_cmd, cmd, ...)
  if not ok or not allowed then
    return redis.error_reply('NOPERM this user may not run ' .. what .. ' on ' .. KEYS[1] ..
      '; checked before any write, nothing changed')
  end
end

if redis.acl_check_cmd then
  local bad = denied('TYPE', 'type', KEYS[1])
    or denied('TIME', 'time')
    or denied('ZREMRANGEBYSCORE', 'zremrangebyscore', KEYS[1], '-inf', '1')
    or denied('ZADD', 'zadd', KEYS[1], '1', 'x')
    or denied('ZREM', 'zrem', KEYS[1], 'x')
    or denied('ZCARD', 'zcard', KEYS[1])
    or denied('PEXPIRE', 'pexpire', KEYS[1], '1')
  if bad then
    return bad
  end
end

local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'zset' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' (leader.members_key) is a ' .. t ..
    ', not a sorted set; nothing changed')
end

local lease = tonumber(ARGV[2])
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
end
local n = redis.call('ZCARD', KEYS[1])
if n > 0 then
  -- The set outlives its last member by one lease at most.
  redis.call('PEXPIRE', KEYS[1], 2 * lease)
end
return n
