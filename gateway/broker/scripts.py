"""Lua scripts: each runs atomically in Redis, so a check and its write can't interleave."""

from __future__ import annotations

# KEYS[1] dev key; ARGV node, epoch, ttl_ms. Compare-and-set on the fencing epoch:
# a newer epoch (or the same route, refreshed) wins, an equal or older one never
# overwrites. Returns {1, replaced route or ""} when won, {0, route that keeps it}.
CLAIM_ROUTE = """
local value = ARGV[1] .. ':' .. ARGV[2]
local current = redis.call('GET', KEYS[1])
if current then
  if current == value then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {1, ''}
  end
  local epoch = tonumber(string.match(current, ':(%d+)$'))
  if epoch ~= nil and epoch >= tonumber(ARGV[2]) then
    return {0, current}
  end
end
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return {1, current or ''}
"""

# KEYS[1] dev key; ARGV route. Compare-and-delete: a late close of an old
# connection never removes the route of the new one.
RELEASE_ROUTE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS node key, nodes zset, online hash; ARGV node_id, info JSON, ttl_ms, then
# app, count pairs. Scores are Redis time, so node clocks need not agree.
HEARTBEAT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('DEL', KEYS[3])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
if #ARGV > 3 then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return now
"""

# KEYS[1] bucket hash; ARGV rate (tokens/s), burst. A token bucket on Redis
# time: returns 0 when a token was taken, else the milliseconds until one is back.
TAKE_TOKEN = """
local t = redis.call('TIME')
local now = t[1] * 1000 + t[2] / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1])
local ts = tonumber(bucket[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""
