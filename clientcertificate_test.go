package azcred

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
)

// Shared by the tests of the confidential-client credentials
// (clientcertificate, clientassertion, onbehalfof, usernamepassword).

const (
	ccTenant      = "4f1b5e2a-8c3d-4e6f-9a0b-1c2d3e4f5a6b"
	ccOtherTenant = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
	ccApp         = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	ccScope       = "https://vault.azure.net/.default"
	ccAudience    = "https://vault.azure.net"
	ccTokenLife   = time.Hour
)

// ccSigningKey signs every test emulator's tokens: RSA keys are slow to make
// under -race, so it is made once.
var ccSigningKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// ccEnv is an emulator on a fake clock that the credentials under test share.
type ccEnv struct {
	e   *emulator.Emulator
	clk *clock.Fake
}

func newCCEnv(t *testing.T) ccEnv {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	e := emulator.NewT(t, &emulator.Options{Clock: clk, SigningKey: ccSigningKey(), TokenLifetime: ccTokenLife})
	return ccEnv{e: e, clk: clk}
}

// clientOptions points a credential at the emulator, with the emulator's
// clock and an empty environment (no AZURE_* variable of the machine leaks in).
func (v ccEnv) clientOptions() ClientOptions {
	return ClientOptions{AuthorityHost: v.e.URL(), Transport: v.e.Client(), getenv: envMap(), clock: v.clk}
}

// claims checks that tok was issued by the emulator now, for the emulator's
// token lifetime, and returns its claims.
func (v ccEnv) claims(t *testing.T, tok AccessToken) map[string]any {
	t.Helper()
	c, err := v.e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, v.clk.Now().Add(ccTokenLife), tok.ExpiresOn)
	return c
}

// onlyRequest returns the one request the emulator received, checking that
// it was a POST to tenant's token endpoint.
func (v ccEnv) onlyRequest(t *testing.T, tenant string) emulator.Request {
	t.Helper()
	reqs := v.e.Requests()
	require.Len(t, reqs, 1, "exactly one request reaches the emulator")
	r := reqs[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/"+tenant+"/oauth2/v2.0/token", r.Path)
	return r
}

// ccCertificates reads the fixture leaf certificate, its CA (the chain) and
// the leaf's key.
func ccCertificates(t *testing.T) (leaf, ca *x509.Certificate, key *rsa.PrivateKey) {
	t.Helper()
	certs, k, err := ParseCertificates(readCert(t, "pem-pkcs1-chain.pem"), nil)
	require.NoError(t, err)
	require.Len(t, certs, 2)
	rk, ok := k.(*rsa.PrivateKey)
	require.True(t, ok)
	return certs[0], certs[1], rk
}

// ccCAKey reads the fixture CA's private key, which matches no leaf.
func ccCAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(readCert(t, "ca.key"))
	require.NotNil(t, block)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	rk, ok := k.(*rsa.PrivateKey)
	require.True(t, ok)
	return rk
}

// ccSelfSigned makes a self-signed certificate for key, valid from
// notBefore to notAfter.
func ccSelfSigned(t *testing.T, key *rsa.PrivateKey, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "azcred test self-signed"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

// ccAuthFailed asserts that err is an *AuthenticationFailedError of
// credential with the given status and AADSTS code, carrying the correlation
// ID of req, and returns it.
func ccAuthFailed(t *testing.T, err error, credential string, status int, code string, req emulator.Request) *AuthenticationFailedError {
	t.Helper()
	require.Error(t, err)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Equal(t, credential, af.Credential)
	assert.Equal(t, status, af.StatusCode)
	assert.Equal(t, code, af.ErrorCode)
	assert.NotEmpty(t, af.CorrelationID)
	assert.Equal(t, req.Header.Get("client-request-id"), af.CorrelationID, "Entra echoes the client's request ID as correlation ID")
	assert.Contains(t, af.Response, code)
	assert.True(t, strings.HasPrefix(err.Error(), credential+": "), err.Error())
	return af
}

// ccNoSecrets asserts that none of secrets appears in s.
func ccNoSecrets(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if secret != "" {
			assert.NotContains(t, s, secret)
		}
	}
}

// ccCheckCertAssertion verifies a certificate-signed client assertion: PS256
// with the leaf's SHA-256 thumbprint, x5c exactly wantX5C (nil: absent),
// signed by the leaf's key, for audience, with iss = sub = clientID, a jti
// and ten minutes of lifetime. It returns the jti.
func ccCheckCertAssertion(t *testing.T, assertion string, leaf *x509.Certificate, wantX5C []*x509.Certificate, clientID, audience string, now time.Time) string {
	t.Helper()
	claims := jwtlib.MapClaims{}
	tok, err := jwtlib.ParseWithClaims(assertion, claims, func(*jwtlib.Token) (any, error) { return leaf.PublicKey, nil },
		jwtlib.WithValidMethods([]string{"PS256"}), jwtlib.WithTimeFunc(func() time.Time { return now }),
		jwtlib.WithAudience(audience), jwtlib.WithIssuer(clientID), jwtlib.WithSubject(clientID), jwtlib.WithExpirationRequired())
	require.NoError(t, err, "the assertion verifies with the certificate's key")
	assert.Equal(t, "PS256", tok.Header["alg"])
	assert.Equal(t, "JWT", tok.Header["typ"])
	sum := sha256.Sum256(leaf.Raw)
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), tok.Header["x5t#S256"])
	assert.NotContains(t, tok.Header, "x5t", "no SHA-1 thumbprint for Entra ID")
	if wantX5C == nil {
		assert.NotContains(t, tok.Header, "x5c")
	} else {
		want := make([]any, len(wantX5C))
		for i, c := range wantX5C {
			want[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		assert.Equal(t, want, tok.Header["x5c"])
	}
	assert.Equal(t, audience, claims["aud"], "aud is one string, the token endpoint")
	jti, _ := claims["jti"].(string)
	assert.NotEmpty(t, jti)
	nbf, err := claims.GetNotBefore()
	require.NoError(t, err)
	require.NotNil(t, nbf)
	exp, err := claims.GetExpirationTime()
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, exp.Sub(nbf.Time))
	assert.Equal(t, now.Unix(), nbf.Unix())
	return jti
}

// ccCertApp registers an app that authenticates with cert in tenant.
func ccCertApp(t *testing.T, v ccEnv, tenant string, cert *x509.Certificate) {
	t.Helper()
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: tenant, ClientID: ccApp, Certificates: []*x509.Certificate{cert}}))
}

// ccSyncBuffer is a bytes.Buffer that a logger and a test may share.
type ccSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *ccSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *ccSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ccRunGetTokenInputChecks checks a credential's GetToken against bad input
// and the tenant rule. build returns a credential configured for ccTenant
// with the given AdditionallyAllowedTenants, whose app (and user) it has
// registered in both ccTenant and ccOtherTenant of v; scope is a scope the
// credential may ask for.
func ccRunGetTokenInputChecks(t *testing.T, name, scope string, build func(t *testing.T, v ccEnv, allowed []string) TokenCredential) {
	t.Helper()
	for _, tc := range []struct {
		name       string
		allowed    []string
		opts       TokenRequestOptions
		wantErr    string // substring of the error; "" means a token from wantTenant
		wantTenant string
	}{
		{name: "no scopes", opts: TokenRequestOptions{}, wantErr: "needs at least one scope"},
		{name: "empty scope", opts: TokenRequestOptions{Scopes: []string{""}}, wantErr: "a scope is empty"},
		{name: "scope with a space", opts: TokenRequestOptions{Scopes: []string{scope + " openid"}}, wantErr: "contains ' '"},
		{name: "second scope with a space", opts: TokenRequestOptions{Scopes: []string{scope, "a b"}}, wantErr: `the scope "a b" contains ' '`},
		{name: "tenant not allowed", opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: ccOtherTenant}, wantErr: "AdditionallyAllowedTenants"},
		{name: "another tenant allowed, not this one", allowed: []string{ccTenant, "contoso.onmicrosoft.com"}, opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: ccOtherTenant}, wantErr: "AdditionallyAllowedTenants"},
		{name: "malformed tenant", allowed: []string{"*"}, opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: "../" + ccOtherTenant}, wantErr: "contains '/'"},
		{name: "own tenant named", opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: ccTenant}, wantTenant: ccTenant},
		{name: "allowed tenant", allowed: []string{ccOtherTenant}, opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: ccOtherTenant}, wantTenant: ccOtherTenant},
		{name: "allowed tenant in other case", allowed: []string{strings.ToUpper(ccOtherTenant)}, opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: ccOtherTenant}, wantTenant: ccOtherTenant},
		{name: "any tenant", allowed: []string{"*"}, opts: TokenRequestOptions{Scopes: []string{scope}, TenantID: ccOtherTenant}, wantTenant: ccOtherTenant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			cred := build(t, v, tc.allowed)
			tok, err := cred.GetToken(context.Background(), tc.opts)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.True(t, strings.HasPrefix(err.Error(), name), "the error names the credential: %s", err)
				assert.Empty(t, tok.Token)
				assert.Empty(t, v.e.Requests(), "bad input sends nothing")
				return
			}
			require.NoError(t, err)
			v.onlyRequest(t, tc.wantTenant)
			assert.Equal(t, tc.wantTenant, v.claims(t, tok)["tid"])
		})
	}
}

func TestClientCertificateCredentialFormats(t *testing.T) {
	t.Parallel()
	leaf, ca, _ := ccCertificates(t)
	for _, tc := range []struct {
		file      string
		password  string
		wantChain bool
	}{
		{"pem-pkcs8.pem", "", false},
		{"pem-pkcs1-chain.pem", "", true},
		{"pem-encrypted.pem", fixturePassword, false},
		{"modern.pfx", fixturePassword, true},
		{"legacy.pfx", fixturePassword, true},
		{"nopassword.pfx", "", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			certs, key, err := ParseCertificates(readCert(t, tc.file), []byte(tc.password))
			require.NoError(t, err)
			if tc.wantChain {
				require.Len(t, certs, 2)
				assert.True(t, certs[1].Equal(ca))
			} else {
				require.Len(t, certs, 1)
			}
			require.True(t, certs[0].Equal(leaf))

			v := newCCEnv(t)
			ccCertApp(t, v, ccTenant, leaf)
			o := &ClientCertificateCredentialOptions{ClientOptions: v.clientOptions()}
			cred, err := NewClientCertificateCredential(ccTenant, ccApp, certs, key, o)
			require.NoError(t, err)

			ctx := context.Background()
			tok, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{ccScope}})
			require.NoError(t, err)
			c := v.claims(t, tok)
			assert.Equal(t, ccAudience, c["aud"])
			assert.Equal(t, ccApp, c["appid"])
			assert.Equal(t, ccTenant, c["tid"])
			assert.Equal(t, "2", c["azpacr"], "authenticated with a certificate")
			assert.Equal(t, "app", c["idtyp"])

			r := v.onlyRequest(t, ccTenant)
			assertion := r.Form.Get("client_assertion")
			require.NotEmpty(t, assertion)
			assert.Equal(t, url.Values{
				"grant_type":            {"client_credentials"},
				"client_id":             {ccApp},
				"scope":                 {ccScope},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {assertion},
			}, r.Form)
			ccCheckCertAssertion(t, assertion, leaf, nil, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())

			again, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{ccScope}})
			require.NoError(t, err)
			assert.Equal(t, tok, again, "the cached token")
			assert.Len(t, v.e.Requests(), 1, "a cached token costs no request")
		})
	}
}

func TestClientCertificateCredentialFreshAssertionPerRequest(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	leaf, _, key := ccCertificates(t)
	ccCertApp(t, v, ccTenant, leaf)
	cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{leaf}, key,
		&ClientCertificateCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)
	ctx := context.Background()
	scopes := []string{ccScope, "https://storage.azure.com/.default", "https://management.azure.com/.default"}
	for _, s := range scopes {
		_, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{s}})
		require.NoError(t, err, "the emulator refuses a replayed jti, so each request needs a new assertion")
	}
	reqs := v.e.Requests()
	require.Len(t, reqs, len(scopes), "one request per scope")
	jtis := map[string]bool{}
	for i, r := range reqs {
		assert.Equal(t, scopes[i], r.Form.Get("scope"))
		jtis[ccCheckCertAssertion(t, r.Form.Get("client_assertion"), leaf, nil, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())] = true
	}
	assert.Len(t, jtis, len(scopes), "every assertion has its own jti")
}

func TestClientCertificateCredentialSendCertificateChain(t *testing.T) {
	t.Parallel()
	leaf, ca, key := ccCertificates(t)
	for _, tc := range []struct {
		name      string
		certs     []*x509.Certificate
		sendChain bool
		wantX5C   []*x509.Certificate
	}{
		{"chain given, not sent", []*x509.Certificate{leaf, ca}, false, nil},
		{"chain sent", []*x509.Certificate{leaf, ca}, true, []*x509.Certificate{leaf, ca}},
		{"chain given CA first, sent leaf first", []*x509.Certificate{ca, leaf}, true, []*x509.Certificate{leaf, ca}},
		{"leaf alone sent", []*x509.Certificate{leaf}, true, []*x509.Certificate{leaf}},
		{"leaf given twice, sent once", []*x509.Certificate{leaf, ca, leaf}, true, []*x509.Certificate{leaf, ca}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			ccCertApp(t, v, ccTenant, leaf)
			o := &ClientCertificateCredentialOptions{ClientOptions: v.clientOptions(), SendCertificateChain: tc.sendChain}
			cred, err := NewClientCertificateCredential(ccTenant, ccApp, tc.certs, key, o)
			require.NoError(t, err)
			tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
			require.NoError(t, err)
			assert.Equal(t, ccApp, v.claims(t, tok)["appid"])
			r := v.onlyRequest(t, ccTenant)
			ccCheckCertAssertion(t, r.Form.Get("client_assertion"), leaf, tc.wantX5C, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())
		})
	}
}

// ccSigner is a crypto.Signer that is not an *rsa.PrivateKey, as a hardware
// key would be.
type ccSigner struct{ k *rsa.PrivateKey }

func (s ccSigner) Public() crypto.PublicKey { return s.k.Public() }
func (s ccSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, digest, opts)
}

func TestClientCertificateCredentialWithSigner(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	leaf, _, key := ccCertificates(t)
	ccCertApp(t, v, ccTenant, leaf)
	cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{leaf}, ccSigner{key},
		&ClientCertificateCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
	require.NoError(t, err)
	assert.Equal(t, ccApp, v.claims(t, tok)["appid"])
	r := v.onlyRequest(t, ccTenant)
	ccCheckCertAssertion(t, r.Form.Get("client_assertion"), leaf, nil, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())
}

func TestClientCertificateCredentialConstructorErrors(t *testing.T) {
	t.Parallel()
	leaf, ca, key := ccCertificates(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	opts := &ClientCertificateCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/", getenv: envMap()}}
	for _, tc := range []struct {
		name     string
		tenant   string
		clientID string
		certs    []*x509.Certificate
		key      crypto.PrivateKey
		opts     *ClientCertificateCredentialOptions
		wantErr  []string
	}{
		{name: "nil certificates", certs: nil, key: key, wantErr: []string{"no certificate was given", "ParseCertificates"}},
		{name: "empty certificates", certs: []*x509.Certificate{}, key: key, wantErr: []string{"no certificate was given"}},
		{name: "nil certificate", certs: []*x509.Certificate{leaf, nil}, key: key, wantErr: []string{"certificate 1 is nil"}},
		{name: "nil key", certs: []*x509.Certificate{leaf}, key: nil, wantErr: []string{"no private key was given"}},
		{name: "EC key", certs: []*x509.Certificate{leaf}, key: ecKey, wantErr: []string{"an ECDSA key", "RSA key"}},
		{name: "key that cannot sign", certs: []*x509.Certificate{leaf}, key: &key.PublicKey, wantErr: []string{"cannot sign"}},
		{name: "key matching no certificate", certs: []*x509.Certificate{leaf}, key: ccCAKey(t), wantErr: []string{"none of the 1 certificates matches the private key"}},
		{name: "chain without the leaf", certs: []*x509.Certificate{ca, ca}, key: key, wantErr: []string{"none of the 2 certificates matches the private key"}},
		{name: "empty tenant", tenant: "-", certs: []*x509.Certificate{leaf}, key: key, wantErr: []string{"tenant ID is empty"}},
		{name: "tenant with a slash", tenant: "a/b", certs: []*x509.Certificate{leaf}, key: key, wantErr: []string{"tenant ID", "contains '/'"}},
		{name: "empty client ID", clientID: "-", certs: []*x509.Certificate{leaf}, key: key, wantErr: []string{"client ID is empty"}},
		{name: "http authority", certs: []*x509.Certificate{leaf}, key: key,
			opts:    &ClientCertificateCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "http://127.0.0.1:1/", getenv: envMap()}},
			wantErr: []string{"must use https"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tenant, clientID := tc.tenant, tc.clientID
			switch tenant {
			case "":
				tenant = ccTenant
			case "-":
				tenant = ""
			}
			switch clientID {
			case "":
				clientID = ccApp
			case "-":
				clientID = ""
			}
			o := tc.opts
			if o == nil {
				o = opts
			}
			cred, err := NewClientCertificateCredential(tenant, clientID, tc.certs, tc.key, o)
			require.Error(t, err)
			assert.Nil(t, cred)
			assert.True(t, strings.HasPrefix(err.Error(), credNameCertificate+": "), err.Error())
			for _, s := range tc.wantErr {
				assert.Contains(t, err.Error(), s)
			}
			assert.NotContains(t, err.Error(), "PRIVATE KEY")
		})
	}
}

func TestClientCertificateCredentialValidityWarning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		notBefore time.Duration // from now
		notAfter  time.Duration
		wantLog   string
	}{
		{"expired", -48 * time.Hour, -time.Hour, "the client certificate has expired"},
		{"not valid yet", time.Hour, 48 * time.Hour, "the client certificate is not valid yet"},
		{"valid", -time.Hour, time.Hour, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			_, _, key := ccCertificates(t)
			now := v.clk.Now()
			cert := ccSelfSigned(t, key, now.Add(tc.notBefore), now.Add(tc.notAfter))
			ccCertApp(t, v, ccTenant, cert)
			var logs ccSyncBuffer
			o := &ClientCertificateCredentialOptions{ClientOptions: v.clientOptions()}
			o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{cert}, key, o)
			require.NoError(t, err, "a certificate outside its validity period is not refused by the constructor")
			if tc.wantLog != "" {
				assert.Contains(t, logs.String(), "level=WARN")
				assert.Contains(t, logs.String(), tc.wantLog)
			} else {
				assert.NotContains(t, logs.String(), "level=WARN")
			}

			tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{ccScope}})
			r := v.onlyRequest(t, ccTenant)
			ccCheckCertAssertion(t, r.Form.Get("client_assertion"), cert, nil, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())
			// The emulator decides. It checks the registered certificate's
			// thumbprint and signature but not its validity period, so it
			// issues a token; Entra ID refuses an expired key with
			// AADSTS700027 ("The key used is expired").
			if err != nil {
				ccAuthFailed(t, err, credNameCertificate, http.StatusUnauthorized, "AADSTS700027", r)
				return
			}
			t.Logf("the emulator issued a token for a certificate %s", tc.name)
			assert.Equal(t, ccApp, v.claims(t, tok)["appid"])
			ccNoSecrets(t, logs.String(), tok.Token, r.Form.Get("client_assertion"))
		})
	}
}

func TestClientCertificateCredentialRefusals(t *testing.T) {
	t.Parallel()
	leaf, ca, key := ccCertificates(t)
	for _, tc := range []struct {
		name     string
		register func(t *testing.T, v ccEnv)
		scope    string
		status   int
		code     string
	}{
		{"certificate not registered", func(t *testing.T, v ccEnv) { ccCertApp(t, v, ccTenant, ca) }, ccScope, http.StatusUnauthorized, "AADSTS700027"},
		{"app has only a secret", func(t *testing.T, v ccEnv) {
			require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: ccTenant, ClientID: ccApp, Secrets: []string{"s3cret"}}))
		}, ccScope, http.StatusUnauthorized, "AADSTS700027"},
		{"unknown app", func(t *testing.T, v ccEnv) {
			require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: ccTenant, ClientID: "another-app", Certificates: []*x509.Certificate{leaf}}))
		}, ccScope, http.StatusBadRequest, "AADSTS700016"},
		{"unknown tenant", func(t *testing.T, v ccEnv) { ccCertApp(t, v, ccOtherTenant, leaf) }, ccScope, http.StatusBadRequest, "AADSTS90002"},
		{"scope without /.default", func(t *testing.T, v ccEnv) { ccCertApp(t, v, ccTenant, leaf) }, "https://vault.azure.net/user_impersonation", http.StatusBadRequest, "AADSTS1002012"},
		{"unknown resource", func(t *testing.T, v ccEnv) { ccCertApp(t, v, ccTenant, leaf) }, "api://nobody/.default", http.StatusBadRequest, "AADSTS500011"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			tc.register(t, v)
			cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{leaf, ca}, key,
				&ClientCertificateCredentialOptions{ClientOptions: v.clientOptions()})
			require.NoError(t, err)
			tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{tc.scope}})
			assert.Empty(t, tok.Token)
			r := v.onlyRequest(t, ccTenant)
			assert.Equal(t, tc.status, r.Status)
			ccAuthFailed(t, err, credNameCertificate, tc.status, tc.code, r)
			ccNoSecrets(t, err.Error(), r.Form.Get("client_assertion"))
			var unavailable *CredentialUnavailableError
			assert.False(t, errors.As(err, &unavailable), "a refusal is a failure, not an unavailable source")
		})
	}
}

func TestClientCertificateCredentialGetTokenInput(t *testing.T) {
	t.Parallel()
	leaf, _, key := ccCertificates(t)
	ccRunGetTokenInputChecks(t, credNameCertificate, ccScope, func(t *testing.T, v ccEnv, allowed []string) TokenCredential {
		ccCertApp(t, v, ccTenant, leaf)
		ccCertApp(t, v, ccOtherTenant, leaf)
		o := &ClientCertificateCredentialOptions{ClientOptions: v.clientOptions(), AdditionallyAllowedTenants: allowed}
		cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{leaf}, key, o)
		require.NoError(t, err)
		return cred
	})
}

func TestClientCertificateCredentialAssertionPerTenant(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	leaf, _, key := ccCertificates(t)
	ccCertApp(t, v, ccTenant, leaf)
	ccCertApp(t, v, ccOtherTenant, leaf)
	o := &ClientCertificateCredentialOptions{ClientOptions: v.clientOptions(), AdditionallyAllowedTenants: []string{"*"}}
	cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{leaf}, key, o)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tenant := range []string{ccTenant, ccOtherTenant} {
		tok, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{ccScope}, TenantID: tenant})
		require.NoError(t, err)
		assert.Equal(t, tenant, v.claims(t, tok)["tid"])
	}
	reqs := v.e.Requests()
	require.Len(t, reqs, 2, "tokens of different tenants are cached apart")
	for i, tenant := range []string{ccTenant, ccOtherTenant} {
		assert.Equal(t, "/"+tenant+"/oauth2/v2.0/token", reqs[i].Path)
		ccCheckCertAssertion(t, reqs[i].Form.Get("client_assertion"), leaf, nil, ccApp, v.e.TokenURL(tenant), v.clk.Now())
	}
}

func TestClientCertificateCredentialPrintsWithoutKey(t *testing.T) {
	t.Parallel()
	leaf, _, key := ccCertificates(t)
	cred, err := NewClientCertificateCredential(ccTenant, ccApp, []*x509.Certificate{leaf}, key,
		&ClientCertificateCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/", getenv: envMap()}})
	require.NoError(t, err)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cred", "c", cred)
	sum := sha256.Sum256(leaf.Raw)
	thumb := fmt.Sprintf("%x", sum)
	for _, s := range []string{fmt.Sprint(cred), fmt.Sprintf("%+v", cred), fmt.Sprintf("%#v", cred), logs.String()} {
		assert.Contains(t, s, ccApp)
		assert.Contains(t, s, thumb)
		assert.NotContains(t, s, key.D.String())
		assert.NotContains(t, s, fmt.Sprintf("%x", key.D.Bytes()))
	}
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(logs.Bytes(), &decoded))
	assert.Equal(t, credNameCertificate, decoded["c"].(map[string]any)["credential"])
}

func TestClientCertificateCredentialRefusesTypedNilKey(t *testing.T) {
	t.Parallel()
	certs, _, err := ParseCertificates(readCert(t, "pem-pkcs8.pem"), nil)
	require.NoError(t, err)
	var key *rsa.PrivateKey
	_, err = NewClientCertificateCredential(testTenant, testClient, certs, key, &ClientCertificateCredentialOptions{ClientOptions: ClientOptions{getenv: envMap()}})
	assert.ErrorContains(t, err, "no private key was given")
	_, err = NewOnBehalfOfCredentialWithCertificate(testTenant, testClient, "a.b.c", certs, key, nil)
	assert.ErrorContains(t, err, "no private key was given")
}
