-- index.lua: one copy of the index of namespaces, so that repairs reach
-- every namespace, open or not, and a list pages through it by name.
--
-- The copy is a sorted set whose every score is 0, so that ZRANGE BYLEX
-- returns a page after a cursor in O(log n + page), whatever the number of
-- namespaces. Versions before it kept the copy in a set (the legacy key): its
-- members are merged into the sorted set whenever the set's size differs
-- from the size last merged (the merged key), so a cluster upgraded in
-- place loses no name, and names that processes of an older version still
-- add during a rolling upgrade are merged too. The set is only read, never
-- removed: a downgrade still finds the names it had.
--
-- KEYS[1]  the copy (sorted set); KEYS[2] the legacy set of that copy;
--          KEYS[3] the size of KEYS[2] last merged (all three in one slot)
-- ARGV[1]  add | has | page | list; ARGV[2] the name to add or look up, or
--          page's cursor ('' for the first page); ARGV[3] page's size;
--          ARGV[4..] more names to add (a sweep adds a page at once)
-- Reply {members, replid, connected, promotable}: add, none; has, the name
-- if it is a member (one ZSCORE); page, at most ARGV[3] names after the
-- cursor, sorted; list, every member
local me = node()
if me.err then return me end
local legacy = redis.call('SCARD', KEYS[2])
if legacy > 0 and tonumber(redis.call('GET', KEYS[3]) or '-1') ~= legacy then
  local names = redis.call('SMEMBERS', KEYS[2])
  for i = 1, #names, 500 do -- ZADD in chunks: unpack's stack is bounded
    local args = {}
    for j = i, math.min(i + 499, #names) do
      args[#args + 1] = 0
      args[#args + 1] = names[j]
    end
    redis.call('ZADD', KEYS[1], unpack(args))
  end
  redis.call('SET', KEYS[3], legacy)
end
local members = {}
if ARGV[1] == 'add' then
  redis.call('ZADD', KEYS[1], 0, ARGV[2])
  for i = 4, #ARGV do
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
  end
elseif ARGV[1] == 'has' then
  if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    members = {ARGV[2]}
  end
elseif ARGV[1] == 'page' then
  local from = '-'
  if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
  members = redis.call('ZRANGE', KEYS[1], from, '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]))
else
  members = redis.call('ZRANGE', KEYS[1], 0, -1)
end
return {members, me.replid, me.connected, me.promotable}
