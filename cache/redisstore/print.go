package redisstore

import (
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// Format prints the options without the encryption keys, whatever the
// verb: the keys show only as their count.
func (o Options) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "redisstore.Options{Addr: %q, Client: %t, KeyPrefix: %q, EncryptionKey: %s, PreviousEncryptionKeys: %d, Timeout: %s, LockLease: %s, Backoff: %s}",
		o.Addr, o.Client != nil, o.KeyPrefix, redactedKey(o.EncryptionKey), len(o.PreviousEncryptionKeys), o.Timeout, o.LockLease, o.Backoff)
}

// LogValue implements [slog.LogValuer] without the encryption keys.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", o.Addr),
		slog.Bool("client", o.Client != nil),
		slog.String("keyPrefix", o.KeyPrefix),
		slog.String("encryptionKey", redactedKey(o.EncryptionKey)),
		slog.Int("previousEncryptionKeys", len(o.PreviousEncryptionKeys)),
		slog.Duration("timeout", o.Timeout),
		slog.Duration("lockLease", o.LockLease),
		slog.Duration("backoff", o.Backoff),
	)
}

func redactedKey(k []byte) string {
	if len(k) == 0 {
		return "none"
	}
	return fmt.Sprintf("redacted (%d bytes)", len(k))
}

// Format prints the store without its keys or their AES key schedules,
// whatever the verb.
func (s *Store) Format(f fmt.State, verb rune) {
	if s == nil {
		fmt.Fprint(f, "redisstore.Store(nil)")
		return
	}
	fmt.Fprintf(f, "redisstore.Store{Redis: %s, KeyPrefix: %q, Keys: %d, Timeout: %s, LockLease: %s}",
		s.describeClient(), s.prefix, len(s.byID), s.timeout, s.lease)
}

// LogValue implements [slog.LogValuer] without the store's keys.
func (s *Store) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("redisstore.Store(nil)")
	}
	return slog.GroupValue(
		slog.String("redis", s.describeClient()),
		slog.String("keyPrefix", s.prefix),
		slog.Int("keys", len(s.byID)),
		slog.Duration("timeout", s.timeout),
		slog.Duration("lockLease", s.lease),
	)
}

// describeClient names the server of a client the store made, or says the
// client was given (its options may hold a password: they are not shown).
func (s *Store) describeClient() string {
	if c, ok := s.client.(*redis.Client); ok && s.owned {
		return c.Options().Addr
	}
	return "a given client"
}
