-- Remove the users of one batch whose socket sets are gone, atomically.
--
-- KEYS[1]    online set
-- KEYS[2]    leader lock
-- KEYS[3..]  socket set of each user, in the order of ARGV[2..]
-- ARGV[1]    our leader token (fencing)
-- ARGV[2..]  user IDs (arbitrary bytes)
--
-- Returns { status, stale, removed_id... }: status 0 = not leader (nothing
-- was touched), 1 = done; stale = users whose socket set was missing;
-- then the IDs this call actually removed (SREM returned 1).
--
-- Check and removal run in one script, so a user who reconnects between
-- them cannot be lost; the token check means a paused or partitioned
-- ex-leader can never remove anything.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return { 0, 0 }
end

local out = { 1, 0 }
local stale = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    stale = stale + 1
    if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then
      out[#out + 1] = ARGV[i]
    end
  end
end
out[2] = stale
return out
