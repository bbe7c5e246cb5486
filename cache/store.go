package cache

import (
	"context"
	"time"
)

// Kind is what an [EntryKey] names.
type Kind string

// The kinds of entry a [Store] keeps.
const (
	// KindAccount is a signed-in account: the JSON of an authentication
	// record, keyed by home account ID.
	KindAccount Kind = "account"
	// KindRefreshToken is a user's refresh token, keyed by home account ID.
	KindRefreshToken Kind = "refresh_token"
	// KindAccessToken is an access token, keyed by its request (scopes and
	// tenant); confidential clients keep them when told to.
	KindAccessToken Kind = "access_token"
)

// EntryKey names one entry of a [Store].
type EntryKey struct {
	// Kind is what the entry holds.
	Kind Kind
	// Partition separates applications and authorities, such as
	// "<client ID>@https://login.microsoftonline.com".
	Partition string
	// Key names the entry within its kind and partition.
	Key string
	// CAE separates tokens issued to a client that asked for Continuous
	// Access Evaluation from the others: they never stand in for each other.
	CAE bool
}

// Entry is a value a [Store] keeps.
type Entry struct {
	// Value is the secret or document: a refresh token, an access token or
	// an account's JSON.
	Value string
	// ExpiresOn is when the entry stops being usable; zero means it does not
	// expire on its own (refresh tokens, accounts). A store may drop expired
	// entries.
	ExpiresOn time.Time
	// RefreshOn is the access token's refresh hint; zero when none.
	RefreshOn time.Time
}

// Store keeps what credentials must remember between processes: accounts,
// refresh tokens and access tokens. A Store is safe for concurrent use, by
// goroutines and, for [FileStore], by processes sharing its file. Its
// errors never contain an entry's value.
type Store interface {
	// Load returns the entry named k; ok is false when there is none.
	Load(ctx context.Context, k EntryKey) (e Entry, ok bool, err error)
	// Save creates or replaces the entry named k.
	Save(ctx context.Context, k EntryKey, e Entry) error
	// Delete removes the entry named k; removing a missing entry is not an
	// error.
	Delete(ctx context.Context, k EntryKey) error
}

// String describes e without its value, which is a secret.
func (e Entry) String() string {
	return describeSecret("cache.Entry", e.Value, e.ExpiresOn, e.RefreshOn)
}

// GoString is String, so that %#v shows no secret either.
func (e Entry) GoString() string { return e.String() }
