-- meta.lua: one copy of a namespace record; create it if absent and return
-- what is stored. The first writer wins; every later caller gets the
-- winner's record and must use it.
--
-- KEYS[1]  a copy of the record, a hash:
--            shards, layout, start   what the IDs depend on: written once,
--                                    never changed
--            ready                   "1" once counters, ceilings and the
--                                    index entry exist; before that "u"
--                                    (claimed, the lost-record check not yet
--                                    passed since), "c" (passed: traces and
--                                    keys may be written), or "0" (claimed
--                                    by a version without that check)
--            strict, gen, deleted, created
--                                    the namespace's state: strict mode,
--                                    generation (absent: 1), tombstone flag,
--                                    creation time of this generation (unix
--                                    ms); changed only by op state, and only
--                                    to a higher generation. Deleting keeps
--                                    every counter and ceiling, so no state
--                                    can make an ID repeat.
-- ARGV     built by metaArgs.argv in scripts.go:
--   1 op      read | claim | checked | ready | state
--   2 shards  3 layout (JSON)  4 start (first ID)
--   5 strict  6 gen  7 deleted  8 created   (claim of an absent copy, state)
--
-- claim and ready create an absent copy from the arguments (ready then marks
-- it ready at once); checked marks a "u" copy "c"; state changes only a copy
-- that exists.
--
-- Reply {found, shards, layout, start, ready, strict, gen, deleted, created,
-- replid, connected, promotable}; found is 0 when the copy is absent (read
-- state and checked write nothing then), 2 when this call created it.
local me = node()
if me.err then return me end
local op = ARGV[1]
local found = 1
local cur = redis.call('HMGET', KEYS[1], 'shards', 'layout', 'start', 'ready', 'strict', 'gen', 'deleted', 'created')
local function reply(f)
  return {f, cur[1] or '', cur[2] or '', cur[3] or '', cur[4] or '0', cur[5] or '0', cur[6] or '1',
    cur[7] or '0', cur[8] or '0', me.replid, me.connected, me.promotable}
end
if not cur[1] then
  if op == 'read' or op == 'state' or op == 'checked' then
    return reply(0)
  end
  cur = {ARGV[2], ARGV[3], ARGV[4], 'u', ARGV[5], ARGV[6], ARGV[7], ARGV[8]}
  redis.call('HSET', KEYS[1], 'shards', ARGV[2], 'layout', ARGV[3], 'start', ARGV[4], 'ready', 'u',
    'strict', ARGV[5], 'gen', ARGV[6], 'deleted', ARGV[7], 'created', ARGV[8])
  found = 2
end
if op == 'checked' and cur[4] == 'u' and cur[1] == ARGV[2] and cur[2] == ARGV[3] then
  cur[4] = 'c'
  redis.call('HSET', KEYS[1], 'ready', 'c')
end
if op == 'ready' and cur[4] ~= '1' and cur[1] == ARGV[2] and cur[2] == ARGV[3] then
  cur[4] = '1'
  redis.call('HSET', KEYS[1], 'ready', '1')
end
if op == 'state' and cur[1] == ARGV[2] and cur[2] == ARGV[3] and tonumber(ARGV[6]) > tonumber(cur[6] or '1') then
  cur[5], cur[6], cur[7], cur[8] = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  redis.call('HSET', KEYS[1], 'strict', ARGV[5], 'gen', ARGV[6], 'deleted', ARGV[7], 'created', ARGV[8])
end
return reply(found)
