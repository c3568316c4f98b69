-- prelude.lua: prepended to every script of this package (see scripts.go).
--
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
  local replid = string.match(info, 'master_replid:(%x+)')
  local runid = string.match(info, 'run_id:(%x+)')
  if not replid or not runid then
    return redis.error_reply('SHARDSEQ_REPLY cannot read master_replid and run_id from INFO')
  end
  -- Keys evicted under memory pressure vanish without any change of
  -- identity: that would look like a new namespace, or a counter restarted.
  local policy = string.match(info, 'maxmemory_policy:([%w-]+)') or 'noeviction'
  if string.find(policy, 'allkeys', 1, true) then
    return redis.error_reply('SHARDSEQ_EVICTION ' .. policy)
  end
  local connected = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
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
  return {replid = replid .. '-' .. runid, connected = connected, promotable = math.max(connected, listed)}
end

-- int formats a Lua number (a double, exact below 2^53) as a decimal integer:
-- tostring would write 1e+17, which HSET stores and HINCRBY then refuses.
local function int(x)
  return string.format('%d', x)
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
