-- shardcast ledger: one batch of transfers, applied in order in one script (so atomically
-- with respect to every other client, and made durable by one AOF fsync on a Redis with
-- `appendfsync always`). The rules are those of rules.rs, step for step; redis_store.rs
-- checks names before calling, and the differential tests hold both to the same answers.
--
-- Every balance handled here is at most BALANCE_MAX = 2^53 - 1, which a Lua number (a double)
-- holds exactly, and is written back as a decimal integer. Every check of a transfer is made
-- before its first write, so a refused transfer writes nothing.
--
-- KEYS[1] balances (hash: account -> balance)
-- KEYS[2] gift answers (hash: #user:user..key -> "entry:balance")
-- KEYS[3] credit answers (same shape)
-- KEYS[4] meta (hash: entries, credited)
-- KEYS[4 + 2i - 1], KEYS[4 + 2i] for transfer i (1-based): the room's gift stream and its
--   leaderboard (a credit repeats KEYS[4] in both places; they are not touched).
--
-- ARGV[1] BALANCE_MAX, ARGV[2] CREDITED_MAX, then 9 per transfer:
--   kind ("c" or "g"), user, key, amount (the credit, or the gift's value), streamer share,
--   earnings account, gift_id, count, time_ms
--
-- Answers, one per transfer:
--   {1, entry, balance}   done
--   {2, entry, balance}   done before (a retry): the first answer
--   {3, balance}          refused: insufficient balance
--   {4}                   refused: overflow

local BALANCES, GIFT_ANSWERS, CREDIT_ANSWERS, META = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local BALANCE_MAX = tonumber(ARGV[1])
local CREDITED_MAX = tonumber(ARGV[2])
local PLATFORM = 'platform'

-- The batch's hot rows live here and are written back once at the end: every gift touches
-- the giver's wallet, the streamer's earnings, the platform, the entry counter and the
-- giver's leaderboard total, and one Redis call each per gift was most of the script's time.
-- Per gift only what is new is written at once: its log entry and its answer. Balances stay
-- at most BALANCE_MAX, exact in a Lua number.
local held, changed, meta = {}, {}, {}

-- `field` of the hash at `key`, read from Redis once per batch and kept in `cache`; later
-- reads see the batch's own writes.
local function cached(cache, key, field)
  local now = cache[field]
  if now == nil then
    now = tonumber(redis.call('HGET', key, field) or '0')
    cache[field] = now
  end
  return now
end

local function balance(account)
  return cached(held, BALANCES, account)
end
local function set_balance(account, value)
  held[account] = value
  changed[account] = true
end
local function counter(name)
  return cached(meta, META, name)
end

-- board key -> user -> value given in this batch (added with one ZINCRBY each at the end).
local given = {}

-- A number as a decimal integer (concatenation would write 1e+14 and up in exponent form).
local function int(x)
  return string.format('%d', x)
end

local function answer_id(user, key)
  return string.len(user) .. ':' .. user .. key
end

local function kept(space, id)
  local first = redis.call('HGET', space, id)
  if not first then
    return nil
  end
  local entry, left = string.match(first, '^(%d+):(%d+)$')
  return {2, tonumber(entry), tonumber(left)}
end

local entries_changed = false
local function next_entry()
  local entry = counter('entries') + 1
  meta.entries = entry
  entries_changed = true
  return entry
end

local answers = {}
local n = (#ARGV - 2) / 9
for i = 1, n do
  local a = 2 + (i - 1) * 9
  local kind, user, key = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local amount = tonumber(ARGV[a + 4])
  local id = answer_id(user, key)
  local wallet = 'wallet:' .. user
  if kind == 'c' then
    local first = kept(CREDIT_ANSWERS, id)
    if first then
      answers[i] = first
    else
      local now = balance(wallet)
      local credited = counter('credited')
      -- Doubles near 2^62 are exact to within 2^10, far inside the margin to 2^63.
      if now + amount > BALANCE_MAX or credited + amount > CREDITED_MAX then
        answers[i] = {4}
      else
        local left = now + amount
        set_balance(wallet, left)
        -- The credited total passes 2^53: it changes in Redis's exact integers, and the copy
        -- here serves only the check above.
        redis.call('HINCRBY', META, 'credited', ARGV[a + 4])
        meta.credited = credited + amount
        local entry = next_entry()
        redis.call('HSET', CREDIT_ANSWERS, id, int(entry) .. ':' .. int(left))
        answers[i] = {1, entry, left}
      end
    end
  else
    local stream, board = KEYS[4 + 2 * i - 1], KEYS[4 + 2 * i]
    local first = kept(GIFT_ANSWERS, id)
    if first then
      answers[i] = first
    else
      local share = tonumber(ARGV[a + 5])
      local earnings = ARGV[a + 6]
      local have = balance(wallet)
      if have < amount then
        answers[i] = {3, have}
      elseif balance(earnings) + share > BALANCE_MAX
          or balance(PLATFORM) + (amount - share) > BALANCE_MAX then
        answers[i] = {4}
      else
        local left = have - amount
        set_balance(wallet, left)
        set_balance(earnings, balance(earnings) + share)
        set_balance(PLATFORM, balance(PLATFORM) + (amount - share))
        local entry = next_entry()
        redis.call('XADD', stream, int(entry) .. '-0',
          'user', user, 'gift_id', ARGV[a + 7], 'count', ARGV[a + 8],
          'value', ARGV[a + 4], 'time_ms', ARGV[a + 9])
        local users = given[board]
        if users == nil then
          users = {}
          given[board] = users
        end
        users[user] = (users[user] or 0) + amount
        redis.call('HSET', GIFT_ANSWERS, id, int(entry) .. ':' .. int(left))
        answers[i] = {1, entry, left}
      end
    end
  end
end

-- Write back what the batch changed, once per row.
for account, _ in pairs(changed) do
  redis.call('HSET', BALANCES, account, int(held[account]))
end
if entries_changed then
  redis.call('HSET', META, 'entries', int(meta.entries))
end
-- The leaderboard total stops at BALANCE_MAX, as in the embedded ledger.
for board, users in pairs(given) do
  for user, value in pairs(users) do
    local total = tonumber(redis.call('ZINCRBY', board, int(value), user))
    if total > BALANCE_MAX then
      redis.call('ZADD', board, BALANCE_MAX, user)
    end
  end
end
return answers
