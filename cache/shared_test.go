package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memStore is a Store and Locker in memory, standing for one shared by
// processes; a test sets failing to make every call fail and holds the lock
// itself with hold.
type memStore struct {
	mu      sync.Mutex
	m       map[EntryKey]Entry
	locked  map[EntryKey]bool
	failing error
	saves   int
	loads   int
}

func newMemStore() *memStore {
	return &memStore{m: map[EntryKey]Entry{}, locked: map[EntryKey]bool{}}
}

func (s *memStore) Load(_ context.Context, k EntryKey) (Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.failing != nil {
		return Entry{}, false, s.failing
	}
	e, ok := s.m[k]
	return e, ok, nil
}

func (s *memStore) Save(_ context.Context, k EntryKey, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing != nil {
		return s.failing
	}
	s.saves++
	s.m[k] = e
	return nil
}

func (s *memStore) Delete(_ context.Context, k EntryKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func (s *memStore) TryLock(_ context.Context, k EntryKey) (func(), bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing != nil {
		return nil, false, s.failing
	}
	if s.locked[k] {
		return nil, false, nil
	}
	s.locked[k] = true
	return func() { s.hold(k, false) }, true, nil
}

func (s *memStore) hold(k EntryKey, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.locked[k] = held
}

func (s *memStore) put(k EntryKey, e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = e
}

var sharedKey = EntryKey{Kind: KindAccessToken, Partition: "app@https://login.example", Key: "tenant vault"}

func keyFunc(Request) EntryKey { return sharedKey }

// sharedEngine returns an engine whose fetches go through WithStore on st,
// with the source s, both on s's clock.
func sharedEngine(t *testing.T, s *source, st Store, logger *slog.Logger) *Engine {
	t.Helper()
	f := WithStore(s.fetch, StoreOptions{Store: st, Key: keyFunc, Name: "Test", Clock: s.clk, Logger: logger})
	e := New(f, &Options{Clock: s.clk, Jitter: func() float64 { return 0 }})
	waitIdle(t, e)
	return e
}

func TestWithStoreFreshEntryCostsNoFetch(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	st.put(sharedKey, Entry{Value: "from-fleet", ExpiresOn: t0.Add(time.Hour), RefreshOn: t0.Add(55 * time.Minute)})
	e := sharedEngine(t, s, st, nil)
	assert.Equal(t, "from-fleet", mustGet(t, e, vault).Value)
	assert.Equal(t, "from-fleet", mustGet(t, e, vault).Value)
	assert.Equal(t, 0, s.count(), "a fresh stored token costs no token request")
	assert.Equal(t, 1, st.loads, "the second Get is a memory hit")
}

func TestWithStoreSavesWhatItFetches(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	e := sharedEngine(t, s, st, nil)
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	got, ok, err := st.Load(context.Background(), sharedKey)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "tok-1", got.Value)
	assert.Equal(t, t0.Add(55*time.Minute), got.RefreshOn, "saved with the unjittered refresh time")

	// Another process's engine on the same store takes it from there.
	s2 := issuing(time.Hour)
	s2.clk = s.clk
	e2 := sharedEngine(t, s2, st, nil)
	assert.Equal(t, "tok-1", mustGet(t, e2, vault).Value)
	assert.Equal(t, 0, s2.count())
}

// TestWithStoreLockBusyLooksAgainSoon is the fleet at refresh time: the
// lock is held by another process, so the engine keeps its token and looks
// again half a second later, not after the 30 s a source's unchanged token
// would cost, and takes the holder's new token without a fetch of its own.
func TestWithStoreLockBusyLooksAgainSoon(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	e := sharedEngine(t, s, st, nil)
	require.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	require.Equal(t, 1, s.count())

	st.hold(sharedKey, true)
	s.clk.Set(t0.Add(55 * time.Minute))
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value, "the stale token is served")
	e.Wait()
	assert.Equal(t, 1, s.count(), "no fetch while another process holds the lock")

	// The holder saves its token.
	st.put(sharedKey, Entry{Value: "holder", ExpiresOn: t0.Add(115 * time.Minute), RefreshOn: t0.Add(110 * time.Minute)})
	st.hold(sharedKey, false)
	s.clk.Advance(lookAgain - time.Millisecond)
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	e.Wait()
	assert.Equal(t, "tok-1", mustGet(t, e, vault).Value, "not looked again before half a second")
	s.clk.Advance(time.Millisecond)
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, "holder", mustGet(t, e, vault).Value)
	assert.Equal(t, 1, s.count(), "the holder's token came from the store")
}

// TestWithStoreJitterWokeEarly: the engine refreshes before the fleet's
// refresh time (its jitter) and finds the very token it holds; it looks
// again at the fleet's refresh time and then takes the lock and fetches.
func TestWithStoreJitterWokeEarly(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	f := WithStore(s.fetch, StoreOptions{Store: st, Key: keyFunc, Clock: s.clk})
	e := New(f, &Options{Clock: s.clk, Jitter: func() float64 { return 1 }})
	waitIdle(t, e)
	require.Equal(t, "tok-1", mustGet(t, e, vault).Value)
	// Refresh at 55 min less 5% of it: 52:15; the store says 55:00.
	s.clk.Set(t0.Add(52*time.Minute + 15*time.Second))
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 1, s.count(), "found its own token in the store")
	s.clk.Set(t0.Add(55*time.Minute - time.Millisecond))
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 1, s.count(), "waits for the fleet's refresh time")
	s.clk.Set(t0.Add(55 * time.Minute))
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 2, s.count(), "refreshed at the fleet's refresh time, well before expiry")
	assert.Equal(t, "tok-2", mustGet(t, e, vault).Value)
}

// TestWithStoreLockBusyNoToken: a new process finds no usable token and the
// lock taken; it waits for the holder's token instead of fetching.
func TestWithStoreLockBusyNoToken(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	st.hold(sharedKey, true)
	e := sharedEngine(t, s, st, nil)
	ch := getAsync(context.Background(), e, vault)
	require.NoError(t, s.clk.BlockUntilTimers(context.Background(), 2))
	st.put(sharedKey, Entry{Value: "holder", ExpiresOn: t0.Add(time.Hour), RefreshOn: t0.Add(55 * time.Minute)})
	s.clk.Advance(lockPoll)
	r := await(t, ch, "the waiting Get")
	require.NoError(t, r.err)
	assert.Equal(t, "holder", r.tok.Value)
	assert.Equal(t, 0, s.count())
}

// TestWithStoreLockHolderGone: nobody saves; after lockWait the caller
// fetches on its own.
func TestWithStoreLockHolderGone(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	st.hold(sharedKey, true)
	e := sharedEngine(t, s, st, nil)
	ch := getAsync(context.Background(), e, vault)
	for range lockWait / lockPoll {
		require.NoError(t, s.clk.BlockUntilTimers(context.Background(), 2))
		s.clk.Advance(lockPoll)
	}
	r := await(t, ch, "the waiting Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-1", r.tok.Value)
	assert.Equal(t, 1, s.count())
}

func TestWithStoreErrorsNeverFail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		level string
	}{
		{"plain", errors.New("disk full"), "WARN"},
		{"reported", fmt.Errorf("redis down: %w", ErrStoreUnavailable), "DEBUG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := issuing(time.Hour)
			st := newMemStore()
			st.failing = tc.err
			e := sharedEngine(t, s, st, logger)
			assert.Equal(t, "tok-1", mustGet(t, e, vault).Value)
			assert.Equal(t, 1, s.count())
			out := logs.String()
			assert.Contains(t, out, "level="+tc.level)
			other := map[string]string{"WARN": "DEBUG", "DEBUG": "WARN"}[tc.level]
			assert.NotContains(t, out, "level="+other)
			assert.Equal(t, 3, strings.Count(out, "failed; the token comes from its source"), "read, lock, write: %s", out)
		})
	}
}

func TestWithStoreClaimsSkipTheStore(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	st.put(sharedKey, Entry{Value: "from-fleet", ExpiresOn: t0.Add(time.Hour), RefreshOn: t0.Add(55 * time.Minute)})
	e := sharedEngine(t, s, st, nil)
	tok, err := e.Get(context.Background(), Request{Scopes: vault.Scopes, Claims: `{"access_token":{}}`})
	require.NoError(t, err)
	assert.Equal(t, "tok-1", tok.Value)
	got, _, _ := st.Load(context.Background(), sharedKey)
	assert.Equal(t, "tok-1", got.Value, "the claims token replaces the stored one")
}

func TestNotExtendedRetryHint(t *testing.T) {
	t.Parallel()
	until := t0.Add(10 * time.Minute)
	assert.Equal(t, t0.Add(5*time.Minute), notExtendedRetry(t0, time.Time{}, until), "no hint: half the time left")
	assert.Equal(t, t0.Add(2*time.Second), notExtendedRetry(t0, t0.Add(2*time.Second), until), "a sooner hint wins")
	assert.Equal(t, t0.Add(lookAgainFloor), notExtendedRetry(t0, t0.Add(time.Millisecond), until), "never sooner than the floor")
	assert.Equal(t, t0.Add(5*time.Minute), notExtendedRetry(t0, t0.Add(8*time.Minute), until), "a later hint does not delay")
	assert.Equal(t, t0.Add(5*time.Minute), notExtendedRetry(t0, t0.Add(-time.Second), until), "a past hint is ignored")
}

// TestSourceHintIsNotPolled: a source (not a shared store) that hands back
// its cached token with a RefreshOn a second away is asked again by the
// usual rule, not every second.
func TestSourceHintIsNotPolled(t *testing.T) {
	t.Parallel()
	s := newSource(nil)
	s.next = func(context.Context, int, Request) (Token, error) {
		return Token{Value: "tok", ExpiresOn: t0.Add(time.Hour), RefreshOn: s.clk.Now().Add(time.Second)}, nil
	}
	e := newEngine(t, s)
	mustGet(t, e, vault)
	s.clk.Set(t0.Add(55 * time.Minute))
	mustGet(t, e, vault)
	e.Wait()
	require.Equal(t, 2, s.count())
	s.clk.Set(t0.Add(57*time.Minute + 15*time.Second - time.Millisecond))
	mustGet(t, e, vault)
	e.Wait()
	assert.Equal(t, 2, s.count(), "next try after max(30 s, half the time left), not at the source's RefreshOn")
}

// TestWithStoreFailsWhileWaiting: the store breaks while a caller waits for
// the lock holder's token; the caller fetches at once.
func TestWithStoreFailsWhileWaiting(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	st.hold(sharedKey, true)
	e := sharedEngine(t, s, st, nil)
	ch := getAsync(context.Background(), e, vault)
	require.NoError(t, s.clk.BlockUntilTimers(context.Background(), 2))
	st.mu.Lock()
	st.failing = errors.New("connection reset")
	st.mu.Unlock()
	s.clk.Advance(lockPoll)
	r := await(t, ch, "the waiting Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-1", r.tok.Value)
	assert.Equal(t, 1, s.count())
}

// TestWithStoreHolderGaveUp: the holder releases the lock without saving a
// token (its fetch failed); a waiter takes the lock and fetches without
// waiting out lockWait.
func TestWithStoreHolderGaveUp(t *testing.T) {
	t.Parallel()
	s := issuing(time.Hour)
	st := newMemStore()
	st.hold(sharedKey, true)
	e := sharedEngine(t, s, st, nil)
	ch := getAsync(context.Background(), e, vault)
	require.NoError(t, s.clk.BlockUntilTimers(context.Background(), 2))
	st.hold(sharedKey, false)
	s.clk.Advance(lockPoll)
	r := await(t, ch, "the waiting Get")
	require.NoError(t, r.err)
	assert.Equal(t, "tok-1", r.tok.Value)
	assert.Equal(t, 1, s.count())
	st.mu.Lock()
	defer st.mu.Unlock()
	assert.False(t, st.locked[sharedKey], "the lock was given back")
	assert.Equal(t, "tok-1", st.m[sharedKey].Value)
}
