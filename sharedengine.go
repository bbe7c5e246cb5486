package azcred

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"reflect"
	"sync"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/lru"
)

// Credentials of one identity built again and again in one process (a
// credential per request is a common habit) share one cache engine, so they
// cost one token request per token lifetime rather than one per credential.
// Two credentials share when everything that decides the token they get and
// how they get it is the same: the credential type, authority, region,
// tenant, client ID, secret material (the secret, the certificate and key,
// the token file), and the options that shape a request (the same Transport,
// Logger, Retry and Cache values). The registry holds engines strongly and is
// bounded: past maxSharedEngines the entry used least recently is dropped (its credentials
// keep their engine; new ones get a new engine). Engines start no goroutine
// of their own beyond their fetches, so dropping one leaks nothing.

// maxSharedEngines bounds the process-wide registry of shared engines.
const maxSharedEngines = 256

// shareKey identifies a shared engine. digest is an HMAC-SHA256 of the
// strings (secret material included) under shareDigestKey, so the registry
// never holds a secret as a key and a dump of it does not let anyone check
// guesses of a secret offline; the interface fields are compared by
// identity.
type shareKey struct {
	digest    [sha256.Size]byte
	transport any
	logger    *slog.Logger
	retry     RetryOptions
	clock     any
	store     any
	seam      any
}

// shareParts is what a credential hands newEntraClient to share its engine.
type shareParts struct {
	// material is the credential's secret material and anything else that
	// decides its tokens beyond the shared fields.
	material []string
	// seam is a test seam value of the credential (a file reader), compared
	// by identity; nil when none.
	seam any
}

// shareDigestKey keys the registry's digests; it is random in each process
// and never leaves it.
var shareDigestKey = func() []byte {
	k := make([]byte, sha256.Size)
	rand.Read(k) // never fails (crypto/rand.Read panics instead)
	return k
}()

var sharedEngines = struct {
	mu sync.Mutex
	m  *lru.Map[shareKey, *cache.Engine]
}{m: lru.New[shareKey, *cache.Engine](maxSharedEngines, nil)}

// comparableValue reports whether v can be part of a map key without a
// run-time panic.
func comparableValue(v any) bool {
	return v == nil || reflect.ValueOf(v).Comparable()
}

// newShareKey builds the key of a credential's engine; ok is false when an
// option value cannot be compared, and the credential then keeps its own.
func newShareKey(cfg entraConfig, host, region, tenant string) (shareKey, bool) {
	h := hmac.New(sha256.New, shareDigestKey)
	var n [8]byte
	for _, s := range append([]string{cfg.name, host, region, tenant, cfg.clientID}, cfg.share.material...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	k := shareKey{seam: cfg.share.seam}
	h.Sum(k.digest[:0])
	if co := cfg.options; co != nil {
		k.transport, k.logger, k.retry, k.clock = co.Transport, co.Logger, co.Retry, co.clock
	}
	k.store = cfg.store
	for _, v := range []any{k.transport, k.clock, k.store, k.seam} {
		if !comparableValue(v) {
			return shareKey{}, false
		}
	}
	return k, true
}

// sharedEngine returns the engine registered under k, or registers the one
// that build makes.
func sharedEngine(k shareKey, build func() *cache.Engine) *cache.Engine {
	sharedEngines.mu.Lock()
	defer sharedEngines.mu.Unlock()
	return sharedEngines.m.GetOrAdd(k, build)
}

// sharedEngineCount is the registry's size, for tests.
func sharedEngineCount() int {
	sharedEngines.mu.Lock()
	defer sharedEngines.mu.Unlock()
	return sharedEngines.m.Len()
}

// shareUnless returns p for a credential that shares its engine, nil when
// its options opt out.
func shareUnless(disabled bool, p shareParts) *shareParts {
	if disabled {
		return nil
	}
	return &p
}
