-- index.lua: one copy of the index of namespaces (a set), so that repairs
-- reach every namespace, open or not.
--
-- KEYS[1]  a copy of the index; ARGV[1] add | list | has; ARGV[2] the name
--          to add, or to look up
-- Reply {members, replid, connected, promotable}: list, every member; has,
-- the name if it is a member (one SISMEMBER, whatever the index's size)
local me = node()
if me.err then return me end
local members = {}
if ARGV[1] == 'add' then
  redis.call('SADD', KEYS[1], ARGV[2])
elseif ARGV[1] == 'has' then
  if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then
    members = {ARGV[2]}
  end
else
  members = redis.call('SMEMBERS', KEYS[1])
end
return {members, me.replid, me.connected, me.promotable}
