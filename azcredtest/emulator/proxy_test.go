package emulator

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxyClient is an HTTP client that goes through p and trusts only the
// emulator's CA, as a program with HTTPS_PROXY and SSL_CERT_FILE set does.
func proxyClient(t *testing.T, e *Emulator, p *Proxy) *http.Client {
	t.Helper()
	pu, err := url.Parse(p.URL())
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(e.CertPEM()))
	tr := &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	return m
}

func TestProxyAnswersAuthorityHosts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	p, err := f.e.StartProxy()
	require.NoError(t, err)
	c := proxyClient(t, f.e, p)

	for _, host := range []string{"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us"} {
		resp, err := c.Get("https://" + host + "/" + tenantA + "/v2.0/.well-known/openid-configuration")
		require.NoError(t, err, host)
		require.Equal(t, 200, resp.StatusCode, host)
		m := decode(t, resp)
		assert.Equal(t, "https://"+host+"/"+tenantA+"/v2.0", m["issuer"], host)
		assert.Equal(t, "https://"+host+"/"+tenantA+"/oauth2/v2.0/token", m["token_endpoint"], host)
	}

	// Instance discovery, as MSAL asks it for a host it does not know.
	q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {"https://login.microsoftonline.us/" + tenantA + "/oauth2/v2.0/authorize"}}
	resp, err := c.Get("https://login.microsoftonline.com/common/discovery/instance?" + q.Encode())
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	m := decode(t, resp)
	assert.Equal(t, "https://login.microsoftonline.us/"+tenantA+"/v2.0/.well-known/openid-configuration", m["tenant_discovery_endpoint"])
	md, _ := m["metadata"].([]any)
	assert.NotEmpty(t, md)

	// The emulator's own address is a known instance too.
	q.Set("authorization_endpoint", f.e.URL()+"/"+tenantA+"/oauth2/v2.0/authorize")
	resp, err = c.Get("https://login.microsoftonline.com/common/discovery/instance?" + q.Encode())
	require.NoError(t, err)
	assert.Equal(t, f.e.URL()+"/"+tenantA+"/v2.0/.well-known/openid-configuration", decode(t, resp)["tenant_discovery_endpoint"])

	q.Set("authorization_endpoint", "https://login.example.org/"+tenantA+"/oauth2/v2.0/authorize")
	resp, err = c.Get("https://login.microsoftonline.com/common/discovery/instance?" + q.Encode())
	require.NoError(t, err)
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, "invalid_instance", decode(t, resp)["error"])

	// A token with a secret, and one with a certificate assertion addressed
	// to the public host's token endpoint.
	pub := "https://login.microsoftonline.com"
	resp, err = c.PostForm(pub+tokenPath(tenantA), secretForm(secretApp, theSecret, armScope))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	tok, err := parseJWT(decode(t, resp)["access_token"].(string))
	require.NoError(t, err)
	assert.NoError(t, tok.verify(&f.e.signKey.PublicKey))
	assert.Equal(t, pub+"/"+tenantA+"/v2.0", tok.claims["iss"])

	a := makeAssertion(t, f, assertionSpec{aud: pub + tokenPath(tenantA)})
	resp, err = c.PostForm(pub+tokenPath(tenantA), assertionForm(certApp, a, armScope))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, "%v", decode(t, resp))

	// An assertion for the emulator's own address is refused at the public host.
	a = makeAssertion(t, f, assertionSpec{})
	resp, err = c.PostForm(pub+tokenPath(tenantA), assertionForm(certApp, a, armScope))
	require.NoError(t, err)
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, "invalid_client", decode(t, resp)["error"])
}

func TestProxyRefusesOtherDestinations(t *testing.T) {
	t.Parallel()
	e := NewT(t, nil)
	p, err := e.StartProxy()
	require.NoError(t, err)
	c := proxyClient(t, e, p)

	_, err = c.Get("https://vault.azure.net/secrets")
	require.Error(t, err, "the proxy must not tunnel to other hosts")

	for _, target := range []string{"storage.azure.com:443", "login.microsoftonline.com:8443", "127.0.0.1:22"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
		require.NoError(t, err)
		_, err = io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		_ = conn.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, target)
		assert.Contains(t, string(b), "never connects anywhere", target)
		assert.Contains(t, string(b), "NO_PROXY", target)
	}

	// Plain-http proxying is refused too.
	pu, _ := url.Parse(p.URL())
	plain := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := plain.Get("http://example.com/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Contains(t, string(b), "never forwards")
}

func TestIMDSFidelity(t *testing.T) {
	t.Parallel()
	e := NewT(t, nil)
	e.SetSystemAssignedIdentity(ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	dir := t.TempDir()
	arc, err := e.StartArc(dir)
	require.NoError(t, err)
	meta := map[string]string{"Metadata": "true"}
	for _, path := range []string{"/metadata/identity/oauth2/token/", "/Metadata/identity/oauth2/token", "/METADATA/identity/oauth2/token/"} {
		for _, v := range []string{"2018-02-01", "2019-08-01", "2021-02-01"} {
			status, _, body := miGet(t, http.DefaultClient, http.MethodGet, imds.URL()+path+"?api-version="+v+"&resource=https%3A%2F%2Fx", meta, "")
			assert.Equal(t, 200, status, "%s %s: %v", path, v, body)
		}
	}
	status, _, body := miGet(t, http.DefaultClient, http.MethodGet, imds.Endpoint()+"?api-version=2018-02-01&resource=https%3A%2F%2Fx&bogus=1", meta, "")
	assert.Equal(t, 400, status)
	assert.Contains(t, body["error_description"], "ignores parameters it does not know")

	// Arc: both api-versions get the challenge, then the token.
	for _, v := range []string{"2019-11-01", "2020-06-01"} {
		u := arc.Endpoint() + "?api-version=" + v + "&resource=https%3A%2F%2Fx"
		status, h, _ := miGet(t, http.DefaultClient, http.MethodGet, u, meta, "")
		require.Equal(t, 401, status, v)
		file := strings.TrimPrefix(h.Get("WWW-Authenticate"), "Basic realm=")
		key := readFile(t, file)
		status, _, body := miGet(t, http.DefaultClient, http.MethodGet, u, map[string]string{"Metadata": "true", "Authorization": "Basic " + key}, "")
		assert.Equal(t, 200, status, "%s: %v", v, body)
	}
}

func TestRandomFaults(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	require.Error(t, f.e.SetRandomFaults(RandomFault{Rate: 1.5}))
	require.NoError(t, f.e.SetRandomFaults(RandomFault{Rate: 1, Fault: Fault{Path: "/token", Status: 429, Body: []byte(`{"error":"throttled"}`), Header: http.Header{"Retry-After": {"1"}}}}))
	r := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
	assert.Equal(t, 429, r.status)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	require.NoError(t, f.e.SetRandomFaults(RandomFault{Rate: 0, Fault: Fault{Status: 429}}))
	r = post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
	assert.Equal(t, 200, r.status)

	f.e.SetSystemAssignedIdentity(ManagedIdentity{})
	imds, err := f.e.StartIMDS()
	require.NoError(t, err)
	require.NoError(t, imds.SetRandomFaults(RandomMIFault{Rate: 1, Fault: MIFault{Status: 503}}))
	status, _, _ := miGet(t, http.DefaultClient, http.MethodGet, imds.Endpoint()+"?api-version=2018-02-01&resource=https%3A%2F%2Fx", map[string]string{"Metadata": "true"}, "")
	assert.Equal(t, 503, status)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestProxyAnswersARMSubscriptionList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	p, err := f.e.StartProxy()
	require.NoError(t, err)
	c := proxyClient(t, f.e, p)
	r := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
	require.Equal(t, 200, r.status)

	get := func(path, token string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodGet, "https://management.azure.com"+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		return resp.StatusCode, decode(t, resp)
	}
	status, body := get("/subscriptions?api-version=2022-12-01", r.str("access_token"))
	assert.Equal(t, 200, status)
	assert.Equal(t, []any{}, body["value"])
	status, _ = get("/subscriptions?api-version=2022-12-01", "")
	assert.Equal(t, 401, status)
	status, body = get("/resourcegroups?api-version=2022-12-01", r.str("access_token"))
	assert.Equal(t, 404, status)
	assert.Equal(t, "NotEmulated", body["error"].(map[string]any)["code"])
}

// A refused plain-http request's query (a SAS signature, an authorization
// code) is not repeated in the refusal, which clients may log.
func TestProxyRefusalQuotesNoQuery(t *testing.T) {
	t.Parallel()
	e := NewT(t, nil)
	p, err := e.StartProxy()
	require.NoError(t, err)
	pu, err := url.Parse(p.URL())
	require.NoError(t, err)
	tr := &http.Transport{Proxy: http.ProxyURL(pu)}
	t.Cleanup(tr.CloseIdleConnections)
	plain := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	const secret = "sig0QmVhcmVyU2VjcmV0VmFsdWU"
	resp, err := plain.Get("http://blob.example.com/c/b?sv=2024&sig=" + secret + "&code=" + secret)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Contains(t, string(b), "http://blob.example.com/c/b", "the refusal names the destination")
	assert.NotContains(t, string(b), secret)
}
