-- tracecheck.lua: is the namespace ARGV[1] in any of the trace sets
-- ARGV[2..] (one per slot the master that runs it serves)? Reply {found,
-- unread...}: found is the first trace key that holds it, or ''; unread are
-- the keys this master could not read because their slot is being migrated
-- and the key is not (or no longer) here: Redis refuses a script's access
-- to it ("non local key"), and the caller reads it where the slot's ASK
-- redirection points. The keys are undeclared (see trace.lua), or one key
-- declared (KEYS[1], for such a read after a redirection). Sent with the
-- shebang flags=no-writes,allow-cross-slot-keys (scripts.go), after the
-- prelude, which refuses a master whose eviction policy could have deleted a
-- trace.
local me = node()
if me.err then return me end
local unread = {''}
for i = 2, #ARGV do
  local r = redis.pcall('SISMEMBER', ARGV[i], ARGV[1])
  if type(r) == 'table' and r.err then
    unread[#unread + 1] = ARGV[i]
  elseif r == 1 then
    return {ARGV[i], me.replid, me.connected, me.promotable}
  end
end
unread[#unread + 1] = me.replid
unread[#unread + 1] = me.connected
unread[#unread + 1] = me.promotable
return unread
