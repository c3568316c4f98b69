-- prelude.lua: prepended to every script of this package (see scripts.go).
--
-- node() reads, on the node running the script, its replication identity and
-- how many replicas could be promoted in its place. The identity is read here
-- and not sent by a client, because a client's view can be stale (a redirect
-- resends the same arguments). master_replid changes on promotion and on every
-- master start, so a history that may have rewound always shows a new one.
--
-- promotable counts every replica the cluster lists for this master that is
-- not flagged fail (CLUSTER REPLICAS), not only the connected ones: a replica
-- whose data link dropped (output-buffer limit, a cut data port) leaves
-- connected_slaves at once but can still be promoted for
-- node_timeout x (validity_factor + 1). ROLE and WAIT are refused inside
-- scripts; INFO and CLUSTER REPLICAS are not.
local function node()
  local info = redis.call('INFO', 'replication')
  local replid = string.match(info, 'master_replid:(%x+)')
  if not replid then
    return redis.error_reply('SHARDSEQ_REPLY cannot read master_replid from INFO replication')
  end
  local connected = tonumber(string.match(info, 'connected_slaves:(%d+)') or '0')
  local listed = 0
  local reps = redis.pcall('CLUSTER', 'REPLICAS', redis.call('CLUSTER', 'MYID'))
  if type(reps) == 'table' and not reps.err then
    for _, line in ipairs(reps) do
      local flags = string.match(line, '^%S+ %S+ (%S+)') or ''
      flags = ',' .. flags .. ','
      if not string.find(flags, ',fail,', 1, true) and not string.find(flags, ',handshake,', 1, true) then
        listed = listed + 1
      end
    end
  end
  return {replid = replid, connected = connected, promotable = math.max(connected, listed)}
end

-- int formats a Lua number (a double, exact below 2^53) as a decimal integer:
-- tostring would write 1e+17, which HSET stores and HINCRBY then refuses.
local function int(x)
  return string.format('%d', x)
end
