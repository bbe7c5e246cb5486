package emulator

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
)

// The tests talk to the emulator with plain net/http and url.Values, and
// build and check JWTs with github.com/golang-jwt/jwt, not with the
// emulator's own JWT code: both ends must not share a parser.

const (
	tenantA    = "11111111-1111-1111-1111-111111111111"
	tenantB    = "22222222-2222-2222-2222-222222222222"
	secretApp  = "aaaaaaaa-0000-0000-0000-000000000001"
	certApp    = "aaaaaaaa-0000-0000-0000-000000000002"
	publicApp  = "aaaaaaaa-0000-0000-0000-000000000003"
	middleApp  = "aaaaaaaa-0000-0000-0000-000000000004"
	fedApp     = "aaaaaaaa-0000-0000-0000-000000000005"
	theSecret  = "s3cr3t-value"
	middleURI  = "api://middle-tier"
	userName   = "alice@contoso.example"
	userPass   = "correct horse battery staple"
	fedIssuer  = "https://oidc.example/cluster"
	fedSubject = "system:serviceaccount:default:workload"
	armScope   = "https://management.azure.com/.default"
)

var testStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type certKey struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func newCertKey() certKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return certKey{cert: cert, key: key}
}

// Keys are slow to make under -race: make each once.
var (
	goodCert = sync.OnceValue(newCertKey)
	otherKey = sync.OnceValue(newCertKey)
	fedKey   = sync.OnceValue(newCertKey)
)

// fixture is an emulator on a fake clock with a standard set of
// registrations.
type fixture struct {
	e   *Emulator
	clk *clock.Fake
}

func newFixture(t *testing.T, opts *Options) fixture {
	t.Helper()
	clk := clock.NewFake(testStart)
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Clock = clk
	e := NewT(t, &o)
	require.NoError(t, e.AddTenant(tenantA))
	require.NoError(t, e.AddTenant(tenantB))
	require.NoError(t, e.RegisterApp(App{TenantID: tenantA, ClientID: secretApp, Secrets: []string{"old", theSecret}, Roles: []string{"Reader"}}))
	require.NoError(t, e.RegisterApp(App{TenantID: tenantA, ClientID: certApp, Certificates: []*x509.Certificate{goodCert().cert}}))
	require.NoError(t, e.RegisterApp(App{TenantID: tenantA, ClientID: publicApp, PublicClient: true}))
	require.NoError(t, e.RegisterApp(App{TenantID: tenantA, ClientID: middleApp, Secrets: []string{theSecret}, IdentifierURIs: []string{middleURI}}))
	require.NoError(t, e.RegisterApp(App{TenantID: tenantA, ClientID: fedApp, Federated: []FederatedCredential{{
		Issuer: fedIssuer, Subject: fedSubject, Keys: []crypto.PublicKey{&fedKey().key.PublicKey},
	}}}))
	require.NoError(t, e.AddUser(User{TenantID: tenantA, Username: userName, Password: userPass, Name: "Alice"}))
	return fixture{e: e, clk: clk}
}

// result is a decoded token endpoint answer.
type result struct {
	status int
	header http.Header
	body   map[string]any
}

func (r result) str(k string) string { s, _ := r.body[k].(string); return s }

func (r result) codes() []int {
	raw, _ := r.body["error_codes"].([]any)
	out := make([]int, 0, len(raw))
	for _, c := range raw {
		if f, ok := c.(float64); ok {
			out = append(out, int(f))
		}
	}
	return out
}

func post(t *testing.T, e *Emulator, path string, form url.Values, header http.Header) result {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.URL()+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, e, req)
}

func get(t *testing.T, e *Emulator, path string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.URL()+path, nil)
	require.NoError(t, err)
	return do(t, e, req)
}

func do(t *testing.T, e *Emulator, req *http.Request) result {
	t.Helper()
	resp, err := e.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := result{status: resp.StatusCode, header: resp.Header}
	require.NoError(t, json.Unmarshal(b, &out.body), "body: %s", b)
	return out
}

func tokenPath(tenant string) string { return "/" + tenant + "/oauth2/v2.0/token" }

func secretForm(clientID, secret, scope string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
}

func assertionForm(clientID, assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_id":             {clientID},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
		"scope":                 {scope},
	}
}

// assertionSpec describes a client assertion; zero fields take the values of
// a valid assertion for certApp at tenantA.
type assertionSpec struct {
	method   jwtlib.SigningMethod
	key      *rsa.PrivateKey
	thumb    string // header name: "x5t#S256" (default) or "x5t"
	thumbOf  *x509.Certificate
	iss, sub string
	aud      string
	nbf, exp time.Time
	jti      string
	noJTI    bool
}

func makeAssertion(t *testing.T, f fixture, s assertionSpec) string {
	t.Helper()
	if s.method == nil {
		s.method = jwtlib.SigningMethodPS256
	}
	if s.key == nil {
		s.key = goodCert().key
	}
	if s.thumbOf == nil {
		s.thumbOf = goodCert().cert
	}
	if s.thumb == "" {
		s.thumb = "x5t#S256"
	}
	if s.iss == "" {
		s.iss = certApp
	}
	if s.sub == "" {
		s.sub = s.iss
	}
	if s.aud == "" {
		s.aud = f.e.URL() + tokenPath(tenantA)
	}
	now := f.clk.Now()
	if s.nbf.IsZero() {
		s.nbf = now
	}
	if s.exp.IsZero() {
		s.exp = now.Add(10 * time.Minute)
	}
	claims := jwtlib.MapClaims{"iss": s.iss, "sub": s.sub, "aud": s.aud, "nbf": s.nbf.Unix(), "exp": s.exp.Unix()}
	if !s.noJTI {
		if s.jti == "" {
			s.jti = uuid.NewString()
		}
		claims["jti"] = s.jti
	}
	tok := jwtlib.NewWithClaims(s.method, claims)
	if s.thumb == "x5t" {
		sum := sha1.Sum(s.thumbOf.Raw)
		tok.Header["x5t"] = base64.RawURLEncoding.EncodeToString(sum[:])
	} else {
		sum := sha256.Sum256(s.thumbOf.Raw)
		tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:]) // as MSAL writes it
	}
	signed, err := tok.SignedString(s.key)
	require.NoError(t, err)
	return signed
}

func federatedAssertion(t *testing.T, f fixture, iss, sub, aud string, key *rsa.PrivateKey, exp time.Time) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, jwtlib.MapClaims{
		"iss": iss, "sub": sub, "aud": []string{aud}, "iat": f.clk.Now().Unix(), "nbf": f.clk.Now().Unix(), "exp": exp.Unix(),
	})
	tok.Header["kid"] = "cluster-key"
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// verifyWithJWKS fetches the tenant's OpenID configuration and JWKS over
// HTTP and verifies token with them, the way a resource server would.
func verifyWithJWKS(t *testing.T, f fixture, tenant, token string) jwtlib.MapClaims {
	t.Helper()
	cfg := get(t, f.e, "/"+tenant+"/v2.0/.well-known/openid-configuration")
	require.Equal(t, http.StatusOK, cfg.status)
	jwksURL := cfg.str("jwks_uri")
	require.True(t, strings.HasPrefix(jwksURL, f.e.URL()+"/"), jwksURL)
	keys := get(t, f.e, strings.TrimPrefix(jwksURL, f.e.URL()))
	require.Equal(t, http.StatusOK, keys.status)
	byKid := map[string]*rsa.PublicKey{}
	list, _ := keys.body["keys"].([]any)
	for _, k := range list {
		m := k.(map[string]any)
		n, err := base64.RawURLEncoding.DecodeString(m["n"].(string))
		require.NoError(t, err)
		eb, err := base64.RawURLEncoding.DecodeString(m["e"].(string))
		require.NoError(t, err)
		byKid[m["kid"].(string)] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(eb).Int64())}
	}
	claims := jwtlib.MapClaims{}
	_, err := jwtlib.ParseWithClaims(token, claims, func(tok *jwtlib.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return byKid[kid], nil
	}, jwtlib.WithValidMethods([]string{"RS256"}), jwtlib.WithTimeFunc(f.clk.Now), jwtlib.WithIssuer(cfg.str("issuer")))
	require.NoError(t, err)
	return claims
}
