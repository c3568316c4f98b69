-- raise.lua: raise a shard's high-water-mark mirror, never lower it.
--
-- KEYS[1]  the mirror key (a string holding a sequence number), on another
--          master than the counter it mirrors
-- ARGV[1]  the new ceiling
--
-- Returns {ceiling, connected_replicas}. Every ID handed out is at or below
-- the mirror at the moment it is handed out, so a counter that comes back
-- empty can restart from the mirror (plus the fence gap).
local info = redis.call('INFO', 'replication')
local replicas = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
local want = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if want > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  cur = want
end
return {cur, replicas}
