--[[
Baton admission: every limit of a request checked, and its hold placed, in one
atomic step. gateway/admission.py builds KEYS and ARGV and runs it on Redis, or
in process for the embedded default (billing/quota/local.py, on lupa): this
script is the only implementation of the quota algorithm.

All keys of a request share the team's hash tag ("bq:{<team id>}:..."), so the
script also runs on Redis Cluster. Times are the Redis server's (TIME), so
the clocks of the Baton processes do not matter. Money is in integer nanos of
the team's currency.

Per scope (the team, then the API key), seven keys:
  h     ZSET  hold id -> expiry (ms). Its size is the number of requests in
              flight; entries past their expiry are holds a crashed process
              left behind, and are pruned (with their amounts) on every call.
  a     HASH  hold id -> amount held; field "_sum" is the total held.
  rpm   HASH  token bucket {v = level, t = last update ms}
  tpm   HASH  token bucket
  d, m  HASH  spend of the current day / month {n = nanos, t = first write ms,
              s = seeded from the database}
  l     HASH  lifetime spend, same fields
Then two bucket keys (rpm, tpm) per provider credential with limits.

Buckets hold up to the limit and refill by the limit per window (a minute in
production): bursts up to the limit, the limit per window on average. An
absent bucket is full. A bucket can go below zero when a request turns out
to use more tokens than it reserved; later requests then wait the debt off.

Modes (ARGV[1]):
  admit   ARGV: hold id, hold ttl ms, cost, tokens, window ms, prepaid (0/1),
          granted credit, n credentials, all candidates limited (0/1), then
          per scope rpm, tpm, concurrency, day, month, life caps (-1 = none),
          then per credential rpm, tpm caps.
          -> {1, headers(12), exhausted credential index, wait ms, ...}
          -> {0, reason, scope, a, b, c, d, headers(12)}
  settle  ARGV: hold id, cost, token refund, window ms, day ttl s, month ttl s,
          per scope tpm cap, credential rpm cap, tpm cap, tokens used.
          Releases the hold, gives back reserved tokens the request did not
          use, and adds the real cost to the spend counters.
  peek    ARGV: window ms, per scope rpm, tpm caps
          -> per scope {in flight, held, rpm level, tpm level, day, month, life}
  probe   KEYS: spend counters -> per counter {seeded, first write ms}
  seed    KEYS: spend counters; ARGV: amount, ttl s per counter. Adds each
          amount once per counter (the "s" flag), for spend Redis never saw.
]]

local mode = ARGV[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local SCOPE_KEYS = 7
local SCOPES = 2

local function num(value)
  return tonumber(value) or 0
end

local function int(value)
  return string.format('%d', value)
end

local function prune(holds, amounts)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  if #expired == 0 then
    return
  end
  local total = 0
  for first = 1, #expired, 500 do
    local chunk = {unpack(expired, first, math.min(first + 499, #expired))}
    local values = redis.call('HMGET', amounts, unpack(chunk))
    for i = 1, #chunk do
      total = total + num(values[i])
    end
    redis.call('HDEL', amounts, unpack(chunk))
  end
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  if total ~= 0 then
    redis.call('HINCRBY', amounts, '_sum', int(-total))
  end
end

local function level(key, cap, window)
  local state = redis.call('HMGET', key, 'v', 't')
  if not state[1] then
    return cap
  end
  local value = tonumber(state[1]) + (now - tonumber(state[2])) * cap / window
  if value > cap then
    value = cap
  end
  return value
end

local function store(key, value, cap, window)
  redis.call('HSET', key, 'v', tostring(value), 't', int(now))
  redis.call('PEXPIRE', key, math.ceil((cap - value) * window / cap) + 1000)
end

local function reset_ms(value, cap, window)
  if value >= cap then
    return 0
  end
  return math.ceil((cap - value) * window / cap)
end

local function scope_keys(s)
  local k = (s - 1) * SCOPE_KEYS
  return {
    holds = KEYS[k + 1], amounts = KEYS[k + 2], rpm = KEYS[k + 3], tpm = KEYS[k + 4],
    day = KEYS[k + 5], month = KEYS[k + 6], life = KEYS[k + 7],
  }
end

local function spent(key)
  return num(redis.call('HGET', key, 'n'))
end

if mode == 'admit' then
  local hold_id = ARGV[2]
  local ttl = num(ARGV[3])
  local cost = num(ARGV[4])
  local tokens = num(ARGV[5])
  local window = num(ARGV[6])
  local prepaid = ARGV[7] == '1'
  local granted = num(ARGV[8])
  local ncred = num(ARGV[9])
  local all_limited = ARGV[10] == '1'
  local scopes = {}
  local headers = {}
  for s = 1, SCOPES do
    local sc = scope_keys(s)
    local a = 11 + (s - 1) * 6
    sc.rpm_cap = num(ARGV[a])
    sc.tpm_cap = num(ARGV[a + 1])
    sc.conc = num(ARGV[a + 2])
    sc.caps = {num(ARGV[a + 3]), num(ARGV[a + 4]), num(ARGV[a + 5])}
    prune(sc.holds, sc.amounts)
    sc.held = num(redis.call('HGET', sc.amounts, '_sum'))
    sc.active = redis.call('ZCARD', sc.holds)
    if sc.rpm_cap > 0 then
      sc.rpm_level = level(sc.rpm, sc.rpm_cap, window)
    end
    if sc.tpm_cap > 0 then
      sc.tpm_level = level(sc.tpm, sc.tpm_cap, window)
    end
    scopes[s] = sc
  end

  local function header_values(consumed)
    local out = {}
    for s = 1, SCOPES do
      local sc = scopes[s]
      for _, kind in ipairs({'rpm', 'tpm'}) do
        local cap = sc[kind .. '_cap']
        if cap > 0 then
          local value = sc[kind .. '_level']
          if consumed then
            value = value - (kind == 'rpm' and 1 or tokens)
          end
          out[#out + 1] = cap
          out[#out + 1] = math.max(0, math.floor(value))
          out[#out + 1] = reset_ms(value, cap, window)
        else
          out[#out + 1] = -1
          out[#out + 1] = -1
          out[#out + 1] = -1
        end
      end
    end
    return out
  end

  local function refuse(reason, scope, a, b, c, d)
    local reply = {0, reason, scope, a, b, c, d}
    for _, value in ipairs(header_values(false)) do
      reply[#reply + 1] = value
    end
    return reply
  end

  -- Money first: a spent budget is the real reason even when a rate limit
  -- would also refuse, and waiting does not help. "hard" says whether the
  -- request could not fit even with nothing else in flight.
  local counters = {'day', 'month', 'life'}
  for s = SCOPES, 1, -1 do
    local sc = scopes[s]
    for p = 1, 3 do
      local cap = sc.caps[p]
      if cap >= 0 then
        local used = spent(sc[counters[p]])
        if used + sc.held >= cap or used + sc.held + cost > cap then
          local hard = (used >= cap or used + cost > cap) and 1 or 0
          return refuse('budget', s, p, cap, used, hard)
        end
      end
    end
  end
  if prepaid then
    local team = scopes[1]
    local balance = granted - spent(team.life)
    if balance - team.held <= 0 or balance - team.held - cost < 0 then
      local hard = (balance <= 0 or balance - cost < 0) and 1 or 0
      return refuse('credit', 1, 0, balance, team.held, hard)
    end
  end
  for s = SCOPES, 1, -1 do
    local sc = scopes[s]
    if sc.conc >= 0 and sc.active + 1 > sc.conc then
      return refuse('concurrency', s, sc.conc, sc.active, 1000, 0)
    end
  end
  for s = SCOPES, 1, -1 do
    local sc = scopes[s]
    if sc.rpm_cap > 0 and sc.rpm_level < 1 then
      local wait = math.ceil((1 - sc.rpm_level) * window / sc.rpm_cap)
      return refuse('requests', s, sc.rpm_cap, math.floor(sc.rpm_level), wait, 0)
    end
  end
  for s = SCOPES, 1, -1 do
    local sc = scopes[s]
    if sc.tpm_cap > 0 then
      if tokens > sc.tpm_cap then
        return refuse('too_large', s, sc.tpm_cap, tokens, 0, 0)
      end
      local need = math.max(tokens, 1)
      if sc.tpm_level < need then
        local wait = math.ceil((need - sc.tpm_level) * window / sc.tpm_cap)
        return refuse('tokens', s, sc.tpm_cap, math.floor(sc.tpm_level), wait, tokens)
      end
    end
  end

  -- Provider credentials: a soft check. The caller moves exhausted ones to
  -- the back of its routing order, and the request is refused only when
  -- every candidate is limited and exhausted.
  local exhausted = {}
  local shortest = -1
  for c = 1, ncred do
    local rpm_key = KEYS[SCOPES * SCOPE_KEYS + (c - 1) * 2 + 1]
    local tpm_key = KEYS[SCOPES * SCOPE_KEYS + (c - 1) * 2 + 2]
    local rpm_cap = num(ARGV[11 + SCOPES * 6 + (c - 1) * 2])
    local tpm_cap = num(ARGV[11 + SCOPES * 6 + (c - 1) * 2 + 1])
    local wait = 0
    if rpm_cap > 0 then
      local value = level(rpm_key, rpm_cap, window)
      if value < 1 then
        wait = math.max(wait, math.ceil((1 - value) * window / rpm_cap))
      end
    end
    if tpm_cap > 0 then
      local value = level(tpm_key, tpm_cap, window)
      if value < 1 then
        wait = math.max(wait, math.ceil((1 - value) * window / tpm_cap))
      end
    end
    if wait > 0 then
      exhausted[#exhausted + 1] = c
      exhausted[#exhausted + 1] = wait
      if shortest < 0 or wait < shortest then
        shortest = wait
      end
    end
  end
  if all_limited and ncred > 0 and #exhausted == ncred * 2 then
    return refuse('credential', 0, shortest, 0, 0, 0)
  end

  -- Everything fits: hold the estimate in both scopes and take the request
  -- and its tokens from the buckets.
  for s = 1, SCOPES do
    local sc = scopes[s]
    redis.call('ZADD', sc.holds, now + ttl, hold_id)
    redis.call('HSET', sc.amounts, hold_id, int(cost))
    redis.call('HINCRBY', sc.amounts, '_sum', int(cost))
    redis.call('PEXPIRE', sc.holds, ttl + 60000)
    redis.call('PEXPIRE', sc.amounts, ttl + 60000)
    if sc.rpm_cap > 0 then
      store(sc.rpm, sc.rpm_level - 1, sc.rpm_cap, window)
    end
    if sc.tpm_cap > 0 then
      store(sc.tpm, sc.tpm_level - tokens, sc.tpm_cap, window)
    end
  end
  local reply = {1}
  for _, value in ipairs(header_values(true)) do
    reply[#reply + 1] = value
  end
  for _, value in ipairs(exhausted) do
    reply[#reply + 1] = value
  end
  return reply
end

if mode == 'settle' then
  local hold_id = ARGV[2]
  local cost = ARGV[3]
  local refund = num(ARGV[4])
  local window = num(ARGV[5])
  local ttls = {num(ARGV[6]), num(ARGV[7]), 0}
  for s = 1, SCOPES do
    local sc = scope_keys(s)
    local held = redis.call('HGET', sc.amounts, hold_id)
    if held then
      redis.call('HDEL', sc.amounts, hold_id)
      redis.call('HINCRBY', sc.amounts, '_sum', int(-num(held)))
    end
    redis.call('ZREM', sc.holds, hold_id)
    local tpm_cap = num(ARGV[7 + s])
    if tpm_cap > 0 and refund ~= 0 then
      local value = math.min(tpm_cap, level(sc.tpm, tpm_cap, window) + refund)
      store(sc.tpm, value, tpm_cap, window)
    end
    if num(cost) > 0 then
      for p, name in ipairs({'day', 'month', 'life'}) do
        redis.call('HINCRBY', sc[name], 'n', cost)
        redis.call('HSETNX', sc[name], 't', int(now))
        if ttls[p] > 0 then
          redis.call('EXPIRE', sc[name], ttls[p])
        end
      end
    end
  end
  if #KEYS > SCOPES * SCOPE_KEYS then
    local rpm_cap = num(ARGV[10])
    local tpm_cap = num(ARGV[11])
    local used = num(ARGV[12])
    local rpm_key = KEYS[SCOPES * SCOPE_KEYS + 1]
    local tpm_key = KEYS[SCOPES * SCOPE_KEYS + 2]
    if rpm_cap > 0 then
      store(rpm_key, level(rpm_key, rpm_cap, window) - 1, rpm_cap, window)
    end
    if tpm_cap > 0 and used > 0 then
      store(tpm_key, level(tpm_key, tpm_cap, window) - used, tpm_cap, window)
    end
  end
  return {1}
end

if mode == 'peek' then
  local window = num(ARGV[2])
  local reply = {}
  for s = 1, SCOPES do
    local sc = scope_keys(s)
    local live = redis.call('ZRANGEBYSCORE', sc.holds, '(' .. int(now), '+inf')
    local held = 0
    for first = 1, #live, 500 do
      local chunk = {unpack(live, first, math.min(first + 499, #live))}
      for _, value in ipairs(redis.call('HMGET', sc.amounts, unpack(chunk))) do
        held = held + num(value)
      end
    end
    local rpm_cap = num(ARGV[3 + (s - 1) * 2])
    local tpm_cap = num(ARGV[4 + (s - 1) * 2])
    reply[#reply + 1] = #live
    reply[#reply + 1] = int(held)
    reply[#reply + 1] = rpm_cap > 0 and math.floor(level(sc.rpm, rpm_cap, window)) or -1
    reply[#reply + 1] = tpm_cap > 0 and math.floor(level(sc.tpm, tpm_cap, window)) or -1
    for _, name in ipairs({'day', 'month', 'life'}) do
      reply[#reply + 1] = redis.call('HGET', sc[name], 'n') or '0'
    end
  end
  return reply
end

if mode == 'probe' then
  local reply = {}
  for i = 1, #KEYS do
    local state = redis.call('HMGET', KEYS[i], 's', 't')
    reply[#reply + 1] = state[1] and 1 or 0
    reply[#reply + 1] = state[2] or '0'
  end
  return reply
end

if mode == 'seed' then
  for i = 1, #KEYS do
    if redis.call('HSETNX', KEYS[i], 's', 1) == 1 then
      local amount = ARGV[2 + (i - 1) * 2]
      local ttl = num(ARGV[3 + (i - 1) * 2])
      if num(amount) ~= 0 then
        redis.call('HINCRBY', KEYS[i], 'n', amount)
      end
      redis.call('HSETNX', KEYS[i], 't', int(now))
      if ttl > 0 then
        redis.call('EXPIRE', KEYS[i], ttl)
      end
    end
  end
  return {1}
end

return redis.error_reply('unknown admission mode ' .. tostring(mode))
