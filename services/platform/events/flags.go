package events

import (
	"flag"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/redis/go-redis/v9"
)

// SourceFlags are the settings of one consumed stream's Redis.
type SourceFlags struct {
	Addrs, Master, Username, Password *string
}

// RegisterSourceFlags defines -<producer>-events-redis (and -master,
// -username, -password; env KN_<PRODUCER>_EVENTS_REDIS, …): where the
// producer's stream lives when it is not in this service's own Redis.
func RegisterSourceFlags(fs *flag.FlagSet, producer string) *SourceFlags {
	p := producer + "-events-redis"
	return &SourceFlags{
		Addrs:    config.String(fs, p, "", "Redis holding the "+producer+" service's event stream (default: this service's own Redis)"),
		Master:   config.String(fs, p+"-master", "", "Sentinel master name of that Redis"),
		Username: config.String(fs, p+"-username", "", "Redis ACL user for that Redis"),
		Password: config.String(fs, p+"-password", "", "Redis password for that Redis"),
	}
}

// Options are the go-redis options of the producer's Redis; own is used
// when no address was given.
func (f *SourceFlags) Options(own *redis.UniversalOptions) *redis.UniversalOptions {
	if len(config.List(*f.Addrs)) == 0 {
		return own
	}
	// The producer's Redis is waited for (-redis-wait) like this service's own.
	o := (&redisx.Flags{Addrs: f.Addrs, Master: f.Master, Username: f.Username, Password: f.Password}).Options()
	if w := redisx.SettingsOf(own).Wait; w > 0 {
		redisx.WithSettings(o, redisx.Settings{Wait: w})
	}
	return o
}
