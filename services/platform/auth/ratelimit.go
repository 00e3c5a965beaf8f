package auth

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultRateLimits are calls per second per principal, by role: generous
// for staff and the councils' and companies' own systems, tighter for
// partner systems, which read aggregates in bulk.
const DefaultRateLimits = "staff=200,council=50,company=50,provider=50,partner=10,auditor=20"

// RateLimitsFlag defines -rate-limits (KN_RATE_LIMITS) on fs.
func RateLimitsFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "rate-limits", DefaultRateLimits,
		"calls per second each principal may make, by role (role=n, comma-separated; 0 means unlimited); a burst of up to one second's worth is allowed")
}

// RateLimits are calls per second by role.
type RateLimits map[Role]int

// ParseRateLimits reads "staff=200,partner=10,…"; roles left out are
// unlimited.
func ParseRateLimits(s string) (RateLimits, error) {
	out := RateLimits{}
	for _, part := range config.List(s) {
		name, n, ok := strings.Cut(part, "=")
		role, known := roleByName(strings.TrimSpace(name))
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || !known || err != nil || v < 0 {
			return nil, fmt.Errorf("rate limits: %q is not role=calls per second (roles: staff, council, company, provider, partner, auditor)", part)
		}
		out[role] = v
	}
	return out, nil
}

// RateLimiter limits each principal's calls per second with GCRA in Redis
// (redis_rate), so that every replica of a service counts the same calls.
// A principal is limited per service: each service's Redis keeps its own
// count.
type RateLimiter struct {
	limits RateLimits
}

// NewRateLimiter limits by limits.
func NewRateLimiter(limits RateLimits) *RateLimiter { return &RateLimiter{limits: limits} }

// Allow takes one call from p's allowance in rdb's count, or returns
// RESOURCE_EXHAUSTED with a google.rpc.RetryInfo saying when to retry. A
// count that cannot be read lets the call through: rate limiting protects
// the service, and must not take it down with Redis.
func (l *RateLimiter) Allow(ctx context.Context, rdb redis.UniversalClient, ks store.Keyspace, p *Principal) error {
	if l == nil || p == nil {
		return nil
	}
	n := l.limits[p.GetRole()]
	if n <= 0 {
		return nil
	}
	res, err := redis_rate.NewLimiter(rdb).Allow(ctx, ks.Key("ratelimit", p.GetId()), redis_rate.PerSecond(n))
	if err != nil || res.Allowed > 0 {
		return nil
	}
	st := status.Newf(codes.ResourceExhausted, "rate limit: %s may make %d calls a second; retry after %s",
		p.GetId(), n, res.RetryAfter.Round(time.Millisecond))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(res.RetryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}
