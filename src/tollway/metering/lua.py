"""The Redis side of the scale-out meter: Lua scripts, each one atomic on the server.

Money is integer units of 1e-10 dollars moved only with INCRBY/DECRBY (Lua numbers are doubles; Redis
integers are exact int64). Balance checks are take-then-return: DECRBY first, and give it back if the
result is negative, so the comparison is on the sign of an exact integer.

Keys are built inside the scripts from the prefix (fewer arguments to encode on every call, and a
hold's hash is only known while reaping), so these scripts need a single Redis instance, or a cluster
whose prefix pins every key to one slot (e.g. "{tollway}:").
"""

from __future__ import annotations

_INT = """
-- A whole number as Redis reads it. Not tostring: Lua writes -0 as "-0", which Redis refuses as an
-- integer, and writes every number with printf's "%.14g", whose double formatting costs ~2,000
-- instructions a number ("%d" a fraction of that): the scripts pass times and counts as these strings.
local function int(x) return string.format('%d', x) end
"""

WINDOW_MS = 60_000  # the sliding window of RPM and TPM limits
KEEP_MS = 3 * WINDOW_MS  # how long a busy window's keys live between pushes of their expiry (ADMIT)

# The window as a number and, for redis.call, as text written into the source: constant strings cost
# nothing per call, where int() would format them on every one.
_COMMON = (
    _INT
    + f"""
local WINDOW, WINDOW_S, KEEP_S = {WINDOW_MS}, '{WINDOW_MS}', '{KEEP_MS}'
"""
    + """
local function clock(arg)
  local now = tonumber(arg)
  if now >= 0 then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Holds past their deadline belong to calls that will never settle here (their replica died):
-- give the money back to the project balance and the key's cap.
local function reap(holds, prefix, now_s, count)  -- now_s: the time as int() writes it
  local due = redis.call('ZRANGEBYSCORE', holds, '-inf', now_s, 'LIMIT', '0', int(count))
  for _, id in ipairs(due) do
    local h = prefix .. 'hold:' .. id
    local v = redis.call('HMGET', h, 'p', 'pa', 'k', 'ka')
    if v[1] and v[2] ~= '0' and redis.call('EXISTS', prefix .. 'bal:' .. v[1]) == 1 then
      redis.call('INCRBY', prefix .. 'bal:' .. v[1], v[2])
    end
    if v[3] and v[4] ~= '0' and redis.call('EXISTS', prefix .. 'kused:' .. v[3]) == 1 then
      redis.call('DECRBY', prefix .. 'kused:' .. v[3], v[4])
    end
    redis.call('DEL', h)
    redis.call('ZREM', holds, id)
  end
  return #due
end
"""
)

ADMIT = (
    _COMMON
    + """
-- Keys are built here from the prefix (fewer arguments to encode and send on every call).
-- ARGV: rid, tokens, cost_units, now_ms|-1, max_call_ms, enforced, cap_units|'', prefix, project, key,
--       then per limited scope: name ("k:<key>", "p:<project>", "m:<project>:<model>"), "rpm tpm conc"
--       (-1 = no limit). What changes per call comes first: the caller keeps the rest encoded.
-- Returns {code, retry_ms, requests limit, remaining, reset_ms, tokens limit, remaining, reset_ms}
-- code: 0 admitted, 1 rate limited, 2 no credit, 3 spend cap, 4/5 seed the project/key money first
local rid, tokens, cost = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local now = clock(ARGV[4])
local max_call, enforced, cap, prefix = tonumber(ARGV[5]), ARGV[6] == '1', ARGV[7], ARGV[8]
local bal, kused = prefix .. 'bal:' .. ARGV[9], prefix .. 'kused:' .. ARGV[10]
local edge = now - WINDOW
local now_s, edge_s, tokens_s, deadline_s = int(now), int(edge), ARGV[2], nil

if redis.call('EXISTS', bal, prefix .. 'kspend:' .. ARGV[10]) < 2 then  -- one call when both are there
  if redis.call('EXISTS', bal) == 0 then return {4} end
  return {5}
end
reap(prefix .. 'holds', prefix, now_s, 20)

local scopes = {}
for i = 11, #ARGV, 2 do
  local name = ARGV[i]
  local rpm, tpm, conc = string.match(ARGV[i + 1], '^(%-?%d+) (%-?%d+) (%-?%d+)$')
  scopes[#scopes + 1] = {
    rz = prefix .. 'rpm:' .. name, tz = prefix .. 'tpm:' .. name, th = prefix .. 'tpmv:' .. name,
    cz = prefix .. 'conc:' .. name, rpm = tonumber(rpm), tpm = tonumber(tpm), conc = tonumber(conc),
    count = 0, sum = 0, r_old = -1, t_old = -1, refresh = true}
end

local function oldest(z)  -- admission time of the oldest entry, -1 when empty
  local e = redis.call('ZRANGE', z, '0', '0', 'WITHSCORES')
  if #e == 0 then return -1 end
  return tonumber(e[2])
end

-- Takes the entries that left the window out of it and out of its total, 500 a round (a window left
-- idle may hold many). Members only, no scores: Redis writes each score as a double with printf
-- (~2,000 instructions, and as many again for Lua to read it back). The total and `_exp` (when the
-- keys' expiry is next pushed back, see KEEP_S) come with the pruned tokens in one HMGET, and the new
-- total from the HINCRBY that subtracts them.
local function prune_tokens(s)
  local sum, exp
  while true do
    local old = redis.call('ZRANGEBYSCORE', s.tz, '-inf', edge_s, 'LIMIT', '0', '500')
    local n = #old
    old[n + 1], old[n + 2] = '_sum', '_exp'
    local v = redis.call('HMGET', s.th, unpack(old))
    sum, exp = tonumber(v[n + 1] or '0'), v[n + 2]
    if n == 0 then break end
    local total = 0
    for j = 1, n do
      if v[j] then total = total + tonumber(v[j]) end
    end
    sum = redis.call('HINCRBY', s.th, '_sum', int(-total))
    old[n + 1], old[n + 2] = nil, nil
    redis.call('HDEL', s.th, unpack(old))
    redis.call('ZREM', s.tz, unpack(old))
    if n < 500 then break end
  end
  s.sum = sum
  s.refresh = not exp or now >= tonumber(exp)
  s.t_old = oldest(s.tz)
end

local function tokens_free_in(s, total, allowed)
  if allowed < 0 then return WINDOW end
  local entries = redis.call('ZRANGE', s.tz, '0', '-1', 'WITHSCORES')
  for j = 1, #entries, 2 do
    total = total - tonumber(redis.call('HGET', s.th, entries[j]) or '0')
    if total <= allowed then return tonumber(entries[j + 1]) + WINDOW - now end
  end
  return WINDOW
end

-- prunes the scope's windows, records what the headers need, returns ms until the call would fit
local function wait_for(s)
  local wait = 0
  if s.rpm >= 0 then
    redis.call('ZREMRANGEBYSCORE', s.rz, '-inf', edge_s)
    s.count = redis.call('ZCARD', s.rz)
    s.r_old = oldest(s.rz)
    if s.count >= s.rpm then
      wait = WINDOW
      if s.rpm > 0 then
        local e = redis.call('ZRANGE', s.rz, s.count - s.rpm, s.count - s.rpm, 'WITHSCORES')
        wait = tonumber(e[2]) + WINDOW - now
      end
    end
  end
  if s.tpm >= 0 then
    prune_tokens(s)
    if s.sum + tokens > s.tpm then wait = math.max(wait, tokens_free_in(s, s.sum, s.tpm - tokens)) end
  end
  if s.conc >= 0 then
    redis.call('ZREMRANGEBYSCORE', s.cz, '-inf', now_s)  -- slots of calls past their deadline
    if redis.call('ZCARD', s.cz) >= s.conc then wait = math.max(wait, 1000) end
  end
  return wait
end

local function reset(t) if t < 0 then return 0 end return t + WINDOW - now end

-- the most restrictive window of each family: fewest left, then slowest to recover, then smallest
local function snapshot()
  local best = {-1, 0, 0, -1, 0, 0}
  local function consider(i, limit, left, r)
    local b, br = best[i + 1], best[i + 2]
    if best[i] < 0 or left < b or (left == b and (r > br or (r == br and limit < best[i]))) then
      best[i], best[i + 1], best[i + 2] = limit, left, r
    end
  end
  for _, s in ipairs(scopes) do
    if s.rpm >= 0 then consider(1, s.rpm, s.rpm - s.count, reset(s.r_old)) end
    if s.tpm >= 0 then consider(4, s.tpm, s.tpm - s.sum, reset(s.t_old)) end
  end
  return best
end

local wait = 0
for _, s in ipairs(scopes) do wait = math.max(wait, wait_for(s)) end
if wait > 0 then
  local b = snapshot()
  return {1, wait, b[1], b[2], b[3], b[4], b[5], b[6]}
end

local held_p, held_k = '0', '0'
if enforced then
  if redis.call('DECRBY', bal, cost) < 0 then
    redis.call('INCRBY', bal, cost)
    return {2}
  end
  held_p = cost
end
-- a > b for integers written in decimal: exact at any size (Lua numbers are doubles; Redis integers
-- are int64), where a double comparison is exact only below 2^53 (15 digits are)
local function above(a, b)
  if #a <= 15 and #b <= 15 then return tonumber(a) > tonumber(b) end
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return nb end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end  -- both negative: compare magnitudes swapped
  if #a ~= #b then return #a > #b end
  return a > b
end

-- INCRBY's reply reaches Lua as a double: exact below 2^53, beyond that read back as a string
local function over_cap(used)
  if #cap <= 15 and used > -9e15 and used < 9e15 then return used > tonumber(cap) end
  return above(redis.call('GET', kused), cap)
end

if cap ~= '' then
  if over_cap(redis.call('INCRBY', kused, cost)) then
    redis.call('DECRBY', kused, cost)
    if held_p ~= '0' then redis.call('INCRBY', bal, held_p) end
    return {3}
  end
  held_k = cost
end

-- A scope's window keys must outlive their newest entry by a window. With a TPM limit, their expiry is
-- pushed back to KEEP_S (three windows) only once a window (the hash's `_exp` says when next), not on
-- every admit: three PEXPIREs saved on almost every call, for keys that outlive an idle scope by up to
-- three windows.
for _, s in ipairs(scopes) do
  if s.rpm >= 0 then
    redis.call('ZADD', s.rz, now_s, rid)
    if s.tpm < 0 then
      redis.call('PEXPIRE', s.rz, WINDOW_S)
    elseif s.refresh then
      redis.call('PEXPIRE', s.rz, KEEP_S)
    end
    s.count = s.count + 1
    if s.r_old < 0 then s.r_old = now end
  end
  if s.tpm >= 0 then
    redis.call('ZADD', s.tz, now_s, rid)
    if s.refresh then
      redis.call('HSET', s.th, rid, tokens_s, '_exp', int(now + WINDOW))
      redis.call('PEXPIRE', s.tz, KEEP_S)
      redis.call('PEXPIRE', s.th, KEEP_S)
    else
      redis.call('HSET', s.th, rid, tokens_s)
    end
    redis.call('HINCRBY', s.th, '_sum', tokens_s)
    s.sum = s.sum + tokens
    if s.t_old < 0 then s.t_old = now end
  end
  if s.conc >= 0 then
    deadline_s = deadline_s or int(now + max_call)
    redis.call('ZADD', s.cz, deadline_s, rid)
    redis.call('PEXPIRE', s.cz, int(max_call + 1000))
  end
end
if held_p ~= '0' or held_k ~= '0' then
  redis.call('HSET', prefix .. 'hold:' .. rid, 'p', ARGV[9], 'pa', held_p, 'k', ARGV[10], 'ka', held_k)
  redis.call('ZADD', prefix .. 'holds', deadline_s or int(now + max_call), rid)
end
local b = snapshot()
return {0, 0, b[1], b[2], b[3], b[4], b[5], b[6]}
"""
)

SETTLE = (
    _INT
    + """
-- ARGV: rid, actual tokens, cost_units, ledger row, prefix, done_ttl_ms, project, key,
--       then per scope the call was admitted on: its name and what admit took there ("c": a
--       concurrency slot, "t": a TPM reservation, "-": neither); per-call values first, as in ADMIT
local rid, actual, cost, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[5]
-- a retried pipeline may deliver the same settlement twice: the first one wins
if not redis.call('SET', prefix .. 'done:' .. rid, '1', 'NX', 'PX', ARGV[6]) then return 0 end

for i = 9, #ARGV, 2 do
  local name, took = ARGV[i], ARGV[i + 1]
  if string.find(took, 'c', 1, true) then redis.call('ZREM', prefix .. 'conc:' .. name, rid) end
  if string.find(took, 't', 1, true) then
    local th = prefix .. 'tpmv:' .. name
    local reserved = redis.call('HGET', th, rid)
    if reserved then  -- still in the window: the estimate becomes the actual count
      redis.call('HSET', th, rid, ARGV[2])
      redis.call('HINCRBY', th, '_sum', int(actual - tonumber(reserved)))
    end
  end
end

local bal = prefix .. 'bal:' .. ARGV[7]
local kspend, kused = prefix .. 'kspend:' .. ARGV[8], prefix .. 'kused:' .. ARGV[8]
local hold = prefix .. 'hold:' .. rid
local v = redis.call('HMGET', hold, 'pa', 'ka')
local held_p, held_k = v[1] or '0', v[2] or '0'  -- '0' when reaped already: it was given back then
if v[1] then
  redis.call('DEL', hold)
  redis.call('ZREM', prefix .. 'holds', rid)
end
-- add - sub to an integer key in one INCRBY when both have at most 15 digits (Lua's doubles hold those,
-- and their difference, exactly); else in two calls, exact whatever the size
local function move(k, add, sub)
  if #add <= 15 and #sub <= 15 then
    local delta = tonumber(add) - tonumber(sub)
    if delta ~= 0 then redis.call('INCRBY', k, int(delta)) end
    return
  end
  if add ~= '0' then redis.call('INCRBY', k, add) end
  if sub ~= '0' then redis.call('DECRBY', k, sub) end
end
local live = redis.call('EXISTS', bal, kspend)  -- one call when both are there (or neither)
local has_bal, has_key = live == 2, live == 2
if live == 1 then
  has_bal = redis.call('EXISTS', bal) == 1
  has_key = not has_bal
end
if has_bal then move(bal, held_p, cost) end
if has_key then
  if cost ~= '0' then redis.call('INCRBY', kspend, cost) end
  move(kused, cost, held_k)
end
redis.call('XADD', prefix .. 'ledger', '*', 'r', ARGV[4])
return 1
"""
)

REAP = (
    _COMMON
    + """
-- KEYS: holds; ARGV: now_ms|-1, prefix, max count
return reap(KEYS[1], ARGV[2], int(clock(ARGV[1])), tonumber(ARGV[3]))
"""
)

GRANT = """
-- KEYS: bal; ARGV: amount_units, durable balance units (used when the live balance does not exist yet)
-- returns the new live balance as a string: a Lua number would round it to a double
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return redis.call('GET', KEYS[1])
"""
