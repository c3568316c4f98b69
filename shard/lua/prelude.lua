-- prelude.lua: prepended to every script of this package (see scripts.go).
--
-- field reads the value of INFO line name (pat: what the value is made
-- of): a plain search for the line, then a match anchored where its value
-- starts. An unanchored string.match tries the pattern at every character
-- of INFO's few kilobytes; five of them were a third of every script's time.
local function field(info, name, pat)
  local at = string.find(info, '\n' .. name .. ':', 1, true)
  if not at then
    return nil
  end
  return string.match(info, '^' .. pat, at + #name + 2)
end

-- node() reads, on the node running the script, the identity of the history
-- it serves and how many replicas could be promoted in its place. The
-- identity is read here and not sent by a client, because a client's view can
-- be stale (a redirect resends the same arguments). It changes on promotion
-- and on every start, so a history that may have rewound always shows a new
-- one. It also refuses to run on a master whose eviction policy can delete
-- keys without a trace.
--
-- promotable counts every replica the cluster lists for this master that is
-- not flagged fail (CLUSTER REPLICAS), not only the connected ones: a replica
-- whose data link dropped (output-buffer limit, a cut data port) leaves
-- connected_slaves at once but can still be promoted for
-- node_timeout x (validity_factor + 1). ROLE and WAIT are refused inside
-- scripts; INFO and CLUSTER REPLICAS are not.
local function node()
  local info = redis.call('INFO', 'replication', 'server', 'memory')
  local replid = field(info, 'master_replid', '%x+')
  local runid = field(info, 'run_id', '%x+')
  if not replid or not runid then
    return redis.error_reply('SHARDSEQ_REPLY cannot read master_replid and run_id from INFO')
  end
  -- Keys evicted under memory pressure vanish without any change of
  -- identity: that would look like a new namespace, or a counter restarted.
  local policy = field(info, 'maxmemory_policy', '[%w-]+') or 'noeviction'
  if string.find(policy, 'allkeys', 1, true) then
    return redis.error_reply('SHARDSEQ_EVICTION ' .. policy)
  end
  local connected = tonumber(field(info, 'connected_slaves', '%d+') or '0')
  local listed = 0
  local reps = redis.pcall('CLUSTER', 'REPLICAS', redis.call('CLUSTER', 'MYID'))
  if type(reps) ~= 'table' or reps.err then
    -- Fail closed: without the list, a dropped but promotable replica would
    -- not be waited for.
    return redis.error_reply('SHARDSEQ_REPLICAS ' .. tostring(type(reps) == 'table' and reps.err or reps))
  end
  for _, line in ipairs(reps) do
    local flags = string.match(line, '^%S+ %S+ (%S+)') or ''
    flags = ',' .. flags .. ','
    if not string.find(flags, ',fail,', 1, true) and not string.find(flags, ',handshake,', 1, true) then
      listed = listed + 1
    end
  end
  -- The identity of the history this node serves: master_replid changes on
  -- promotion and on every master start; run_id changes on every start too,
  -- also in the corner where a node that loaded an RDB as a replica (taking
  -- the file's replid) is promoted before it shifted the replid.
  -- now: this master's clock in unix ms (server_time_usec, INFO server,
  -- Redis 6.2+ and Valkey), for the creation deadlines; nil if absent.
  local usec = tonumber(field(info, 'server_time_usec', '%d+') or '')
  return {replid = replid .. '-' .. runid, connected = connected, promotable = math.max(connected, listed),
    now = usec and math.floor(usec / 1000)}
end

-- int formats a Lua number (a double, exact below 2^53) as a decimal integer:
-- tostring would write 1e+17, which HSET stores and HINCRBY then refuses.
local function int(x)
  return string.format('%d', x)
end

-- late reports whether deadline (unix ms, 0: none) has passed by this
-- master's clock (me.now, from INFO). A creation's writes carry the
-- creation's deadline and are refused after it: a creator that stalled
-- past it may have read a key as absent before other processes finished
-- the creation, used the namespace and lost that key with a master's data;
-- written now at its first value, the key would be trusted and low.
-- Openers that finish another's creation wait for its deadline before they
-- mark the namespace ready (namespace package), so nothing is handed out
-- while such a write can still land. Fails closed without a clock.
local function late(deadline, now)
  if not deadline or deadline <= 0 then
    return false
  end
  return not now or now > deadline
end

-- trace adds the namespace name to KEYS[2], the trace set of the slot of
-- KEYS[1] (see traces.go), when a script creates KEYS[1]: in the same script,
-- so that the key and its trace replicate and persist together and no history
-- of the master holds the key without its trace. name '' (a shard without
-- traces) or no KEYS[2] (a script that names no trace set): nothing.
local function trace(name)
  if KEYS[2] and name and name ~= '' then
    redis.call('SADD', KEYS[2], name)
  end
end

-- retrace adds the namespace name back to KEYS[2] when KEYS[1] exists and
-- KEYS[2] lacks it (on '' or name '': nothing). A slot migration moves a
-- slot's keys one MIGRATE at a time, so a key can reach the target while its
-- slot's trace set is still on the source (or the other way round); if the
-- source then restarts empty inside that split, the key lives on without its
-- trace, and a creation that finds no trace would start the namespace again
-- below IDs handed out. Every script that names both keys calls this, so the
-- first one to run on such a key once its slot is whole again (while it is
-- split, Redis refuses a script naming both: TRYAGAIN) traces it again: a
-- reservation, a raise, a repair, a read of a ceiling copy. Its WAIT covers
-- the SADD. Two reads when nothing is missing; the SADD is a pcall, so that
-- a master refusing writes (maxmemory) fails no read: the next call tries
-- again.
local function retrace(name, on)
  if on ~= '1' or not KEYS[2] or not name or name == '' then
    return
  end
  if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('SISMEMBER', KEYS[2], name) == 0 then
    redis.pcall('SADD', KEYS[2], name)
  end
end
