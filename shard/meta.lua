-- meta.lua: create a namespace record if it is absent, return what is stored.
--
-- KEYS[1]  one copy of the namespace record (hash {shards, layout, ready})
-- ARGV[1]  shard count, ARGV[2] layout (JSON), ARGV[3] "ready" to mark the
--          namespace complete, "" otherwise
--
-- Returns {shards, layout, ready, connected_replicas}. The first writer wins;
-- every later caller gets the winner's record and must use it.
local info = redis.call('INFO', 'replication')
local replicas = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
local cur = redis.call('HMGET', KEYS[1], 'shards', 'layout', 'ready')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'shards', ARGV[1], 'layout', ARGV[2], 'ready', '0')
  cur = {ARGV[1], ARGV[2], '0'}
elseif cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return {cur[1], cur[2], cur[3] or '0', replicas}
end
if ARGV[3] == 'ready' and cur[3] ~= '1' then
  redis.call('HSET', KEYS[1], 'ready', '1')
  cur[3] = '1'
end
return {cur[1], cur[2], cur[3] or '0', replicas}
