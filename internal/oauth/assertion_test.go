package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/jwtx"
)

// testCert is a self-signed certificate with its RSA key, made once.
type testCert struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newTestCert(t testing.TB, cn string) testCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    epoch.Add(-time.Hour),
		NotAfter:     epoch.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return testCert{key: key, cert: cert}
}

func TestBuildAssertion(t *testing.T) {
	t.Parallel()
	leaf := newTestCert(t, "leaf")
	ca := newTestCert(t, "ca")
	fake := clock.NewFake(epoch)
	const aud = "https://login.microsoftonline.com/t/oauth2/v2.0/token"
	cases := []struct {
		name    string
		p       AssertionParams
		alg     string
		thumb   string
		wantX5C []string
	}{
		{"Entra", AssertionParams{ClientID: "app", Audience: aud, Key: leaf.key, Cert: leaf.cert, Clock: fake}, "PS256", "x5t#S256", nil},
		{"Entra with chain", AssertionParams{ClientID: "app", Audience: aud, Key: leaf.key, Cert: leaf.cert, Chain: []*x509.Certificate{leaf.cert, ca.cert}, SendChain: true, Clock: fake}, "PS256", "x5t#S256",
			[]string{base64.StdEncoding.EncodeToString(leaf.cert.Raw), base64.StdEncoding.EncodeToString(ca.cert.Raw)}},
		{"chain not asked for", AssertionParams{ClientID: "app", Audience: aud, Key: leaf.key, Cert: leaf.cert, Chain: []*x509.Certificate{ca.cert}, Clock: fake}, "PS256", "x5t#S256", nil},
		{"AD FS", AssertionParams{ClientID: "app", Audience: "https://adfs.contoso.com/adfs/oauth2/token", Key: leaf.key, Cert: leaf.cert, ADFS: true, Clock: fake}, "RS256", "x5t", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok, err := BuildAssertion(tc.p)
			require.NoError(t, err)
			parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &leaf.key.PublicKey, nil },
				jwt.WithValidMethods([]string{tc.alg}), jwt.WithTimeFunc(fake.Now), jwt.WithAudience(tc.p.Audience), jwt.WithIssuer("app"), jwt.WithSubject("app"))
			require.NoError(t, err)
			h := parsed.Header
			assert.Equal(t, tc.alg, h["alg"])
			assert.Equal(t, "JWT", h["typ"])
			var want []byte
			if tc.thumb == "x5t" {
				sum := sha1.Sum(leaf.cert.Raw)
				want = sum[:]
				assert.NotContains(t, h, "x5t#S256")
			} else {
				sum := sha256.Sum256(leaf.cert.Raw)
				want = sum[:]
				assert.NotContains(t, h, "x5t")
			}
			assert.Equal(t, base64.RawURLEncoding.EncodeToString(want), h[tc.thumb])
			if tc.wantX5C == nil {
				assert.NotContains(t, h, "x5c")
			} else {
				got, _ := h["x5c"].([]any)
				require.Len(t, got, len(tc.wantX5C))
				for i := range got {
					assert.Equal(t, tc.wantX5C[i], got[i])
				}
			}
			claims := parsed.Claims.(jwt.MapClaims)
			assert.Equal(t, float64(epoch.Unix()), claims["nbf"])
			assert.Equal(t, float64(epoch.Add(10*time.Minute).Unix()), claims["exp"])
			assert.NotContains(t, claims, "iat")
			jti, _ := claims["jti"].(string)
			_, err = uuid.Parse(jti)
			assert.NoError(t, err, "jti is a UUID")
			assert.Len(t, claims, 6)
		})
	}

	t.Run("fresh jti each time", func(t *testing.T) {
		t.Parallel()
		p := AssertionParams{ClientID: "app", Audience: aud, Key: leaf.key, Cert: leaf.cert}
		a, err := BuildAssertion(p)
		require.NoError(t, err)
		b, err := BuildAssertion(p)
		require.NoError(t, err)
		var ca, cb map[string]any
		require.NoError(t, jwtx.DecodeClaims(a, &ca))
		require.NoError(t, jwtx.DecodeClaims(b, &cb))
		assert.NotEqual(t, ca["jti"], cb["jti"])
	})
}

func TestBuildAssertionErrors(t *testing.T) {
	t.Parallel()
	leaf := newTestCert(t, "leaf")
	other := newTestCert(t, "other")
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ok := AssertionParams{ClientID: "app", Audience: "https://h/t/oauth2/v2.0/token", Key: leaf.key, Cert: leaf.cert}
	with := func(f func(p *AssertionParams)) AssertionParams { p := ok; f(&p); return p }
	cases := []struct {
		name string
		p    AssertionParams
		want string
	}{
		{"no client ID", with(func(p *AssertionParams) { p.ClientID = "" }), "client ID is required"},
		{"no audience", with(func(p *AssertionParams) { p.Audience = "" }), "audience"},
		{"no cert", with(func(p *AssertionParams) { p.Cert = nil }), "certificate is required"},
		{"no key", with(func(p *AssertionParams) { p.Key = nil }), "private key is required"},
		{"key of another cert", with(func(p *AssertionParams) { p.Key = other.key }), "does not belong to the certificate"},
		{"EC key", with(func(p *AssertionParams) { p.Key = crypto.Signer(ec) }), "does not belong to the certificate"},
	}
	for _, tc := range cases {
		_, err := BuildAssertion(tc.p)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
}
