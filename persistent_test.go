package azcred

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/oauth"
)

// memStore is a cache.Store in memory, optionally failing.
type memStore struct {
	mu       sync.Mutex
	m        map[cache.EntryKey]cache.Entry
	loadErr  error
	saveErr  error
	saves    int
	lastSave cache.EntryKey
}

func newMemStore() *memStore { return &memStore{m: map[cache.EntryKey]cache.Entry{}} }

func (s *memStore) Load(_ context.Context, k cache.EntryKey) (cache.Entry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loadErr != nil {
		return cache.Entry{}, false, s.loadErr
	}
	e, ok := s.m[k]
	return e, ok, nil
}

func (s *memStore) Save(_ context.Context, k cache.EntryKey, e cache.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	s.lastSave = k
	if s.saveErr != nil {
		return s.saveErr
	}
	s.m[k] = e
	return nil
}

func (s *memStore) Delete(_ context.Context, k cache.EntryKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

func TestConfidentialCredentialsSharePersistentTokens(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Now())
	e := newSecretEmulator(t, nil)
	store := newMemStore()
	// Each credential stands for another process: they do not share an
	// engine, only the store.
	mk := func() *ClientSecretCredential {
		return newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) {
			o.Cache, o.clock, o.DisableTokenSharing = store, fake, true
		})
	}
	ctx := context.Background()

	first, err := mk().GetToken(ctx, armRequest)
	require.NoError(t, err)
	require.Len(t, e.Requests(), 1)
	assert.Equal(t, cache.EntryKey{Kind: cache.KindAccessToken, Partition: testClient + "@" + e.URL(), Key: testTenant + " " + armScope}, store.lastSave)

	// Another process (a new credential) reuses it without a request.
	second, err := mk().GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Equal(t, first.Token, second.Token)
	assert.Len(t, e.Requests(), 1)

	// CAE tokens are kept apart; a claims request always asks Entra ID.
	_, err = mk().GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}, EnableCAE: true})
	require.NoError(t, err)
	assert.Len(t, e.Requests(), 2)
	_, err = mk().GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}, Claims: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`})
	require.NoError(t, err)
	assert.Len(t, e.Requests(), 3)

	// Once the stored token is due for refresh, a new credential asks Entra
	// ID again and stores the new token.
	fake.Advance(56 * time.Minute)
	third, err := mk().GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Len(t, e.Requests(), 4)
	assert.NotEqual(t, first.Token, third.Token)
	fourth, err := mk().GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Equal(t, third.Token, fourth.Token)
	assert.Len(t, e.Requests(), 4)
}

func TestPersistentCacheFailuresAreNotFatal(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	store := newMemStore()
	store.loadErr, store.saveErr = errors.New("disk on fire"), errors.New("disk still on fire")
	var logs bytes.Buffer
	c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) {
		o.Cache = store
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	tok, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.Token)
	assert.Contains(t, logs.String(), "reading the persistent cache failed")
	assert.Contains(t, logs.String(), "writing the persistent cache failed")
	assert.NotContains(t, logs.String(), tok.Token)
}

func TestPersistentCacheWithTheFileStore(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	dir := t.TempDir()
	for i := range 2 {
		store, err := cache.NewFileStore("confidential", &cache.FileStoreOptions{Dir: dir, AllowUnencrypted: true})
		require.NoError(t, err)
		cert := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.Cache = store })
		_, err = cert.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		assert.Len(t, e.Requests(), 1, "run %d", i+1)
	}
}

func TestCacheOptionOnEachConfidentialCredential(t *testing.T) {
	t.Parallel()
	certs, key, err := ParseCertificates(readCert(t, "pem-pkcs8.pem"), nil)
	require.NoError(t, err)
	e := newSecretEmulator(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: "22222222-2222-2222-2222-222222222222", Certificates: certs[:1]}))
	for name, build := range map[string]func(store cache.Store) (TokenCredential, error){
		"certificate": func(s cache.Store) (TokenCredential, error) {
			return NewClientCertificateCredential(testTenant, "22222222-2222-2222-2222-222222222222", certs, key, &ClientCertificateCredentialOptions{ClientOptions: emulatorOptions(e), Cache: s})
		},
		"assertion": func(s cache.Store) (TokenCredential, error) {
			return NewClientAssertionCredential(testTenant, "22222222-2222-2222-2222-222222222222", func(ctx context.Context) (string, error) {
				return oauth.BuildAssertion(oauth.AssertionParams{ClientID: "22222222-2222-2222-2222-222222222222", Audience: e.TokenURL(testTenant), Key: key.(*rsa.PrivateKey), Cert: certs[0]})
			}, &ClientAssertionCredentialOptions{ClientOptions: emulatorOptions(e), Cache: s})
		},
	} {
		store := newMemStore()
		c, err := build(store)
		require.NoError(t, err, name)
		_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		require.NoError(t, err, name)
		assert.Equal(t, 1, store.saves, name)
		c2, err := build(store)
		require.NoError(t, err, name)
		before := len(e.Requests())
		_, err = c2.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
		require.NoError(t, err, name)
		assert.Len(t, e.Requests(), before, "%s: served from the store", name)
	}
}
