-- trace.lua: marks, on one master, the slots that hold keys of a namespace,
-- so that a namespace whose record was lost can be recognised by its name
-- without scanning the keyspace (see traces.go). Sent with the shebang
-- flags=allow-cross-slot-keys: the trace keys sit on several slots of the
-- master that runs it, and only KEYS[1] is declared (Redis refuses declared
-- keys of several slots even with the flag).
--
-- KEYS[1]  one of the trace keys, which routes the call
-- ARGV[1]  the namespace; ARGV[2..] every trace key to write on this master
-- Reply {written, replid, connected, promotable}
local me = node()
if me.err then return me end
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('SADD', ARGV[i], ARGV[1])
end
return {n, me.replid, me.connected, me.promotable}
