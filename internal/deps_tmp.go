package internal

import (
	_ "github.com/bwmarrin/snowflake"
	_ "github.com/google/uuid"
	_ "github.com/hashicorp/go-memdb"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/rs/xid"
	_ "github.com/sony/gobreaker/v2"
	_ "github.com/sony/sonyflake/v2"
)


