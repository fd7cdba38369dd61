-- shardcast ledger: one batch of transfers, applied in order in one script (so atomically
-- with respect to every other client, and made durable by one AOF fsync on a Redis with
-- `appendfsync always`). The rules are those of rules.rs, step for step; redis_store.rs
-- checks names before calling, and the differential tests hold both to the same answers.
--
-- Every amount handled here is at most BALANCE_MAX = 2^53 - 1, which a Lua number (a double)
-- holds exactly; balances change through HINCRBY (exact 64-bit integers). Every check of a
-- transfer is made before its first write, so a refused transfer writes nothing.
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

local function balance(account)
  return tonumber(redis.call('HGET', BALANCES, account) or '0')
end

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
      local credited = tonumber(redis.call('HGET', META, 'credited') or '0')
      -- Doubles near 2^62 are exact to within 2^10, far inside the margin to 2^63.
      if now + amount > BALANCE_MAX or credited + amount > CREDITED_MAX then
        answers[i] = {4}
      else
        local left = redis.call('HINCRBY', BALANCES, wallet, ARGV[a + 4])
        redis.call('HINCRBY', META, 'credited', ARGV[a + 4])
        local entry = redis.call('HINCRBY', META, 'entries', 1)
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
        local left = redis.call('HINCRBY', BALANCES, wallet, int(-amount))
        redis.call('HINCRBY', BALANCES, earnings, ARGV[a + 5])
        redis.call('HINCRBY', BALANCES, PLATFORM, int(amount - share))
        local entry = redis.call('HINCRBY', META, 'entries', 1)
        redis.call('XADD', stream, int(entry) .. '-0',
          'user', user, 'gift_id', ARGV[a + 7], 'count', ARGV[a + 8],
          'value', ARGV[a + 4], 'time_ms', ARGV[a + 9])
        -- The leaderboard total stops at BALANCE_MAX, as in the embedded ledger.
        local total = tonumber(redis.call('ZINCRBY', board, ARGV[a + 4], user))
        if total > BALANCE_MAX then
          redis.call('ZADD', board, BALANCE_MAX, user)
        end
        redis.call('HSET', GIFT_ANSWERS, id, int(entry) .. ':' .. int(left))
        answers[i] = {1, entry, left}
      end
    end
  end
end
return answers
