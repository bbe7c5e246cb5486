package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
)

var vault = Request{Scopes: []string{"https://vault.azure.net/.default"}}

// source is a scripted token source that records every fetch.
type source struct {
	clk  *clock.Fake
	next func(ctx context.Context, n int, r Request) (Token, error)

	mu    sync.Mutex
	reqs  []Request
	times []time.Time
}

// newSource returns a source on a fake clock at t0 whose n-th fetch returns
// next's result.
func newSource(next func(ctx context.Context, n int, r Request) (Token, error)) *source {
	return &source{clk: clock.NewFake(t0), next: next}
}

// issuing returns a source that hands out a new token "tok-n", valid for
// life, on every fetch.
func issuing(life time.Duration) *source {
	s := newSource(nil)
	s.next = func(_ context.Context, n int, _ Request) (Token, error) {
		return Token{Value: fmt.Sprintf("tok-%d", n), ExpiresOn: s.clk.Now().Add(life)}, nil
	}
	return s
}

func (s *source) fetch(ctx context.Context, r Request) (Token, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.times = append(s.times, s.clk.Now())
	n := len(s.reqs)
	s.mu.Unlock()
	return s.next(ctx, n, r)
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *source) requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

func (s *source) fetchTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// patience is how long a test waits for something that should happen at
// once before it fails instead of hanging. It only ever decides failure,
// never ordering.
const patience = 10 * time.Second

// await receives from ch, failing the test if nothing comes.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// done returns a channel closed when wait returns.
func done(wait func()) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		wait()
		close(ch)
	}()
	return ch
}

// waitIdle registers a cleanup that waits for e's fetches, so goleak finds
// none; a fetch still blocked then fails the test rather than hanging it.
func waitIdle(t *testing.T, e *Engine) {
	t.Cleanup(func() {
		select {
		case <-done(e.Wait):
		case <-time.After(patience):
			t.Error("a fetch was still running at the end of the test")
		}
	})
}

// newEngine returns an engine on s's clock without jitter. The test's
// cleanup waits for its fetches, so a test that blocks a fetch must release
// it before it ends.
func newEngine(t *testing.T, s *source) *Engine {
	t.Helper()
	e := New(s.fetch, &Options{Clock: s.clk, Jitter: func() float64 { return 0 }})
	waitIdle(t, e)
	return e
}

func mustGet(t *testing.T, e *Engine, r Request) Token {
	t.Helper()
	tok, err := e.Get(context.Background(), r)
	require.NoError(t, err)
	return tok
}

// result is what a Get in another goroutine returned.
type result struct {
	tok Token
	err error
}

func getAsync(ctx context.Context, e *Engine, r Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		tok, err := e.Get(ctx, r)
		ch <- result{tok, err}
	}()
	return ch
}

// gate makes fetches wait until the test opens it.
type gate struct {
	started chan struct{} // one send per fetch that reached the gate
	open    chan struct{}
}

func newGate() *gate { return &gate{started: make(chan struct{}, 16), open: make(chan struct{})} }

func (g *gate) wait() {
	g.started <- struct{}{}
	<-g.open
}

func TestFreshStaleExpired(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour) // refresh at 55 min, usable until 59 min 30 s
	var g *gate
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		if g != nil {
			g.wait()
		}
		return next(ctx, n, r)
	}
	e := newEngine(t, s)

	// Absent: the caller waits for the first fetch.
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	assert.Equal(t, 1, s.count())

	// Fresh until the refresh time: no fetch.
	s.clk.Advance(55*time.Minute - time.Nanosecond)
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	e.Wait()
	assert.Equal(t, 1, s.count(), "a fresh token must not be fetched again")

	// Stale: returned at once while one background fetch runs.
	g = newGate()
	s.clk.Advance(time.Nanosecond)
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value, "stale token returned without waiting")
	await(t, g.started, "the fetch to start")
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value, "stale token returned while the refresh runs")
	close(g.open)
	e.Wait()
	assert.Equal(t, 2, s.count())
	g = nil
	tok := mustGet(t, e, vault)
	assert.Equal(t, "tok-2", tok.Value, "the refreshed token replaces the stale one")
	assert.Equal(t, t0.Add(55*time.Minute+time.Hour), tok.ExpiresOn)

	// Expired: past usable-until of tok-2 the caller waits for a fetch.
	g = newGate()
	s.clk.Set(t0.Add(55*time.Minute + time.Hour - 30*time.Second))
	res := getAsync(context.Background(), e, vault)
	await(t, g.started, "the fetch to start")
	select {
	case r := <-res:
		t.Fatalf("Get returned %q before the fetch of an expired token ended", r.tok.Value)
	default:
	}
	close(g.open)
	r := await(t, res, "Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-3", r.tok.Value)
	assert.Equal(t, 3, s.count())
}

func TestRefreshIn(t *testing.T) {
	t.Parallel()
	s := newSource(nil)
	s.next = func(_ context.Context, n int, _ Request) (Token, error) {
		now := s.clk.Now()
		return Token{Value: fmt.Sprintf("tok-%d", n), ExpiresOn: now.Add(24 * time.Hour), RefreshOn: now.Add(time.Hour)}, nil
	}
	e := newEngine(t, s)
	mustGet(t, e, vault)

	s.clk.Advance(time.Hour - time.Second)
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 1, s.count(), "before refresh_in: fresh")

	s.clk.Advance(time.Second)
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	e.Wait()
	assert.Equal(t, 2, s.count(), "at refresh_in: one background refresh, not the 12 h half-life")
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value)
}

func TestHalfLife(t *testing.T) {
	t.Parallel()
	s := issuing(24 * time.Hour)
	e := newEngine(t, s)
	mustGet(t, e, vault)

	s.clk.Advance(12*time.Hour - time.Second)
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 1, s.count(), "a 24 h token is fresh for 12 h")

	s.clk.Advance(time.Second)
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 2, s.count(), "and refreshed at half its life")
}

// TestShortTokens calls Get 40 times per lifetime for 20 lifetimes of a
// source that issues short tokens: every call gets a usable token, no call
// waits after the first, and fetches happen exactly every L/2, not in a loop.
func TestShortTokens(t *testing.T) {
	t.Parallel()
	for _, life := range []time.Duration{4 * time.Minute, time.Minute, 10 * time.Second} {
		t.Run(life.String(), func(t *testing.T) {
			t.Parallel()
			s := issuing(life)
			e := newEngine(t, s)
			margin := min(30*time.Second, life/10)
			step := life / 40
			for i := range 20 * 40 {
				now := s.clk.Now()
				tok := mustGet(t, e, vault)
				require.Truef(t, now.Before(tok.ExpiresOn.Add(-margin)), "call %d at %v got a token past usable-until", i, now.Sub(t0))
				e.Wait()
				s.clk.Advance(step)
			}
			times := s.fetchTimes()
			assert.Len(t, times, 20*2, "one fetch per half lifetime, the last at 19.5 lifetimes")
			for i := 1; i < len(times); i++ {
				assert.Equal(t, life/2, times[i].Sub(times[i-1]), "gap before fetch %d", i)
			}
		})
	}
}

func TestJitterMovesRefreshEarlier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		jitter    float64
		refreshAt time.Duration
	}{
		{0, 12 * time.Hour},
		{0.5, 12*time.Hour - 18*time.Minute},
		{1, 12*time.Hour - 36*time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.jitter), func(t *testing.T) {
			t.Parallel()
			s := issuing(24 * time.Hour)
			e := New(s.fetch, &Options{Clock: s.clk, Jitter: func() float64 { return tt.jitter }})
			waitIdle(t, e)
			mustGet(t, e, vault)
			s.clk.Set(t0.Add(tt.refreshAt - time.Nanosecond))
			mustGet(t, e, vault)
			e.Wait()
			assert.Equal(t, 1, s.count(), "fresh just before the jittered refresh time")
			s.clk.Set(t0.Add(tt.refreshAt))
			mustGet(t, e, vault)
			e.Wait()
			assert.Equal(t, 2, s.count(), "stale at the jittered refresh time")
		})
	}
}

func TestDefaultJitterWithinBounds(t *testing.T) {
	t.Parallel()
	// Many engines with the default random jitter: each refreshes a 24 h
	// token between 11 h 24 min and 12 h.
	for i := range 50 {
		s := issuing(24 * time.Hour)
		e := New(s.fetch, &Options{Clock: s.clk})
		mustGet(t, e, vault)
		s.clk.Set(t0.Add(12*time.Hour - 36*time.Minute - time.Nanosecond))
		mustGet(t, e, vault)
		e.Wait()
		assert.Equal(t, 1, s.count(), "engine %d refreshed more than 5%% early", i)
		s.clk.Set(t0.Add(12 * time.Hour))
		mustGet(t, e, vault)
		e.Wait()
		assert.Equal(t, 2, s.count(), "engine %d did not refresh by the half-life", i)
	}
}

func TestBackoffAfterFailedRefresh(t *testing.T) {
	t.Parallel()
	errDown := errors.New("source down")
	s := newSource(nil)
	var failing bool
	s.next = func(_ context.Context, n int, _ Request) (Token, error) {
		if failing {
			return Token{}, errDown
		}
		return Token{Value: fmt.Sprintf("tok-%d", n), ExpiresOn: s.clk.Now().Add(time.Hour)}, nil
	}
	e := newEngine(t, s)
	mustGet(t, e, vault)

	failing = true
	steps := []struct {
		at      time.Duration
		fetches int
		value   string
	}{
		{55 * time.Minute, 2, "tok-1"},                      // stale: refresh fails, old token kept
		{55*time.Minute + 29*time.Second, 2, "tok-1"},       // within the back-off: no fetch
		{55*time.Minute + 30*time.Second, 3, "tok-1"},       // back-off over: tried again, fails
		{56*time.Minute + 29*time.Second, 4, "tok-1"},       // and again 30 s later
		{56*time.Minute + 30*time.Second, 4, "tok-1"},       // within the back-off
		{59*time.Minute + 29*time.Second, 5, "tok-1"},       // last try before usable-until
		{59*time.Minute + 29*time.Second + 999, 5, "tok-1"}, // still usable
	}
	for _, st := range steps {
		s.clk.Set(t0.Add(st.at))
		assert.Equal(t, st.value, mustGet(t, e, vault).Value, "at %v", st.at)
		e.Wait()
		assert.Equal(t, st.fetches, s.count(), "fetches by %v", st.at)
	}

	// Past usable-until the failure reaches the caller, unchanged, and
	// starts no back-off: the next caller fetches again at once.
	s.clk.Set(t0.Add(59*time.Minute + 30*time.Second))
	_, err := e.Get(context.Background(), vault)
	assert.Same(t, errDown, err)
	_, err = e.Get(context.Background(), vault)
	assert.Same(t, errDown, err)
	assert.Equal(t, 7, s.count())

	failing = false
	assert.Equal(t, "tok-8", mustGet(t, e, vault).Value)
}

// TestNotExtendedIsNotPolled runs a simulated day with a caller every
// minute and a source that always hands back the same 24 h token, as a tool
// does with its own cache: the engine asks again at the documented times
// (max(30 s, half the time left until usable-until) after each try), 11
// fetches in the day rather than one a minute.
func TestNotExtendedIsNotPolled(t *testing.T) {
	t.Parallel()
	s := newSource(nil)
	same := Token{Value: "tok", ExpiresOn: t0.Add(24 * time.Hour)}
	s.next = func(context.Context, int, Request) (Token, error) { return same, nil }
	e := newEngine(t, s)
	for range 24 * 60 { // 00:00 to 23:59; the token is usable until 23:59:30
		assert.Equal(t, "tok", mustGet(t, e, vault).Value)
		e.Wait()
		s.clk.Advance(time.Minute)
	}
	hm := func(h, m int) time.Time { return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	// Retry times before rounding up to the caller's next minute: 12:00 →
	// 17:59:45 → 20:59:45 → 22:29:45 → 23:14:45 → 23:37:15 → 23:48:45 →
	// 23:54:15 → 23:57:15 → 23:58:45; the try at 23:59 waits 30 s, which is
	// usable-until.
	want := []time.Time{
		t0, hm(12, 0), hm(18, 0), hm(21, 0), hm(22, 30), hm(23, 15),
		hm(23, 38), hm(23, 49), hm(23, 55), hm(23, 58), hm(23, 59),
	}
	assert.Equal(t, want, s.fetchTimes())
}

func TestNotExtendedRetryTimes(t *testing.T) {
	t.Parallel()
	// The same rule at exact times: a 1 h token (usable until 59:30) whose
	// refreshes keep returning the same token is tried at 55:00, then after
	// max(30 s, half the time left until 59:30) each time.
	s := newSource(nil)
	same := Token{Value: "tok", ExpiresOn: t0.Add(time.Hour)}
	s.next = func(context.Context, int, Request) (Token, error) { return same, nil }
	e := newEngine(t, s)
	mustGet(t, e, vault)
	ms := func(m, sec int, ms int) time.Duration {
		return time.Duration(m)*time.Minute + time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond
	}
	steps := []struct {
		at      time.Duration
		fetches int
	}{
		{ms(55, 0, 0), 2},        // 4:30 left → next in 2:15
		{ms(57, 15, 0) - 1, 2},   //
		{ms(57, 15, 0), 3},       // 2:15 left → next in 1:07.5
		{ms(58, 22, 500) - 1, 3}, //
		{ms(58, 22, 500), 4},     // 1:07.5 left → next in 33.75 s
		{ms(58, 56, 250) - 1, 4}, //
		{ms(58, 56, 250), 5},     // 33.75 s left → next in max(30 s, 16.875 s)
		{ms(59, 26, 250) - 1, 5}, //
		{ms(59, 26, 250), 6},     // 3.75 s left → next in 30 s: after usable-until, never
		{ms(59, 30, 0) - 1, 6},   // still served, no further try
	}
	for _, st := range steps {
		s.clk.Set(t0.Add(st.at))
		assert.Equal(t, "tok", mustGet(t, e, vault).Value)
		e.Wait()
		assert.Equal(t, st.fetches, s.count(), "fetches by %v", st.at)
	}
}

func TestExpiredOnArrival(t *testing.T) {
	t.Parallel()
	for _, age := range []time.Duration{0, time.Minute} {
		t.Run(age.String(), func(t *testing.T) {
			t.Parallel()
			s := newSource(nil)
			s.next = func(_ context.Context, n int, _ Request) (Token, error) {
				return Token{Value: fmt.Sprintf("tok-%d", n), ExpiresOn: s.clk.Now().Add(-age)}, nil
			}
			e := newEngine(t, s)
			assert.Equal(t, "tok-1", mustGet(t, e, vault).Value, "the caller gets what the source returned")
			e.Wait()
			assert.Equal(t, 1, s.count(), "no background refresh of an unusable token")
			assert.Nil(t, e.tab.Load().get(keyOf(vault)), "an unusable token is not cached")
			assert.Equal(t, "tok-2", mustGet(t, e, vault).Value, "the next caller fetches")
			e.Wait()
			assert.Equal(t, 2, s.count())
		})
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	errRefused := errors.New("claims refused")
	s := issuing(time.Hour)
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		if r.Claims == "refuse" {
			return Token{}, errRefused
		}
		return next(ctx, n, r)
	}
	e := newEngine(t, s)
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)

	withClaims := vault
	withClaims.Claims = `{"access_token":{"nbf":{"essential":true}}}`
	assert.Equal(t, "tok-2", mustGet(t, e, withClaims).Value, "claims bypass a fresh cached token")
	assert.Equal(t, withClaims.Claims, s.requests()[1].Claims, "the fetch receives the claims")
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value, "the claims token replaces the cached one")
	assert.Equal(t, 2, s.count())

	refused := vault
	refused.Claims = "refuse"
	_, err := e.Get(context.Background(), refused)
	assert.Same(t, errRefused, err)
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value, "a failed claims fetch leaves the cache alone")
	assert.Equal(t, 3, s.count())
}

func TestClaimsNotCoalescedWithPlainFetch(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	g := newGate()
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		if r.Claims == "" {
			g.wait()
		}
		return next(ctx, n, r)
	}
	e := newEngine(t, s)
	plain := getAsync(context.Background(), e, vault)
	await(t, g.started, "the fetch to start")

	withClaims := vault
	withClaims.Claims = "c"
	assert.Equal(t, "tok-2", mustGet(t, e, withClaims).Value, "the claims request fetched on its own")
	assert.Equal(t, 2, s.count())

	s.clk.Advance(time.Minute) // the plain fetch's token will expire later than the claims token
	close(g.open)
	r := await(t, plain, "the plain Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-1", r.tok.Value, "the plain caller gets its own fetch's token")
	e.Wait()
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value, "a plain fetch that began before the claims token must not overwrite it")
	assert.Equal(t, 2, s.count())
}

func TestSameClaimsShareAFetch(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	g := newGate()
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		g.wait()
		return next(ctx, n, r)
	}
	e := newEngine(t, s)
	var joined sync.WaitGroup
	joined.Add(2)
	e.joined = joined.Done
	withClaims := vault
	withClaims.Claims = "c"
	a := getAsync(context.Background(), e, withClaims)
	b := getAsync(context.Background(), e, withClaims)
	await(t, done(joined.Wait), "the callers to join")
	close(g.open)
	ra, rb := await(t, a, "Get a"), await(t, b, "Get b")
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	assert.Equal(t, "tok-1", ra.tok.Value)
	assert.Equal(t, "tok-1", rb.tok.Value)
	assert.Equal(t, 1, s.count())
}

func TestKeySeparation(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	e := newEngine(t, s)
	arm, graph := "https://management.azure.com/.default", "https://graph.microsoft.com/.default"
	steps := []struct {
		name  string
		r     Request
		value string
	}{
		{"first", Request{Scopes: []string{arm}}, "tok-1"},
		{"same again", Request{Scopes: []string{arm}}, "tok-1"},
		{"same scope repeated", Request{Scopes: []string{arm, arm}}, "tok-1"},
		{"CAE", Request{Scopes: []string{arm}, EnableCAE: true}, "tok-2"},
		{"CAE again", Request{Scopes: []string{arm}, EnableCAE: true}, "tok-2"},
		{"non-CAE unaffected", Request{Scopes: []string{arm}}, "tok-1"},
		{"tenant", Request{Scopes: []string{arm}, TenantID: "other"}, "tok-3"},
		{"two scopes", Request{Scopes: []string{arm, graph}}, "tok-4"},
		{"two scopes other order", Request{Scopes: []string{graph, arm, graph}}, "tok-4"},
		{"other scope", Request{Scopes: []string{graph}}, "tok-5"},
		{"first still cached", Request{Scopes: []string{arm}}, "tok-1"},
	}
	for _, st := range steps {
		assert.Equal(t, st.value, mustGet(t, e, st.r).Value, st.name)
	}
	assert.Equal(t, 5, s.count())
	reqs := s.requests()
	assert.True(t, reqs[1].EnableCAE, "the CAE fetch asks for CAE")
	assert.False(t, reqs[0].EnableCAE)
	assert.Equal(t, "other", reqs[2].TenantID)
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	e := newEngine(t, s)
	other := Request{Scopes: []string{"other"}}
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	assert.Equal(t, "tok-2", mustGet(t, e, other).Value)

	e.Invalidate(Request{Scopes: []string{"unknown"}}) // no such key: nothing happens
	withClaims := vault
	withClaims.Claims = "ignored"
	e.Invalidate(withClaims)
	assert.Equal(t, "tok-3", mustGet(t, e, vault).Value, "an invalidated key fetches")
	assert.Equal(t, "tok-3", mustGet(t, e, vault).Value)
	assert.Equal(t, "tok-2", mustGet(t, e, other).Value, "other keys are untouched")
	assert.Equal(t, 3, s.count())
}

func TestInvalidateDuringFetch(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	var g *gate
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		if n == 1 {
			g.wait()
		}
		return next(ctx, n, r)
	}
	g = newGate()
	e := newEngine(t, s)
	waiting := getAsync(context.Background(), e, vault)
	await(t, g.started, "the fetch to start")
	e.Invalidate(vault)
	close(g.open)
	r := await(t, waiting, "Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-1", r.tok.Value, "the waiting caller still gets the result")
	e.Wait()
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value, "a result fetched before Invalidate is not cached")
}

func TestThousandCallersOnExpiredEntryShareOneFetch(t *testing.T) {
	t.Parallel()
	const callers = 1000
	s := issuing(time.Hour)
	g := newGate()
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		g.wait()
		return next(ctx, n, r)
	}
	e := newEngine(t, s)
	var joined sync.WaitGroup
	joined.Add(callers)
	e.joined = joined.Done

	results := make([]<-chan result, callers)
	for i := range results {
		results[i] = getAsync(context.Background(), e, vault)
	}
	await(t, done(joined.Wait), "the callers to join") // every caller waits on a fetch
	close(g.open)
	for _, ch := range results {
		r := await(t, ch, "Get")
		require.NoError(t, r.err)
		assert.Equal(t, "tok-1", r.tok.Value)
	}
	assert.Equal(t, 1, s.count())
}

func TestThousandCallersOnStaleEntryDoNotWait(t *testing.T) {
	t.Parallel()
	const callers = 1000
	s := issuing(time.Hour)
	g := newGate()
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		if n > 1 {
			g.wait()
		}
		return next(ctx, n, r)
	}
	e := newEngine(t, s)
	mustGet(t, e, vault)
	s.clk.Advance(56 * time.Minute)

	results := make([]<-chan result, callers)
	for i := range results {
		results[i] = getAsync(context.Background(), e, vault)
	}
	// All callers return while the refresh is still held at the gate.
	for _, ch := range results {
		r := await(t, ch, "Get")
		require.NoError(t, r.err)
		assert.Equal(t, "tok-1", r.tok.Value)
	}
	await(t, g.started, "the fetch to start")
	close(g.open)
	e.Wait()
	assert.Equal(t, 2, s.count(), "one initial fetch and exactly one refresh")
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value)
}

func TestCancelledCallerDoesNotCancelTheFetch(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	g := newGate()
	var fetchErr error
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		g.wait()
		fetchErr = ctx.Err()
		return next(ctx, n, r)
	}
	e := newEngine(t, s)
	var joined sync.WaitGroup
	joined.Add(2)
	e.joined = joined.Done

	ctx, cancel := context.WithCancel(context.Background())
	quitter := getAsync(ctx, e, vault)
	stayer := getAsync(context.Background(), e, vault)
	await(t, done(joined.Wait), "the callers to join")
	cancel()
	r := await(t, quitter, "the cancelled Get")
	assert.ErrorIs(t, r.err, context.Canceled, "the cancelled caller stops waiting")
	assert.Empty(t, r.tok.Value)

	close(g.open)
	r = await(t, stayer, "the other Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-1", r.tok.Value, "the other caller still gets the token")
	e.Wait()
	assert.NoError(t, fetchErr, "the shared fetch was not cancelled")
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value, "and its token was cached")
	assert.Equal(t, 1, s.count())
}

func TestCancelledCallerStartsNoFetch(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	e := newEngine(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Get(ctx, vault)
	assert.ErrorIs(t, err, context.Canceled)
	e.Wait()
	assert.Equal(t, 0, s.count())

	// A cached token is still served to a cancelled context.
	mustGet(t, e, vault)
	tok, err := e.Get(ctx, vault)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok.Value)
}

type ctxKey struct{}

func TestFetchContext(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	type seen struct {
		value       any
		hasDeadline bool
		deadline    time.Time
		err         error
	}
	got := make(chan seen, 1)
	g := newGate()
	next := s.next
	s.next = func(ctx context.Context, n int, r Request) (Token, error) {
		g.wait()
		dl, ok := ctx.Deadline()
		got <- seen{ctx.Value(ctxKey{}), ok, dl, ctx.Err()}
		return next(ctx, n, r)
	}
	e := New(s.fetch, &Options{Clock: s.clk, RefreshTimeout: time.Hour})
	waitIdle(t, e)

	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "v"), time.Minute)
	callerDeadline, _ := ctx.Deadline()
	before := time.Now()
	res := getAsync(ctx, e, vault)
	await(t, g.started, "the fetch to start")
	cancel()
	assert.ErrorIs(t, await(t, res, "the cancelled Get").err, context.Canceled)
	close(g.open)
	sn := await(t, got, "the fetch")
	assert.Equal(t, "v", sn.value, "the fetch keeps the caller's values")
	assert.NoError(t, sn.err, "the fetch is not cancelled with its caller")
	require.True(t, sn.hasDeadline, "the fetch is bounded")
	assert.True(t, sn.deadline.After(callerDeadline), "the caller's deadline does not bound the fetch")
	assert.False(t, sn.deadline.Before(before.Add(time.Hour)), "RefreshTimeout bounds the fetch")
}

func TestRefreshTimeoutEndsFetch(t *testing.T) {
	t.Parallel()
	s := newSource(func(ctx context.Context, _ int, _ Request) (Token, error) {
		<-ctx.Done()
		return Token{}, ctx.Err()
	})
	e := New(s.fetch, &Options{Clock: s.clk, RefreshTimeout: 20 * time.Millisecond})
	waitIdle(t, e)
	_, err := e.Get(context.Background(), vault)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

type sourceError struct{ status int }

func (e *sourceError) Error() string { return fmt.Sprintf("source answered %d", e.status) }

func TestFetchErrorsReachCallersUnchanged(t *testing.T) {
	t.Parallel()
	want := &sourceError{status: 400}
	s := newSource(func(context.Context, int, Request) (Token, error) { return Token{}, want })
	e := newEngine(t, s)
	_, err := e.Get(context.Background(), vault)
	var se *sourceError
	require.ErrorAs(t, err, &se)
	assert.Same(t, want, se)
	_, err = e.Get(context.Background(), vault)
	assert.Same(t, want, err)
	assert.Equal(t, 2, s.count(), "a failed foreground fetch starts no back-off")
}

func TestFetchReceivesTheRequest(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	e := newEngine(t, s)
	r := Request{Scopes: []string{"b", "a", "b"}, TenantID: "tenant", Claims: "claims", EnableCAE: true}
	mustGet(t, e, r)
	r.Scopes[0] = "changed"
	got := s.requests()
	require.Len(t, got, 1)
	assert.Equal(t, Request{Scopes: []string{"b", "a", "b"}, TenantID: "tenant", Claims: "claims", EnableCAE: true}, got[0])
}

func TestWaitReturnsWhenIdle(t *testing.T) {
	t.Parallel()
	e := New(func(context.Context, Request) (Token, error) { return Token{}, nil }, nil)
	e.Wait()
	assert.Equal(t, defaultRefreshTimeout, e.timeout)
}

func TestNewRejectsNilFetch(t *testing.T) {
	t.Parallel()
	assert.PanicsWithValue(t, "cache.New: fetch is nil; pass the function that gets a token from the source", func() { New(nil, nil) })
}
