-- reserve.lua: reserve a block of sequence numbers of one shard, atomically.
--
-- KEYS[1]  the shard's counter, a hash:
--            seq       last sequence number reserved
--            node      master_replid of the history that advanced it
--            epoch     fence epoch of that history (see ceiling.lua)
--            shards    N of the namespace (the shard-count guard)
--            mirrored  highest ceiling registered as confirmed on every copy
-- KEYS[2]  the trace set of KEYS[1]'s slot: a call that creates the counter
--          (a creation, or the restore of a missing counter) adds ARGV[12],
--          and so does any call that finds the counter and not its trace
--          (ARGV[14])
-- ARGV     built by reserveArgs.argv in scripts.go, the only place that does:
--   1 shards     N
--   2 count      block size B, or 0 to only check (and register) the counter
--   3 level      the block starts above this sequence number (ordering)
--   4 maxseq     largest sequence number the shard may hand out
--   5 create     "1" only while the namespace is created: a missing counter
--                then starts at initseq; otherwise a missing counter is a
--                lost history and must be restored from its ceiling
--   6 initseq    see create
--   7 floor      -1, or the floor read from the ceiling copies for a restore
--   8 fepoch     the epoch the ceiling copies were claimed with
--   9 ffor       the master_replid the floor was claimed for: the restore
--                applies only if this node still has that identity
--  10 ceiling    a ceiling this client confirmed on every copy, to register
--  11 legacy     -1, or the old fence gap: on a history change the counter
--                jumps from its own value (unsafe; negative controls only)
--  12 trace      the namespace, for KEYS[2]; '' writes no trace
--  13 deadline   with create: the creation's deadline (unix ms by the clock
--                of the master of its record's first copy; absent or 0:
--                none); after it by this master's clock nothing is written
--  14 retrace    '1': an existing counter whose name KEYS[2] lacks is traced
--                again (retrace in prelude.lua), also when the reply is
--                "fence"; '' (negative controls only): it is not
--
-- Reply {status, hi, fence, epoch, mirrored, replid, connected, promotable}:
--   status "ok":    the block is hi-count+1..hi (nothing when count is 0);
--                   fence is 0, or 1 (this call restored a changed history),
--                   or 2 (this call restored a missing counter)
--   status "fence": nothing written (but a trace, see ARGV[14]); the counter is missing (hi -1) or was
--                   advanced by another history (hi is its untrusted seq);
--                   the caller restores it from its ceiling copies
local me = node()
if me.err then return me end
local a = {shards = ARGV[1], count = tonumber(ARGV[2]), level = tonumber(ARGV[3]),
  maxseq = tonumber(ARGV[4]), create = ARGV[5] == '1', initseq = tonumber(ARGV[6]),
  floor = tonumber(ARGV[7]), fepoch = tonumber(ARGV[8]), ffor = ARGV[9],
  ceiling = tonumber(ARGV[10]), legacy = tonumber(ARGV[11]), trace = ARGV[12],
  deadline = tonumber(ARGV[13] or '0')}
if a.create and late(a.deadline, me.now) then
  return redis.error_reply('SHARDSEQ_LATE ' .. KEYS[1])
end
retrace(a.trace, ARGV[14])

local cur = redis.call('HMGET', KEYS[1], 'seq', 'node', 'epoch', 'shards', 'mirrored')
local seq, epoch, mirrored = tonumber(cur[1]), tonumber(cur[3] or '0'), tonumber(cur[5] or '0')
local fence = 0
local function reply(status, hi)
  return {status, int(hi), fence, int(epoch), int(mirrored), me.replid, me.connected, me.promotable}
end

if cur[1] and cur[4] ~= a.shards then
  return redis.error_reply('SHARDSEQ_SHARDS ' .. tostring(cur[4]) .. ' ' .. a.shards)
end

if not cur[1] and a.create then
  seq, epoch, mirrored = a.initseq, 1, 0
  trace(a.trace)
  redis.call('HSET', KEYS[1], 'seq', int(seq), 'node', me.replid, 'epoch', 1, 'shards', a.shards, 'mirrored', 0)
elseif not cur[1] or cur[2] ~= me.replid then
  if a.floor >= 0 and a.ffor == me.replid then
    -- The floor was read from copies claimed for this very identity, so no
    -- other history can raise them any more: continue above it.
    fence = cur[1] and 1 or 2
    seq = math.max(seq or 0, a.floor)
    epoch = math.max(epoch, a.fepoch)
    mirrored = a.floor
    if not cur[1] then
      -- A missing counter rebuilt: its master lost the trace with it.
      trace(a.trace)
    end
    redis.call('HSET', KEYS[1], 'seq', int(seq), 'node', me.replid, 'epoch', int(epoch), 'shards', a.shards, 'mirrored', int(mirrored))
  elseif cur[1] and a.legacy >= 0 then
    fence = 1
    seq = seq + a.legacy
    redis.call('HSET', KEYS[1], 'seq', int(seq), 'node', me.replid)
  else
    return reply('fence', seq or -1)
  end
elseif a.floor >= 0 and a.ffor == me.replid and a.fepoch > epoch then
  -- Another client restored this identity first; take the newer epoch its
  -- claim gave the copies, and its floor if that is higher.
  epoch = a.fepoch
  seq = math.max(seq, a.floor)
  redis.call('HSET', KEYS[1], 'seq', int(seq), 'epoch', int(epoch))
end

if a.ceiling > mirrored then
  mirrored = a.ceiling
  redis.call('HSET', KEYS[1], 'mirrored', int(mirrored))
end
if a.count == 0 then
  return reply('ok', seq)
end
-- Levelling: never start below what the namespace has handed out (ordering).
local start = math.max(seq, a.level)
if start + a.count > a.maxseq then
  return redis.error_reply('SHARDSEQ_EXHAUSTED ' .. int(start))
end
local hi = start + a.count
redis.call('HSET', KEYS[1], 'seq', int(hi))
return reply('ok', hi)
