package httpx

import (
	"math"
	"time"
)

// Policy is the retry policy of one source. It mirrors the root package's
// RetryOptions: a zero field means "use the source's default" (see
// WithDefaults), MaxRetries -1 means no retries.
type Policy struct {
	// MaxRetries is how many times a failed try is retried; -1 means none.
	MaxRetries int
	// RetryDelay is the base of the exponential backoff: the wait before
	// retry n is (2^n - 1) × RetryDelay × a jitter factor in [0.8, 1.3),
	// capped at MaxRetryDelay. Negative means no wait.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff; a server that asks (through
	// Retry-After) to wait longer ends the retries with a
	// *RetryAfterTooLongError. Negative means no cap.
	MaxRetryDelay time.Duration
	// TryTimeout bounds each try; a context deadline that comes sooner
	// still applies. Negative means no per-try bound.
	TryTimeout time.Duration
}

// EntraDefaults is the retry policy of requests to Microsoft Entra ID and
// of sources with no rules of their own: 3 retries (4 tries), 800 ms base
// delay, 60 s maximum delay (as in the Azure SDKs), and a 30 s per-try bound
// (MSAL's request timeout).
var EntraDefaults = Policy{
	MaxRetries:    3,
	RetryDelay:    800 * time.Millisecond,
	MaxRetryDelay: 60 * time.Second,
	TryTimeout:    30 * time.Second,
}

// WithDefaults returns p with each zero field taken from defaults. Fields that
// are still zero afterwards take EntraDefaults' value.
func (p Policy) WithDefaults(defaults Policy) Policy {
	fill := func(v, d, e time.Duration) time.Duration {
		if v != 0 {
			return v
		}
		if d != 0 {
			return d
		}
		return e
	}
	if p.MaxRetries == 0 {
		p.MaxRetries = defaults.MaxRetries
		if p.MaxRetries == 0 {
			p.MaxRetries = EntraDefaults.MaxRetries
		}
	}
	p.RetryDelay = fill(p.RetryDelay, defaults.RetryDelay, EntraDefaults.RetryDelay)
	p.MaxRetryDelay = fill(p.MaxRetryDelay, defaults.MaxRetryDelay, EntraDefaults.MaxRetryDelay)
	p.TryTimeout = fill(p.TryTimeout, defaults.TryTimeout, EntraDefaults.TryTimeout)
	return p
}

// tries is the number of tries p allows: MaxRetries+1, at least 1.
func (p Policy) tries() int {
	if p.MaxRetries < 0 {
		return 1
	}
	return p.MaxRetries + 1
}

// maxDelay is MaxRetryDelay with "negative" read as "no cap".
func (p Policy) maxDelay() time.Duration {
	if p.MaxRetryDelay < 0 {
		return time.Duration(math.MaxInt64)
	}
	return p.MaxRetryDelay
}

// backoff is the wait before retry n (n ≥ 1): (2^n - 1) × RetryDelay ×
// jitter, capped at the maximum delay. jitter is a factor in [0.8, 1.3).
func (p Policy) backoff(n int, jitter float64) time.Duration {
	if p.RetryDelay <= 0 {
		return 0
	}
	limit := p.maxDelay()
	if n >= 62 {
		return limit
	}
	d := float64(int64(1)<<n-1) * float64(p.RetryDelay) * jitter
	if d >= float64(limit) {
		return limit
	}
	return time.Duration(d)
}
