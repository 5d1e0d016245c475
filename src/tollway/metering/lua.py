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

_HOLD_NAME = """
-- A money hold is one entry of the `holds` sorted set, scored by its deadline and named by what it holds,
-- "<project units>\\n<key units>\\n<project>\\n<key>\\n<rid>": settle gives it back by removing that
-- name (ZREM says whether reaping took it first), and reaping reads the amounts from the name.
local function hold_name(pa, ka, project, key, rid)
  return pa .. '\\n' .. ka .. '\\n' .. project .. '\\n' .. key .. '\\n' .. rid
end
"""

WINDOW_MS = 60_000  # the sliding window of RPM and TPM limits
KEEP_MS = 3 * WINDOW_MS  # how long a busy window's keys live between pushes of their expiry (ADMIT)

# The window as a number and, for redis.call, as text written into the source: constant strings cost
# nothing per call, where int() would format them on every one.
_COMMON = (
    _INT
    + _HOLD_NAME
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
  for _, name in ipairs(due) do
    local pa, ka, p, k = string.match(name, '^(%d+)\\n(%d+)\\n([^\\n]*)\\n([^\\n]*)\\n')
    if not pa then  -- named by its request id alone, its amounts in a hash: an earlier version's hold
      local h = prefix .. 'hold:' .. name
      local v = redis.call('HMGET', h, 'p', 'pa', 'k', 'ka')
      p, pa, k, ka = v[1] or '', v[2] or '0', v[3] or '', v[4] or '0'
      redis.call('DEL', h)
    end
    if pa ~= '0' and redis.call('EXISTS', prefix .. 'bal:' .. p) == 1 then
      redis.call('INCRBY', prefix .. 'bal:' .. p, pa)
    end
    if ka ~= '0' and redis.call('EXISTS', prefix .. 'kused:' .. k) == 1 then
      redis.call('DECRBY', prefix .. 'kused:' .. k, ka)
    end
  end
  if #due > 0 then redis.call('ZREM', holds, unpack(due)) end
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
-- Returns {code, retry_ms, requests limit, remaining, reset_ms, tokens limit, remaining, reset_ms, now_ms}
-- code: 0 admitted, 1 rate limited, 2 no credit, 3 spend cap, 4/5 seed the project/key money first
--
-- A scope's window is ONE sorted set, w:<name>, for both of its limits: an entry per admitted call,
-- scored by its admission time, named "<tokens>:<rid>" (the tokens it counts: reserved, then actual),
-- so that pruning reads the tokens leaving with the names, and RPM counts the entries. Its hash
-- wm:<name> keeps `s`, the tokens in the window, and `e`, when the keys' expiry is next pushed back.
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
    w = prefix .. 'w:' .. name, wm = prefix .. 'wm:' .. name, cz = prefix .. 'conc:' .. name,
    rpm = tonumber(rpm), tpm = tonumber(tpm), conc = tonumber(conc),
    count = 0, sum = 0, old = -1, refresh = true, pruned = false}
end

local function entry_tokens(name) return tonumber(string.match(name, '^(%-?%d+):')) end

-- Takes the entries that left the window out of it (500 a round: a window left idle may hold many),
-- and their tokens out of its total; reads what the headers need. Names only, no scores: Redis writes
-- each score as a double with printf (~2,000 instructions, and as many again for Lua to read it back).
-- The entries leaving are the lowest ranks, so they go by rank, not by name.
local function prune(s)
  local sum, exp = 0, nil
  if s.tpm >= 0 then
    local v = redis.call('HMGET', s.wm, 's', 'e')
    sum, exp = tonumber(v[1] or '0'), v[2]
  end
  while true do
    local old = redis.call('ZRANGEBYSCORE', s.w, '-inf', edge_s, 'LIMIT', '0', '500')
    local n = #old
    if n == 0 then break end
    if s.tpm >= 0 then
      for j = 1, n do sum = sum - entry_tokens(old[j]) end
    end
    redis.call('ZREMRANGEBYRANK', s.w, '0', int(n - 1))
    s.pruned = true
    if n < 500 then break end
  end
  s.sum, s.count = sum, redis.call('ZCARD', s.w)
  -- An empty set is gone (Redis deletes it), and the ZADD that makes it anew leaves it without an
  -- expiry: set both keys' then, so that the set never outlives the total it is counted against. (An
  -- admit that empties a window is past `e` anyway; this covers a set lost otherwise, evicted say.)
  s.refresh = not exp or now >= tonumber(exp) or s.count == 0
  if s.count > 0 then
    s.old = tonumber(redis.call('ZRANGE', s.w, '0', '0', 'WITHSCORES')[2])
  end
end

local function tokens_free_in(s, total, allowed)
  if allowed < 0 then return WINDOW end
  local entries = redis.call('ZRANGE', s.w, '0', '-1', 'WITHSCORES')
  for j = 1, #entries, 2 do
    total = total - entry_tokens(entries[j])
    if total <= allowed then return tonumber(entries[j + 1]) + WINDOW - now end
  end
  return WINDOW
end

-- prunes the scope's window, records what the headers need, returns ms until the call would fit
local function wait_for(s)
  local wait = 0
  if s.rpm >= 0 or s.tpm >= 0 then
    prune(s)
    if s.rpm >= 0 and s.count >= s.rpm then
      wait = WINDOW
      if s.rpm > 0 then
        local e = redis.call('ZRANGE', s.w, int(s.count - s.rpm), int(s.count - s.rpm), 'WITHSCORES')
        wait = tonumber(e[2]) + WINDOW - now
      end
    end
    if s.tpm >= 0 and s.sum + tokens > s.tpm then
      wait = math.max(wait, tokens_free_in(s, s.sum, s.tpm - tokens))
    end
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
    if s.rpm >= 0 then consider(1, s.rpm, s.rpm - s.count, reset(s.old)) end
    if s.tpm >= 0 then consider(4, s.tpm, s.tpm - s.sum, reset(s.old)) end
  end
  return best
end

-- A refused call takes nothing, but what pruning took out of a window's total must be written back.
local function refuse(code, ...)
  for _, s in ipairs(scopes) do
    if s.pruned and s.tpm >= 0 then redis.call('HSET', s.wm, 's', int(s.sum)) end
  end
  return {code, ...}
end

local wait = 0
for _, s in ipairs(scopes) do wait = math.max(wait, wait_for(s)) end
if wait > 0 then
  local b = snapshot()
  return refuse(1, wait, b[1], b[2], b[3], b[4], b[5], b[6])
end

local held_p, held_k = '0', '0'
if enforced then
  if redis.call('DECRBY', bal, cost) < 0 then
    redis.call('INCRBY', bal, cost)
    return refuse(2)
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
    return refuse(3)
  end
  held_k = cost
end

-- A window's keys must outlive their newest entry by a window. With a TPM limit, their expiry is pushed
-- back to KEEP_S (three windows) only once a window (`e` says when next), not on every admit: two
-- PEXPIREs saved on almost every call, for keys that outlive an idle scope by up to three windows.
-- Without one there is no hash, and the set's expiry is set to a window on every admit.
for _, s in ipairs(scopes) do
  if s.tpm >= 0 then
    redis.call('ZADD', s.w, now_s, tokens_s .. ':' .. rid)
    s.sum = s.sum + tokens
    if s.refresh then
      redis.call('HSET', s.wm, 's', int(s.sum), 'e', int(now + WINDOW))
      redis.call('PEXPIRE', s.w, KEEP_S)
      redis.call('PEXPIRE', s.wm, KEEP_S)
    elseif tokens ~= 0 or s.pruned then
      redis.call('HSET', s.wm, 's', int(s.sum))
    end
  elseif s.rpm >= 0 then
    redis.call('ZADD', s.w, now_s, '0:' .. rid)
    redis.call('PEXPIRE', s.w, WINDOW_S)
  end
  if s.rpm >= 0 or s.tpm >= 0 then
    s.count = s.count + 1
    if s.old < 0 then s.old = now end
  end
  if s.conc >= 0 then
    deadline_s = deadline_s or int(now + max_call)
    redis.call('ZADD', s.cz, deadline_s, rid)
    redis.call('PEXPIRE', s.cz, int(max_call + 1000))
  end
end
if held_p ~= '0' or held_k ~= '0' then
  local hold = hold_name(held_p, held_k, ARGV[9], ARGV[10], rid)
  redis.call('ZADD', prefix .. 'holds', deadline_s or int(now + max_call), hold)
end
local b = snapshot()
return {0, 0, b[1], b[2], b[3], b[4], b[5], b[6], now}
"""
)

SETTLE = (
    _INT
    + _HOLD_NAME
    + """
-- ARGV: rid, actual tokens, cost_units, ledger row, reserved tokens, admission time (ms), project hold,
--       key hold (units admit held), prefix, done_ttl_ms, project, key, then per scope the call was
--       admitted on: its name and what admit took there ("c": a concurrency slot, "t": a TPM
--       reservation, "-": neither); per-call values first, as in ADMIT
local rid, actual, cost, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[9]
-- a retried pipeline may deliver the same settlement twice: the first one wins
if not redis.call('SET', prefix .. 'done:' .. rid, '1', 'NX', 'PX', ARGV[10]) then return 0 end

local reserved = tonumber(ARGV[5])
for i = 13, #ARGV, 2 do
  local name, took = ARGV[i], ARGV[i + 1]
  if string.find(took, 'c', 1, true) then redis.call('ZREM', prefix .. 'conc:' .. name, rid) end
  if actual ~= reserved and string.find(took, 't', 1, true) then
    local w, settled = prefix .. 'w:' .. name, ARGV[2] .. ':' .. rid
    -- The entry's estimate becomes the actual count, at the same admission time, if it is still in the
    -- window. The new entry goes in before the old one goes out: a set that ZREM empties is deleted,
    -- and one made anew by ZADD would have lost its expiry.
    redis.call('ZADD', w, ARGV[6], settled)
    if redis.call('ZREM', w, ARGV[5] .. ':' .. rid) == 1 then
      redis.call('HINCRBY', prefix .. 'wm:' .. name, 's', int(actual - reserved))
    else
      redis.call('ZREM', w, settled)  -- it had left the window: its tokens count no more
    end
  end
end

local bal = prefix .. 'bal:' .. ARGV[11]
local kspend, kused = prefix .. 'kspend:' .. ARGV[12], prefix .. 'kused:' .. ARGV[12]
local held_p, held_k = ARGV[7], ARGV[8]
if (held_p ~= '0' or held_k ~= '0')
    and redis.call('ZREM', prefix .. 'holds', hold_name(held_p, held_k, ARGV[11], ARGV[12], rid)) == 0 then
  held_p, held_k = '0', '0'  -- reaped already: given back then
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
