// Package cache keeps access tokens and refreshes them. Every credential of
// azcred holds exactly one [Engine], which decides when a token is fetched,
// how many fetches a burst of callers causes, and whether a caller ever waits
// while a valid token exists.
//
// The package is a leaf: it has its own small [Token] and [Request] types and
// takes a [FetchFunc]; the root package converts to and from its public types.
package cache

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azcred/azcred/internal/clock"
)

// FetchFunc gets a new token from a source. It receives the caller's
// [Request] (Claims included) with the caller's context values but not its
// cancellation or deadline: ctx ends only when [Options.RefreshTimeout]
// passes. A FetchFunc must return when ctx is done and must not panic; it is
// bounded by the source's own limits (its timeout, its retry policy), which
// should be well inside RefreshTimeout. Its errors reach the waiting callers
// unchanged.
type FetchFunc func(ctx context.Context, r Request) (Token, error)

// defaultRefreshTimeout bounds a fetch when Options.RefreshTimeout is not set.
const defaultRefreshTimeout = 2 * time.Minute

// Options contains optional parameters for Engine.
type Options struct {
	// Clock tells the time for every decision of the engine. Default: the
	// system clock.
	Clock clock.Clock
	// RefreshTimeout bounds every fetch the engine runs, background refresh
	// and shared foreground fetch alike: the fetch's context is cancelled
	// when it passes. It is a backstop above the source's own limits, not a
	// replacement for them, and runs on the system clock because it becomes
	// the context's deadline. Credentials whose fetch waits for a person
	// (device code, browser login) set it to cover that wait. Zero or
	// negative means the default, 2 minutes.
	RefreshTimeout time.Duration
	// Jitter returns a number in [0, 1] that moves each refresh time earlier
	// by that share of 5% of the time between receipt and refresh (see
	// [Schedule]); tests set it to a constant. It is called once per
	// successful fetch, possibly from several goroutines at once. Default: a
	// uniform random number from math/rand/v2.
	Jitter func() float64
}

// Engine caches the tokens of one credential, one per request key (the set
// of scopes, the tenant and the CAE flag), and refreshes them with the policy
// of [Schedule]:
//
//   - Fresh (before the refresh time): [Engine.Get] returns the token with one
//     atomic load and one clock read, without a lock or an allocation when
//     the request names one scope.
//   - Stale (from the refresh time until "usable until"): Get returns the held
//     token at once and starts at most one background fetch for the key. A
//     failed fetch keeps the held token and is tried again 30 s later; a
//     fetch whose token does not expire later than the held one keeps the
//     held token and is tried again after max(30 s, half the time left until
//     "usable until"), or sooner (at least 100 ms later) when the fetch is
//     [WithStore]'s and another process is refreshing the token.
//   - Expired or absent: callers wait for one shared fetch of the key, the
//     same one a background refresh would be. Each caller stops waiting when
//     its own context ends (Get then returns the context's error); the fetch
//     carries on and its result is kept. A failed fetch caches nothing and
//     starts no back-off: the next caller fetches again.
//   - A request with Claims skips the cached token and fetches (sharing the
//     fetch only with requests carrying the same claims); a successful result
//     replaces the cached token, and a claims-less fetch of the key that was
//     already running no longer caches its result. A failed one changes
//     nothing.
//   - A fetched token already expired on arrival (ExpiresOn not after the
//     time it was received) is handed to its waiters but not cached, so
//     nothing refreshes it in a loop.
//
// Claims are not part of the key; Scopes are compared as a set of exact,
// case-sensitive strings (callers normalise them first if they need to).
// Entries are kept for the life of the engine, one per key, unless
// [Engine.Invalidate] drops them. Get returns tokens exactly as the fetch
// returned them (RefreshOn is the source's hint, not the engine's schedule).
//
// A fetch runs in a goroutine of its own under context.WithoutCancel of the
// context of the caller that started it (its values, not its cancellation),
// limited by [Options.RefreshTimeout], and receives that caller's Request;
// callers who join it wait for that result. The goroutine ends when the fetch
// returns, so it never outlives the fetch: a fetch that ignores its context is
// a bug of the source. [Engine.Wait] waits for all of them.
//
// An Engine is safe for concurrent use. Create it with [New].
type Engine struct {
	fetch   FetchFunc
	clock   clock.Clock
	timeout time.Duration
	jitter  func() float64

	// tab is the immutable table that Get reads without a lock. Writers
	// hold mu and publish a new table.
	tab atomic.Pointer[table]

	mu      sync.Mutex
	flights map[flightKey]*flight // the fetches callers may join
	running int                   // fetch goroutines not yet finished
	idle    chan struct{}         // closed when running drops to 0

	// joined, when set by a test before any Get, is called each time a
	// caller starts waiting for a fetch.
	joined func()
}

// entry is a cached token with its schedule. Its fields never change after
// it is published, except refreshing.
type entry struct {
	tok         Token
	refreshAt   time.Time // stale from here: start a background fetch
	usableUntil time.Time // expired from here: callers wait for a fetch
	// refreshing is set by the first caller that finds the entry stale, so
	// that the others need not take the lock to learn a fetch is running.
	// The end of every claims-less fetch of the key clears it.
	refreshing atomic.Bool
}

// table maps keys to entries. It is never modified once published.
type table struct {
	// one is the only entry when the table has exactly one: the common
	// credential that serves one scope is then looked up without hashing.
	oneKey key
	one    *entry
	all    map[key]*entry
}

func newTable(all map[key]*entry) *table {
	t := &table{all: all}
	if len(all) == 1 {
		for k, ent := range all {
			t.oneKey, t.one = k, ent
		}
	}
	return t
}

func (t *table) get(k key) *entry {
	if t.one != nil {
		if t.oneKey == k {
			return t.one
		}
		return nil
	}
	return t.all[k]
}

// flight is one fetch that callers can wait for.
type flight struct {
	key  flightKey
	done chan struct{} // closed when tok and err are set
	tok  Token
	err  error
	// discard, guarded by Engine.mu, is set when the result must not be
	// cached: the key was invalidated, or a claims fetch replaced the token,
	// after this fetch started. The waiters still get the result.
	discard bool
	// lookAgain is set by a fetch through a shared store (see lookAgainAt),
	// on the fetch's own goroutine, when another process is refreshing the
	// token: the time to try again if the fetch did not extend the token.
	lookAgain time.Time
}

// lookAgainKey carries a fetch's *flight.lookAgain in its context.
type lookAgainKey struct{}

// lookAgainAt tells the engine running the fetch of ctx, if any, to try
// again at t should this fetch not extend the held token.
func lookAgainAt(ctx context.Context, t time.Time) {
	if p, ok := ctx.Value(lookAgainKey{}).(*time.Time); ok {
		*p = t
	}
}

// New constructs an Engine that gets tokens from fetch. Pass nil to accept
// default options. It panics when fetch is nil.
func New(fetch FetchFunc, opts *Options) *Engine {
	if fetch == nil {
		panic("cache.New: fetch is nil; pass the function that gets a token from the source")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	e := &Engine{
		fetch:   fetch,
		clock:   clock.OrReal(o.Clock),
		timeout: o.RefreshTimeout,
		jitter:  o.Jitter,
		flights: make(map[flightKey]*flight),
	}
	if e.timeout <= 0 {
		e.timeout = defaultRefreshTimeout
	}
	if e.jitter == nil {
		e.jitter = rand.Float64
	}
	e.tab.Store(newTable(nil))
	return e
}

// Get returns a token for r: the cached one while it is usable, else the
// result of a fetch (see [Engine] for when it fetches and who waits). The
// error is the fetch's own, unchanged, or ctx's error when ctx ended before
// the fetch did. A token that is already expired when the source returns it
// is handed to the callers that waited for it but not cached.
func (e *Engine) Get(ctx context.Context, r Request) (Token, error) {
	if r.Claims == "" {
		t := e.tab.Load()
		var ent *entry
		if t.one != nil && len(r.Scopes) == 1 {
			// The common case, compared field by field without building a key.
			if k := &t.oneKey; k.n == 1 && k.scopes == r.Scopes[0] && k.tenant == r.TenantID && k.cae == r.EnableCAE {
				ent = t.one
			}
		} else {
			ent = t.get(keyOf(r))
		}
		if ent != nil {
			now := e.clock.Now()
			if now.Before(ent.refreshAt) {
				return ent.tok, nil
			}
			if now.Before(ent.usableUntil) {
				if ent.refreshing.CompareAndSwap(false, true) {
					e.refresh(ctx, keyOf(r), r, ent)
				}
				return ent.tok, nil
			}
		}
	}
	return e.getSlow(ctx, keyOf(r), r)
}

// refresh starts the background fetch of the stale entry ent of k, unless
// ent was replaced or a fetch of k is already running.
func (e *Engine) refresh(ctx context.Context, k key, r Request, ent *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fk := flightKey{key: k}
	if e.tab.Load().get(k) != ent || e.flights[fk] != nil {
		return
	}
	e.startLocked(ctx, fk, r)
}

// getSlow serves a request that the lock-free path could not: a claims
// request, an absent or expired entry, or one that changed since Get looked.
func (e *Engine) getSlow(ctx context.Context, k key, r Request) (Token, error) {
	fk := flightKey{key: k, claims: r.Claims}
	e.mu.Lock()
	if r.Claims == "" {
		if ent := e.tab.Load().get(k); ent != nil {
			now := e.clock.Now()
			if now.Before(ent.usableUntil) {
				if !now.Before(ent.refreshAt) && e.flights[fk] == nil {
					ent.refreshing.Store(true)
					e.startLocked(ctx, fk, r)
				}
				e.mu.Unlock()
				return ent.tok, nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		e.mu.Unlock()
		return Token{}, err
	}
	f := e.flights[fk]
	if f == nil {
		f = e.startLocked(ctx, fk, r)
	}
	e.mu.Unlock()
	if e.joined != nil {
		e.joined()
	}
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		select {
		case <-f.done:
			return f.tok, f.err
		default:
			return Token{}, ctx.Err()
		}
	}
}

// ErrFetchPanicked is the error callers get when the fetch panicked. A fetch
// runs user code (assertion callbacks, stores, transports) on a goroutine of
// the engine, where the caller's own recover cannot catch a panic; the
// engine recovers it so that one bad callback fails one request instead of
// the process. The panic's value is not kept: it could hold a secret.
var ErrFetchPanicked = errors.New("getting the token panicked (in a callback, store or transport the credential was given); see the program's code for the cause")

// safeFetch calls the fetch and turns a panic into ErrFetchPanicked.
func (e *Engine) safeFetch(ctx context.Context, r Request) (tok Token, err error) {
	defer func() {
		if recover() != nil {
			tok, err = Token{}, ErrFetchPanicked
		}
	}()
	return e.fetch(ctx, r)
}

// startLocked registers and starts a fetch for fk. The fetch keeps ctx's
// values but not its cancellation, and is bounded by the engine's timeout.
func (e *Engine) startLocked(ctx context.Context, fk flightKey, r Request) *flight {
	f := &flight{key: fk, done: make(chan struct{})}
	e.flights[fk] = f
	e.running++
	r.Scopes = slices.Clone(r.Scopes)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	fctx = context.WithValue(fctx, lookAgainKey{}, &f.lookAgain)
	go e.run(fctx, cancel, f, r)
	return f
}

func (e *Engine) run(ctx context.Context, cancel context.CancelFunc, f *flight, r Request) {
	tok, err := e.safeFetch(ctx, r)
	cancel()
	received := e.clock.Now()
	var jitter float64
	if err == nil {
		jitter = e.jitter()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	f.tok, f.err = tok, err
	if e.flights[f.key] == f {
		delete(e.flights, f.key)
	}
	if !f.discard {
		e.storeLocked(f, received, jitter)
	}
	if f.key.claims == "" && e.flights[f.key] == nil {
		if cur := e.tab.Load().get(f.key.key); cur != nil {
			cur.refreshing.Store(false)
		}
	}
	close(f.done)
	e.running--
	if e.running == 0 && e.idle != nil {
		close(e.idle)
		e.idle = nil
	}
}

// storeLocked caches the result of f, received at now, by the rules on
// [Engine].
func (e *Engine) storeLocked(f *flight, now time.Time, jitter float64) {
	now = now.Round(0) // wall clock, like ExpiresOn; see Schedule
	k, claims := f.key.key, f.key.claims != ""
	cur := e.tab.Load().get(k)
	held := cur != nil && now.Before(cur.usableUntil)
	switch {
	case f.err != nil:
		// A failed foreground fetch starts no back-off; a failed refresh keeps
		// the held token and waits before the next try. A failed claims fetch
		// leaves the cached token alone.
		if held && !claims {
			e.retryLocked(k, cur, now.Add(retryDelay), now)
		}
	case held && !claims && !f.tok.ExpiresOn.After(cur.tok.ExpiresOn):
		// The source handed back its own cached token (or an older one):
		// keep ours and ask again a few times before it runs out, or sooner
		// when a shared store said another process is refreshing it.
		e.retryLocked(k, cur, notExtendedRetry(now, f.lookAgain, cur.usableUntil), now)
	default:
		refreshAt, usableUntil := Schedule(now, f.tok, jitter)
		if !now.Before(usableUntil) {
			// Expired on arrival: the waiters get it, the cache does not, so
			// nothing refreshes it in a loop.
			return
		}
		e.putLocked(k, &entry{tok: f.tok, refreshAt: refreshAt, usableUntil: usableUntil}, now)
		if claims {
			// A claims-less fetch that started before this token existed
			// must not overwrite it.
			e.detachLocked(flightKey{key: k})
		}
	}
}

// retryLocked keeps the held entry cur of k and schedules the next
// background try at at. A try due after usable-until never happens: the
// entry expires first, and the next caller fetches.
func (e *Engine) retryLocked(k key, cur *entry, at, now time.Time) {
	e.putLocked(k, &entry{tok: cur.tok, refreshAt: minTime(at, cur.usableUntil), usableUntil: cur.usableUntil}, now)
}

// notExtendedRetry is when to try again after a refresh at now returned a
// token that expires no later than the held one, usable until usableUntil:
// after max(30 s, half the time left), or at hint, the time a shared store
// named (see [WithStore]), when that comes sooner (but not before
// lookAgainFloor has passed). A store names one while another process
// refreshes the token, or when jitter woke this one before the fleet's
// refresh time: the engine then looks again shortly instead of waiting until
// the token nearly runs out. A source's own RefreshOn is not a hint here: a
// tool or endpoint that hands back its cached token is not polled.
func notExtendedRetry(now, hint, usableUntil time.Time) time.Time {
	at := now.Add(max(retryDelay, usableUntil.Sub(now)/2))
	if hint = hint.Round(0); hint.After(now) {
		at = minTime(at, maxTime(hint, now.Add(lookAgainFloor)))
	}
	return at
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// detachLocked makes the running fetch of fk, if any, leave its result
// uncached and lets the next caller start a new one.
func (e *Engine) detachLocked(fk flightKey) {
	if f := e.flights[fk]; f != nil {
		f.discard = true
		delete(e.flights, fk)
	}
}

// putLocked publishes a new table with ent as k's entry. Entries of other
// keys that are no longer usable at now are dropped on the way, so a
// credential asked for many tenants or scopes over time does not keep every
// expired token.
func (e *Engine) putLocked(k key, ent *entry, now time.Time) {
	old := e.tab.Load().all
	all := make(map[key]*entry, len(old)+1)
	for ok, oe := range old {
		if now.Before(oe.usableUntil) {
			all[ok] = oe
		}
	}
	all[k] = ent
	e.tab.Store(newTable(all))
}

// Invalidate forgets the cached token of r's key (its Claims are ignored), so
// that the next Get fetches. Fetches of the key that are running keep going
// for the callers waiting on them, but their results are not cached.
func (e *Engine) Invalidate(r Request) {
	k := keyOf(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	for fk := range e.flights {
		if fk.key == k {
			e.detachLocked(fk)
		}
	}
	old := e.tab.Load().all
	if _, ok := old[k]; !ok {
		return
	}
	all := maps.Clone(old)
	delete(all, k)
	e.tab.Store(newTable(all))
}

// Wait blocks until no fetch started by the engine is running. Tests use it
// to know that background work has ended (goleak checks included) without
// sleeping; a fetch that never returns makes Wait block too.
func (e *Engine) Wait() {
	for {
		e.mu.Lock()
		if e.running == 0 {
			e.mu.Unlock()
			return
		}
		if e.idle == nil {
			e.idle = make(chan struct{})
		}
		idle := e.idle
		e.mu.Unlock()
		<-idle
	}
}
