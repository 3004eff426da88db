--[[
Baton admission: every limit of a request checked, its hold placed and its
in-flight record written, in one atomic step; and everything that follows
from the record (renewal, settling, reaping, reconciling with the ledger).
gateway/admission.py and billing/quota/ build KEYS and ARGV (billing/quota/script.py
is the only Python that knows them) and run it on Redis, or in process for the
embedded default (billing/quota/local.py, on lupa): this script is the only
implementation of the quota algorithm.

All keys of a team share its hash tag ("bq:{<team id>}:..."), so a call on a
team touches one Redis Cluster slot; the reaper's index has a tag of its own
("bq:{reap}:..."). Times are the Redis server's (TIME), so the clocks of the
Baton processes do not matter. Money is in integer nanos of the team's currency.

Keys of a team T:
  bq:{T}:s   HASH  every limit's state, per scope: the team's fields have no
                   prefix, an API key's are prefixed "k<key id>:", a provider
                   credential's "c<credential id>:":
                     r  requests per window, t  tokens per window (GCRA, below)
                     d<YYYYMMDD>  spend that day, m<YYYYMM>  that month
                     l  lifetime spend; its presence means "seeded"
                     w  the ledger watermark of the last reconciliation (ms)
                     h  nanos held by requests in flight
                     c  requests in flight with a live lease
                   and "pz": when leases were last checked for their end.
  bq:{T}:f   ZSET  the team's requests in flight with a live lease: member =
                   the durable record ("<request id> <key id> <flags> <json>",
                   billing/quota/script.py writes and reads it; flags: 1 the
                   team counts it, 2 its key does), score = lease deadline (ms)
  bq:{T}:g   ZSET  records whose lease ended, not settled or reaped yet
  bq:{T}:p   HASH  request id -> what its renewals reported (the target, the
                   tokens streamed so far); "?<id>" -> when a reaper first saw
                   the record lapsed
  bq:{T}:x   ZSET  tombstones: request ids a reaper billed -> when (ms)
  bq:{T}:e   HASH  request id -> usage event a reaper claimed and has not yet
                   seen committed to the ledger
  bq:{reap}:due   ZSET  team id -> when a reaper should look at the team (ms)
  bq:{reap}:seen  HASH  team id -> when a process last registered it (ms)

Why this shape (Redis CPU per request). In Redis's Lua, each call
costs a fixed price for itself, its arguments and every redis.call, string,
number conversion and table it makes, far more than the commands' own work.
So: all limits of a team are one hash, read with one HMGET and written with
one HSET per call; a scope without any limit is not passed at all (a request
of a team without limits costs one ZADD and one ZREM: its durable record);
concurrency is a counter in that hash, and leases that ended are moved out
of f at most a few times per lease (not checked on every request); a rate
limit is one number; the day and month counters carry their period in the
field name, so nothing expires and no EXPIRE is sent; admits of one team
that a process makes in the same event-loop turn, and its settles of a few
milliseconds, are one call each, so the fixed price is shared.
bench/quota_cost.py measures it.

Rate limits: GCRA, the token bucket kept as one number. A limit of `cap`
units per `window` ms stores its theoretical arrival time TAT; the units
available at `now` are (window - max(0, TAT - now)) * cap / window: a full
bucket (absent, or TAT <= now) holds cap, taking n units moves TAT by
n * window / cap, giving back moves it back (never below now). Bursts up to
the limit, the limit per window on average. A request that used more tokens
than it reserved leaves the bucket in debt (available < 0), which later
requests wait off.

Leases and holds. An admitted request's record is its lease: the
process renews it every third of BATON_LEASE_SECONDS while the request runs.
Concurrency counts records whose lease is live, so a request nobody renews
(its process died, or lost Redis) frees its slot within 4/3 of a lease (its
lease, then the next check). Money held ("h") follows the record, not the
lease: it is released when the
request is settled (the real cost replaces it) or reaped (billed at what is
known). A reaper takes a record whose lease ended more than `grace` ago, but
only on a second look at least `confirm` ms after a first one found it so
(the "?<id>" mark), which gives a process that lost Redis for a while one
renewal to come back. It bills the prompt estimate plus the completion
tokens last reported, at the price of the target last reported.

Settle and reap agree (never both). The record is removed by exactly one of
them: settle's ZREM or reap's claim, atomically. Whoever removes it counts
its cost; a settle that finds a tombstone counts nothing (the reaper billed
the request); a request admitted while the store was away has no record,
and its settle counts its cost unless it is late; a settle that finds its
placed record gone (an earlier try of the same settle landed, or the store
lost its data) counts nothing, and the caller reconciles its scopes. Both
write a usage event with the request id, and the ledger keeps the first (it
is unique on the request id). The relay settles only after its usage event
is in the usage stream, so a process that dies in between leaves a record
(reaped) rather than nothing.

Counters converge on the ledger. `reconcile` raises a counter to the ledger's
total for its period, never lowers it (counter := max(counter, ledger)), so
admission never sees spend it allowed go away. The totals are of events
written before a watermark (the reconciling process's clock when it read the
ledger), which the scope keeps ("w"); a settle counts only an event written
after it (the event's own created_at, so the processes' clocks need not
agree): an event is in a reconciled total or counted by its settle, never
both, and one that is in neither (its settle came after the watermark, its
event reached the ledger after the reading) is picked up by the next
reconciliation, which the relay asks for ("skipped"). The relay reconciles a
scope after a skipped or lost settle, and Celery beat every
BATON_RECONCILE_SECONDS (the scopes with recent spend); a scope never seeded
(a new key, a Redis that lost its data, or a scope that went without limits
for a while: settles then drop its "l") is reconciled before it admits
anything ("seed").

Modes (ARGV[1]). "caps": rpm, tpm, concurrency, day, month, life (-1 = none).
  admit   KEYS: f, s, g
          ARGV: lease ms, window ms, day field, month field, team (0/1),
          granted credit (-1: not prepaid), no seed (0/1), check leases every
          (ms), team caps; n keys, per key its prefix and caps; n credentials,
          per credential its prefix, rpm and tpm caps; n requests, per request
          record, cost, tokens, key (index, 0: no limits), all candidates
          limited (0/1), n candidates, their credential indexes.
          -> per request {1, headers(12), exhausted candidate, wait ms, ...}
             or {0, reason, scope, a, b, c, d, headers(12)}; reason "seed":
             the scope (1 team, 2 key) must be reconciled first.
  settle  KEYS: f, s, g, x, p
          ARGV: window ms, day field, month field, n, then 16 per request:
          record ("": never placed), id, cost, held, tokens back, tokens
          used, when its usage event was written (ms, the event's own
          created_at), renewed (0/1), team active (0/1), team tpm cap,
          key prefix, key active (0/1), key tpm cap, credential prefix ("":
          none), credential rpm, tpm caps. The hold is released as the
          record's flags say; the cost is counted in the scopes active now.
          -> per request {status, skipped}: status 1 settled, 4 settled
             after its lease ended, 2 already reaped, 3 no record (counted
             only if never placed); skipped 1 when a scope did not count it
             because its event is older than the scope's watermark
  renew   KEYS: f, s, g, p; ARGV: lease ms, n, then per request record, id,
          key prefix, flags, report ("": unchanged)
          -> per request 1 renewed, 0 gone (settled, reaped or lost)
  peek    KEYS: f, s; ARGV: window ms, day field, month field, key prefix,
          key id, team rpm, tpm caps, key rpm, tpm caps
          -> per scope {in flight, held, rpm left, tpm left, day, month, life,
             counted (0/1)}
  reconcile KEYS: s; ARGV: prefix, day field, month field, the ledger's nanos
          for the day, the month and all time (of events written before the
          watermark), only if seeded (0/1), the watermark (ms), then past
          period fields to drop -> {day, month, life} before, then after
          (all 0: not seeded, left alone)
  lapsed  KEYS: f, s, g, p, x, e; ARGV: grace ms, confirm ms, tombstone ms,
          limit, recount limit -> {next look (ms, -1: nothing left), scopes
          whose in-flight count or held money was recounted, n, n x (record,
          report, mark), pending claimed events (id, event)...}
  reap    KEYS: f, s, g, p, x, e; ARGV: grace ms, confirm ms, day field,
          month field, n, then per record: record, id, held, cost, team held
          (0/1), key prefix, key held (0/1), event ("": already in the ledger)
          -> per record 1 claimed, 0 not (renewed, settled or not confirmed)
  emitted KEYS: e; ARGV: ids written to the ledger
  index   KEYS: due, seen; ARGV: n, then team id, due ms
  due     KEYS: due; ARGV: limit -> {team, due, ...} due now
  unindex KEYS: due, seen; ARGV: team, due seen, next look (-1: none),
          keep ms -> 1 when the team left the index
]]

local mode = ARGV[1]
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)

-- Leases that ended move from f to g (KEYS[3]) and stop counting against
-- concurrency: the record's flags say which counters it is in (1 the team's,
-- 2 its key's).
local function prune(limit)
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = 1, #lapsed, 2 do
    local record = lapsed[i]
    local key, flags = string.match(record, '^%S+ (%S+) (%d+)')
    flags = tonumber(flags) or 0
    redis.call('ZREM', KEYS[1], record)
    redis.call('ZADD', KEYS[3], lapsed[i + 1], record)
    if flags % 2 == 1 then
      redis.call('HINCRBY', KEYS[2], 'c', -1)
    end
    if flags >= 2 then
      redis.call('HINCRBY', KEYS[2], 'k' .. key .. ':c', -1)
    end
  end
  redis.call('HSET', KEYS[2], 'pz', now)
  return lapsed
end

if mode == 'admit' then
  local lease, window = tonumber(ARGV[2]), tonumber(ARGV[3])
  local day, month = ARGV[4], ARGV[5]
  local granted = tonumber(ARGV[7])
  -- Scopes: 1 the team (nil when it has no limits), then the keys. Each is
  -- {1 prefix, 2 rpm, 3 tpm, 4 concurrency, 5 day, 6 month, 7 life caps,
  --  8 r, 9 t (GCRA TAT), 10 spent today, 11 this month, 12 ever (nil: not
  --  seeded), 13 held, 14 in flight, 15 changed}.
  local scopes = {}
  if ARGV[6] == '1' then
    scopes[1] = {'', tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]),
                 tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])}
  end
  local nkeys = tonumber(ARGV[16])
  local a = 17
  for i = 1, nkeys do
    scopes[1 + i] = {ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
                     tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])}
    a = a + 7
  end
  local ncred = tonumber(ARGV[a])
  local creds = {}
  for i = 1, ncred do
    creds[i] = {ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])}
    a = a + 3
  end
  a = a + 1
  -- Every field of every scope in one HMGET.
  local fields = {'pz'}
  local conc = false
  for s = 1, 1 + nkeys do
    local c = scopes[s]
    if c then
      local p = c[1]
      fields[#fields + 1] = p .. 'r'
      fields[#fields + 1] = p .. 't'
      fields[#fields + 1] = p .. day
      fields[#fields + 1] = p .. month
      fields[#fields + 1] = p .. 'l'
      fields[#fields + 1] = p .. 'h'
      fields[#fields + 1] = p .. 'c'
      conc = conc or c[4] >= 0
    end
  end
  for i = 1, ncred do
    fields[#fields + 1] = creds[i][1] .. 'r'
    fields[#fields + 1] = creds[i][1] .. 't'
  end
  -- A team, key and credentials without limits: nothing to read.
  local v = #fields > 1 and redis.call('HMGET', KEYS[2], unpack(fields)) or {}
  local o = 1
  for s = 1, 1 + nkeys do
    local c = scopes[s]
    if c then
      c[8], c[9] = tonumber(v[o + 1]) or now, tonumber(v[o + 2]) or now
      c[10], c[11] = tonumber(v[o + 3]) or 0, tonumber(v[o + 4]) or 0
      c[12], c[13], c[14] = tonumber(v[o + 5]), tonumber(v[o + 6]) or 0, tonumber(v[o + 7]) or 0
      c[15] = false
      o = o + 7
    end
  end
  for i = 1, ncred do
    creds[i][4], creds[i][5] = tonumber(v[o + 1]) or now, tonumber(v[o + 2]) or now
    o = o + 2
  end
  -- Leases nobody renewed stop counting (checked a few times per lease).
  if conc and now - (tonumber(v[1]) or 0) >= tonumber(ARGV[9]) then
    local lapsed = prune(64)
    for i = 1, #lapsed, 2 do
      local key, flags = string.match(lapsed[i], '^%S+ (%S+) (%d+)')
      flags = tonumber(flags) or 0
      if flags % 2 == 1 and scopes[1] then
        scopes[1][14] = scopes[1][14] - 1
      end
      if flags >= 2 then
        for s = 2, 1 + nkeys do
          if scopes[s][1] == 'k' .. key .. ':' then
            scopes[s][14] = scopes[s][14] - 1
          end
        end
      end
    end
  end

  local function left(tat, cap)
    local ahead = tat - now
    if ahead < 0 then
      ahead = 0
    end
    return (window - ahead) * cap / window
  end

  local replies = {}
  local n = tonumber(ARGV[a])
  a = a + 1
  for r = 1, n do
    local record, cost, tokens = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local key = tonumber(ARGV[a + 3])
    local both = {scopes[1], key > 0 and scopes[1 + key] or nil}
    local limited, ncand = ARGV[a + 4] == '1', tonumber(ARGV[a + 5])
    local cand = a + 6
    a = cand + ncand
    local levels = {}
    for s = 1, 2 do
      local c = both[s]
      if c then
        levels[s * 2 - 1] = c[2] > 0 and left(c[8], c[2]) or 0
        levels[s * 2] = c[3] > 0 and left(c[9], c[3]) or 0
      end
    end
    -- x-ratelimit-*: per scope, requests then tokens: limit, remaining, ms to full.
    local function headers(reply, consumed)
      for s = 1, 2 do
        local c = both[s]
        for kind = 1, 2 do
          local cap = c and c[1 + kind] or -1
          if cap > 0 then
            local value = levels[s * 2 - 2 + kind]
            if consumed then
              value = value - (kind == 1 and 1 or tokens)
            end
            reply[#reply + 1] = cap
            reply[#reply + 1] = math.max(0, math.floor(value))
            reply[#reply + 1] = value >= cap and 0 or math.ceil((cap - value) * window / cap)
          else
            reply[#reply + 1] = -1
            reply[#reply + 1] = -1
            reply[#reply + 1] = -1
          end
        end
      end
      return reply
    end

    local reply = nil
    for s = 1, 2 do
      if both[s] and not both[s][12] and ARGV[8] ~= '1' then
        reply = {0, 'seed', s, 0, 0, 0, 0}
      end
    end
    -- Money first: a spent budget is the real reason even when a rate limit
    -- would also refuse, and waiting does not help. "hard" says whether the
    -- request could not fit even with nothing else in flight.
    for s = 2, 1, -1 do
      local c = both[s]
      if c and not reply then
        local spent = {c[10], c[11], c[12] or 0}
        for p = 1, 3 do
          local cap = c[4 + p]
          if cap >= 0 and not reply then
            local used = spent[p]
            if used + c[13] >= cap or used + c[13] + cost > cap then
              local hard = (used >= cap or used + cost > cap) and 1 or 0
              reply = headers({0, 'budget', s, p, cap, used, hard}, false)
            end
          end
        end
      end
    end
    if not reply and granted >= 0 and both[1] then
      local team = both[1]
      local balance = granted - (team[12] or 0)
      if balance - team[13] <= 0 or balance - team[13] - cost < 0 then
        local hard = (balance <= 0 or balance - cost < 0) and 1 or 0
        reply = headers({0, 'credit', 1, 0, balance, team[13], hard}, false)
      end
    end
    for s = 2, 1, -1 do
      local c = both[s]
      if not reply and c and c[4] >= 0 and c[14] + 1 > c[4] then
        reply = headers({0, 'concurrency', s, c[4], c[14], 1000, 0}, false)
      end
    end
    for s = 2, 1, -1 do
      local c = both[s]
      if not reply and c and c[2] > 0 and levels[s * 2 - 1] < 1 then
        local wait = math.ceil((1 - levels[s * 2 - 1]) * window / c[2])
        reply = headers({0, 'requests', s, c[2], math.floor(levels[s * 2 - 1]), wait, 0}, false)
      end
    end
    for s = 2, 1, -1 do
      local c = both[s]
      if not reply and c and c[3] > 0 then
        if tokens > c[3] then
          reply = headers({0, 'too_large', s, c[3], tokens, 0, 0}, false)
        else
          local need = math.max(tokens, 1)
          local have = levels[s * 2]
          if have < need then
            local wait = math.ceil((need - have) * window / c[3])
            reply = headers({0, 'tokens', s, c[3], math.floor(have), wait, tokens}, false)
          end
        end
      end
    end
    -- Provider credentials: a soft check. The caller moves exhausted ones to
    -- the back of its routing order, and the request is refused only when
    -- every candidate is limited and exhausted.
    local exhausted = nil
    local shortest = -1
    if not reply then
      for i = 1, ncand do
        local cred = creds[tonumber(ARGV[cand + i - 1])]
        local wait = 0
        for kind = 1, 2 do
          local cap = cred[1 + kind]
          if cap > 0 then
            local value = left(cred[3 + kind], cap)
            if value < 1 then
              wait = math.max(wait, math.ceil((1 - value) * window / cap))
            end
          end
        end
        if wait > 0 then
          exhausted = exhausted or {}
          exhausted[#exhausted + 1] = i
          exhausted[#exhausted + 1] = wait
          if shortest < 0 or wait < shortest then
            shortest = wait
          end
        end
      end
      if limited and ncand > 0 and exhausted and #exhausted == ncand * 2 then
        reply = headers({0, 'credential', 0, shortest, 0, 0, 0}, false)
      end
    end
    if not reply then
      -- Everything fits: hold the estimate in each scope, take the request
      -- and its tokens from the limits, count it in flight, write its record.
      for s = 1, 2 do
        local c = both[s]
        if c then
          c[13] = c[13] + cost
          c[14] = c[14] + 1
          if c[2] > 0 then
            c[8] = math.max(c[8], now) + window / c[2]
          end
          if c[3] > 0 then
            c[9] = math.max(c[9], now) + tokens * window / c[3]
          end
          c[15] = true
        end
      end
      redis.call('ZADD', KEYS[1], now + lease, record)
      reply = headers({1}, true)
      if exhausted then
        for _, value in ipairs(exhausted) do
          reply[#reply + 1] = value
        end
      end
    end
    replies[r] = reply
  end
  local w = {}
  for s = 1, 1 + nkeys do
    local c = scopes[s]
    if c and c[15] then
      local p = c[1]
      w[#w + 1] = p .. 'h'
      w[#w + 1] = c[13]
      w[#w + 1] = p .. 'c'
      w[#w + 1] = c[14]
      if c[2] > 0 then
        w[#w + 1] = p .. 'r'
        w[#w + 1] = c[8]
      end
      if c[3] > 0 then
        w[#w + 1] = p .. 't'
        w[#w + 1] = c[9]
      end
    end
  end
  if #w > 0 then
    redis.call('HSET', KEYS[2], unpack(w))
  end
  return replies
end

if mode == 'settle' then
  local window = tonumber(ARGV[2])
  local day, month = ARGV[3], ARGV[4]
  -- The scopes' fields, read once and written once for the whole batch: per
  -- prefix {1 r, 2 t, 3 today, 4 this month, 5 ever (nil: not seeded), 6 held,
  -- 7 in flight, 8 r changed, 9 t changed, 10 spend changed, 11 held or in
  -- flight changed, 12 unseed, 13 ledger watermark}.
  local cache, order = {}, {}
  local n = tonumber(ARGV[5])
  cache[''], order[1] = true, ''
  for i = 0, n - 1 do
    local a = 6 + i * 16
    for j = 10, 13, 3 do
      local p = ARGV[a + j]
      if not cache[p] then
        cache[p] = true
        order[#order + 1] = p
      end
    end
  end
  local fields = {}
  for _, p in ipairs(order) do
    fields[#fields + 1] = p .. 'r'
    fields[#fields + 1] = p .. 't'
    fields[#fields + 1] = p .. day
    fields[#fields + 1] = p .. month
    fields[#fields + 1] = p .. 'l'
    fields[#fields + 1] = p .. 'h'
    fields[#fields + 1] = p .. 'c'
    fields[#fields + 1] = p .. 'w'
  end
  local v = redis.call('HMGET', KEYS[2], unpack(fields))
  for j, p in ipairs(order) do
    local o = (j - 1) * 8
    cache[p] = {tonumber(v[o + 1]) or now, tonumber(v[o + 2]) or now, tonumber(v[o + 3]) or 0,
                tonumber(v[o + 4]) or 0, tonumber(v[o + 5]), tonumber(v[o + 6]) or 0,
                tonumber(v[o + 7]) or 0, false, false, false, false, false,
                tonumber(v[o + 8]) or 0}
  end
  local function take(st, i, units, cap)
    local tat = math.max(st[i], now) + units * window / cap
    st[i] = math.max(tat, now)
    st[7 + i] = true
  end
  local reply = {}
  for i = 0, n - 1 do
    local a = 6 + i * 16
    local record, id = ARGV[a], ARGV[a + 1]
    local cost, held = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local refund, at = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 6])
    -- 1: settled in flight, 4: settled after its lease ended, 2: already
    -- reaped, 3: no record. An empty record is a request admitted while the
    -- store was away: it has none, and its settle counts its cost. A placed
    -- record that is gone was settled before (a retry whose first reply was
    -- lost) or lost with the store's data: it counts nothing, and the caller
    -- reconciles its scopes with the ledger.
    local status, flags = 3, 0
    if record ~= '' then
      if redis.call('ZREM', KEYS[1], record) == 1 then
        status = 1
      elseif redis.call('ZREM', KEYS[3], record) == 1 then
        status = 4
      elseif redis.call('ZSCORE', KEYS[4], id) then
        status = 2
      end
      flags = tonumber(string.match(record, '^%S+ %S+ (%d+)')) or 0
    end
    if ARGV[a + 7] == '1' then
      redis.call('HDEL', KEYS[5], id, '?' .. id)
    end
    local count = cost > 0 and (status == 1 or status == 4 or (status == 3 and record == ''))
    local skipped = 0
    for s = 0, 1 do
      local st = cache[s == 0 and '' or ARGV[a + 10]]
      -- What the record holds in this scope follows its flags (the limits when it
      -- was admitted); what is counted follows the limits now.
      local holds = (s == 0 and flags % 2 == 1) or (s == 1 and flags >= 2)
      if holds and (status == 1 or status == 4) then
        st[6] = st[6] - held
        if status == 1 then
          st[7] = st[7] - 1
        end
        st[11] = true
      end
      if ARGV[a + 8 + s * 3] == '1' then
        local cap = tonumber(ARGV[a + 9 + s * 3])
        if holds and cap > 0 and refund ~= 0 then
          take(st, 2, -refund, cap)
        end
        -- Only a seeded scope counts (an unseeded one takes its spend from the
        -- ledger), and only an event the last reconciliation could not have
        -- seen: one written after its watermark.
        if count and st[5] then
          if at > st[13] then
            st[3], st[4], st[5] = st[3] + cost, st[4] + cost, st[5] + cost
            st[10] = true
          else
            skipped = 1
          end
        end
      elseif st[5] then
        -- Not counted while it has no limits: unseeded, so limits set again
        -- start from the ledger.
        st[12] = true
      end
    end
    if ARGV[a + 13] ~= '' then
      local st = cache[ARGV[a + 13]]
      local rpm_cap, tpm_cap = tonumber(ARGV[a + 14]), tonumber(ARGV[a + 15])
      local used = tonumber(ARGV[a + 5])
      if rpm_cap > 0 then
        take(st, 1, 1, rpm_cap)
      end
      if tpm_cap > 0 and used > 0 then
        take(st, 2, used, tpm_cap)
      end
    end
    reply[#reply + 1] = status
    reply[#reply + 1] = skipped
  end
  local w, gone = {}, {}
  for _, p in ipairs(order) do
    local st = cache[p]
    if st[8] then
      w[#w + 1] = p .. 'r'
      w[#w + 1] = st[1]
    end
    if st[9] then
      w[#w + 1] = p .. 't'
      w[#w + 1] = st[2]
    end
    if st[11] then
      w[#w + 1] = p .. 'h'
      w[#w + 1] = st[6]
      w[#w + 1] = p .. 'c'
      w[#w + 1] = st[7]
    end
    if st[12] then
      gone[#gone + 1] = p .. 'l'
    elseif st[10] then
      w[#w + 1] = p .. day
      w[#w + 1] = st[3]
      w[#w + 1] = p .. month
      w[#w + 1] = st[4]
      w[#w + 1] = p .. 'l'
      w[#w + 1] = st[5]
    end
  end
  if #w > 0 then
    redis.call('HSET', KEYS[2], unpack(w))
  end
  if #gone > 0 then
    redis.call('HDEL', KEYS[2], unpack(gone))
  end
  return reply
end

-- The modes below are off the request path.

local function num(value)
  return tonumber(value) or 0
end

local function level(tat, cap, window)
  local ahead = (tonumber(tat) or now) - now
  if ahead < 0 then
    ahead = 0
  end
  return (window - ahead) * cap / window
end

if mode == 'renew' then
  local deadline = now + num(ARGV[2])
  local reply = {}
  for i = 0, num(ARGV[3]) - 1 do
    local a = 4 + i * 5
    local record, id, prefix, flags, report = ARGV[a], ARGV[a + 1], ARGV[a + 2], num(ARGV[a + 3]), ARGV[a + 4]
    local alive = redis.call('ZSCORE', KEYS[1], record) ~= false
    if not alive and redis.call('ZREM', KEYS[3], record) == 1 then
      -- Its lease had ended (the process lost the store for a while): it counts again.
      alive = true
      if flags % 2 == 1 then
        redis.call('HINCRBY', KEYS[2], 'c', 1)
      end
      if flags >= 2 then
        redis.call('HINCRBY', KEYS[2], prefix .. 'c', 1)
      end
    end
    if alive then
      redis.call('ZADD', KEYS[1], deadline, record)
      if report ~= '' then
        redis.call('HSET', KEYS[4], id, report)
      end
      reply[#reply + 1] = 1
    else
      reply[#reply + 1] = 0
    end
  end
  return reply
end

if mode == 'peek' then
  local window = num(ARGV[2])
  local day, month, prefix, needle = ARGV[3], ARGV[4], ARGV[5], ' ' .. ARGV[6] .. ' '
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
  local mine = 0
  for _, record in ipairs(live) do
    if string.find(record, needle, 1, true) then
      mine = mine + 1
    end
  end
  local reply = {}
  for s = 1, 2 do
    local p = s == 1 and '' or prefix
    local v = redis.call('HMGET', KEYS[2], p .. 'r', p .. 't', p .. day, p .. month, p .. 'l', p .. 'h')
    local rpm_cap, tpm_cap = num(ARGV[5 + s * 2]), num(ARGV[6 + s * 2])
    reply[#reply + 1] = s == 1 and #live or mine
    reply[#reply + 1] = num(v[6])
    reply[#reply + 1] = rpm_cap > 0 and math.floor(level(v[1], rpm_cap, window)) or -1
    reply[#reply + 1] = tpm_cap > 0 and math.floor(level(v[2], tpm_cap, window)) or -1
    reply[#reply + 1] = num(v[3])
    reply[#reply + 1] = num(v[4])
    reply[#reply + 1] = num(v[5])
    reply[#reply + 1] = v[5] and 1 or 0
  end
  return reply
end

if mode == 'reconcile' then
  local p = ARGV[2]
  local names = {p .. ARGV[3], p .. ARGV[4], p .. 'l'}
  local v = redis.call('HMGET', KEYS[1], names[1], names[2], names[3])
  if ARGV[8] == '1' and not v[3] then
    -- Only a scope the store counts (seeded); another one seeds itself from the
    -- ledger before it admits anything.
    return {0, 0, 0, 0, 0, 0}
  end
  local before, after, w = {}, {}, {}
  for i = 1, 3 do
    before[i] = num(v[i])
    after[i] = math.max(before[i], num(ARGV[4 + i]))
    w[#w + 1] = names[i]
    w[#w + 1] = after[i]
  end
  -- The watermark: events written before it are in the totals (or will be
  -- in the next ones), so their settles no longer count.
  local mark = num(redis.call('HGET', KEYS[1], p .. 'w'))
  w[#w + 1] = p .. 'w'
  w[#w + 1] = math.max(mark, num(ARGV[9]))
  redis.call('HSET', KEYS[1], unpack(w))
  -- Counters of past days and months are no longer read: drop them.
  if #ARGV > 9 then
    local old = {}
    for i = 10, #ARGV do
      old[#old + 1] = p .. ARGV[i]
    end
    redis.call('HDEL', KEYS[1], unpack(old))
  end
  return {before[1], before[2], before[3], after[1], after[2], after[3]}
end

-- The requests in flight and the money held of each scope are sums over the
-- team's records: recount them (for a team with at most `limit` records), so
-- that no drift outlives a reaper pass. Returns how many scopes were wrong.
local function recount(limit)
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'LIMIT', 0, limit + 1)
  local ended = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '+inf', 'LIMIT', 0, limit + 1)
  if #live > limit or #ended > limit then
    return 0
  end
  local want = {}
  local function add(record, counted)
    local key, flags, held = string.match(record, '^%S+ (%S+) (%d+) %[%-?%d+,(%-?%d+),')
    flags, held = tonumber(flags) or 0, tonumber(held) or 0
    local scopes = {}
    if flags % 2 == 1 then
      scopes[#scopes + 1] = ''
    end
    if flags >= 2 then
      scopes[#scopes + 1] = 'k' .. key .. ':'
    end
    for _, p in ipairs(scopes) do
      local w = want[p] or {0, 0}
      if counted then
        w[1] = w[1] + 1
      end
      w[2] = w[2] + held
      want[p] = w
    end
  end
  for _, record in ipairs(live) do
    add(record, true)
  end
  for _, record in ipairs(ended) do
    add(record, false)
  end
  for _, name in ipairs(redis.call('HKEYS', KEYS[2])) do
    local p = string.match(name, '^(k[^:]*:)[ch]$') or ((name == 'c' or name == 'h') and '')
    if p and not want[p] then
      want[p] = {0, 0}
    end
  end
  local order, names = {}, {}
  for p in pairs(want) do
    order[#order + 1] = p
    names[#names + 1] = p .. 'c'
    names[#names + 1] = p .. 'h'
  end
  if #names == 0 then
    return 0
  end
  local v = redis.call('HMGET', KEYS[2], unpack(names))
  local w, wrong = {}, 0
  for i, p in ipairs(order) do
    local expect = want[p]
    if (tonumber(v[i * 2 - 1]) or 0) ~= expect[1] or (tonumber(v[i * 2]) or 0) ~= expect[2] then
      wrong = wrong + 1
      w[#w + 1] = p .. 'c'
      w[#w + 1] = expect[1]
      w[#w + 1] = p .. 'h'
      w[#w + 1] = expect[2]
    end
  end
  if #w > 0 then
    redis.call('HSET', KEYS[2], unpack(w))
  end
  return wrong
end

if mode == 'lapsed' then
  local grace, confirm = num(ARGV[2]), num(ARGV[3])
  local keep, limit = num(ARGV[4]), num(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - keep)
  prune(limit)
  local wrong = recount(num(ARGV[6]))
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - grace, 'LIMIT', 0, limit)
  local reply = {-1, wrong, #lapsed}
  for _, record in ipairs(lapsed) do
    local id = string.match(record, '^(%S+)')
    local extra = redis.call('HMGET', KEYS[4], id, '?' .. id)
    reply[#reply + 1] = record
    reply[#reply + 1] = extra[1] or ''
    reply[#reply + 1] = extra[2] or ''
  end
  local first = nil
  for _, set in ipairs({KEYS[1], KEYS[3]}) do
    local head = redis.call('ZRANGEBYSCORE', set, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #head > 0 and (not first or num(head[2]) < first) then
      first = num(head[2])
    end
  end
  if first then
    reply[1] = math.max(first + grace, now + confirm)
  end
  local claimed = redis.call('HGETALL', KEYS[6])
  if #claimed > 0 then
    reply[1] = now + confirm
    for _, value in ipairs(claimed) do
      reply[#reply + 1] = value
    end
  end
  return reply
end

if mode == 'reap' then
  local grace, confirm = num(ARGV[2]), num(ARGV[3])
  local day, month = ARGV[4], ARGV[5]
  local reply = {}
  for i = 0, num(ARGV[6]) - 1 do
    local a = 7 + i * 8
    local record, id = ARGV[a], ARGV[a + 1]
    local held, cost = num(ARGV[a + 2]), num(ARGV[a + 3])
    local deadline = tonumber(redis.call('ZSCORE', KEYS[3], record))
    local claimed = 0
    if deadline and deadline <= now - grace then
      local mark = tonumber(redis.call('HGET', KEYS[4], '?' .. id))
      if not mark or mark < deadline then
        redis.call('HSET', KEYS[4], '?' .. id, now)
      elseif now - mark >= confirm then
        claimed = 1
        redis.call('ZREM', KEYS[3], record)
        redis.call('HDEL', KEYS[4], id, '?' .. id)
        redis.call('ZADD', KEYS[5], now, id)
        if ARGV[a + 7] ~= '' then
          redis.call('HSET', KEYS[6], id, ARGV[a + 7])
        end
        for s = 0, 1 do
          if ARGV[a + 4 + s * 2] == '1' then
            local p = s == 0 and '' or ARGV[a + 5]
            local v = redis.call('HMGET', KEYS[2], p .. 'h', p .. day, p .. month, p .. 'l')
            local w = {p .. 'h', num(v[1]) - held}
            if cost > 0 and v[4] then
              w[3], w[4] = p .. day, num(v[2]) + cost
              w[5], w[6] = p .. month, num(v[3]) + cost
              w[7], w[8] = p .. 'l', num(v[4]) + cost
            end
            redis.call('HSET', KEYS[2], unpack(w))
          end
        end
      end
    end
    reply[#reply + 1] = claimed
  end
  return reply
end

if mode == 'emitted' then
  if #ARGV > 1 then
    redis.call('HDEL', KEYS[1], unpack(ARGV, 2))
  end
  return 1
end

if mode == 'index' then
  for i = 0, num(ARGV[2]) - 1 do
    redis.call('ZADD', KEYS[1], 'LT', ARGV[4 + i * 2], ARGV[3 + i * 2])
    redis.call('HSET', KEYS[2], ARGV[3 + i * 2], now)
  end
  return 1
end

if mode == 'due' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, num(ARGV[2]))
end

if mode == 'unindex' then
  local team, next_look, keep = ARGV[2], num(ARGV[4]), num(ARGV[5])
  local current = redis.call('ZSCORE', KEYS[1], team)
  if not current or tonumber(current) ~= tonumber(ARGV[3]) then
    return 0
  end
  if next_look >= 0 then
    redis.call('ZADD', KEYS[1], next_look, team)
    return 0
  end
  local registered = num(redis.call('HGET', KEYS[2], team))
  if registered < now - keep then
    redis.call('ZREM', KEYS[1], team)
    redis.call('HDEL', KEYS[2], team)
    return 1
  end
  redis.call('ZADD', KEYS[1], registered + keep, team)
  return 0
end

return redis.error_reply('unknown admission mode ' .. tostring(mode))
