// Package redisstore is a [cache.Store] on Redis, for a fleet of processes
// that run as the same identity: the first process to need a token asks
// Entra ID (or the managed-identity endpoint) and every other process takes
// it from Redis; at refresh time a lock in Redis elects one process to
// refresh each token.
//
// Give the store to a credential's Cache option:
//
//	store, err := redisstore.New(redisstore.Options{Addr: "redis:6379", EncryptionKey: key})
//	...
//	cred, err := azcred.NewClientSecretCredential(tenant, client, secret,
//		&azcred.ClientSecretCredentialOptions{Cache: store})
//
// The credentials that take a Cache are the ones whose tokens stand for an
// application or a user-assigned identity, the same in every process:
// ClientSecretCredential, ClientCertificateCredential,
// ClientAssertionCredential, WorkloadIdentityCredential,
// AzurePipelinesCredential and ManagedIdentityCredential with a
// user-assigned ID. A system-assigned managed identity never uses it: each
// machine's system identity is a different principal.
//
// Each credential keeps its tokens in memory as well; a cached GetToken
// never reaches Redis. Redis is read on a miss and at refresh time and
// written after each token request.
//
// Tokens are secrets: every entry is encrypted with AES-256-GCM under
// [Options.EncryptionKey], with the entry's Redis key as associated data, so
// an entry copied under another key does not decrypt. Entries carry a short
// identifier of the key that sealed them (not the key), so that a store
// given another key tells "wrong key" (logged once at Warn) from a damaged
// entry (logged at Debug); neither is ever served. Redis keys are
// KeyPrefix followed by a SHA-256 of the entry's name, so listing the
// database shows no client ID, tenant or scope. Whoever holds the
// EncryptionKey and can read the database can read the tokens: guard the
// key like the client secret, and give each application its own key (and
// KeyPrefix).
// A Store or Options printed (with any fmt verb) or logged shows no key.
//
// Entry names hold every part of the identity a token stands for: the
// authority, client ID, tenant, scopes and CAE flag, and for a managed
// identity its user-assigned ID and resource; an entry never reaches a
// credential of another identity. Entries expire in Redis with their token.
//
// When Redis is down, slow, out of memory or refuses the password, a call
// costs at most [Options.Timeout]; the store then passes over Redis for
// [Options.Backoff] (doubling while it keeps failing) and the credentials
// ask their sources. The first failure of an outage is logged at Warn, the
// rest at Debug; GetToken never fails because of the store.
package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azcred/azcred/cache"
)

// Defaults of [Options].
const (
	// DefaultKeyPrefix starts every Redis key of the store.
	DefaultKeyPrefix = "azcred:"
	// DefaultTimeout bounds each Redis operation.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultLockLease is how long a refresh lock lasts unless released.
	DefaultLockLease = 10 * time.Second
	// DefaultBackoff is how long the store passes over Redis after a
	// failure.
	DefaultBackoff = 5 * time.Second
	// maxBackoff caps the back-off as failures repeat.
	maxBackoff = time.Minute
)

// KeySize is the size of an encryption key: AES-256.
const KeySize = 32

// Options contains the parameters of [New]. None of them is read from the
// environment: the encryption key in particular must come from the
// program's own secret store.
type Options struct {
	// Addr is the Redis server's host:port. The store then makes its own
	// client (no password, no TLS), and [Store.Close] closes it. Either Addr
	// or Client is required.
	Addr string

	// Client is an existing client, for a cluster, Sentinel, TLS or an ACL
	// user: *redis.Client, *redis.ClusterClient, *redis.Ring or a failover
	// client. It should have ContextTimeoutEnabled set, so that Timeout
	// bounds every call (otherwise its own read and write timeouts do), and
	// DialerRetries 1 with MaxRetries -1, so that a server that is down fails
	// a call at once rather than after retries. The store does not close it.
	// Default: nil, use Addr.
	Client redis.UniversalClient

	// KeyPrefix starts every key the store writes, to keep several
	// applications apart in one database. Default: DefaultKeyPrefix,
	// "azcred:".
	KeyPrefix string

	// EncryptionKey is the 32-byte AES-256 key that seals every entry.
	// Required; give every process of the fleet the same key, from a secret
	// store (a Kubernetes secret, a key vault), never from source code.
	EncryptionKey []byte

	// PreviousEncryptionKeys are keys that entries may still be sealed
	// with, for rotation: deploy the new key as EncryptionKey with the old
	// one here; entries are written with the new key from then on, and the
	// old key can go once the longest token lifetime has passed. Default:
	// none.
	PreviousEncryptionKeys [][]byte

	// Timeout bounds each Redis operation, so that a slow or unreachable
	// Redis delays a token request by at most about this much before the
	// credential asks its source. Default: DefaultTimeout, 250 ms.
	Timeout time.Duration

	// LockLease is how long a process's refresh lock lasts unless it gives
	// it back: a holder that dies blocks the others' refresh at most this
	// long (they keep serving their valid tokens meanwhile). It should
	// exceed the longest token request. Default: DefaultLockLease, 10 s.
	LockLease time.Duration

	// Backoff is how long the store passes over Redis after an operation
	// failed (unreachable, timed out, refused a password, out of memory),
	// doubling while failures repeat, up to a minute. Default:
	// DefaultBackoff, 5 s.
	Backoff time.Duration

	// Logger receives one Warn when Redis becomes unusable, one Info when
	// it works again, a Warn the first time an entry sealed with an unknown
	// key is met, and Debug records for damaged entries. Default: discard.
	Logger *slog.Logger
}

// Store is a [cache.Store] and [cache.Locker] on Redis. It is safe for
// concurrent use; one Store serves any number of credentials.
type Store struct {
	client  redis.UniversalClient
	owned   bool
	prefix  string
	timeout time.Duration
	lease   time.Duration
	backoff time.Duration
	logger  *slog.Logger

	current keyedAEAD
	byID    map[[keyIDSize]byte]cipher.AEAD

	mu       sync.Mutex
	down     bool      // an outage was reported and has not ended
	until    time.Time // Redis is passed over until then
	failures int       // failures in a row

	// wrongKeyWarned is set once an entry sealed with an unknown key was
	// reported at Warn; a successful decryption clears it.
	wrongKeyWarned atomic.Bool
}

type keyedAEAD struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// An entry is magic, the sealing key's ID, a GCM nonce and the sealed JSON.
var magic = []byte("azr1")

const keyIDSize = 8

// New constructs a Store. It fails when neither Addr nor Client is given or
// a key is not 32 bytes. It does not contact Redis: a server that is down
// at start is treated like one that goes down later.
func New(opts Options) (*Store, error) {
	if opts.Client == nil && opts.Addr == "" {
		return nil, errors.New("redisstore: give Options.Addr (host:port of the Redis server) or Options.Client")
	}
	if len(opts.EncryptionKey) != KeySize {
		return nil, fmt.Errorf("redisstore: Options.EncryptionKey has %d bytes; it must be %d random bytes (for example `openssl rand -base64 32`, decoded), the same in every process", len(opts.EncryptionKey), KeySize)
	}
	s := &Store{
		client:  opts.Client,
		prefix:  opts.KeyPrefix,
		timeout: opts.Timeout,
		lease:   opts.LockLease,
		backoff: opts.Backoff,
		logger:  opts.Logger,
		byID:    map[[keyIDSize]byte]cipher.AEAD{},
	}
	if s.prefix == "" {
		s.prefix = DefaultKeyPrefix
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.lease <= 0 {
		s.lease = DefaultLockLease
	}
	if s.backoff <= 0 {
		s.backoff = DefaultBackoff
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	for i, k := range append([][]byte{opts.EncryptionKey}, opts.PreviousEncryptionKeys...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("redisstore: Options.PreviousEncryptionKeys[%d] has %d bytes; every key must be %d bytes", i-1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
		id := keyID(k)
		if i == 0 {
			s.current = keyedAEAD{id: id, aead: aead}
		}
		if _, dup := s.byID[id]; !dup {
			s.byID[id] = aead
		}
	}
	if s.client == nil {
		s.client = redis.NewClient(&redis.Options{
			Addr:                  opts.Addr,
			DialTimeout:           s.timeout,
			ReadTimeout:           s.timeout,
			WriteTimeout:          s.timeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			DialerRetries:         1, // one dial: a refused connection fails at once
		})
		s.owned = true
	}
	return s, nil
}

// keyID names a key without revealing it: the first bytes of a SHA-256 of a
// label and the key.
func keyID(k []byte) [keyIDSize]byte {
	h := sha256.Sum256(append([]byte("azcred redisstore key id\x00"), k...))
	var id [keyIDSize]byte
	copy(id[:], h[:])
	return id
}

// Close closes the client the store made from Options.Addr; a Client given
// in Options is left open.
func (s *Store) Close() error {
	if s.owned {
		return s.client.Close()
	}
	return nil
}

// RedisKey returns the Redis key of the entry k: KeyPrefix, "tok:" and the
// base64url SHA-256 of k's parts. Its lock is the same with "lock:".
func (s *Store) RedisKey(k cache.EntryKey) string { return s.prefix + "tok:" + entryHash(k) }

func (s *Store) lockKey(k cache.EntryKey) string { return s.prefix + "lock:" + entryHash(k) }

func entryHash(k cache.EntryKey) string {
	h := sha256.New()
	for _, part := range []string{string(k.Kind), k.Partition, k.Key, fmt.Sprint(k.CAE)} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// sealed is an entry's plaintext: its full name, checked on load, and its
// value.
type sealed struct {
	Kind      cache.Kind `json:"kind"`
	Partition string     `json:"partition"`
	Key       string     `json:"key"`
	CAE       bool       `json:"cae,omitempty"`
	Value     string     `json:"value"`
	ExpiresOn time.Time  `json:"expiresOn,omitzero"`
	RefreshOn time.Time  `json:"refreshOn,omitzero"`
}

// errSkipped is the error of calls made while Redis is passed over.
var errSkipped = fmt.Errorf("redisstore: Redis is passed over after a failure: %w", cache.ErrStoreUnavailable)

// begin reports whether Redis may be used now.
func (s *Store) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down && time.Now().Before(s.until) {
		return errSkipped
	}
	return nil
}

// failed records a failed operation: the first of an outage is logged at
// Warn; every one extends the back-off.
func (s *Store) failed(op string, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	wait := min(s.backoff<<min(s.failures-1, 10), max(maxBackoff, s.backoff))
	s.until = time.Now().Add(wait)
	if !s.down {
		s.down = true
		s.logger.Warn("redisstore: Redis is not usable; credentials get their tokens from their sources and pass over Redis for a while",
			slog.String("operation", op), slog.String("error", err.Error()), slog.Duration("retryIn", wait))
	}
	return fmt.Errorf("redisstore: %s: %w (%w)", op, cache.ErrStoreUnavailable, err)
}

// succeeded ends an outage.
func (s *Store) succeeded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.logger.Info("redisstore: Redis works again; credentials share tokens through it")
	}
	s.down, s.failures = false, 0
}

// Load implements [cache.Store]. An entry that does not decrypt, or whose
// sealed name is not k, is reported as absent.
func (s *Store) Load(ctx context.Context, k cache.EntryKey) (cache.Entry, bool, error) {
	if err := s.begin(); err != nil {
		return cache.Entry{}, false, err
	}
	rk := s.RedisKey(k)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	b, err := s.client.Get(ctx, rk).Bytes()
	if errors.Is(err, redis.Nil) {
		s.succeeded()
		return cache.Entry{}, false, nil
	}
	if err != nil {
		return cache.Entry{}, false, s.failed("reading an entry", err)
	}
	s.succeeded()
	e, ok := s.open(rk, k, b)
	return e, ok, nil
}

// open decrypts and checks the stored bytes b of the Redis key rk.
func (s *Store) open(rk string, k cache.EntryKey, b []byte) (cache.Entry, bool) {
	ignore := func(why string) (cache.Entry, bool) {
		s.logger.Debug("redisstore: ignoring an entry that "+why, slog.String("key", rk))
		return cache.Entry{}, false
	}
	nonceSize := s.current.aead.NonceSize()
	if len(b) < len(magic)+keyIDSize+nonceSize || string(b[:len(magic)]) != string(magic) {
		return ignore("is not an azcred entry or is truncated")
	}
	var id [keyIDSize]byte
	copy(id[:], b[len(magic):])
	aead := s.byID[id]
	if aead == nil {
		msg := "redisstore: an entry is sealed with a key this store was not given; check that every process has the same EncryptionKey (during a rotation, the old one in PreviousEncryptionKeys). The entry is not used"
		if s.wrongKeyWarned.CompareAndSwap(false, true) {
			s.logger.Warn(msg, slog.String("key", rk), slog.String("sealedWith", hex.EncodeToString(id[:])))
		} else {
			s.logger.Debug(msg, slog.String("key", rk))
		}
		return cache.Entry{}, false
	}
	rest := b[len(magic)+keyIDSize:]
	plain, err := aead.Open(nil, rest[:nonceSize], rest[nonceSize:], []byte(rk))
	if err != nil {
		return ignore("does not decrypt (it was changed, or copied from another key)")
	}
	var v sealed
	if err := json.Unmarshal(plain, &v); err != nil {
		return ignore("does not hold an azcred entry")
	}
	if v.Kind != k.Kind || v.Partition != k.Partition || v.Key != k.Key || v.CAE != k.CAE {
		return ignore("belongs to another name")
	}
	s.wrongKeyWarned.Store(false)
	return cache.Entry{Value: v.Value, ExpiresOn: v.ExpiresOn, RefreshOn: v.RefreshOn}, true
}

// seal encrypts e under the current key, bound to the Redis key rk.
func (s *Store) seal(rk string, k cache.EntryKey, e cache.Entry) ([]byte, error) {
	plain, err := json.Marshal(sealed{Kind: k.Kind, Partition: k.Partition, Key: k.Key, CAE: k.CAE, Value: e.Value, ExpiresOn: e.ExpiresOn, RefreshOn: e.RefreshOn})
	if err != nil {
		return nil, fmt.Errorf("redisstore: encoding an entry: %w", err)
	}
	nonceSize := s.current.aead.NonceSize()
	out := make([]byte, 0, len(magic)+keyIDSize+nonceSize+len(plain)+s.current.aead.Overhead())
	out = append(append(out, magic...), s.current.id[:]...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("redisstore: generating a nonce: %w", err)
	}
	out = append(out, nonce...)
	return s.current.aead.Seal(out, nonce, plain, []byte(rk)), nil
}

// Save implements [cache.Store]. The entry expires in Redis with the token;
// an entry that does not expire is kept without an expiry.
func (s *Store) Save(ctx context.Context, k cache.EntryKey, e cache.Entry) error {
	rk := s.RedisKey(k)
	var ttl time.Duration
	if !e.ExpiresOn.IsZero() {
		if ttl = time.Until(e.ExpiresOn); ttl <= 0 {
			return s.Delete(ctx, k)
		}
	}
	b, err := s.seal(rk, k, e)
	if err != nil {
		return err
	}
	if err := s.begin(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Set(ctx, rk, b, ttl).Err(); err != nil {
		return s.failed("writing an entry", err)
	}
	s.succeeded()
	return nil
}

// Delete implements [cache.Store].
func (s *Store) Delete(ctx context.Context, k cache.EntryKey) error {
	if err := s.begin(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Del(ctx, s.RedisKey(k)).Err(); err != nil {
		return s.failed("deleting an entry", err)
	}
	s.succeeded()
	return nil
}

// unlockScript deletes a lock only while it still holds the caller's
// random value, so that a holder whose lease ran out cannot release the
// next holder's lock.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// TryLock implements [cache.Locker]: SET NX with a random value and the
// lease as expiry.
func (s *Store) TryLock(ctx context.Context, k cache.EntryKey) (func(), bool, error) {
	if err := s.begin(); err != nil {
		return nil, false, err
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, fmt.Errorf("redisstore: generating a lock value: %w", err)
	}
	value := hex.EncodeToString(raw[:])
	lk := s.lockKey(k)
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ok, err := s.client.SetNX(octx, lk, value, s.lease).Result()
	if err != nil {
		return nil, false, s.failed("taking a refresh lock", err)
	}
	s.succeeded()
	if !ok {
		return nil, false, nil
	}
	unlock := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		if err := unlockScript.Run(uctx, s.client, []string{lk}, value).Err(); err != nil {
			// The lease ends it anyway.
			s.logger.Debug("redisstore: giving back a refresh lock failed; it ends with its lease", slog.String("error", err.Error()))
		}
	}
	return unlock, true, nil
}

var (
	_ cache.Store  = (*Store)(nil)
	_ cache.Locker = (*Store)(nil)
)
