-- tracecheck.lua: is the namespace ARGV[1] in any of the trace sets
-- ARGV[2..] (one per slot the master that runs it serves)? Reply: the first
-- trace key that holds it, or ''. The keys are undeclared (see trace.lua);
-- a key of a slot this master does not serve is an error, never a miss.
-- Sent with the shebang flags=no-writes,allow-cross-slot-keys (scripts.go),
-- after the prelude, which refuses a master whose eviction policy could have
-- deleted a trace.
local me = node()
if me.err then return me end
for i = 2, #ARGV do
  if redis.call('SISMEMBER', ARGV[i], ARGV[1]) == 1 then
    return ARGV[i]
  end
end
return ''
