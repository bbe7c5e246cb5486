package azcred

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClient = "11111111-2222-3333-4444-555555555555"
	testSecret = "s3cret-value~xyz"
	armScope   = "https://management.azure.com/.default"
)

var armRequest = TokenRequestOptions{Scopes: []string{armScope}}

// newSecretEmulator starts an emulator with one app that has testSecret.
func newSecretEmulator(t testing.TB, opts *emulator.Options) *emulator.Emulator {
	t.Helper()
	e := emulator.NewT(t, opts)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{testSecret}}))
	return e
}

// emulatorOptions points a credential at e, with a fake environment so that
// the machine's AZURE_* variables never leak in.
func emulatorOptions(e *emulator.Emulator) ClientOptions {
	return ClientOptions{AuthorityHost: e.URL(), Transport: e.Client(), getenv: envMap()}
}

func newSecretCredential(t testing.TB, e *emulator.Emulator, secret string, modify func(*ClientSecretCredentialOptions)) *ClientSecretCredential {
	t.Helper()
	o := &ClientSecretCredentialOptions{ClientOptions: emulatorOptions(e)}
	if modify != nil {
		modify(o)
	}
	c, err := NewClientSecretCredential(testTenant, testClient, secret, o)
	require.NoError(t, err)
	return c
}

func TestClientSecretFirstTokenIsOneRequest(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	c := newSecretCredential(t, e, testSecret, nil)

	tok, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	reqs := e.Requests()
	require.Len(t, reqs, 1, "the first token costs exactly one request: no discovery")
	r := reqs[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", r.Path)
	assert.Equal(t, map[string][]string{
		"grant_type":    {"client_credentials"},
		"client_id":     {testClient},
		"client_secret": {testSecret},
		"scope":         {armScope},
	}, map[string][]string(r.Form), "exactly these form fields")
	assert.Contains(t, r.Header.Get("User-Agent"), "azcred/")
	assert.NotEmpty(t, r.Header.Get("client-request-id"))

	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, "https://management.azure.com", claims["aud"])
	assert.Equal(t, testClient, claims["appid"])
	assert.Equal(t, testTenant, claims["tid"])
	assert.WithinDuration(t, time.Now().Add(time.Hour), tok.ExpiresOn, time.Minute)

	again, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, tok, again, "the second call is served from the cache")
	assert.Len(t, e.Requests(), 1, "the second GetToken sends nothing")
}

func TestClientSecretConcurrentCallersShareOneRequest(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	c := newSecretCredential(t, e, testSecret, nil)
	var wg sync.WaitGroup
	tokens := make([]string, 50)
	for i := range tokens {
		wg.Go(func() {
			tok, err := c.GetToken(context.Background(), armRequest)
			assert.NoError(t, err)
			tokens[i] = tok.Token
		})
	}
	wg.Wait()
	assert.Len(t, e.Requests(), 1)
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
}

func TestClientSecretRefusals(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	for _, tc := range []struct {
		name       string
		tenant     string
		client     string
		secret     string
		scope      string
		status     int
		code       string
		wantInText string
	}{
		{name: "bad secret", tenant: testTenant, client: testClient, secret: "wrong-secret-value", scope: armScope, status: 401, code: "AADSTS7000215", wantInText: "secret"},
		{name: "unknown app", tenant: testTenant, client: "99999999-9999-9999-9999-999999999999", secret: testSecret, scope: armScope, status: 400, code: "AADSTS700016", wantInText: "AADSTS700016"},
		{name: "unknown tenant", tenant: "00000000-0000-0000-0000-000000000000", client: testClient, secret: testSecret, scope: armScope, status: 400, code: "AADSTS90002", wantInText: "tenant"},
		{name: "delegated scope on an app token", tenant: testTenant, client: testClient, secret: testSecret, scope: "https://management.azure.com/user_impersonation", status: 400, code: "AADSTS1002012", wantInText: ".default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClientSecretCredential(tc.tenant, tc.client, tc.secret, &ClientSecretCredentialOptions{ClientOptions: emulatorOptions(e)})
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{tc.scope}})
			require.Error(t, err)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af)
			assert.False(t, isUnavailable(err), "a refusal is a failure, not unavailability")
			assert.Equal(t, "ClientSecretCredential", af.Credential)
			assert.Equal(t, tc.status, af.StatusCode)
			assert.Equal(t, tc.code, af.ErrorCode)
			assert.NotEmpty(t, af.CorrelationID)
			assert.NotEmpty(t, af.Response)
			assert.True(t, strings.HasPrefix(err.Error(), "ClientSecretCredential: "), err.Error())
			assert.Contains(t, err.Error(), tc.code)
			assert.Contains(t, err.Error(), tc.wantInText)
		})
	}
}

func TestClientSecretConstructorRefusesBadInput(t *testing.T) {
	t.Parallel()
	o := func(host string) *ClientSecretCredentialOptions {
		return &ClientSecretCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: host, getenv: envMap()}}
	}
	for _, tc := range []struct {
		name                   string
		tenant, client, secret string
		opts                   *ClientSecretCredentialOptions
		want                   string
	}{
		{"empty client ID", testTenant, "", testSecret, nil, "client ID is empty"},
		{"client ID with a space", testTenant, "a b", testSecret, nil, "space or control character"},
		{"empty secret", testTenant, testClient, "", nil, "client secret is empty"},
		{"empty tenant", "", testClient, testSecret, nil, "tenant ID is empty"},
		{"tenant with a slash", "a/b", testClient, testSecret, nil, "cannot contain"},
		{"http authority", testTenant, testClient, testSecret, o("http://login.microsoftonline.com"), "https"},
		{"authority with a path", testTenant, testClient, testSecret, o("https://login.microsoftonline.com/tenant"), "path"},
		{"bad region", testTenant, testClient, testSecret, &ClientSecretCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(EnvRegionalAuthorityName, "West US!")}}, "region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClientSecretCredential(tc.tenant, tc.client, tc.secret, tc.opts)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.True(t, strings.HasPrefix(err.Error(), "ClientSecretCredential: "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestClientSecretGetTokenRefusesBadRequests(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	c := newSecretCredential(t, e, testSecret, nil)
	for name, opts := range map[string]TokenRequestOptions{
		"no scopes":        {},
		"empty scope":      {Scopes: []string{""}},
		"scope with space": {Scopes: []string{armScope + " x"}},
		"control char":     {Scopes: []string{armScope + "\n"}},
		"foreign tenant":   {Scopes: []string{armScope}, TenantID: "22222222-2222-2222-2222-222222222222"},
		"malformed tenant": {Scopes: []string{armScope}, TenantID: "a?b"},
	} {
		_, err := c.GetToken(context.Background(), opts)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "ClientSecretCredential"), "%s: %v", name, err)
	}
	assert.Empty(t, e.Requests(), "nothing invalid reaches the authority")
}

func TestClientSecretAdditionallyAllowedTenants(t *testing.T) {
	t.Parallel()
	const other = "33333333-3333-3333-3333-333333333333"
	e := newSecretEmulator(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: other, ClientID: testClient, Secrets: []string{testSecret}}))

	for name, allowed := range map[string][]string{"listed": {other}, "star": {"*"}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.AdditionallyAllowedTenants = allowed })
			tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: other})
			require.NoError(t, err)
			claims, err := e.VerifyAccessToken(tok.Token)
			require.NoError(t, err)
			assert.Equal(t, other, claims["tid"])
		})
	}
	t.Run("tokens of each tenant are cached apart", func(t *testing.T) {
		t.Parallel()
		e := newSecretEmulator(t, nil)
		require.NoError(t, e.RegisterApp(emulator.App{TenantID: other, ClientID: testClient, Secrets: []string{testSecret}}))
		c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.AdditionallyAllowedTenants = []string{other} })
		for range 2 {
			_, err := c.GetToken(context.Background(), armRequest)
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: other})
			require.NoError(t, err)
		}
		reqs := e.Requests()
		require.Len(t, reqs, 2)
		assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", reqs[0].Path)
		assert.Equal(t, "/"+other+"/oauth2/v2.0/token", reqs[1].Path)
	})
}

func TestClientSecretCAEAndClaims(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	c := newSecretCredential(t, e, testSecret, nil)
	ctx := context.Background()

	plain, err := c.GetToken(ctx, armRequest)
	require.NoError(t, err)
	cae, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}, EnableCAE: true})
	require.NoError(t, err)
	assert.NotEqual(t, plain.Token, cae.Token, "CAE and non-CAE tokens are cached apart")
	reqs := e.Requests()
	require.Len(t, reqs, 2)
	assert.Empty(t, reqs[0].Form.Get("claims"))
	assert.JSONEq(t, `{"access_token":{"xms_cc":{"values":["CP1"]}}}`, reqs[1].Form.Get("claims"))
	claims, err := e.VerifyAccessToken(cae.Token)
	require.NoError(t, err)
	assert.Contains(t, claims, "xms_cc")

	// A claims challenge bypasses the cache, merges with CP1, and replaces the cached token.
	challenge := `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	fresh, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}, EnableCAE: true, Claims: challenge})
	require.NoError(t, err)
	reqs = e.Requests()
	require.Len(t, reqs, 3)
	assert.JSONEq(t, `{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"xms_cc":{"values":["CP1"]}}}`, reqs[2].Form.Get("claims"))
	after, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}, EnableCAE: true})
	require.NoError(t, err)
	assert.Equal(t, fresh.Token, after.Token, "the claims token replaced the cached one")
	assert.Len(t, e.Requests(), 3)
}

func TestClientSecretRetriesAndFaults(t *testing.T) {
	t.Parallel()
	t.Run("429 with Retry-After is waited out on the clock, then retried", func(t *testing.T) {
		t.Parallel()
		fake := clock.NewFake(time.Now())
		e := newSecretEmulator(t, nil)
		e.InjectFault(emulator.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"2"}}, Body: []byte(`{"error":"temporarily_unavailable"}`)})
		c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.clock = fake })
		done := make(chan error, 1)
		go func() {
			_, err := c.GetToken(context.Background(), armRequest)
			done <- err
		}()
		require.NoError(t, fake.BlockUntilTimers(context.Background(), 1))
		assert.Len(t, e.Requests(), 1, "waiting, not yet retried")
		fake.Advance(2 * time.Second)
		require.NoError(t, <-done)
		assert.Len(t, e.Requests(), 2)
	})
	t.Run("503 then success", func(t *testing.T) {
		t.Parallel()
		e := newSecretEmulator(t, nil)
		e.InjectFault(emulator.Fault{Status: http.StatusServiceUnavailable, Header: http.Header{"Retry-After": {"0"}}})
		c := newSecretCredential(t, e, testSecret, nil)
		_, err := c.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		assert.Len(t, e.Requests(), 2)
	})
	t.Run("MaxRetries -1 sends one request", func(t *testing.T) {
		t.Parallel()
		e := newSecretEmulator(t, nil)
		e.InjectFault(emulator.Fault{Status: http.StatusServiceUnavailable})
		c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.Retry.MaxRetries = -1 })
		_, err := c.GetToken(context.Background(), armRequest)
		var af *AuthenticationFailedError
		require.ErrorAs(t, err, &af)
		assert.Equal(t, http.StatusServiceUnavailable, af.StatusCode)
		assert.Len(t, e.Requests(), 1)
	})
	t.Run("Retry-After beyond MaxRetryDelay ends at once", func(t *testing.T) {
		t.Parallel()
		e := newSecretEmulator(t, nil)
		e.InjectFault(emulator.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}})
		c := newSecretCredential(t, e, testSecret, nil)
		_, err := c.GetToken(context.Background(), armRequest)
		var af *AuthenticationFailedError
		require.ErrorAs(t, err, &af)
		assert.Equal(t, http.StatusTooManyRequests, af.StatusCode)
		assert.Contains(t, err.Error(), "MaxRetryDelay")
		assert.Len(t, e.Requests(), 1)
	})
	for name, f := range map[string]emulator.Fault{
		"dropped connection": {Drop: true},
		"truncated body":     {Truncated: true},
	} {
		t.Run(name+" is retried", func(t *testing.T) {
			t.Parallel()
			e := newSecretEmulator(t, nil)
			e.InjectFault(f)
			c := newSecretCredential(t, e, testSecret, nil)
			_, err := c.GetToken(context.Background(), armRequest)
			require.NoError(t, err)
			assert.Len(t, e.Requests(), 2)
		})
	}
	for name, tc := range map[string]struct {
		f    emulator.Fault
		want string
	}{
		"malformed body": {emulator.Fault{Malformed: true}, "token"},
		"oversized body": {emulator.Fault{Oversized: true}, "larger than the 1048576-byte limit"},
		"HTML from a proxy": {emulator.Fault{Status: http.StatusBadGateway, Count: 4, Body: []byte("<html>bad gateway</html>")},
			"502"},
	} {
		t.Run(name+" fails clearly", func(t *testing.T) {
			t.Parallel()
			e := newSecretEmulator(t, nil)
			e.InjectFault(tc.f)
			c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) { o.Retry.RetryDelay = time.Millisecond })
			_, err := c.GetToken(context.Background(), armRequest)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af)
			assert.Contains(t, err.Error(), tc.want)
			// The failure is not cached: the next call fetches again and succeeds.
			_, err = c.GetToken(context.Background(), armRequest)
			require.NoError(t, err)
		})
	}
}

func TestClientSecretCancelledCaller(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	c := newSecretCredential(t, e, testSecret, nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.GetToken(ctx, armRequest)
	assert.ErrorIs(t, err, context.Canceled)

	// A caller that gives up while the authority is slow returns at once; the
	// shared fetch carries on and its token serves the next caller.
	e.InjectFault(emulator.Fault{Delay: 300 * time.Millisecond})
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetToken(ctx, armRequest)
		errc <- err
	}()
	require.Eventually(t, func() bool { return len(e.Requests()) == 1 }, 5*time.Second, time.Millisecond, "the fetch reached the authority")
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	tok, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.Token)
	assert.Len(t, e.Requests(), 1, "the cancelled caller's fetch was not cancelled and not repeated")
}

func TestClientSecretRedirectRefusedWithCallersClient(t *testing.T) {
	t.Parallel()
	var reachedSecond bool
	var mu sync.Mutex
	second := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reachedSecond = true
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	first := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, second.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	client := first.Client() // a plain *http.Client that would follow redirects
	client.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(second.Certificate())
	require.Nil(t, client.CheckRedirect)

	c, err := NewClientSecretCredential(testTenant, testClient, testSecret, &ClientSecretCredentialOptions{
		ClientOptions: ClientOptions{AuthorityHost: first.URL, Transport: client, getenv: envMap()},
	})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Contains(t, err.Error(), "307")
	mu.Lock()
	assert.False(t, reachedSecond, "the POST carrying the secret was not re-sent to the redirect's host")
	mu.Unlock()
	assert.Nil(t, client.CheckRedirect, "the caller's client is not modified")
	assert.NotContains(t, err.Error(), testSecret)
}

func TestClientSecretNoTokenInTime(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	e.InjectFault(emulator.Fault{Hang: true, Count: 10})
	c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) {
		o.Retry = RetryOptions{MaxRetries: -1, TryTimeout: 50 * time.Millisecond}
	})
	_, err := c.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Contains(t, err.Error(), "in time")
}

func newTLSServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(h)
	t.Cleanup(s.Close)
	return s
}
