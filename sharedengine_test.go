package azcred

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

func tokenRequests(e *emulator.Emulator) int {
	n := 0
	for _, r := range e.Requests() {
		if r.Method == "POST" {
			n++
		}
	}
	return n
}

// TestCredentialPerRequestSharesOneEngine is the credential-per-request
// habit: a hundred credentials of one identity and secret cost one token
// request; another secret, other options or the opt-out do not share.
func TestCredentialPerRequestSharesOneEngine(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: "33333333-3333-3333-3333-333333333333", Secrets: []string{"a", "b"}}))
	const app = "33333333-3333-3333-3333-333333333333"
	ctx := context.Background()
	get := func(secret string, modify func(*ClientSecretCredentialOptions)) string {
		o := &ClientSecretCredentialOptions{ClientOptions: emulatorOptions(e)}
		if modify != nil {
			modify(o)
		}
		c, err := NewClientSecretCredential(testTenant, app, secret, o)
		require.NoError(t, err)
		tok, err := c.GetToken(ctx, armRequest)
		require.NoError(t, err)
		return tok.Token
	}
	first := get("a", nil)
	for range 99 {
		assert.Equal(t, first, get("a", nil))
	}
	assert.Equal(t, 1, tokenRequests(e), "one token request for a hundred credentials")

	assert.NotEqual(t, first, get("b", nil), "another secret does not share")
	assert.Equal(t, 2, tokenRequests(e))
	get("a", func(o *ClientSecretCredentialOptions) { o.DisableTokenSharing = true })
	get("a", func(o *ClientSecretCredentialOptions) { o.DisableTokenSharing = true })
	assert.Equal(t, 4, tokenRequests(e), "the opt-out gives each credential its own cache")
	get("a", func(o *ClientSecretCredentialOptions) { o.Retry.MaxRetries = -1 })
	assert.Equal(t, 5, tokenRequests(e), "other options do not share")
	// A wrong secret never gets the shared token.
	o := &ClientSecretCredentialOptions{ClientOptions: emulatorOptions(e)}
	c, err := NewClientSecretCredential(testTenant, app, "wrong", o)
	require.NoError(t, err)
	_, err = c.GetToken(ctx, armRequest)
	var af *AuthenticationFailedError
	assert.ErrorAs(t, err, &af, "the wrong secret asks Entra ID and is refused")
}

// TestCertificateCredentialsShareByKey: the certificate is public, so the
// private key is part of what credentials share by; one with the right
// certificate and another key gets no token from the shared engine.
func TestCertificateCredentialsShareByKey(t *testing.T) {
	t.Parallel()
	certs, key, err := ParseCertificates(readCert(t, "pem-pkcs8.pem"), nil)
	require.NoError(t, err)
	const app = "44444444-4444-4444-4444-444444444444"
	e := newSecretEmulator(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: app, Certificates: certs[:1]}))
	ctx := context.Background()
	build := func(k any) *ClientCertificateCredential {
		c, err := NewClientCertificateCredential(testTenant, app, certs, k, &ClientCertificateCredentialOptions{ClientOptions: emulatorOptions(e)})
		require.NoError(t, err)
		return c
	}
	first, err := build(key).GetToken(ctx, armRequest)
	require.NoError(t, err)
	second, err := build(key).GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Equal(t, first.Token, second.Token)
	assert.Equal(t, 1, tokenRequests(e))

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, err = NewClientCertificateCredential(testTenant, app, certs, other, &ClientCertificateCredentialOptions{ClientOptions: emulatorOptions(e)})
	require.Error(t, err, "a credential with the certificate but not its key is refused")
	ka := certificateShare(certs, key, false)
	kb := certificateShare(certs, other, false)
	assert.NotEqual(t, ka.material, kb.material, "the key is part of what credentials share by")
	assert.NotEqual(t, ka.material, certificateShare(certs, key, true).material, "so is the chain flag")
}

func TestWorkloadIdentityCredentialsShare(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	ctx := context.Background()
	for range 5 {
		c, err := NewWorkloadIdentityCredential(v.options())
		require.NoError(t, err)
		_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{vaultScope}})
		require.NoError(t, err)
	}
	assert.Len(t, v.assertionsSent(), 1)
}

func TestSharedEnginesAreBounded(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	for i := range maxSharedEngines + 10 {
		_, err := NewClientSecretCredential(testTenant, testClient, fmt.Sprintf("secret-%d", i), &ClientSecretCredentialOptions{ClientOptions: emulatorOptions(e)})
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, sharedEngineCount(), maxSharedEngines)
}

// TestShareKeyDigestIsKeyed: the registry's digest of a credential's
// secret material is keyed with a random per-process key, so a dump of the
// registry does not let anyone test guesses of a secret offline against a
// plain SHA-256.
func TestShareKeyDigestIsKeyed(t *testing.T) {
	t.Parallel()
	cfg := entraConfig{name: credNameSecret, clientID: "33333333-3333-3333-3333-333333333333", share: &shareParts{material: []string{"guessable"}}}
	k, ok := newShareKey(cfg, "https://login.example", "", testTenant)
	require.True(t, ok)
	plain := sha256.New()
	var n [8]byte
	for _, s := range []string{cfg.name, "https://login.example", "", testTenant, cfg.clientID, "guessable"} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		plain.Write(n[:])
		plain.Write([]byte(s))
	}
	assert.NotEqual(t, plain.Sum(nil), k.digest[:], "the digest must not be a plain SHA-256 of the secret material")
	k2, _ := newShareKey(cfg, "https://login.example", "", testTenant)
	assert.Equal(t, k, k2, "the same material gives the same key within the process")
}
