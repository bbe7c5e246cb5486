package cache

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSchedule(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name        string
		tok         Token
		jitter      float64
		refreshAt   time.Duration
		usableUntil time.Duration
	}{
		{"24h half-life", Token{ExpiresOn: at(24 * time.Hour)}, 0, 12 * time.Hour, 24*time.Hour - 30*time.Second},
		{"exactly 2h is half-life", Token{ExpiresOn: at(2 * time.Hour)}, 0, time.Hour, 2*time.Hour - 30*time.Second},
		{"just under 2h refreshes 5 min early", Token{ExpiresOn: at(119 * time.Minute)}, 0, 114 * time.Minute, 119*time.Minute - 30*time.Second},
		{"1h", Token{ExpiresOn: at(time.Hour)}, 0, 55 * time.Minute, time.Hour - 30*time.Second},
		{"10 min", Token{ExpiresOn: at(10 * time.Minute)}, 0, 5 * time.Minute, 10*time.Minute - 30*time.Second},
		{"4 min", Token{ExpiresOn: at(4 * time.Minute)}, 0, 2 * time.Minute, 4*time.Minute - 24*time.Second},
		{"60 s", Token{ExpiresOn: at(time.Minute)}, 0, 30 * time.Second, 54 * time.Second},
		{"10 s", Token{ExpiresOn: at(10 * time.Second)}, 0, 5 * time.Second, 9 * time.Second},
		{"refresh_in honoured", Token{ExpiresOn: at(24 * time.Hour), RefreshOn: at(time.Hour)}, 0, time.Hour, 24*time.Hour - 30*time.Second},
		{"refresh_in on a short token", Token{ExpiresOn: at(time.Hour), RefreshOn: at(10 * time.Minute)}, 0, 10 * time.Minute, time.Hour - 30*time.Second},
		{"refresh_in at receipt ignored", Token{ExpiresOn: at(24 * time.Hour), RefreshOn: t0}, 0, 12 * time.Hour, 24*time.Hour - 30*time.Second},
		{"refresh_in in the past ignored", Token{ExpiresOn: at(time.Hour), RefreshOn: at(-time.Minute)}, 0, 55 * time.Minute, time.Hour - 30*time.Second},
		{"refresh_in past usable-until ignored", Token{ExpiresOn: at(time.Hour), RefreshOn: at(time.Hour - 10*time.Second)}, 0, 55 * time.Minute, time.Hour - 30*time.Second},
		{"full jitter on half-life", Token{ExpiresOn: at(24 * time.Hour)}, 1, 12*time.Hour - 36*time.Minute, 24*time.Hour - 30*time.Second},
		{"half jitter on 1h", Token{ExpiresOn: at(time.Hour)}, 0.5, 55*time.Minute - 82500*time.Millisecond, time.Hour - 30*time.Second},
		{"jitter applies to refresh_in", Token{ExpiresOn: at(24 * time.Hour), RefreshOn: at(time.Hour)}, 1, 57 * time.Minute, 24*time.Hour - 30*time.Second},
		{"full jitter on 10 s", Token{ExpiresOn: at(10 * time.Second)}, 1, 4750 * time.Millisecond, 9 * time.Second},
		{"jitter above 1 clamped", Token{ExpiresOn: at(24 * time.Hour)}, 7, 12*time.Hour - 36*time.Minute, 24*time.Hour - 30*time.Second},
		{"negative jitter clamped", Token{ExpiresOn: at(24 * time.Hour)}, -1, 12 * time.Hour, 24*time.Hour - 30*time.Second},
		{"NaN jitter ignored", Token{ExpiresOn: at(24 * time.Hour)}, math.NaN(), 12 * time.Hour, 24*time.Hour - 30*time.Second},
		{"expires at receipt", Token{ExpiresOn: t0}, 0, 0, 0},
		{"expired before receipt", Token{ExpiresOn: at(-time.Hour), RefreshOn: at(-2 * time.Hour)}, 0, -time.Hour, -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			refreshAt, usableUntil := Schedule(t0, tt.tok, tt.jitter)
			assert.Equal(t, at(tt.refreshAt), refreshAt, "refresh time")
			assert.Equal(t, at(tt.usableUntil), usableUntil, "usable until")
		})
	}
}

// TestScheduleInvariants checks, over many lifetimes and jitters, that a
// token is never stale on arrival, that its refresh comes no later than its
// end of use, and that jitter only ever moves the refresh earlier, by at most
// 5% of (refresh time − received).
func TestScheduleInvariants(t *testing.T) {
	t.Parallel()
	lifetimes := []time.Duration{
		time.Nanosecond, 7 * time.Nanosecond, time.Microsecond, time.Second, 10 * time.Second,
		time.Minute, 4 * time.Minute, 10*time.Minute + time.Nanosecond, 90 * time.Minute,
		2*time.Hour - time.Nanosecond, 2 * time.Hour, 24 * time.Hour, 90 * 24 * time.Hour,
	}
	for _, life := range lifetimes {
		tok := Token{ExpiresOn: t0.Add(life)}
		base, baseUsable := Schedule(t0, tok, 0)
		for _, j := range []float64{0, 0.001, 0.25, 0.5, 0.999, 1} {
			refreshAt, usableUntil := Schedule(t0, tok, j)
			assert.True(t, refreshAt.After(t0), "life %v jitter %v: stale on arrival", life, j)
			assert.False(t, refreshAt.After(usableUntil), "life %v jitter %v: refresh after end of use", life, j)
			assert.False(t, usableUntil.After(tok.ExpiresOn), "life %v jitter %v: usable after expiry", life, j)
			assert.Equal(t, baseUsable, usableUntil, "life %v: jitter moved usable-until", life)
			early := base.Sub(refreshAt)
			assert.GreaterOrEqual(t, early, time.Duration(0), "life %v jitter %v: jitter moved refresh later", life, j)
			assert.LessOrEqual(t, float64(early), 0.05*float64(base.Sub(t0)), "life %v jitter %v: jitter beyond 5%%", life, j)
		}
	}
}

func TestScheduleUsesWallClock(t *testing.T) {
	t.Parallel()
	now := time.Now() // carries a monotonic reading
	refreshAt, usableUntil := Schedule(now, Token{ExpiresOn: now.Add(time.Hour)}, 0.5)
	assert.NotContains(t, refreshAt.String(), "m=", "refresh time must not carry a monotonic reading")
	assert.NotContains(t, usableUntil.String(), "m=", "usable-until must not carry a monotonic reading")
}
