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
--            creators                while not ready: "token=deadline ...",
--                                    the creators that claimed the copy and
--                                    have not finished, with their deadlines
--                                    (unix ms by this master's clock)
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
--   9 token   claim, done, ready: the creator ('' : none, no freshness guard)
--  10 ttl     claim: how long the creator may write keys, in ms
--  11 margin  done, ready: the clock skew allowed between masters, in ms
--
-- The creation-freshness guard (issue 19, item 3). A claim of a copy that
-- is not ready registers the creator (token = now + ttl) and replies
-- with that deadline, which the creator's key writes carry (late() in
-- prelude.lua refuses them after it). done removes the caller's own
-- registration (it has finished writing) and replies with how long other
-- creators' registrations still hold (wait). ready marks the copy ready only
-- once no other creator's registration is within its deadline plus margin,
-- and otherwise replies with how long to wait, writing nothing: a creator
-- that stalled after it read a key as absent cannot write that key once
-- the namespace is ready and may have been used, so a late write never
-- lands on a key that vanished with its master after use. Registrations
-- go first to copy 0 (every creator claims it first), then to the others.
-- A copy claimed by a version without the guard has no registration: it
-- is finished without waiting.
--
-- claim and ready create an absent copy from the arguments (ready then marks
-- it ready at once); checked marks a "u" copy "c"; state changes only a copy
-- that exists.
--
-- Reply {found, shards, layout, start, ready, strict, gen, deleted, created,
-- deadline, wait, replid, connected, promotable}; found is 0 when the copy
-- is absent (read, state, checked and done write nothing then), 2 when this
-- call created it; deadline is the one a claim registered (0: none); wait
-- is, for a ready refused, the ms until other creators' deadlines pass.
local me = node()
if me.err then return me end
local op = ARGV[1]
local token, ttl, margin = ARGV[9] or '', tonumber(ARGV[10] or '0'), tonumber(ARGV[11] or '0')
local found = 1
local deadline, wait = 0, 0
local cur = redis.call('HMGET', KEYS[1], 'shards', 'layout', 'start', 'ready', 'strict', 'gen', 'deleted', 'created')
local function reply(f)
  return {f, cur[1] or '', cur[2] or '', cur[3] or '', cur[4] or '0', cur[5] or '0', cur[6] or '1',
    cur[7] or '0', cur[8] or '0', deadline, wait, me.replid, me.connected, me.promotable}
end
-- The registrations, one field 'creators' of "token=deadline" words (one
-- field, so the ACL needs no command beyond HMGET and HSET).
local function creators()
  local out = {}
  local raw = redis.call('HMGET', KEYS[1], 'creators')[1] or ''
  for tok, d in string.gmatch(raw, '(%w+)=(%d+)') do
    out[#out + 1] = {tok, tonumber(d)}
  end
  return out
end
local function setCreators(list)
  local words = {}
  for _, c in ipairs(list) do
    words[#words + 1] = c[1] .. '=' .. int(c[2])
  end
  redis.call('HSET', KEYS[1], 'creators', table.concat(words, ' '))
end
if not cur[1] then
  if op == 'read' or op == 'state' or op == 'checked' or op == 'done' then
    return reply(0)
  end
  cur = {ARGV[2], ARGV[3], ARGV[4], 'u', ARGV[5], ARGV[6], ARGV[7], ARGV[8]}
  redis.call('HSET', KEYS[1], 'shards', ARGV[2], 'layout', ARGV[3], 'start', ARGV[4], 'ready', 'u',
    'strict', ARGV[5], 'gen', ARGV[6], 'deleted', ARGV[7], 'created', ARGV[8])
  found = 2
end
if op == 'claim' and cur[4] ~= '1' and token ~= '' and ttl > 0 then
  if not me.now then
    return redis.error_reply('SHARDSEQ_REPLY cannot read server_time_usec from INFO')
  end
  deadline = me.now + ttl
  local list = creators()
  list[#list + 1] = {token, deadline}
  setCreators(list)
end
if (op == 'done' or op == 'ready') and token ~= '' and cur[4] ~= '1' then
  if not me.now then
    return redis.error_reply('SHARDSEQ_REPLY cannot read server_time_usec from INFO')
  end
  local others = {}
  for _, c in ipairs(creators()) do
    if c[1] ~= token then
      others[#others + 1] = c
      wait = math.max(wait, c[2] + margin - me.now)
    end
  end
  if wait > 0 and op == 'ready' then
    setCreators(others)
    return reply(found)
  end
  setCreators(op == 'ready' and {} or others)
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
