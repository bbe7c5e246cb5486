package cache

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/azcred/azcred/internal/clock"
)

// Locker is implemented by a [Store] that many processes share and that can
// elect one of them to refresh an entry, as the Redis store does. [WithStore]
// uses it so that a fleet makes about one token request per entry at refresh
// time instead of one per process.
type Locker interface {
	// TryLock tries to take the refresh lock of k without waiting. ok
	// reports whether this caller now holds it; unlock, set only then, gives
	// it back (doing nothing when the lock has passed to someone else
	// meanwhile). The lock ends by itself after a lease the store chooses,
	// so a holder that dies holds up the others only that long.
	TryLock(ctx context.Context, k EntryKey) (unlock func(), ok bool, err error)
}

// ErrStoreUnavailable is wrapped by the errors of a [Store] that is passing
// over its backend (a Redis server that is down, say) after a failure it has
// already reported in its own log. [WithStore] logs such errors at Debug
// rather than Warn, so that an outage is reported once, not once per call.
var ErrStoreUnavailable = errors.New("the token store is unavailable")

// How a fetch through a shared store waits for another process's refresh.
const (
	// lookAgain is when a process whose refresh found another process
	// holding the lock, while the stored token is still usable, tries again.
	lookAgain = 500 * time.Millisecond
	// lockWait bounds how long a caller without a usable token waits for
	// the lock holder's token before fetching its own.
	lockWait = 3 * time.Second
	// lockPoll is how often such a caller reads the store meanwhile.
	lockPoll = 25 * time.Millisecond
)

// StoreOptions contains the parameters of [WithStore].
type StoreOptions struct {
	// Store keeps the tokens. Required.
	Store Store
	// Key names the entry of a request. Required. It must hold every part of
	// the identity that the token stands for (authority, tenant, client,
	// scopes, CAE; for a managed identity its user-assigned ID), so that an
	// entry never reaches a credential of another identity.
	Key func(Request) EntryKey
	// Name starts every log message, such as "ClientSecretCredential".
	Name string
	// Clock tells the time. Default: the system clock.
	Clock clock.Clock
	// Logger receives the store's trouble (Warn) and its hits (Debug).
	// Default: discard.
	Logger *slog.Logger
}

// WithStore returns a [FetchFunc] that keeps fetch's tokens in a Store as
// well, so that other processes sharing the store, and later runs, reuse
// them. The engine keeps calling the returned function only on a miss or at
// refresh time, so a cached hit never reaches the store.
//
//   - A stored token that is not yet due for refresh is returned without
//     calling fetch. Its RefreshOn is the time the fleet refreshes it.
//   - Otherwise, when the store is a [Locker], the caller that takes the
//     entry's lock reads the store once more and, if no other process has
//     replaced the entry meanwhile, fetches and saves the result. The others
//     do not fetch: while the stored token is still usable they return it
//     with RefreshOn half a second away and tell the engine running the
//     fetch to look again then, so that an engine holding that token keeps
//     it and does not wait the 30 s or more a source's unchanged token costs
//     (see [Engine]); without a usable token they wait up to 3 s for the
//     holder's, reading the store every 25 ms (the one that takes the lock
//     when a holder gives up without a token fetches), and then fetch their
//     own.
//   - A store without a lock is read and written, and every process
//     refreshes on its own.
//   - A request with Claims always fetches; its result is saved.
//   - Store errors never fail the fetch: the store is passed over and fetch
//     called. They are logged at Warn, or at Debug when they wrap
//     [ErrStoreUnavailable].
//
// Saved entries carry the token's refresh time by [Schedule] without jitter;
// each process's engine adds its own.
func WithStore(fetch FetchFunc, o StoreOptions) FetchFunc {
	if fetch == nil || o.Store == nil || o.Key == nil {
		panic("cache.WithStore: fetch, StoreOptions.Store and StoreOptions.Key are required")
	}
	s := &sharedFetch{fetch: fetch, store: o.Store, key: o.Key, name: o.Name, clock: clock.OrReal(o.Clock), logger: o.Logger}
	s.locker, _ = o.Store.(Locker)
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s.get
}

type sharedFetch struct {
	fetch  FetchFunc
	store  Store
	locker Locker
	key    func(Request) EntryKey
	name   string
	clock  clock.Clock
	logger *slog.Logger
}

func (s *sharedFetch) get(ctx context.Context, r Request) (Token, error) {
	if r.Claims != "" {
		return s.fetchAndSave(ctx, r, s.key(r))
	}
	k := s.key(r)
	e, ok := s.load(ctx, k)
	now := s.clock.Now()
	if ok && now.Before(e.RefreshOn) && storedUsable(e, now) {
		// When this is the token the engine holds (jitter woke it before
		// the fleet's refresh time), look again at that time.
		lookAgainAt(ctx, e.RefreshOn)
		s.logger.LogAttrs(ctx, slog.LevelDebug, s.name+".GetToken took a token from the persistent cache", slog.Time("expiresOn", e.ExpiresOn))
		return Token(e), nil
	}
	if s.locker == nil {
		return s.fetchAndSave(ctx, r, k)
	}
	unlock, locked, err := s.locker.TryLock(ctx, k)
	if err != nil {
		s.report(ctx, "taking the refresh lock of the persistent cache", err)
		return s.fetchAndSave(ctx, r, k)
	}
	if locked {
		defer unlock()
		// The holder before us may have saved a new token between our read
		// and our lock.
		if e2, ok2 := s.load(ctx, k); ok2 && s.clock.Now().Before(e2.RefreshOn) && storedUsable(e2, s.clock.Now()) {
			return Token(e2), nil
		}
		return s.fetchAndSave(ctx, r, k)
	}
	// Another process is refreshing.
	if ok && storedUsable(e, now) {
		lookAgainAt(ctx, now.Add(lookAgain))
		return Token{Value: e.Value, ExpiresOn: e.ExpiresOn, RefreshOn: now.Add(lookAgain)}, nil
	}
	timer := s.clock.NewTimer(lockWait)
	defer timer.Stop()
	for {
		if err := clock.Sleep(ctx, s.clock, lockPoll); err != nil {
			return Token{}, err
		}
		select {
		case <-timer.C():
			return s.fetchAndSave(ctx, r, k)
		default:
		}
		e, ok, err := s.store.Load(ctx, k)
		if err != nil {
			// The store failed while we waited: stop waiting for it.
			s.report(ctx, "reading the persistent cache", err)
			return s.fetchAndSave(ctx, r, k)
		}
		if ok && storedUsable(e, s.clock.Now()) {
			return Token(e), nil
		}
		// A holder that gave up (its fetch failed) left no token: the next
		// waiter to take the lock fetches.
		if unlock, locked, err := s.locker.TryLock(ctx, k); err == nil && locked {
			defer unlock()
			return s.fetchAndSave(ctx, r, k)
		}
	}
}

// storedUsable reports whether a stored token may still be handed out at
// now: before its expiry less min(30 s, half the time from its refresh time
// to its expiry).
func storedUsable(e Entry, now time.Time) bool {
	if e.Value == "" {
		return false
	}
	margin := min(usableMargin, e.ExpiresOn.Sub(e.RefreshOn)/2)
	return now.Before(e.ExpiresOn.Add(-max(margin, 0)))
}

func (s *sharedFetch) load(ctx context.Context, k EntryKey) (Entry, bool) {
	e, ok, err := s.store.Load(ctx, k)
	if err != nil {
		s.report(ctx, "reading the persistent cache", err)
		return Entry{}, false
	}
	return e, ok
}

func (s *sharedFetch) fetchAndSave(ctx context.Context, r Request, k EntryKey) (Token, error) {
	t, err := s.fetch(ctx, r)
	if err != nil {
		return t, err
	}
	refreshOn, _ := Schedule(s.clock.Now(), t, 0)
	if err := s.store.Save(ctx, k, Entry{Value: t.Value, ExpiresOn: t.ExpiresOn, RefreshOn: refreshOn}); err != nil {
		s.report(ctx, "writing the persistent cache", err)
	}
	return t, nil
}

// report logs a store error: at Debug when the store reported the outage
// itself, else at Warn.
func (s *sharedFetch) report(ctx context.Context, what string, err error) {
	level := slog.LevelWarn
	if errors.Is(err, ErrStoreUnavailable) {
		level = slog.LevelDebug
	}
	s.logger.LogAttrs(ctx, level, s.name+": "+what+" failed; the token comes from its source", slog.String("error", err.Error()))
}
