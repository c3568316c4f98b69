-- ceiling.lua: one copy of a shard's ceiling, kept on a master other than
-- the counter's. Every sequence number a client may hand out is at or below
-- a ceiling confirmed on every copy, so a counter whose history rewound (or
-- vanished) can restart above the highest copy that is still trusted.
--
-- KEYS[1]  the copy, a hash:
--            v      the ceiling
--            id     master_replid of the history that last made v trusted
--                   (create or repair); the copy is trusted while its
--                   master still has that identity: no restart, promotion
--                   or rewind happened since
--            epoch  fence epoch: the newest counter history allowed to
--                   raise it; older histories are refused ("stale")
--            owner  the identity the last claim was for: a history that
--                   finds itself refused by a claim made for itself (a
--                   restorer of the same history that died before it
--                   restored) may adopt that epoch; any other may not
-- KEYS[2]  the trace set of KEYS[1]'s slot: a call that writes a copy that
--          holds no value (creates it: create, or claim, raise, repair of a
--          copy its master lost) adds ARGV[5] to it, and so does any call
--          (read included) that finds the copy and not its trace (ARGV[8])
-- ARGV     built by ceilingArgs.argv in scripts.go:
--   1 op     read | claim | raise | repair | create | legacy-raise
--   2 epoch  the caller's counter epoch (claim: the new epoch, which must be
--            above the copy's: an equal one would leave a raise of the old
--            history with that epoch accepted after the restore)
--   3 value  raise, repair, create: the ceiling to write (never lowers v)
--   4 expect repair: the copy's master's identity when the caller read it;
--            if it changed since, the copy may have rewound after the read
--            and the value may be stale: nothing is written ("changed");
--            claim: the counter identity the claim is for (stored as owner)
--   5 trace  the namespace, for KEYS[2]; '' writes no trace
--   6 deadline create: the creation's deadline (unix ms, 0: none; see
--            late in prelude.lua); after it nothing is written
--   7 touch  raise, repair: '1' rewrites v when the call changed nothing (see
--            the end); '' (a negative control only) does not
--   8 retrace '1': an existing copy whose name KEYS[2] lacks is traced again
--            (retrace in prelude.lua); '' (negative controls only): it is not
--
-- A raise never makes a copy trusted: its value may be below a ceiling
-- confirmed before the copy rewound. Only repair (with a value computed from
-- trusted sources) and create set id. A create writes the first value of a
-- namespace nobody has used yet: it must arrive before the creation's
-- deadline, before which no process marks the namespace ready (a late
-- create on a copy that vanished after the namespace was used would make it
-- trusted and low; issue 19, item 3).
--
-- Reply {status, v, trusted, epoch, owner, replid, connected, promotable}; status
-- "ok", "stale" (nothing written: a newer or equal epoch owns the copy) or
-- "changed" (repair only). v is -1 when the copy holds no value.
local me = node()
if me.err then return me end
local op, e, value = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if op == 'create' and late(tonumber(ARGV[6] or '0'), me.now) then
  return redis.error_reply('SHARDSEQ_LATE ' .. KEYS[1])
end
retrace(ARGV[5], ARGV[8])
local cur = redis.call('HMGET', KEYS[1], 'v', 'id', 'epoch', 'owner')
local v, epoch, owner = tonumber(cur[1] or '-1'), tonumber(cur[3] or '0'), cur[4] or ''
local trusted = (cur[1] and cur[2] == me.replid) and 1 or 0
local function reply(status)
  return {status, int(v), trusted, int(epoch), owner, me.replid, me.connected, me.promotable}
end
-- Every write goes through hset: a copy without a value is being created
-- (or was, by a claim: the SADD is idempotent), so its slot's trace first.
local traced, wrote = false, false
local function hset(...)
  wrote = true
  if not cur[1] and not traced then
    traced = true
    trace(ARGV[5])
  end
  return redis.call('HSET', KEYS[1], ...)
end

if op == 'read' then
  return reply('ok')
elseif op == 'legacy-raise' then
  if value > v then
    v = value
    hset('v', int(v))
  end
  return reply('ok')
elseif op == 'create' then
  if cur[1] then
    return reply('ok')
  end
  v, epoch, trusted = value, e, 1
  hset('v', int(v), 'id', me.replid, 'epoch', int(e))
  return reply('ok')
end

if epoch > e or (op == 'claim' and epoch == e) then
  return reply('stale')
end
if op == 'repair' and ARGV[4] ~= me.replid then
  return reply('changed')
end
if e > epoch then
  epoch = e
  hset('epoch', int(epoch))
end
if op == 'claim' then
  owner = ARGV[4]
  hset('owner', owner)
  return reply('ok')
end
if value > v then
  v = value
  hset('v', int(v))
end
if op == 'repair' and trusted == 0 then
  trusted = 1
  hset('id', me.replid)
end
-- The caller relies on v being replicated, and WAIT counts only the writes
-- of the caller's own connection: a call that wrote nothing (another
-- connection raised v, and its write may not have reached a replica yet)
-- would be acknowledged at once. Rewriting v (HSET propagates even when the
-- value is the same) makes the WAIT that follows cover it.
if not wrote and ARGV[7] == '1' then
  hset('v', int(v))
end
return reply('ok')
