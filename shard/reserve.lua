-- reserve.lua: reserve a block of sequence numbers of one shard, atomically.
--
-- KEYS[1]  the shard's counter hash {seq, node, shards}
-- ARGV[1]  shard count N of the namespace (the shard-count guard)
-- ARGV[2]  block size B (>= 1), or 0 to only create the counter
-- ARGV[3]  fence gap: added to seq when the serving node's history differs
--          from the one that last advanced it; -1 switches fencing off (tests)
-- ARGV[4]  restore floor: "" normally; after the client read the shard's
--          high-water-mark mirror because the counter was missing, the mirror
--          value (the counter restarts at floor + gap)
-- ARGV[5]  largest sequence number the shard may hand out
-- ARGV[6]  "create" when the namespace is being created (a missing counter
--          then starts at 0), "" otherwise (a missing counter is data loss)
-- ARGV[7]  the highest mirror value the caller saw confirmed by replicas, or 0;
--          kept in the counter as "mirrored" so that every client learns it
--
-- Returns {hi, fenced, connected_replicas, replid, mirrored}: the block is
-- hi-B+1..hi; fenced is 0 (no), 1 (node history changed), 2 (restored from
-- the mirror); mirrored is the highest confirmed mirror value known.
--
-- The node identity is read here, on the server, because a value sent by a
-- client can be stale (a redirect resends the same arguments). master_replid
-- changes when a replica is promoted and when a node restarts without its
-- data; CLUSTER MYID does not. ROLE and WAIT are refused inside scripts, INFO
-- is not.
local info = redis.call('INFO', 'replication')
local replid = string.match(info, 'master_replid:(%x+)')
local replicas = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
if not replid then
  return redis.error_reply('SHARDSEQ_REPLY cannot read master_replid from INFO replication')
end

local n = ARGV[1]
local count = tonumber(ARGV[2])
local gap = tonumber(ARGV[3])
local limit = tonumber(ARGV[5])
-- One read of everything; MaxID <= 2^53-1 keeps Lua's doubles exact here.
local cur = redis.call('HMGET', KEYS[1], 'seq', 'node', 'shards', 'mirrored')
local fenced = 0
local seq = tonumber(cur[1])
local mirrored = tonumber(cur[4] or '0')

if not cur[1] then
  if ARGV[6] == 'create' then
    seq = 0
    redis.call('HSET', KEYS[1], 'seq', 0, 'node', replid, 'shards', n)
  elseif ARGV[4] ~= '' then
    seq = tonumber(ARGV[4])
    mirrored = seq
    redis.call('HSET', KEYS[1], 'seq', ARGV[4], 'node', replid, 'shards', n, 'mirrored', ARGV[4])
    if gap > 0 then
      seq = redis.call('HINCRBY', KEYS[1], 'seq', gap)
    end
    fenced = 2
  else
    return redis.error_reply('SHARDSEQ_EMPTY counter ' .. KEYS[1] .. ' is missing')
  end
else
  if cur[3] ~= n then
    return redis.error_reply('SHARDSEQ_SHARDS ' .. tostring(cur[3]) .. ' ' .. n)
  end
  if cur[2] ~= replid then
    if gap > 0 then
      seq = redis.call('HINCRBY', KEYS[1], 'seq', gap)
      fenced = 1
    end
    redis.call('HSET', KEYS[1], 'node', replid)
  end
end

local seen = tonumber(ARGV[7])
if seen > mirrored then
  redis.call('HSET', KEYS[1], 'mirrored', ARGV[7])
  mirrored = seen
end

if count == 0 then
  return {seq, fenced, replicas, replid, mirrored}
end
if seq + count > limit then
  return redis.error_reply('SHARDSEQ_EXHAUSTED ' .. string.format('%d', seq))
end
local hi = redis.call('HINCRBY', KEYS[1], 'seq', count)
return {hi, fenced, replicas, replid, mirrored}
