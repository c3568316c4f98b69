package clustertest

// ACLRules are the minimal ACL of the user shardseq connects as, the rules
// of README "Security" (`ACL SETUSER shardseq reset on >PASSWORD ...`): the
// one list the tests that run the product as that user share.
var ACLRules = []string{"on", "~shardseq:*", "resetchannels", "-@all",
	"+evalsha", "+script|load", "+wait", "+info", "+cluster|shards", "+cluster|myid", "+cluster|replicas", "+asking",
	"+hmget", "+hset", "+exists", "+sadd", "+smembers", "+sismember", "+scard", "+zadd", "+zrange", "+zscore", "+scan", "+get", "+set", "+del"}
