package oauth

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/jwtx"
)

const (
	emuTenant    = "7f3c1a2e-5b4d-4c6e-9a8b-0d1e2f3a4b5c"
	emuApp       = "11111111-2222-3333-4444-555555555555"
	emuPublicApp = "66666666-7777-8888-9999-000000000000"
	emuSecret    = "emu~Secret.Value-123"
	emuUser      = "alice@contoso.com"
	emuPassword  = "Correct-Horse-9"
)

// emuFixture is a running emulator with one tenant, a confidential app
// (secret and certificate), a public app and a user, sharing a fake clock
// with the client under test.
type emuFixture struct {
	emu      *emulator.Emulator
	clk      *clock.Fake
	client   *Client
	endpoint string
	cert     testCert
}

func newEmuFixture(t *testing.T, opts emulator.Options) *emuFixture {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	opts.Clock = clk
	emu := emulator.NewT(t, &opts)
	cert := newTestCert(t, "app-cert")
	require.NoError(t, emu.AddTenant(emuTenant))
	require.NoError(t, emu.RegisterApp(emulator.App{
		TenantID: emuTenant, ClientID: emuApp, Secrets: []string{emuSecret},
		Certificates: []*x509.Certificate{cert.cert}, IdentifierURIs: []string{"api://" + emuApp},
	}))
	require.NoError(t, emu.RegisterApp(emulator.App{TenantID: emuTenant, ClientID: emuPublicApp, PublicClient: true}))
	require.NoError(t, emu.AddUser(emulator.User{TenantID: emuTenant, Username: emuUser, Password: emuPassword}))
	endpoint, err := TokenEndpoint(emu.URL(), emuTenant, "")
	require.NoError(t, err)
	require.Equal(t, emu.TokenURL(emuTenant), endpoint)
	h := httpx.New(httpx.Options{Transport: emu.Client(), Clock: clk, Retry: httpx.Policy{MaxRetries: -1}})
	return &emuFixture{emu: emu, clk: clk, client: NewClient(Options{HTTP: h, Clock: clk}), endpoint: endpoint, cert: cert}
}

// lastForm returns the form of the only request the emulator received since
// the last reset, checking that it was one POST to the token endpoint.
func (f *emuFixture) lastForm(t *testing.T) url.Values {
	t.Helper()
	reqs := f.emu.Requests()
	require.Len(t, reqs, 1, "one request, no discovery")
	r := reqs[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/"+emuTenant+"/oauth2/v2.0/token", r.Path)
	assert.Equal(t, "application/x-www-form-urlencoded; charset=utf-8", r.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "azcred/"))
	assert.Len(t, r.Header.Get("client-request-id"), 36)
	f.emu.ResetRequests()
	return r.Form
}

func (f *emuFixture) assertion(t *testing.T) string {
	t.Helper()
	a, err := BuildAssertion(AssertionParams{ClientID: emuApp, Audience: f.endpoint, Key: f.cert.key, Cert: f.cert.cert, Clock: f.clk})
	require.NoError(t, err)
	return a
}

func TestEmulatorClientCredentialsWithSecret(t *testing.T) {
	t.Parallel()
	f := newEmuFixture(t, emulator.Options{})
	tok, err := f.client.ClientCredentials(context.Background(), Params{
		Endpoint: f.endpoint, ClientID: emuApp, Auth: ClientAuth{Secret: emuSecret}, Scopes: []string{"https://vault.azure.net/.default"},
	})
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {emuApp},
		"client_secret": {emuSecret},
		"scope":         {"https://vault.azure.net/.default"},
	}, f.lastForm(t))
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, f.clk.Now().Add(time.Hour), tok.ExpiresOn)
	assert.True(t, tok.RefreshOn.IsZero())
	claims, err := f.emu.VerifyAccessToken(tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, "https://vault.azure.net", claims["aud"])
	assert.Equal(t, emuApp, claims["appid"])
}

func TestEmulatorClientCredentialsWithAssertionAndCAE(t *testing.T) {
	t.Parallel()
	f := newEmuFixture(t, emulator.Options{RefreshIn: 30 * time.Minute, TokenLifetime: 2 * time.Hour})
	var sent string
	tok, err := f.client.ClientCredentials(context.Background(), Params{
		Endpoint: f.endpoint, ClientID: emuApp, Scopes: []string{"api://" + emuApp + "/.default"}, EnableCAE: true,
		Auth: ClientAuth{Assertion: func(context.Context) (string, error) { sent = f.assertion(t); return sent, nil }},
	})
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {emuApp},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {sent},
		"scope":                 {"api://" + emuApp + "/.default"},
		"claims":                {`{"access_token":{"xms_cc":{"values":["CP1"]}}}`},
	}, f.lastForm(t))
	now := f.clk.Now()
	assert.Equal(t, now.Add(2*time.Hour), tok.ExpiresOn)
	assert.Equal(t, now.Add(30*time.Minute), tok.RefreshOn)
	var header map[string]any
	require.NoError(t, jwtx.DecodeHeader(sent, &header))
	assert.Equal(t, "PS256", header["alg"])
	assert.Contains(t, header, "x5t#S256")
}

func TestEmulatorPassword(t *testing.T) {
	t.Parallel()
	f := newEmuFixture(t, emulator.Options{})
	tok, err := f.client.Password(context.Background(), PasswordParams{
		Params:   Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{"https://graph.microsoft.com/User.Read", "openid", "offline_access", "profile"}},
		Username: emuUser, Password: emuPassword,
	})
	require.NoError(t, err)
	assert.Equal(t, url.Values{
		"grant_type": {"password"},
		"client_id":  {emuPublicApp},
		"username":   {emuUser},
		"password":   {emuPassword},
		"scope":      {"https://graph.microsoft.com/User.Read openid offline_access profile"},
	}, f.lastForm(t))
	assert.NotEmpty(t, tok.RefreshToken, "offline_access gives a refresh token")
	assert.NotEmpty(t, tok.IDToken, "openid gives an ID token")
	var id map[string]any
	require.NoError(t, jwtx.DecodeClaims(tok.IDToken, &id))
	assert.Equal(t, emuUser, id["preferred_username"])
}

func TestEmulatorOnBehalfOf(t *testing.T) {
	t.Parallel()
	f := newEmuFixture(t, emulator.Options{})
	ctx := context.Background()
	// The user signs in to the middle-tier API (the confidential app)...
	user, err := f.client.Password(ctx, PasswordParams{
		Params:   Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{"api://" + emuApp + "/.default"}},
		Username: emuUser, Password: emuPassword,
	})
	require.NoError(t, err)
	f.emu.ResetRequests()
	// ...which exchanges the user's token for one to Graph.
	for _, useAssertion := range []bool{false, true} {
		t.Run(map[bool]string{false: "secret", true: "assertion"}[useAssertion], func(t *testing.T) {
			var sent string
			auth := ClientAuth{Secret: emuSecret}
			if useAssertion {
				auth = ClientAuth{Assertion: func(context.Context) (string, error) { sent = f.assertion(t); return sent, nil }}
			}
			tok, err := f.client.OnBehalfOf(ctx, OnBehalfOfParams{
				Params:        Params{Endpoint: f.endpoint, ClientID: emuApp, Auth: auth, Scopes: []string{"https://graph.microsoft.com/User.Read"}},
				UserAssertion: user.AccessToken,
			})
			require.NoError(t, err)
			want := url.Values{
				"grant_type":          {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
				"client_id":           {emuApp},
				"assertion":           {user.AccessToken},
				"requested_token_use": {"on_behalf_of"},
				"scope":               {"https://graph.microsoft.com/User.Read"},
			}
			if useAssertion {
				want["client_assertion_type"] = []string{AssertionType}
				want["client_assertion"] = []string{sent}
			} else {
				want["client_secret"] = []string{emuSecret}
			}
			assert.Equal(t, want, f.lastForm(t))
			claims, err := f.emu.VerifyAccessToken(tok.AccessToken)
			require.NoError(t, err)
			assert.Equal(t, emuUser, claims["upn"])
			assert.Equal(t, "https://graph.microsoft.com", claims["aud"])
		})
	}
}

func TestEmulatorErrors(t *testing.T) {
	t.Parallel()
	f := newEmuFixture(t, emulator.Options{})
	other := newTestCert(t, "unregistered")
	ctx := context.Background()
	secretApp := func(endpoint, clientID, secret, scope string) func() (string, error) {
		return func() (string, error) {
			_, err := f.client.ClientCredentials(ctx, Params{Endpoint: endpoint, ClientID: clientID, Auth: ClientAuth{Secret: secret}, Scopes: []string{scope}})
			return secret, err
		}
	}
	unknownTenant, err := TokenEndpoint(f.emu.URL(), "00000000-dead-beef-0000-000000000000", "")
	require.NoError(t, err)
	cases := []struct {
		name       string
		call       func() (secret string, err error)
		status     int
		aadsts     string
		code, hint string
	}{
		{"bad secret", secretApp(f.endpoint, emuApp, "wrong-secret-value", "https://vault.azure.net/.default"),
			401, "AADSTS7000215", "invalid_client", "not its secret ID"},
		{"unknown app", secretApp(f.endpoint, "99999999-9999-9999-9999-999999999999", emuSecret, "https://vault.azure.net/.default"),
			400, "AADSTS700016", "unauthorized_client", "client) ID was not found"},
		{"unknown tenant", secretApp(unknownTenant, emuApp, emuSecret, "https://vault.azure.net/.default"),
			400, "AADSTS90002", "invalid_request", "tenant was not found"},
		{"invalid scope", secretApp(f.endpoint, emuApp, emuSecret, "https://vault.azure.net"),
			400, "AADSTS70011", "invalid_scope", "<resource>/.default"},
		{"assertion signed by an unregistered certificate", func() (string, error) {
			var sent string
			_, err := f.client.ClientCredentials(ctx, Params{Endpoint: f.endpoint, ClientID: emuApp, Scopes: []string{"https://vault.azure.net/.default"},
				Auth: ClientAuth{Assertion: func(context.Context) (string, error) {
					a, err := BuildAssertion(AssertionParams{ClientID: emuApp, Audience: f.endpoint, Key: other.key, Cert: other.cert, Clock: f.clk})
					sent = a
					return a, err
				}}})
			return sent, err
		}, 401, "AADSTS700027", "invalid_client", "certificate registered on the app matches"},
		{"bad password", func() (string, error) {
			_, err := f.client.Password(ctx, PasswordParams{Params: Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{"https://graph.microsoft.com/User.Read"}},
				Username: emuUser, Password: "Wrong-Password-1"})
			return "Wrong-Password-1", err
		}, 400, "AADSTS50126", "invalid_grant", "username or password is wrong"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secret, err := tc.call()
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tc.status, oe.StatusCode)
			assert.Equal(t, tc.aadsts, oe.AADSTS)
			assert.Equal(t, tc.code, oe.Code)
			assert.NotEmpty(t, oe.CorrelationID)
			assert.NotEmpty(t, oe.TraceID)
			assert.NotEmpty(t, oe.Timestamp)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, tc.aadsts+": "), msg)
			assert.Contains(t, msg, tc.hint)
			assert.NotContains(t, msg+oe.Body, secret)
			assert.NotContains(t, msg+oe.Body, emuSecret)
		})
	}
}

func TestEmulatorRetriesInjectedFaults(t *testing.T) {
	t.Parallel()
	f := newEmuFixture(t, emulator.Options{})
	h := httpx.New(httpx.Options{Transport: f.emu.Client(), Clock: f.clk})
	c := NewClient(Options{HTTP: h, Clock: f.clk})
	f.emu.InjectFault(emulator.Fault{Path: "/oauth2/v2.0/token", Count: 1, Status: 429, Header: http.Header{"Retry-After": {"2"}}})
	done := make(chan error, 1)
	go func() {
		_, err := c.ClientCredentials(context.Background(), Params{Endpoint: f.endpoint, ClientID: emuApp, Auth: ClientAuth{Secret: emuSecret}, Scopes: []string{"https://vault.azure.net/.default"}})
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.clk.BlockUntilTimers(ctx, 1))
	f.clk.Advance(2 * time.Second)
	require.NoError(t, <-done)
	reqs := f.emu.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, 429, reqs[0].Status)
	assert.Equal(t, 200, reqs[1].Status)
	assert.Equal(t, reqs[0].Header.Get("client-request-id"), reqs[1].Header.Get("client-request-id"))
	assert.Equal(t, reqs[0].Form, reqs[1].Form, "the same form is sent again")
}

func TestEmulatorBodyFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault emulator.Fault
		check func(t *testing.T, err error, reqs []emulator.Request)
	}{
		{"dropped connection is retried", emulator.Fault{Drop: true}, func(t *testing.T, err error, reqs []emulator.Request) {
			require.NoError(t, err)
			assert.Len(t, reqs, 2)
		}},
		{"truncated body is retried", emulator.Fault{Truncated: true}, func(t *testing.T, err error, reqs []emulator.Request) {
			require.NoError(t, err)
			assert.Len(t, reqs, 2)
		}},
		{"oversized body is refused", emulator.Fault{Oversized: true}, func(t *testing.T, err error, reqs []emulator.Request) {
			var tooLarge *httpx.BodyTooLargeError
			require.ErrorAs(t, err, &tooLarge)
			assert.Equal(t, int64(httpx.DefaultMaxBodySize), tooLarge.Limit)
			assert.Len(t, reqs, 1)
		}},
		{"malformed JSON is a clear error", emulator.Fault{Malformed: true}, func(t *testing.T, err error, reqs []emulator.Request) {
			assert.ErrorContains(t, err, "the token response is not valid JSON")
			assert.Len(t, reqs, 1)
		}},
		{"HTML error page", emulator.Fault{Status: 502, Body: []byte("<html><h1>Bad Gateway</h1></html>")}, func(t *testing.T, err error, reqs []emulator.Request) {
			// 502 is retried; the fault applies once, so the retry succeeds.
			require.NoError(t, err)
			assert.Len(t, reqs, 2)
		}},
		{"HTML answer to a request that is not retried", emulator.Fault{Status: 403, Body: []byte("<html><h1>Forbidden by proxy</h1></html>")}, func(t *testing.T, err error, reqs []emulator.Request) {
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, `the token endpoint answered 403 Forbidden with a body that is not Entra's error JSON: "<html><h1>Forbidden by proxy</h1></html>"; check the authority host, and any proxy between here and it`, err.Error())
			assert.Len(t, reqs, 1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newEmuFixture(t, emulator.Options{})
			h := httpx.New(httpx.Options{Transport: f.emu.Client(), Clock: f.clk, Retry: httpx.Policy{RetryDelay: -1}})
			c := NewClient(Options{HTTP: h, Clock: f.clk})
			tc.fault.Path = "/oauth2/v2.0/token"
			f.emu.InjectFault(tc.fault)
			_, err := c.ClientCredentials(context.Background(), Params{Endpoint: f.endpoint, ClientID: emuApp, Auth: ClientAuth{Secret: emuSecret}, Scopes: []string{"https://vault.azure.net/.default"}})
			tc.check(t, err, f.emu.Requests())
		})
	}
}
