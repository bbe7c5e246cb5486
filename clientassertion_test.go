package azcred

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/oauth"
)

const (
	caFedIssuer  = "https://token.actions.example.com"
	caFedSubject = "repo:contoso/app:ref:refs/heads/main"
)

// caFederatedApp registers ccApp in tenant with a federated credential whose
// assertions key signs.
func caFederatedApp(t *testing.T, v ccEnv, tenant string, key *rsa.PrivateKey) {
	t.Helper()
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: tenant, ClientID: ccApp, Federated: []emulator.FederatedCredential{{
		Issuer: caFedIssuer, Subject: caFedSubject, Keys: []crypto.PublicKey{&key.PublicKey},
	}}}))
}

// caFederatedAssertion is a token of an external identity provider, as a
// workload's OIDC token would be: iss, sub, aud and ten minutes of life.
func caFederatedAssertion(t *testing.T, key *rsa.PrivateKey, iss, sub, aud string, now time.Time) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, jwtlib.MapClaims{
		"iss": iss, "sub": sub, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// caCallback returns an assertion callback that returns assertion and
// counts its calls.
func caCallback(assertion string, calls *atomic.Int32) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		calls.Add(1)
		return assertion, nil
	}
}

func TestClientAssertionCredential(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	_, _, key := ccCertificates(t)
	caFederatedApp(t, v, ccTenant, key)
	assertion := caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
	var calls atomic.Int32
	cred, err := NewClientAssertionCredential(ccTenant, ccApp, caCallback(assertion, &calls),
		&ClientAssertionCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)

	ctx := context.Background()
	tok, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{ccScope}})
	require.NoError(t, err)
	c := v.claims(t, tok)
	assert.Equal(t, ccAudience, c["aud"])
	assert.Equal(t, ccApp, c["appid"])
	assert.Equal(t, ccTenant, c["tid"])
	assert.Equal(t, "2", c["azpacr"], "authenticated with an assertion")
	assert.Equal(t, "app", c["idtyp"])
	r := v.onlyRequest(t, ccTenant)
	assert.Equal(t, url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {ccApp},
		"scope":                 {ccScope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}, r.Form)
	assert.Equal(t, int32(1), calls.Load())

	again, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{ccScope}})
	require.NoError(t, err)
	assert.Equal(t, tok, again, "the cached token")
	assert.Len(t, v.e.Requests(), 1, "a cached token costs no request")
	assert.Equal(t, int32(1), calls.Load(), "a cached token costs no assertion")

	other, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
	require.NoError(t, err)
	assert.Equal(t, "https://storage.azure.com", v.claims(t, other)["aud"])
	assert.Len(t, v.e.Requests(), 2)
	assert.Equal(t, int32(2), calls.Load(), "one assertion per token request")
}

func TestClientAssertionCredentialCertificateSignedAssertion(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	leaf, _, key := ccCertificates(t)
	ccCertApp(t, v, ccTenant, leaf)
	var sent []string
	var mu sync.Mutex
	cred, err := NewClientAssertionCredential(ccTenant, ccApp, func(context.Context) (string, error) {
		a, err := oauth.BuildAssertion(oauth.AssertionParams{ClientID: ccApp, Audience: v.e.TokenURL(ccTenant), Key: key, Cert: leaf, Clock: v.clk})
		mu.Lock()
		sent = append(sent, a)
		mu.Unlock()
		return a, err
	}, &ClientAssertionCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
	require.NoError(t, err)
	assert.Equal(t, ccApp, v.claims(t, tok)["appid"])
	r := v.onlyRequest(t, ccTenant)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sent, 1)
	assert.Equal(t, sent[0], r.Form.Get("client_assertion"))
	ccCheckCertAssertion(t, sent[0], leaf, nil, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())
}

func TestClientAssertionCredentialConcurrentCallersShareOneAssertion(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	_, _, key := ccCertificates(t)
	caFederatedApp(t, v, ccTenant, key)
	var calls atomic.Int32
	cred, err := NewClientAssertionCredential(ccTenant, ccApp,
		caCallback(caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now()), &calls),
		&ClientAssertionCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)

	const callers = 16
	start := make(chan struct{})
	tokens := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
			tokens[i], errs[i] = tok.Token, err
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Equal(t, tokens[0], tokens[i])
	}
	assert.Equal(t, int32(1), calls.Load(), "one token request, one assertion")
	v.onlyRequest(t, ccTenant)
}

var errCAVault = errors.New("the key vault is unreachable")

func TestClientAssertionCredentialCallbackFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		callback func(context.Context) (string, error)
		wantIs   error
		wantErr  string
	}{
		{"callback error", func(context.Context) (string, error) { return "", errCAVault }, errCAVault, "the key vault is unreachable"},
		{"callback error with an assertion", func(context.Context) (string, error) { return "half.made.assertion", errCAVault }, errCAVault, "the key vault is unreachable"},
		{"empty assertion", func(context.Context) (string, error) { return "", nil }, nil, "empty assertion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			_, _, key := ccCertificates(t)
			caFederatedApp(t, v, ccTenant, key)
			var calls atomic.Int32
			cred, err := NewClientAssertionCredential(ccTenant, ccApp, func(ctx context.Context) (string, error) {
				calls.Add(1)
				return tc.callback(ctx)
			}, &ClientAssertionCredentialOptions{ClientOptions: v.clientOptions()})
			require.NoError(t, err)
			for attempt := 1; attempt <= 2; attempt++ {
				tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
				require.Error(t, err)
				assert.Empty(t, tok.Token)
				var af *AuthenticationFailedError
				require.ErrorAs(t, err, &af)
				assert.Equal(t, credNameAssertion, af.Credential)
				assert.Zero(t, af.StatusCode, "no answer from the authority")
				assert.Empty(t, af.ErrorCode)
				if tc.wantIs != nil {
					assert.ErrorIs(t, err, tc.wantIs)
				}
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "half.made.assertion")
				assert.True(t, strings.HasPrefix(err.Error(), credNameAssertion+": "), err.Error())
				assert.Equal(t, int32(attempt), calls.Load(), "a failure is not cached: the next GetToken tries again")
			}
			assert.Empty(t, v.e.Requests(), "no assertion, no request")
		})
	}
}

type caCtxKey struct{}

func TestClientAssertionCredentialCallbackContext(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	_, _, key := ccCertificates(t)
	caFederatedApp(t, v, ccTenant, key)
	assertion := caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
	seen := make(chan context.Context, 4)
	release := make(chan struct{})
	cred, err := NewClientAssertionCredential(ccTenant, ccApp, func(ctx context.Context) (string, error) {
		seen <- ctx
		select {
		case <-release:
			return assertion, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}, &ClientAssertionCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)

	// The fetch runs under context.WithoutCancel of the caller's context:
	// the caller's values reach the callback, its cancellation does not.
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), caCtxKey{}, "request-42"))
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{ccScope}})
		first <- err
	}()
	got := <-seen
	assert.Equal(t, "request-42", got.Value(caCtxKey{}), "the caller's values reach the callback")
	_, hasDeadline := got.Deadline()
	assert.True(t, hasDeadline, "the fetch is bounded even when the caller is not")
	cancel()
	assert.ErrorIs(t, <-first, context.Canceled, "the caller stops waiting")
	assert.NoError(t, got.Err(), "the caller's cancellation does not reach the fetch")
	close(release)

	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
	require.NoError(t, err, "the fetch the first caller started completes")
	assert.Equal(t, ccApp, v.claims(t, tok)["appid"])
	assert.Empty(t, seen, "one callback for both callers")
	v.onlyRequest(t, ccTenant)

	// A caller whose context already ended starts no fetch.
	done, stop := context.WithCancel(context.Background())
	stop()
	_, err = cred.GetToken(done, TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, seen, "no callback for a caller that gave up")
	assert.Len(t, v.e.Requests(), 1)
}

func TestClientAssertionCredentialConstructorErrors(t *testing.T) {
	t.Parallel()
	cb := func(context.Context) (string, error) { return "a.b.c", nil }
	ok := &ClientAssertionCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/", getenv: envMap()}}
	for _, tc := range []struct {
		name             string
		tenant, clientID string
		callback         func(context.Context) (string, error)
		opts             *ClientAssertionCredentialOptions
		wantErr          string
	}{
		{"nil callback", ccTenant, ccApp, nil, ok, "the assertion callback is nil"},
		{"empty tenant", "", ccApp, cb, ok, "the tenant ID is empty"},
		{"tenant with a space", "contoso tenant", ccApp, cb, ok, "contains ' '"},
		{"empty client ID", ccTenant, "", cb, ok, "the client ID is empty"},
		{"client ID with a newline", ccTenant, ccApp + "\n", cb, ok, "space or control character"},
		{"authority with a path", ccTenant, ccApp, cb, &ClientAssertionCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/" + ccTenant, getenv: envMap()}}, "host only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cred, err := NewClientAssertionCredential(tc.tenant, tc.clientID, tc.callback, tc.opts)
			require.Error(t, err)
			assert.Nil(t, cred)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), credNameAssertion+": "), err.Error())
		})
	}
}

func TestClientAssertionCredentialRefusals(t *testing.T) {
	t.Parallel()
	leaf, _, key := ccCertificates(t)
	other := ccCAKey(t)
	for _, tc := range []struct {
		name      string
		register  func(t *testing.T, v ccEnv)
		assertion func(t *testing.T, v ccEnv) string
		status    int
		code      string
	}{
		{"unknown issuer", func(t *testing.T, v ccEnv) { caFederatedApp(t, v, ccTenant, key) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, key, "https://evil.example.com", caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
			}, http.StatusBadRequest, "AADSTS700211"},
		{"unknown subject", func(t *testing.T, v ccEnv) { caFederatedApp(t, v, ccTenant, key) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, key, caFedIssuer, "repo:contoso/app:pull_request", emulator.DefaultFederatedAudience, v.clk.Now())
			}, http.StatusBadRequest, "AADSTS700213"},
		{"wrong audience", func(t *testing.T, v ccEnv) { caFederatedApp(t, v, ccTenant, key) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, key, caFedIssuer, caFedSubject, "api://somewhere-else", v.clk.Now())
			}, http.StatusBadRequest, "AADSTS700212"},
		{"signed by another key", func(t *testing.T, v ccEnv) { caFederatedApp(t, v, ccTenant, key) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, other, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
			}, http.StatusUnauthorized, "AADSTS700027"},
		{"expired assertion", func(t *testing.T, v ccEnv) { caFederatedApp(t, v, ccTenant, key) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now().Add(-time.Hour))
			}, http.StatusUnauthorized, "AADSTS700024"},
		{"certificate assertion for another tenant", func(t *testing.T, v ccEnv) { ccCertApp(t, v, ccTenant, leaf) },
			func(t *testing.T, v ccEnv) string {
				a, err := oauth.BuildAssertion(oauth.AssertionParams{ClientID: ccApp, Audience: v.e.TokenURL(ccOtherTenant), Key: key, Cert: leaf, Clock: v.clk})
				require.NoError(t, err)
				return a
			}, http.StatusUnauthorized, "AADSTS700023"},
		{"unknown app", func(t *testing.T, v ccEnv) { require.NoError(t, v.e.AddTenant(ccTenant)) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
			}, http.StatusBadRequest, "AADSTS700016"},
		{"unknown tenant", func(t *testing.T, v ccEnv) { caFederatedApp(t, v, ccOtherTenant, key) },
			func(t *testing.T, v ccEnv) string {
				return caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
			}, http.StatusBadRequest, "AADSTS90002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			tc.register(t, v)
			assertion := tc.assertion(t, v)
			var calls atomic.Int32
			cred, err := NewClientAssertionCredential(ccTenant, ccApp, caCallback(assertion, &calls),
				&ClientAssertionCredentialOptions{ClientOptions: v.clientOptions()})
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
			r := v.onlyRequest(t, ccTenant)
			assert.Equal(t, assertion, r.Form.Get("client_assertion"))
			ccAuthFailed(t, err, credNameAssertion, tc.status, tc.code, r)
			ccNoSecrets(t, err.Error(), assertion)
			assert.Equal(t, int32(1), calls.Load())
		})
	}
}

func TestClientAssertionCredentialGetTokenInput(t *testing.T) {
	t.Parallel()
	_, _, key := ccCertificates(t)
	ccRunGetTokenInputChecks(t, credNameAssertion, ccScope, func(t *testing.T, v ccEnv, allowed []string) TokenCredential {
		caFederatedApp(t, v, ccTenant, key)
		caFederatedApp(t, v, ccOtherTenant, key)
		assertion := caFederatedAssertion(t, key, caFedIssuer, caFedSubject, emulator.DefaultFederatedAudience, v.clk.Now())
		o := &ClientAssertionCredentialOptions{ClientOptions: v.clientOptions(), AdditionallyAllowedTenants: allowed}
		cred, err := NewClientAssertionCredential(ccTenant, ccApp, func(context.Context) (string, error) { return assertion, nil }, o)
		require.NoError(t, err)
		return cred
	})
}

// An assertion callback that reports its source as unavailable keeps that
// class: the error is never both unavailable and failed.
func TestClientAssertionUnavailableCallbackStaysUnavailable(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	c, err := NewClientAssertionCredential(testTenant, testClient, func(context.Context) (string, error) {
		return "", NewCredentialUnavailableError("MySource", "no token file here", nil)
	}, &ClientAssertionCredentialOptions{ClientOptions: emulatorOptions(e)})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	var u *CredentialUnavailableError
	require.ErrorAs(t, err, &u)
	var af *AuthenticationFailedError
	assert.False(t, errors.As(err, &af))
	assert.Empty(t, e.Requests())
}
