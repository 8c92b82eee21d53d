-- Remove the users of one batch whose socket sets are gone, atomically,
-- and tell the realtime servers about each removal.
--
-- KEYS[1]    online set
-- KEYS[2]    leader lock
-- KEYS[3]    event stream in stream mode; otherwise KEYS[1] again, never touched
--            (a key of the script's own hash slot, for Redis Cluster)
-- KEYS[4..]  socket set of each user, in the order of ARGV[6..]
-- ARGV[1]    our leader token (fencing)
-- ARGV[2]    event mode: "none", "publish" or "stream"
-- ARGV[3]    publish channel
-- ARGV[4]    stream MAXLEN (approximate; "0" = no trimming)
-- ARGV[5]    TTL in ms to give socket sets that have none ("0" = only report)
-- ARGV[6..]  user IDs (arbitrary bytes)
--
-- C names these slots once, in reaper/reapcall.h (enum reap_key and
-- reap_arg, 0-based); tests/unit/test_reapcall.c checks they agree.
--
-- Returns { status, stale, nremoved, removed_id..., ghost_id... }:
-- status 0 = not leader (nothing was touched), 1 = done; stale = users
-- whose socket set was missing; the IDs this call actually removed (SREM
-- returned 1); then the users whose socket set exists without a TTL
-- ("ghosts": it would never expire, so they would be online for ever).
--
-- PTTL answers both questions in one call: -2 = no socket set, -1 = no TTL.
--
-- Check and removal run in one script, so a user who reconnects between
-- them cannot be lost; the token check means a paused or partitioned
-- ex-leader can never remove anything. An event goes out only when SREM
-- returned 1, so each real removal is announced exactly once, even with
-- two reapers racing.
--
-- Called with no IDs it removes nobody and only runs its checks: the
-- reaper does that before --once takes the lock and on becoming leader, so
-- a missing ACL permission shows before any pass.
local FIRST_ID = 6
local repair_ms = ARGV[5]
local mode = ARGV[2]

-- Redis checks every call of a script against the caller's ACL, and a
-- refusal after an SREM would leave that user removed with no event sent.
-- So every call this script makes is asked of redis.acl_check_cmd (Redis
-- 7.0; older servers skip this) before anything else, which also names the
-- command (Redis's own refusal inside a script does not), with the lease
-- scripts' PEXPIRE and DEL of the lock: a leader that could not keep or
-- give up its lease should not start removing.
local function denied(what, cmd, ...)
  local ok, allowed = pcall(redis.acl_check_cmd, cmd, ...)
  if not ok then
    return redis.error_reply('ERR Unknown Redis command called from script: ' .. what ..
      '; checked before any write, nothing changed')
  end
  if not allowed then
    return redis.error_reply('NOPERM this user may not run ' .. what ..
      '; checked before any write, nothing changed')
  end
end

local function check_acl()
  local bad = denied('GET on ' .. KEYS[2], 'get', KEYS[2])
    or denied('TYPE on ' .. KEYS[1], 'type', KEYS[1])
    or denied('SREM on ' .. KEYS[1], 'srem', KEYS[1], 'x')
    or denied('PEXPIRE on ' .. KEYS[2], 'pexpire', KEYS[2], '1')
    or denied('DEL on ' .. KEYS[2], 'del', KEYS[2])
  -- EVALSHA is refused unless every key it declares is allowed, so the
  -- first socket set stands for the others: one check, not one per user.
  if #KEYS >= 4 then
    bad = bad or denied('PTTL on a socket set', 'pttl', KEYS[4])
    if repair_ms ~= '0' then
      bad = bad or denied('PEXPIRE on a socket set', 'pexpire', KEYS[4], repair_ms)
    end
  end
  if mode ~= 'none' then
    bad = bad or denied('TIME', 'time')
  end
  if mode == 'publish' then
    bad = bad or denied('PUBLISH to ' .. ARGV[3], 'publish', ARGV[3], 'x')
  elseif mode == 'stream' then
    bad = bad or denied('TYPE on ' .. KEYS[3], 'type', KEYS[3])
    bad = bad or denied('XADD to ' .. KEYS[3], 'xadd', KEYS[3], 'MAXLEN', '~', '1', '*',
      'user_id', 'x', 'event', 'x')
  end
  return bad
end

if redis.acl_check_cmd then
  local bad = check_acl()
  if bad then
    return bad
  end
end

if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return { 0, 0 }
end

-- Redis does not roll a script back: a write that fails after an SREM
-- would leave that user removed with no event sent and no reply to count
-- it. So everything that can make a later write fail is checked before
-- the first one, and the script refuses with nothing changed: the online
-- set must be a set and, in stream mode, the stream a stream (either may
-- be absent). PUBLISH and PEXPIRE cannot fail on a key's type, and an
-- out-of-memory refusal can only hit the first write of a script.
local function wrong_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= want and t ~= 'none' then
    return t
  end
end
local bad = wrong_type(KEYS[1], 'set')
if bad then
  return redis.error_reply('WRONGTYPE online set ' .. KEYS[1] .. ' holds a ' .. bad ..
    ', not a set; nothing changed')
end
if mode == 'stream' then
  bad = wrong_type(KEYS[3], 'stream')
  if bad then
    return redis.error_reply('WRONGTYPE events stream ' .. KEYS[3] .. ' holds a ' .. bad ..
      ', not a stream; nothing changed')
  end
end

-- JSON string body for any byte string. Valid UTF-8 passes through (JSON
-- text is Unicode); control bytes, quotes and backslashes are escaped.
-- Returns the body and whether the bytes were valid UTF-8.
local function json_body(s)
  local out, i, n, valid = {}, 1, #s, true
  while i <= n do
    local c = string.byte(s, i)
    local len = 0
    if c < 0x80 then
      len = 1
    elseif c >= 0xc2 and c <= 0xdf then
      len = 2
    elseif c >= 0xe0 and c <= 0xef then
      len = 3
    elseif c >= 0xf0 and c <= 0xf4 then
      len = 4
    end
    local ok = len > 0 and i + len - 1 <= n
    for j = i + 1, i + len - 1 do
      if not ok then break end
      local cc = string.byte(s, j)
      ok = cc >= 0x80 and cc <= 0xbf
    end
    if ok and len == 3 then
      local c2 = string.byte(s, i + 1)
      ok = not (c == 0xe0 and c2 < 0xa0) and not (c == 0xed and c2 > 0x9f)
    elseif ok and len == 4 then
      local c2 = string.byte(s, i + 1)
      ok = not (c == 0xf0 and c2 < 0x90) and not (c == 0xf4 and c2 > 0x8f)
    end
    if not ok then
      -- Not UTF-8: show the byte as U+00XX; user_id_base64 carries the exact bytes.
      valid = false
      out[#out + 1] = string.format('\\u%04x', c)
      i = i + 1
    elseif len > 1 then
      out[#out + 1] = string.sub(s, i, i + len - 1)
      i = i + len
    elseif c == 0x22 then
      out[#out + 1] = '\\"'; i = i + 1
    elseif c == 0x5c then
      out[#out + 1] = '\\\\'; i = i + 1
    elseif c < 0x20 or c == 0x7f then
      out[#out + 1] = string.format('\\u%04x', c); i = i + 1
    else
      out[#out + 1] = string.char(c); i = i + 1
    end
  end
  return table.concat(out), valid
end

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = string.byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for k = 3, 0, -1 do
      local idx = math.floor(v / 64 ^ k) % 64
      chars[#chars + 1] = string.sub(B64, idx + 1, idx + 1)
    end
    if not b then chars[3] = '=' end
    if not c then chars[4] = '=' end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

local function event(id, ts)
  local body, valid = json_body(id)
  local extra = ''
  if not valid then
    extra = ',"user_id_base64":"' .. base64(id) .. '"'
  end
  return '{"user_id":"' .. body .. '"' .. extra ..
    ',"status":"offline","reason":"stale","ts":' .. ts .. '}'
end

local ts
local out = { 1, 0, 0 }
local ghosts = {}
local stale = 0
for i = FIRST_ID, #ARGV do
  local key = KEYS[i - 2]
  local ttl = redis.call('PTTL', key)
  if ttl == -1 then
    ghosts[#ghosts + 1] = ARGV[i]
    if repair_ms ~= '0' then
      redis.call('PEXPIRE', key, repair_ms)
    end
  elseif ttl == -2 then
    stale = stale + 1
    if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then
      out[#out + 1] = ARGV[i]
      if mode ~= 'none' then
        if not ts then
          local t = redis.call('TIME')
          ts = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        end
        local payload = event(ARGV[i], ts)
        if mode == 'publish' then
          redis.call('PUBLISH', ARGV[3], payload)
        elseif ARGV[4] ~= '0' then
          redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*',
            'user_id', ARGV[i], 'event', payload)
        else
          redis.call('XADD', KEYS[3], '*', 'user_id', ARGV[i], 'event', payload)
        end
      end
    end
  end
end
out[2] = stale
out[3] = #out - 3
for _, g in ipairs(ghosts) do
  out[#out + 1] = g
end
return out
