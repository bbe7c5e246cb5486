package azcred

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

const graphScope = "https://graph.microsoft.com/.default"

// acrsClaims is what a resource's CAE challenge asks for in these tests; the
// emulator echoes "acrs" into the token it issues for it.
const acrsClaims = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`

// fakeAPI is a loopback TLS service that requires a bearer token issued by
// the emulator for audience, and records what it received.
type fakeAPI struct {
	srv *httptest.Server
	e   *emulator.Emulator

	mu       sync.Mutex
	requests []apiRequest
	redirect string // where /moved redirects to
}

type apiRequest struct {
	method, path, auth string
	body               string
	claims             map[string]any // of the bearer token, when it verified
}

// newFakeAPI starts a fake service. With demandClaims, a token without the
// "acrs" claim gets a CAE challenge asking for acrsClaims, encoded by encode.
func newFakeAPI(t *testing.T, e *emulator.Emulator, audience string, demandClaims bool, encode func([]byte) string) *fakeAPI {
	t.Helper()
	f := &fakeAPI{e: e}
	f.srv = newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		redirect := f.redirect
		f.mu.Unlock()
		if r.URL.Path == "/moved" && redirect != "" {
			http.Redirect(w, r, redirect, http.StatusTemporaryRedirect)
			return
		}
		body, _ := io.ReadAll(r.Body)
		rec := apiRequest{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), body: string(body)}
		defer func() {
			f.mu.Lock()
			f.requests = append(f.requests, rec)
			f.mu.Unlock()
		}()
		tok, ok := strings.CutPrefix(rec.auth, "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", error="invalid_request"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		claims, err := e.VerifyAccessToken(tok)
		if err != nil || claims["aud"] != audience {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rec.claims = claims
		if demandClaims && claims["acrs"] == nil {
			w.Header().Add("WWW-Authenticate", `Basic realm="fallback"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+encode([]byte(acrsClaims))+`"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	return f
}

func (f *fakeAPI) host() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeAPI) seen() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiRequest(nil), f.requests...)
}

// recordingTransport counts the requests that reach it.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if r.base == nil {
		return nil, errors.New("recordingTransport: no base; this request should not have been sent")
	}
	return r.base.RoundTrip(req)
}

func (r *recordingTransport) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestBearerTransportSendsTokensOnlyToListedHosts(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	cred := newSecretCredential(t, e, testSecret, nil)
	api := newFakeAPI(t, e, "https://graph.microsoft.com", false, nil)

	var otherMu sync.Mutex
	var otherAuth []string
	other := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherMu.Lock()
		otherAuth = append(otherAuth, r.Header.Get("Authorization"))
		otherMu.Unlock()
		_, _ = io.WriteString(w, "other")
	}))
	// The listed host redirects /moved to the other host.
	api.mu.Lock()
	api.redirect = other.URL + "/landed"
	api.mu.Unlock()

	client, err := NewBearerClient(cred, &BearerTransportOptions{
		Scopes: map[string][]string{strings.ToUpper(api.host()): {graphScope}},
		Base:   api.srv.Client().Transport,
	})
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)

	get := func(u string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		res, err := client.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		assert.Empty(t, req.Header.Get("Authorization"), "the caller's request is never modified")
		return res.StatusCode, string(b)
	}

	status, body := get(api.srv.URL + "/v1.0/me")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, `{"ok":true}`, body)
	seen := api.seen()
	require.Len(t, seen, 1)
	require.NotNil(t, seen[0].claims, "the listed host got a token it could verify")
	assert.Equal(t, "https://graph.microsoft.com", seen[0].claims["aud"])
	assert.Equal(t, []any{"CP1"}, seen[0].claims["xms_cc"], "tokens are asked for with CAE enabled")

	status, body = get(other.URL + "/direct")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "other", body)

	status, body = get(api.srv.URL + "/moved")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "other", body, "the redirect was followed")

	otherMu.Lock()
	assert.Equal(t, []string{"", ""}, otherAuth, "a host that is not listed never receives a token, not even as a redirect target")
	otherMu.Unlock()
	assert.Len(t, e.Requests(), 1, "one token, cached by the credential, served every request")
}

func TestBearerTransportPlainHTTP(t *testing.T) {
	t.Parallel()
	var calls int
	cred := TokenCredentialFunc(func(context.Context, TokenRequestOptions) (AccessToken, error) {
		calls++
		return AccessToken{Token: "tok-123"}, nil
	})
	auths := make(chan string, 2)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths <- r.Header.Get("Authorization")
	}))
	t.Cleanup(plain.Close)
	loopHost := strings.TrimPrefix(plain.URL, "http://")
	port := loopHost[strings.LastIndexByte(loopHost, ':'):]

	rec := &recordingTransport{}
	tr, err := NewBearerTransport(cred, &BearerTransportOptions{
		Scopes: map[string][]string{"api.example.test": {graphScope}, loopHost: {graphScope}, "localhost" + port: {graphScope}},
		Base:   rec,
	})
	require.NoError(t, err)

	body := &closeTracker{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPost, "http://api.example.test/v1", body)
	require.NoError(t, err)
	res, err := tr.RoundTrip(req)
	require.Error(t, err)
	assert.Nil(t, res)
	assert.Contains(t, err.Error(), "refusing to send a token to api.example.test over http")
	assert.Equal(t, 0, rec.count(), "nothing was sent")
	assert.Equal(t, 0, calls, "no token was even asked for")
	assert.True(t, body.closed, "RoundTrip closes the body on every path")

	// Loopback may use plain http: a local emulator or a development server.
	rec.base = plain.Client().Transport
	for _, u := range []string{plain.URL + "/x", "http://localhost" + port + "/y"} {
		req, err = http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		res, err = tr.RoundTrip(req)
		require.NoError(t, err, u)
		_ = res.Body.Close()
		assert.Equal(t, "Bearer tok-123", <-auths, u)
	}
	plain.Client().CloseIdleConnections()
}

func TestBearerTransportClaimsChallenge(t *testing.T) {
	t.Parallel()
	encodings := map[string]func([]byte) string{
		"standard, padded":   base64.StdEncoding.EncodeToString,
		"standard, unpadded": base64.RawStdEncoding.EncodeToString,
		"url-safe, padded":   base64.URLEncoding.EncodeToString,
		"url-safe, unpadded": base64.RawURLEncoding.EncodeToString,
	}
	type bodyKind int
	const (
		noBody bodyKind = iota
		replayable
		oneShot
	)
	tests := []struct {
		name     string
		encoding string
		body     bodyKind
		want     int // status the caller sees
		apiHits  int
	}{
		{"GET, standard padded claims", "standard, padded", noBody, http.StatusOK, 2},
		{"GET, url-safe unpadded claims", "url-safe, unpadded", noBody, http.StatusOK, 2},
		{"POST with GetBody, standard unpadded", "standard, unpadded", replayable, http.StatusOK, 2},
		{"POST with GetBody, url-safe padded", "url-safe, padded", replayable, http.StatusOK, 2},
		{"POST whose body cannot be replayed", "standard, padded", oneShot, http.StatusUnauthorized, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newSecretEmulator(t, nil)
			cred := newSecretCredential(t, e, testSecret, nil)
			api := newFakeAPI(t, e, "https://graph.microsoft.com", true, encodings[tt.encoding])
			var logs bytes.Buffer
			client, err := NewBearerClient(cred, &BearerTransportOptions{
				Scopes: map[string][]string{api.host(): {graphScope}},
				Base:   api.srv.Client().Transport,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			require.NoError(t, err)
			t.Cleanup(client.CloseIdleConnections)

			var req *http.Request
			switch tt.body {
			case noBody:
				req, err = http.NewRequest(http.MethodGet, api.srv.URL+"/v1.0/me", nil)
			case replayable:
				req, err = http.NewRequest(http.MethodPost, api.srv.URL+"/v1.0/items", bytes.NewReader([]byte(`{"n":1}`)))
			case oneShot:
				req, err = http.NewRequest(http.MethodPost, api.srv.URL+"/v1.0/items", io.NopCloser(strings.NewReader(`{"n":1}`)))
			}
			require.NoError(t, err)
			res, err := client.Do(req)
			require.NoError(t, err)
			_ = res.Body.Close()
			assert.Equal(t, tt.want, res.StatusCode)

			seen := api.seen()
			require.Len(t, seen, tt.apiHits)
			require.NotNil(t, seen[0].claims)
			assert.Nil(t, seen[0].claims["acrs"], "the first token was a plain CAE token")
			if tt.body != noBody {
				assert.Equal(t, `{"n":1}`, seen[0].body)
			}
			if tt.apiHits == 2 {
				require.NotNil(t, seen[1].claims)
				assert.Equal(t, []any{"c1"}, seen[1].claims["acrs"], "the retry carries a token issued for the challenge's claims")
				assert.NotEqual(t, seen[0].auth, seen[1].auth)
				assert.Equal(t, seen[0].body, seen[1].body, "the body was sent again in full")
				tokenReqs := e.Requests()
				require.Len(t, tokenReqs, 2)
				assert.NotContains(t, tokenReqs[0].Form.Get("claims"), "acrs")
				assert.Contains(t, tokenReqs[1].Form.Get("claims"), `"acrs"`, "the credential received the challenge's claims")
				assert.Contains(t, tokenReqs[1].Form.Get("claims"), `"CP1"`, "and still asked for a CAE token")
			} else {
				assert.Contains(t, logs.String(), "cannot be sent again")
			}
			for _, s := range seen {
				tok, _ := strings.CutPrefix(s.auth, "Bearer ")
				assert.NotContains(t, logs.String(), tok, "the token never reaches the log")
			}
			assert.NotContains(t, logs.String(), "Bearer ey")
		})
	}
}

func TestBearerTransportPassesOther401sThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		challenge []string
	}{
		{"no challenge", nil},
		{"invalid_token", []string{`Bearer realm="", error="invalid_token", error_description="The token expired"`}},
		{"insufficient_claims without claims", []string{`Bearer error="insufficient_claims"`}},
		{"claims that are not base64", []string{`Bearer error="insufficient_claims", claims="not*base64!"`}},
		{"claims that are not JSON", []string{`Bearer error="insufficient_claims", claims="` + base64.StdEncoding.EncodeToString([]byte("plain text")) + `"`}},
		{"unclosed quote", []string{`Bearer error="insufficient_claims", claims="eyJ`}},
		{"a Basic challenge only", []string{`Basic realm="x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for _, c := range tt.challenge {
					w.Header().Add("WWW-Authenticate", c)
				}
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, "denied")
			}))
			var tokenCalls int
			cred := TokenCredentialFunc(func(_ context.Context, o TokenRequestOptions) (AccessToken, error) {
				tokenCalls++
				assert.Empty(t, o.Claims)
				return AccessToken{Token: "tok"}, nil
			})
			client, err := NewBearerClient(cred, &BearerTransportOptions{
				Scopes: map[string][]string{strings.TrimPrefix(srv.URL, "https://"): {graphScope}},
				Base:   srv.Client().Transport,
			})
			require.NoError(t, err)
			t.Cleanup(client.CloseIdleConnections)
			res, err := client.Get(srv.URL)
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
			assert.Equal(t, "denied", string(b), "the 401 comes back as the service sent it")
			assert.Equal(t, int32(1), hits.Load())
			assert.Equal(t, 1, tokenCalls)
		})
	}
}

func TestBearerTransportRetriesOnce(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	claims := base64.StdEncoding.EncodeToString([]byte(acrsClaims))
	srv := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims", claims="`+claims+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	var got []TokenRequestOptions
	cred := TokenCredentialFunc(func(_ context.Context, o TokenRequestOptions) (AccessToken, error) {
		got = append(got, o)
		return AccessToken{Token: "tok"}, nil
	})
	client, err := NewBearerClient(cred, &BearerTransportOptions{
		Scopes: map[string][]string{strings.TrimPrefix(srv.URL, "https://"): {graphScope}},
		Base:   srv.Client().Transport,
	})
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)
	res, err := client.Get(srv.URL)
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, int32(2), hits.Load(), "one retry, never a loop")
	assert.Equal(t, []TokenRequestOptions{
		{Scopes: []string{graphScope}, EnableCAE: true},
		{Scopes: []string{graphScope}, EnableCAE: true, Claims: acrsClaims},
	}, got)
}

func TestBearerTransportCredentialErrors(t *testing.T) {
	t.Parallel()
	rec := &recordingTransport{}
	cred := TokenCredentialFunc(func(context.Context, TokenRequestOptions) (AccessToken, error) {
		return AccessToken{}, NewCredentialUnavailableError("TestCredential", "not set up; configure it", nil)
	})
	client, err := NewBearerClient(cred, &BearerTransportOptions{Scopes: map[string][]string{"api.example.test": {graphScope}}, Base: rec})
	require.NoError(t, err)
	body := &closeTracker{Reader: strings.NewReader("x")}
	req, err := http.NewRequest(http.MethodPut, "https://api.example.test/", body)
	require.NoError(t, err)
	_, err = client.Do(req)
	var u *CredentialUnavailableError
	require.ErrorAs(t, err, &u, "the credential's error class survives http.Client's *url.Error")
	var ue *url.Error
	assert.ErrorAs(t, err, &ue)
	assert.Equal(t, 0, rec.count())
	assert.True(t, body.closed)
}

func TestNewBearerTransportRefusesBadOptions(t *testing.T) {
	t.Parallel()
	cred := TokenCredentialFunc(func(context.Context, TokenRequestOptions) (AccessToken, error) { return AccessToken{}, nil })
	tests := []struct {
		name string
		cred TokenCredential
		opts *BearerTransportOptions
		want string
	}{
		{"nil credential", nil, &BearerTransportOptions{Scopes: map[string][]string{"a.test": {graphScope}}}, "credential is nil"},
		{"nil options", cred, nil, "no host is listed"},
		{"no hosts", cred, &BearerTransportOptions{}, "no host is listed"},
		{"scheme", cred, &BearerTransportOptions{Scopes: map[string][]string{"https://graph.microsoft.com": {graphScope}}}, "it has a scheme"},
		{"path", cred, &BearerTransportOptions{Scopes: map[string][]string{"graph.microsoft.com/v1.0": {graphScope}}}, "it has a path"},
		{"wildcard", cred, &BearerTransportOptions{Scopes: map[string][]string{"*.blob.core.windows.net": {graphScope}}}, "wildcards"},
		{"empty host", cred, &BearerTransportOptions{Scopes: map[string][]string{"": {graphScope}}}, "it is empty"},
		{"bare IPv6", cred, &BearerTransportOptions{Scopes: map[string][]string{"::1": {graphScope}}}, "brackets"},
		{"no scopes", cred, &BearerTransportOptions{Scopes: map[string][]string{"a.test": nil}}, "at least one scope"},
		{"bad scope", cred, &BearerTransportOptions{Scopes: map[string][]string{"a.test": {"has space"}}}, "cannot contain"},
		{"same host twice", cred, &BearerTransportOptions{Scopes: map[string][]string{"A.test": {graphScope}, "a.test:443": {graphScope}}}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := NewBearerTransport(tt.cred, tt.opts)
			require.Error(t, err)
			assert.Nil(t, tr)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "BearerTransport"), err.Error())
		})
	}
}

func TestBearerTransportHostMatching(t *testing.T) {
	t.Parallel()
	tr, err := NewBearerTransport(TokenCredentialFunc(func(context.Context, TokenRequestOptions) (AccessToken, error) { return AccessToken{}, nil }),
		&BearerTransportOptions{Scopes: map[string][]string{
			"Graph.Microsoft.com": {graphScope},
			"127.0.0.1:8443":      {graphScope},
			"[::1]:9443":          {graphScope},
			"localhost:80":        {graphScope},
		}})
	require.NoError(t, err)
	tests := []struct {
		url    string
		listed bool
	}{
		{"https://graph.microsoft.com/v1.0/me", true},
		{"https://GRAPH.microsoft.com:443/v1.0/me", true},
		{"http://graph.microsoft.com/", true}, // listed, then refused for plain http
		{"https://graph.microsoft.com:8443/", false},
		{"https://evil.graph.microsoft.com/", false},
		{"https://graph.microsoft.com.evil.test/", false},
		{"https://127.0.0.1:8443/", true},
		{"https://127.0.0.1:8444/", false},
		{"https://127.0.0.1/", false},
		{"https://[::1]:9443/", true},
		{"https://[::1]/", false},
		{"http://localhost/", true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		require.NoError(t, err)
		_, listed := tr.hosts[canonicalRequestHost(u)]
		assert.Equal(t, tt.listed, listed, tt.url)
	}
	assert.Equal(t, "BearerTransport{hosts: [127.0.0.1:8443 [::1]:9443 graph.microsoft.com localhost]}", tr.String())
}

func TestParseChallenges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		want   []authChallenge
	}{
		{
			name:   "one challenge with quoted parameters",
			values: []string{`Bearer realm="", error="insufficient_claims", claims="eyJh"`},
			want:   []authChallenge{{scheme: "Bearer", params: map[string]string{"realm": "", "error": "insufficient_claims", "claims": "eyJh"}}},
		},
		{
			name:   "two challenges in one value, commas inside quotes",
			values: []string{`Basic realm="a, b", charset="UTF-8", Bearer authorization_uri="https://login.example/x,y", error="insufficient_claims", claims="e30="`},
			want: []authChallenge{
				{scheme: "Basic", params: map[string]string{"realm": "a, b", "charset": "UTF-8"}},
				{scheme: "Bearer", params: map[string]string{"authorization_uri": "https://login.example/x,y", "error": "insufficient_claims", "claims": "e30="}},
			},
		},
		{
			name:   "several header values, token68, bare scheme, escapes, spaces around '='",
			values: []string{`Negotiate abc+/Zz==, NTLM`, `Bearer  Error = "insufficient_claims" ,claims=e30=, realm="say \"hi\""`},
			want: []authChallenge{
				{scheme: "Negotiate", token68: "abc+/Zz=="},
				{scheme: "NTLM"},
				{scheme: "Bearer", params: map[string]string{"error": "insufficient_claims", "claims": "e30=", "realm": `say "hi"`}},
			},
		},
		{
			name:   "empty list elements",
			values: []string{` , Bearer realm="x",, , Basic`},
			want:   []authChallenge{{scheme: "Bearer", params: map[string]string{"realm": "x"}}, {scheme: "Basic"}},
		},
		{name: "empty", values: []string{""}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChallenges(tt.values)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	for _, bad := range []string{
		`Bearer realm="unclosed`,
		`Bearer realm="x" error="y"`,
		`Bearer realm="x", =y`,
		`"quoted"`,
		`Bearer realm="x\`,
	} {
		_, err := parseChallenges([]string{bad})
		assert.Error(t, err, bad)
	}
}

func TestDecodeChallengeClaims(t *testing.T) {
	t.Parallel()
	// Chosen so that the standard and URL-safe alphabets differ ('+' and '/').
	const claims = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"x":"???>>>"}}`
	std := base64.StdEncoding.EncodeToString([]byte(claims))
	require.True(t, strings.ContainsAny(std, "+/"), std)
	for name, enc := range map[string]string{
		"standard, padded":   std,
		"standard, unpadded": base64.RawStdEncoding.EncodeToString([]byte(claims)),
		"url-safe, padded":   base64.URLEncoding.EncodeToString([]byte(claims)),
		"url-safe, unpadded": base64.RawURLEncoding.EncodeToString([]byte(claims)),
		"surrounding spaces": "  " + std + " ",
	} {
		got, err := decodeChallengeClaims(enc)
		require.NoError(t, err, name)
		assert.Equal(t, claims, got, name)
	}
	for _, bad := range []string{"e30+_", "!!!", base64.StdEncoding.EncodeToString([]byte(`[1]`)), base64.StdEncoding.EncodeToString([]byte(`null`))} {
		_, err := decodeChallengeClaims(bad)
		assert.Error(t, err, bad)
	}
}

// cannedTransport answers every request with 200 and no body, without I/O.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

// BenchmarkBearerTransportRoundTrip measures what the transport adds to a
// request to a listed host when the credential's token is cached.
func BenchmarkBearerTransportRoundTrip(b *testing.B) {
	e := newSecretEmulator(b, nil)
	cred := newSecretCredential(b, e, testSecret, nil)
	tr, err := NewBearerTransport(cred, &BearerTransportOptions{
		Scopes: map[string][]string{"graph.microsoft.com": {graphScope}},
		Base:   cannedTransport{},
	})
	require.NoError(b, err)
	req, err := http.NewRequest(http.MethodGet, "https://graph.microsoft.com/v1.0/me", nil)
	require.NoError(b, err)
	_, err = tr.RoundTrip(req) // fills the credential's cache
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
