-- Keep the last pass's summary in a hash next to the lock, only while the
-- lock is still ours (presence-reaper --status reads it).
-- KEYS[1] leader lock, KEYS[2] the status hash; ARGV[1] our token, ARGV[2]
-- how long the hash lives, ms; ARGV[3..] field, value pairs.
-- Returns 1 when written, 0 when the lock is gone or held by another. The
-- hash's type is checked before the first write: nothing is half-written.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE the status key holds a ' .. t .. ', not a hash')
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[2], 'finished_ms', ms, unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
