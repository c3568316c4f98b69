-- index.lua: one copy of the index of namespaces (a set), so that repairs
-- reach every namespace, open or not.
--
-- KEYS[1]  a copy of the index; ARGV[1] add | list; ARGV[2] the name to add
-- Reply {members (list only), replid, connected, promotable}
local me = node()
if me.err then return me end
local members = {}
if ARGV[1] == 'add' then
  redis.call('SADD', KEYS[1], ARGV[2])
else
  members = redis.call('SMEMBERS', KEYS[1])
end
return {members, me.replid, me.connected, me.promotable}
