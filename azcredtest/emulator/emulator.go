package emulator

import (
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azcred/azcred/internal/clock"
)

// DefaultTokenLifetime is the lifetime of the tokens an Emulator issues when
// [Options.TokenLifetime] is zero.
const DefaultTokenLifetime = time.Hour

// Options contains optional parameters for [New]. The zero value is usable.
type Options struct {
	// Clock gives the time for issued tokens and for checking the lifetime of
	// assertions and refresh tokens. Default: the system clock. TLS
	// certificates and injected delays always use the system clock.
	Clock clock.Clock

	// TokenLifetime is the lifetime of issued access tokens ("expires_in").
	// Default: DefaultTokenLifetime. [Emulator.SetTokenLifetime] changes it
	// later.
	TokenLifetime time.Duration

	// RefreshIn, when positive, is sent as "refresh_in" (seconds) with every
	// token. Default: zero, not sent. [Emulator.SetRefreshIn] changes it later.
	RefreshIn time.Duration

	// SigningKey signs the issued tokens. Default: a new 2048-bit RSA key.
	SigningKey *rsa.PrivateKey

	// Addr is the loopback address the Entra ID endpoint listens on, such as
	// "127.0.0.1:8443". Other addresses are refused: the emulator checks no
	// real credentials. Default: "127.0.0.1:0", a free port.
	Addr string
}

// checkLoopback refuses a listening address that is not on loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("emulator: Options.Addr %q is not host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("emulator: Options.Addr %q is not a loopback address; the emulator accepts any registered secret, so it listens on 127.0.0.1 or ::1 only", addr)
}

// App is an application registration in a tenant of the Emulator.
type App struct {
	// TenantID is the tenant that holds the registration. Required.
	TenantID string
	// ClientID is the application (client) ID. Required.
	ClientID string
	// ObjectID is the object ID of the app's service principal, the "oid" and
	// "sub" of its app tokens. Default: a UUID derived from TenantID and ClientID.
	ObjectID string
	// Secrets are the client secrets the app accepts.
	Secrets []string
	// Certificates are the certificates whose keys may sign client assertions.
	Certificates []*x509.Certificate
	// RedirectURIs are the registered redirect URIs.
	RedirectURIs []string
	// Federated are the federated identity credentials of the app: assertions
	// from other issuers (workload identity) that the app accepts.
	Federated []FederatedCredential
	// Roles are the app roles put in the "roles" claim of the app's own tokens.
	Roles []string
	// IdentifierURIs are the application ID URIs (such as "api://<clientID>")
	// under which other apps may ask for tokens for this app, as may its ClientID.
	IdentifierURIs []string
	// PublicClient lets the app use the user flows (password, refresh token)
	// without a client credential, like "Allow public client flows" in Entra.
	PublicClient bool
}

// FederatedCredential is a federated identity credential of an [App]: the
// app accepts, as its client assertion, a JWT whose "iss" equals Issuer,
// whose "sub" equals Subject and whose "aud" contains Audience, signed by one
// of Keys.
type FederatedCredential struct {
	// Issuer is the external issuer's URL, compared exactly. Required.
	Issuer string
	// Subject is the external identity, compared exactly. Required.
	Subject string
	// Audience is the expected audience. Default: "api://AzureADTokenExchange".
	Audience string
	// Keys verify the assertion's signature: *rsa.PublicKey (RS256, PS256)
	// or *ecdsa.PublicKey (ES256). An assertion is refused when none verifies it.
	Keys []crypto.PublicKey
}

// DefaultFederatedAudience is the audience of a [FederatedCredential] that
// names none.
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// User is a user account in a tenant of the Emulator.
type User struct {
	// TenantID is the user's home tenant. Required.
	TenantID string
	// Username is the sign-in name (UPN), compared case-insensitively. Required.
	Username string
	// Password is the user's password.
	Password string
	// ObjectID is the user's object ID. Default: a UUID derived from TenantID
	// and Username.
	ObjectID string
	// Name is the display name. Default: Username.
	Name string
}

// Request is one request the Emulator received.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path, such as "/<tenant>/oauth2/v2.0/token".
	Path string
	// Query is the parsed URL query.
	Query url.Values
	// Header holds the request's headers.
	Header http.Header
	// Form is the parsed form body of a POST; it holds any client secret or
	// assertion that was sent.
	Form url.Values
	// Status is the status code of the response; 0 while the request is being
	// served, or when no response was written (a dropped connection, a hang).
	Status int
	// Time is when the request arrived, read from Options.Clock.
	Time time.Time
}

// Emulator is a local Entra ID server. Create it with [New] or [NewT]; it is
// safe for concurrent use.
type Emulator struct {
	clk       clock.Clock
	url       string
	host      string
	caPEM     []byte
	certs     serverCertificates
	client    *http.Client
	transport *http.Transport
	srv       *http.Server
	serveDone chan struct{}
	done      chan struct{} // closed by Close: ends hangs and delays
	closeOnce sync.Once
	closeErr  error

	signKey *rsa.PrivateKey
	kid     string

	inflightMu sync.Mutex
	inflight   int
	closed     bool
	idle       *sync.Cond

	mu            sync.Mutex
	tenants       map[string]*tenant // key: lower-case tenant ID
	lifetime      time.Duration
	refreshIn     time.Duration
	requests      []*Request
	faults        []*pendingFault
	jtis          map[string]time.Time // client ID + jti → when it may be forgotten
	refreshTokens map[string]*refreshGrant
	onRequest     func(path string) // test hook: a request was recorded

	mi miRegistry // managed identities and their host endpoints (managedidentity.go)

	proxies       []*Proxy // proxy.go; under mu
	proxiesClosed bool
	faultRate     []*randomFault // faults applied at random (faults.go); under mu
}

type tenant struct {
	id    string
	apps  map[string]*App  // key: lower-case client ID
	users map[string]*User // key: lower-case username
}

// New starts an Emulator listening on 127.0.0.1 on a free port, serving HTTPS
// with a certificate from its own new CA. Pass nil to accept default options.
// Call Close when done.
func New(opts *Options) (*Emulator, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TokenLifetime < 0 || o.RefreshIn < 0 {
		return nil, errors.New("emulator: Options.TokenLifetime and Options.RefreshIn must not be negative")
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = DefaultTokenLifetime
	}
	key := o.SigningKey
	if key == nil {
		var err error
		if key, err = newSigningKey(); err != nil {
			return nil, fmt.Errorf("emulator: generating the token signing key: %w", err)
		}
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("emulator: Options.SigningKey: %w", err)
	}
	certs, err := newServerCertificates()
	if err != nil {
		return nil, fmt.Errorf("emulator: generating TLS certificates: %w", err)
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listening on %s: %w", addr, err)
	}
	e := &Emulator{
		clk:           clock.OrReal(o.Clock),
		host:          ln.Addr().String(),
		caPEM:         certs.caPEM,
		certs:         certs,
		serveDone:     make(chan struct{}),
		done:          make(chan struct{}),
		signKey:       key,
		kid:           kid,
		tenants:       map[string]*tenant{},
		lifetime:      o.TokenLifetime,
		refreshIn:     o.RefreshIn,
		jtis:          map[string]time.Time{},
		refreshTokens: map[string]*refreshGrant{},
	}
	e.idle = sync.NewCond(&e.inflightMu)
	e.url = "https://" + e.host
	pool := x509.NewCertPool()
	pool.AddCert(certs.ca)
	e.transport = &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	e.client = &http.Client{
		Transport: e.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	e.srv = &http.Server{
		Handler:           e.serve(e.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	tlsLn := tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{certs.leaf},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"}, // HTTP/1.1 only: faults hijack connections
	})
	go func() {
		defer close(e.serveDone)
		_ = e.srv.Serve(tlsLn)
	}()
	return e, nil
}

// NewT starts an Emulator for a test and closes it when the test ends. It
// fails the test if the Emulator cannot start. Pass nil to accept default
// options.
func NewT(tb testing.TB, opts *Options) *Emulator {
	tb.Helper()
	e, err := New(opts)
	if err != nil {
		tb.Fatalf("starting the emulator: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// Close stops the server, ends the requests it is holding (hangs, delays) and
// waits until every goroutine it started has returned. It is safe to call
// more than once.
func (e *Emulator) Close() error {
	e.closeOnce.Do(func() {
		e.closeProxies()
		e.mi.closeHosts()
		// Close the connections first, so that a held request ends without
		// an answer, then release the handlers that hold requests.
		e.closeErr = e.srv.Close()
		close(e.done)
		<-e.serveDone
		e.inflightMu.Lock()
		e.closed = true
		for e.inflight > 0 {
			e.idle.Wait()
		}
		e.inflightMu.Unlock()
		e.transport.CloseIdleConnections()
	})
	return e.closeErr
}

// URL returns the emulator's base URL, "https://127.0.0.1:<port>": the
// authority host for clients.
func (e *Emulator) URL() string { return e.url }

// Client returns an HTTP client that trusts the emulator's CA and does not
// follow redirects. Every call returns the same client.
func (e *Emulator) Client() *http.Client { return e.client }

// CertPEM returns the emulator's CA certificate in PEM form, for clients that
// need to trust it (other languages, curl --cacert).
func (e *Emulator) CertPEM() []byte { return append([]byte(nil), e.caPEM...) }

// TokenURL returns the token endpoint of tenantID.
func (e *Emulator) TokenURL(tenantID string) string {
	return e.url + "/" + tenantID + "/oauth2/v2.0/token"
}

// Issuer returns the issuer of tenantID's tokens and OpenID configuration,
// "https://127.0.0.1:<port>/<tenantID>/v2.0".
func (e *Emulator) Issuer(tenantID string) string { return e.url + "/" + tenantID + "/v2.0" }

// JWKSURL returns the URL of tenantID's JSON Web Key Set.
func (e *Emulator) JWKSURL(tenantID string) string {
	return e.url + "/" + tenantID + "/discovery/v2.0/keys"
}

// SetTokenLifetime sets the lifetime of the tokens issued from now on;
// zero restores DefaultTokenLifetime.
func (e *Emulator) SetTokenLifetime(d time.Duration) {
	if d <= 0 {
		d = DefaultTokenLifetime
	}
	e.mu.Lock()
	e.lifetime = d
	e.mu.Unlock()
}

// SetRefreshIn sets the "refresh_in" sent with the tokens issued from now
// on; zero or less stops sending it.
func (e *Emulator) SetRefreshIn(d time.Duration) {
	e.mu.Lock()
	e.refreshIn = max(d, 0)
	e.mu.Unlock()
}

var reservedTenants = map[string]bool{"common": true, "organizations": true, "consumers": true, "adfs": true}

// AddTenant adds a tenant. Adding one that exists does nothing. Tenant IDs
// are usually GUIDs; letters, digits, '.', '-' and '_' are accepted, and
// "common", "organizations", "consumers" and "adfs" are refused.
func (e *Emulator) AddTenant(tenantID string) error {
	if err := checkTenantID(tenantID); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tenantLocked(tenantID)
	return nil
}

func checkTenantID(id string) error {
	if id == "" {
		return errors.New("emulator: a tenant ID is required")
	}
	if reservedTenants[strings.ToLower(id)] {
		return fmt.Errorf("emulator: %q is not a tenant but an alias Entra resolves; add a real tenant ID", id)
	}
	for _, c := range id {
		if !isTenantChar(c) {
			return fmt.Errorf("emulator: tenant ID %q has a character other than letters, digits, '.', '-' and '_'", id)
		}
	}
	return nil
}

func isTenantChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
}

func (e *Emulator) tenantLocked(id string) *tenant {
	k := strings.ToLower(id)
	t := e.tenants[k]
	if t == nil {
		t = &tenant{id: id, apps: map[string]*App{}, users: map[string]*User{}}
		e.tenants[k] = t
	}
	return t
}

// RegisterApp registers an application, adding its tenant when needed. It
// replaces an app with the same client ID in that tenant. The App is copied.
func (e *Emulator) RegisterApp(a App) error {
	if err := checkTenantID(a.TenantID); err != nil {
		return err
	}
	if a.ClientID == "" {
		return errors.New("emulator: App.ClientID is required")
	}
	for _, c := range a.Certificates {
		if c == nil {
			return errors.New("emulator: App.Certificates holds a nil certificate")
		}
	}
	for i, f := range a.Federated {
		if f.Issuer == "" || f.Subject == "" {
			return fmt.Errorf("emulator: App.Federated[%d] needs an Issuer and a Subject", i)
		}
		for _, k := range f.Keys {
			if !supportedFederatedKey(k) {
				return fmt.Errorf("emulator: App.Federated[%d].Keys holds a %T; use *rsa.PublicKey or *ecdsa.PublicKey", i, k)
			}
		}
	}
	c := a
	c.Secrets = append([]string(nil), a.Secrets...)
	c.Certificates = append([]*x509.Certificate(nil), a.Certificates...)
	c.RedirectURIs = append([]string(nil), a.RedirectURIs...)
	c.Roles = append([]string(nil), a.Roles...)
	c.IdentifierURIs = append([]string(nil), a.IdentifierURIs...)
	c.Federated = make([]FederatedCredential, len(a.Federated))
	for i, f := range a.Federated {
		f.Keys = append([]crypto.PublicKey(nil), f.Keys...)
		if f.Audience == "" {
			f.Audience = DefaultFederatedAudience
		}
		c.Federated[i] = f
	}
	if c.ObjectID == "" {
		c.ObjectID = derivedID("app", a.TenantID, a.ClientID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tenantLocked(a.TenantID).apps[strings.ToLower(a.ClientID)] = &c
	return nil
}

// AddUser adds a user account, adding its tenant when needed. It replaces a
// user with the same username in that tenant.
func (e *Emulator) AddUser(u User) error {
	if err := checkTenantID(u.TenantID); err != nil {
		return err
	}
	if u.Username == "" {
		return errors.New("emulator: User.Username is required")
	}
	if u.ObjectID == "" {
		u.ObjectID = derivedID("user", u.TenantID, strings.ToLower(u.Username))
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tenantLocked(u.TenantID).users[strings.ToLower(u.Username)] = &u
	return nil
}

// Requests returns copies of the recorded requests, oldest first.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Request, len(e.requests))
	for i, r := range e.requests {
		out[i] = Request{
			Method: r.Method,
			Path:   r.Path,
			Query:  cloneValues(r.Query),
			Header: r.Header.Clone(),
			Form:   cloneValues(r.Form),
			Status: r.Status,
			Time:   r.Time,
		}
	}
	return out
}

// ResetRequests forgets the recorded requests.
func (e *Emulator) ResetRequests() {
	e.mu.Lock()
	e.requests = nil
	e.mu.Unlock()
}

// PublicKeys returns the keys that verify the tokens the Emulator issues, by
// key ID (the "kid" of the tokens' header); the JWKS endpoint publishes the same.
func (e *Emulator) PublicKeys() map[string]crypto.PublicKey {
	return map[string]crypto.PublicKey{e.kid: &e.signKey.PublicKey}
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
