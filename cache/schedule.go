package cache

import (
	"math"
	"time"
)

// Token is an access token as a source returns it.
type Token struct {
	// Value is the access token itself. The engine never prints it.
	Value string
	// ExpiresOn is when the token stops being valid.
	ExpiresOn time.Time
	// RefreshOn is when the source asks for the token to be refreshed (the
	// token endpoint's refresh_in, made absolute by the source). Zero when the
	// source gave no hint.
	RefreshOn time.Time
}

// The numbers of the refresh policy.
const (
	// halfLifeFrom is the lifetime from which a token is refreshed at half
	// its life rather than shortly before it expires.
	halfLifeFrom = 2 * time.Hour
	// refreshLead is how long before expiry a shorter-lived token is
	// refreshed, capped at half its lifetime.
	refreshLead = 5 * time.Minute
	// usableMargin is how long before expiry a token stops being handed out,
	// capped at a tenth of its lifetime.
	usableMargin = 30 * time.Second
	// maxJitter is the largest share of (refresh time − received) by which
	// the refresh time is moved earlier.
	maxJitter = 0.05
	// retryDelay is the shortest wait before a background refresh is tried
	// again after one that failed or did not extend the token.
	retryDelay = 30 * time.Second
	// lookAgainFloor is the shortest wait before a background refresh is
	// tried again after one that did not extend the token but whose shared
	// store named a sooner time to look again (lookAgainAt).
	lookAgainFloor = 100 * time.Millisecond
)

// Schedule computes when a token received at received should be refreshed
// and until when it may be handed out. jitter in [0, 1] moves the refresh time
// earlier by that share of 5% of (refresh time − received); values outside
// the range are clamped.
//
// With the lifetime L = t.ExpiresOn − received:
//
//   - usableUntil is t.ExpiresOn − min(30 s, L/10);
//   - the refresh time is t.RefreshOn when the source sent one that lies
//     after received and before usableUntil (a hint outside that window
//     would make the token stale on arrival or never stale, and is ignored);
//     otherwise received + L/2 when L ≥ 2 h; otherwise
//     t.ExpiresOn − min(5 min, L/2);
//   - jitter then applies to every refresh time, the source's hint included:
//     a fleet that receives the same hint at the same moment must not refresh
//     in step either.
//
// For L > 0 the result satisfies received < refreshAt ≤ usableUntil ≤
// t.ExpiresOn. A token with L ≤ 0 is unusable on arrival: both times are
// t.ExpiresOn.
//
// The times carry no monotonic clock reading, so comparing them with
// time.Now uses the wall clock, as ExpiresOn does: a machine that was
// suspended sees its tokens age by the time it slept.
func Schedule(received time.Time, t Token, jitter float64) (refreshAt, usableUntil time.Time) {
	received, expires, hint := received.Round(0), t.ExpiresOn.Round(0), t.RefreshOn.Round(0)
	life := expires.Sub(received)
	if life <= 0 {
		return expires, expires
	}
	usableUntil = expires.Add(-min(usableMargin, life/10))
	switch {
	case !hint.IsZero() && hint.After(received) && hint.Before(usableUntil):
		refreshAt = hint
	case life >= halfLifeFrom:
		refreshAt = received.Add(life / 2)
	default:
		refreshAt = expires.Add(-min(refreshLead, life/2))
	}
	switch {
	case math.IsNaN(jitter) || jitter < 0:
		jitter = 0
	case jitter > 1:
		jitter = 1
	}
	early := time.Duration(float64(refreshAt.Sub(received)) * maxJitter * jitter)
	return refreshAt.Add(-early), usableUntil
}

// String describes t without its value, the bearer token.
func (t Token) String() string {
	return describeSecret("cache.Token", t.Value, t.ExpiresOn, t.RefreshOn)
}

// GoString is String, so that %#v shows no token either.
func (t Token) GoString() string { return t.String() }

// describeSecret renders a token-like value's times and whether it is set.
func describeSecret(name, value string, expiresOn, refreshOn time.Time) string {
	shown := `""`
	if value != "" {
		shown = "REDACTED"
	}
	return name + "{Value: " + shown + ", ExpiresOn: " + expiresOn.Format(time.RFC3339) + ", RefreshOn: " + refreshOn.Format(time.RFC3339) + "}"
}
