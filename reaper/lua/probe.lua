-- Check the socket sets of the guard's sample, read-only, in one call.
--
-- KEYS[1..]  socket set of each sampled user
--
-- Returns { missing, ghost_index... }: how many socket sets are gone, and
-- the positions in KEYS of those that exist without a TTL ("ghosts": they
-- would never expire). PTTL answers both: -2 = gone, -1 = no TTL.
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
