package emulator

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azcred/azcred/internal/clock"
)

// DevOpsOIDCOptions contains the parameters of [NewDevOpsOIDC].
type DevOpsOIDCOptions struct {
	// AccessToken is the pipeline's System.AccessToken that the endpoint
	// accepts as its bearer token. Required.
	AccessToken string

	// ServiceConnectionID is the ID of the service connection whose OIDC
	// tokens the endpoint issues. Required.
	ServiceConnectionID string

	// TLS serves HTTPS with a certificate [DevOpsOIDC.Client] trusts.
	// Default: plain HTTP on loopback.
	TLS bool

	// Clock dates the tokens. Default: the system clock.
	Clock clock.Clock

	// TokenLifetime is the lifetime of the issued OIDC tokens. Default: ten
	// minutes.
	TokenLifetime time.Duration
}

// DevOpsOIDC is a fake Azure DevOps OIDC token endpoint (the URL an Azure
// Pipelines job finds in SYSTEM_OIDCREQUESTURI). It answers
//
//	POST <URL>?api-version=7.1&serviceConnectionId=<id>
//	Authorization: Bearer <AccessToken>
//	Content-Type: application/json
//
// with {"oidcToken": "<a fresh JWT>"}, a new token for every request, issued
// for the service connection with the audience [DefaultFederatedAudience].
// Every answer, refusals included, carries the x-vss-e2eid and x-msedge-ref
// headers Azure DevOps sends. Close it when done; it is safe for concurrent
// use.
type DevOpsOIDC struct {
	srv      *httptest.Server
	opts     DevOpsOIDCOptions
	clk      clock.Clock
	key      *rsa.PrivateKey
	kid      string
	issuer   string
	subject  string
	path     string
	mu       sync.Mutex
	requests []Request
	tokens   []string
}

// NewDevOpsOIDC starts a DevOpsOIDC on 127.0.0.1 and closes it when the test
// ends. It fails tb when it cannot start.
func NewDevOpsOIDC(tb testing.TB, opts DevOpsOIDCOptions) *DevOpsOIDC {
	tb.Helper()
	if opts.AccessToken == "" || opts.ServiceConnectionID == "" {
		tb.Fatalf("emulator: DevOpsOIDCOptions needs an AccessToken and a ServiceConnectionID")
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 10 * time.Minute
	}
	key, err := newSigningKey()
	if err != nil {
		tb.Fatalf("emulator: generating the DevOps signing key: %v", err)
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		tb.Fatalf("emulator: naming the DevOps signing key: %v", err)
	}
	org := derivedID("devops-org", opts.ServiceConnectionID)
	d := &DevOpsOIDC{
		opts:    opts,
		clk:     clock.OrReal(opts.Clock),
		key:     key,
		kid:     kid,
		issuer:  "https://vstoken.dev.azure.com/" + org,
		subject: "sc://contoso/emulated-project/" + opts.ServiceConnectionID,
		path:    "/" + org + "/emulated-project/_apis/distributedtask/hubs/build/plans/" + newID() + "/jobs/" + newID() + "/oidctoken",
	}
	if opts.TLS {
		d.srv = httptest.NewTLSServer(http.HandlerFunc(d.handle))
	} else {
		d.srv = httptest.NewServer(http.HandlerFunc(d.handle))
	}
	tb.Cleanup(d.Close)
	return d
}

// URL returns the OIDC request URI, the value of SYSTEM_OIDCREQUESTURI.
func (d *DevOpsOIDC) URL() string { return d.srv.URL + d.path }

// Client returns an HTTP client that trusts the endpoint (with TLS).
func (d *DevOpsOIDC) Client() *http.Client { return d.srv.Client() }

// Issuer returns the "iss" of the issued tokens.
func (d *DevOpsOIDC) Issuer() string { return d.issuer }

// Subject returns the "sub" of the issued tokens.
func (d *DevOpsOIDC) Subject() string { return d.subject }

// FederatedCredential returns the federated identity credential that makes
// an app trust the service connection's tokens.
func (d *DevOpsOIDC) FederatedCredential() FederatedCredential {
	return FederatedCredential{Issuer: d.issuer, Subject: d.subject, Audience: DefaultFederatedAudience, Keys: []crypto.PublicKey{&d.key.PublicKey}}
}

// Requests returns copies of the requests received, oldest first.
func (d *DevOpsOIDC) Requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Request, len(d.requests))
	for i, r := range d.requests {
		out[i] = r
		out[i].Query = cloneValues(r.Query)
		out[i].Header = r.Header.Clone()
	}
	return out
}

// Tokens returns the OIDC tokens issued, oldest first.
func (d *DevOpsOIDC) Tokens() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.tokens...)
}

// Close stops the endpoint. It is safe to call more than once.
func (d *DevOpsOIDC) Close() { d.srv.Close() }

func (d *DevOpsOIDC) handle(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Time: d.clk.Now()}
	status, body := d.answer(r)
	rec.Status = status
	d.mu.Lock()
	d.requests = append(d.requests, rec)
	if tok, ok := body["oidcToken"].(string); ok {
		d.tokens = append(d.tokens, tok)
	}
	d.mu.Unlock()
	w.Header().Set("x-vss-e2eid", newID())
	w.Header().Set("x-msedge-ref", "Ref A: "+strings.ReplaceAll(newID(), "-", "")+" Ref B: EMU Ref C: "+d.clk.Now().UTC().Format(time.RFC3339))
	writeJSON(w, status, body)
}

func (d *DevOpsOIDC) answer(r *http.Request) (int, map[string]any) {
	fail := func(status int, msg string) (int, map[string]any) {
		return status, map[string]any{"$id": "1", "innerException": nil, "message": msg, "typeName": "Microsoft.TeamFoundation.DistributedTask.WebApi.EmulatorException", "errorCode": 0}
	}
	q := r.URL.Query()
	switch {
	case r.URL.Path != d.path:
		return fail(http.StatusNotFound, "The resource "+r.URL.Path+" does not exist.")
	case r.Method != http.MethodPost:
		return fail(http.StatusMethodNotAllowed, "The requested resource does not support http method '"+r.Method+"'.")
	case !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		return fail(http.StatusUnauthorized, "The request needs a bearer token: pass System.AccessToken.")
	case subtle.ConstantTimeCompare([]byte(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")), []byte(d.opts.AccessToken)) != 1:
		return fail(http.StatusUnauthorized, "The access token is not valid for this job.")
	case q.Get("api-version") != "7.1":
		return fail(http.StatusBadRequest, "The api-version '"+q.Get("api-version")+"' is not supported; use 7.1.")
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		return fail(http.StatusUnsupportedMediaType, "The request's Content-Type must be application/json.")
	case q.Get("serviceConnectionId") != d.opts.ServiceConnectionID:
		return fail(http.StatusNotFound, "Service connection '"+q.Get("serviceConnectionId")+"' was not found or the pipeline is not authorized to use it.")
	}
	now := d.clk.Now()
	tok, err := signRS256Header(d.key, map[string]any{"typ": "JWT", "alg": "RS256", "kid": d.kid}, map[string]any{
		"iss": d.issuer,
		"sub": d.subject,
		"aud": DefaultFederatedAudience,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(d.opts.TokenLifetime).Unix(),
		"jti": newID(),
	})
	if err != nil {
		return fail(http.StatusInternalServerError, "signing the token failed")
	}
	return http.StatusOK, map[string]any{"oidcToken": tok}
}
