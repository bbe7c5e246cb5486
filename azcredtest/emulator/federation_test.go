package emulator

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKubernetesIssuerTokensAreAccepted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := NewKubernetesIssuerT(t, &KubernetesIssuerOptions{Clock: f.clk})
	require.NoError(t, f.e.RegisterApp(App{TenantID: tenantA, ClientID: "wi-app", Federated: []FederatedCredential{k.FederatedCredential("ns", "sa")}}))
	tok, err := k.Mint(ServiceAccountToken{Namespace: "ns", Name: "sa"})
	require.NoError(t, err)
	parsed, err := parseJWT(tok)
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:ns:sa", stringField(parsed.claims, "sub"))
	assert.Equal(t, k.Issuer(), stringField(parsed.claims, "iss"))
	assert.Empty(t, stringField(parsed.header, "x5t"), "a service-account token names no certificate")
	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(k.JWKS(), &jwks))
	require.Len(t, jwks.Keys, 1)
	assert.Equal(t, stringField(parsed.header, "kid"), jwks.Keys[0]["kid"])

	for range 2 { // the same token twice: no jti replay check on federated assertions
		r := post(t, f.e, tokenPath(tenantA), assertionForm("wi-app", tok, armScope), nil)
		assert.Equal(t, http.StatusOK, r.status, r.body)
	}
}

func TestFederatedNoRecordIs70021(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	k := NewKubernetesIssuerT(t, &KubernetesIssuerOptions{Clock: f.clk})
	other := k.FederatedCredential("ns", "sa")
	other.Issuer = "https://other.example/"
	require.NoError(t, f.e.RegisterApp(App{TenantID: tenantA, ClientID: "wi-app", Federated: []FederatedCredential{k.FederatedCredential("ns", "other"), other}}))
	tok, err := k.Mint(ServiceAccountToken{Namespace: "ns", Name: "sa"})
	require.NoError(t, err)
	r := post(t, f.e, tokenPath(tenantA), assertionForm("wi-app", tok, armScope), nil)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, []int{70021}, r.codes())
	assert.Contains(t, r.str("error_description"), "Assertion Subject: 'system:serviceaccount:ns:sa'")
}

func TestProjectedTokenFileRotatesLikeTheKubelet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := NewProjectedTokenFile(dir)
	require.NoError(t, p.Write("first"))
	got, err := os.ReadFile(p.Path())
	require.NoError(t, err)
	assert.Equal(t, "first", string(got))
	target, err := os.Readlink(p.Path())
	require.NoError(t, err)
	assert.Equal(t, filepath.Join("..data", "token"), target)
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	require.NoError(t, err)

	require.NoError(t, p.Write("second"))
	got, err = os.ReadFile(p.Path())
	require.NoError(t, err)
	assert.Equal(t, "second", string(got))
	_, err = os.Stat(filepath.Join(dir, old))
	assert.True(t, os.IsNotExist(err), "the previous version is removed")
}

func TestDevOpsOIDC(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		d := NewDevOpsOIDC(t, DevOpsOIDCOptions{AccessToken: "access", ServiceConnectionID: "conn", TLS: useTLS})
		assert.Equal(t, useTLS, strings.HasPrefix(d.URL(), "https://"))
		send := func(token, conn, version, contentType string) *http.Response {
			req, err := http.NewRequest(http.MethodPost, d.URL()+"?api-version="+version+"&serviceConnectionId="+conn, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", contentType)
			resp, err := d.Client().Do(req)
			require.NoError(t, err)
			t.Cleanup(func() { _ = resp.Body.Close() })
			return resp
		}
		for _, tc := range []struct {
			token, conn, version, ct string
			status                   int
		}{
			{"access", "conn", "7.1", "application/json", http.StatusOK},
			{"wrong", "conn", "7.1", "application/json", http.StatusUnauthorized},
			{"access", "other", "7.1", "application/json", http.StatusNotFound},
			{"access", "conn", "6.0", "application/json", http.StatusBadRequest},
			{"access", "conn", "7.1", "text/plain", http.StatusUnsupportedMediaType},
		} {
			resp := send(tc.token, tc.conn, tc.version, tc.ct)
			assert.Equal(t, tc.status, resp.StatusCode, tc)
			assert.NotEmpty(t, resp.Header.Get("x-vss-e2eid"))
			assert.NotEmpty(t, resp.Header.Get("x-msedge-ref"))
		}
		require.Len(t, d.Tokens(), 1)
		tok, err := parseJWT(d.Tokens()[0])
		require.NoError(t, err)
		assert.Equal(t, d.Subject(), stringField(tok.claims, "sub"))
		assert.Equal(t, d.Issuer(), stringField(tok.claims, "iss"))
		assert.Len(t, d.Requests(), 5)
	}
}

func TestAKSProxy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	p := NewAKSProxy(t, f.e, nil)
	client := func(sni string) *http.Client {
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(p.CAPEM()))
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: sni}}, Timeout: 10 * time.Second}
	}
	good := client(p.SNIName())
	defer good.CloseIdleConnections()
	resp, err := good.Get(p.URL() + "/" + tenantA + "/v2.0/.well-known/openid-configuration?x=1")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	reqs := p.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "x=1", reqs[0].RawQuery)
	assert.Equal(t, p.SNIName(), reqs[0].ServerName)

	bad := client("another.example")
	defer bad.CloseIdleConnections()
	_, err = bad.Get(p.URL() + "/x")
	require.Error(t, err)
	assert.Equal(t, []string{"another.example"}, p.RefusedServerNames())

	resp, err = good.Get(p.URL()[:strings.LastIndex(p.URL(), "/")] + "/elsewhere")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "outside the path prefix")
}
