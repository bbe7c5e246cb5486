package azsdk_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClient = "11111111-2222-3333-4444-555555555555"
	testSecret = "s3cret-value~xyz"
)

// caeClaims is what the fakes' CAE challenges ask for; the emulator echoes
// "acrs" into the token it issues for them.
const caeClaims = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`

func newEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	e := emulator.NewT(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{testSecret}}))
	return e
}

// newSecretCredential returns an azcred credential that gets tokens from e.
func newSecretCredential(t *testing.T, e *emulator.Emulator, cloud azcred.Cloud) *azcred.ClientSecretCredential {
	t.Helper()
	o := &azcred.ClientSecretCredentialOptions{ClientOptions: azcred.ClientOptions{Transport: e.Client(), Cloud: cloud}}
	if cloud == (azcred.Cloud{}) {
		o.AuthorityHost = e.URL()
	}
	c, err := azcred.NewClientSecretCredential(testTenant, testClient, testSecret, o)
	require.NoError(t, err)
	return c
}

// fakeService is a loopback TLS stand-in for an Azure service: it demands a
// bearer token from the emulator for its audience, optionally answers a
// token without the "acrs" claim with a CAE challenge, and hands authorized
// requests to its handler.
type fakeService struct {
	srv      *httptest.Server
	e        *emulator.Emulator
	audience string

	mu        sync.Mutex
	demandCAE bool
	seen      []seenRequest
}

type seenRequest struct {
	method, path string
	body         string
	status       int
	claims       map[string]any // the verified token's, nil when none verified
}

func newFakeService(t *testing.T, e *emulator.Emulator, audience string, handler http.HandlerFunc) *fakeService {
	t.Helper()
	f := &fakeService{e: e, audience: audience}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec := seenRequest{method: r.Method, path: r.URL.Path, body: string(body)}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			rec.status = sw.status
			f.mu.Lock()
			f.seen = append(f.seen, rec)
			f.mu.Unlock()
		}()
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := e.VerifyAccessToken(tok)
		if !ok || err != nil || claims["aud"] != audience {
			sw.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+e.URL()+"/"+testTenant+`/oauth2/authorize", error="invalid_token"`)
			sw.WriteHeader(http.StatusUnauthorized)
			return
		}
		rec.claims = claims
		f.mu.Lock()
		demand := f.demandCAE
		f.mu.Unlock()
		if demand && claims["acrs"] == nil {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+
				base64.StdEncoding.EncodeToString([]byte(caeClaims))+`"`)
			sw.WriteHeader(http.StatusUnauthorized)
			return
		}
		handler(sw, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// demandClaims makes the service answer tokens without "acrs" with a CAE
// challenge from now on.
func (f *fakeService) demandClaims() {
	f.mu.Lock()
	f.demandCAE = true
	f.mu.Unlock()
}

func (f *fakeService) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
