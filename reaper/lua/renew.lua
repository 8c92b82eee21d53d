-- Extend the leader lease, only while the lock is still ours.
-- KEYS[1] leader lock; ARGV[1] our token; ARGV[2] lease in ms.
-- Returns 1 when renewed, 0 when the lock is gone or held by another.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
