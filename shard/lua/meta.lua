-- meta.lua: one copy of a namespace record; create it if absent and return
-- what is stored. The first writer wins; every later caller gets the
-- winner's record and must use it.
--
-- KEYS[1]  a copy of the record, a hash {shards, layout, start, ready}
-- ARGV     built by metaArgs.argv in scripts.go:
--   1 op      read | claim | ready
--   2 shards  3 layout (JSON)  4 start (first ID)
--
-- Reply {found, shards, layout, start, ready, replid, connected, promotable};
-- found is 0 when the copy is absent (read only).
local me = node()
if me.err then return me end
local op = ARGV[1]
local cur = redis.call('HMGET', KEYS[1], 'shards', 'layout', 'start', 'ready')
local function reply(found)
  return {found, cur[1] or '', cur[2] or '', cur[3] or '', cur[4] or '0', me.replid, me.connected, me.promotable}
end
if not cur[1] then
  if op == 'read' then
    return reply(0)
  end
  cur = {ARGV[2], ARGV[3], ARGV[4], '0'}
  redis.call('HSET', KEYS[1], 'shards', ARGV[2], 'layout', ARGV[3], 'start', ARGV[4], 'ready', '0')
end
if op == 'ready' and cur[4] ~= '1' and cur[1] == ARGV[2] and cur[2] == ARGV[3] then
  cur[4] = '1'
  redis.call('HSET', KEYS[1], 'ready', '1')
end
return reply(1)
