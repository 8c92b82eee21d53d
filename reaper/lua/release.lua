-- Give up leadership, only if the lock is still ours.
-- KEYS[1] leader lock; ARGV[1] our token. Returns 1 when deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
