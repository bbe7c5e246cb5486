package emulator

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
)

// The managed-identity tests talk to the hosts with plain net/http: no code
// of the client side.

func miGet(t *testing.T, c *http.Client, method, u string, h map[string]string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

func TestMIHostsAreStrict(t *testing.T) {
	t.Parallel()
	e := NewT(t, nil)
	e.SetSystemAssignedIdentity(ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	app, err := e.StartAppService()
	require.NoError(t, err)
	sf, err := e.StartServiceFabric()
	require.NoError(t, err)
	c := http.DefaultClient
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "?" + v.Encode()
	}
	meta := map[string]string{"Metadata": "true"}
	for _, tc := range []struct {
		name   string
		url    string
		header map[string]string
		status int
		field  string // in the host's error shape
		want   string
	}{
		{"IMDS without Metadata", imds.Endpoint() + q("api-version", "2018-02-01", "resource", "https://x"), nil, 400, "error_description", "metadata header"},
		{"IMDS wrong api-version", imds.Endpoint() + q("api-version", "2017-09-01", "resource", "https://x"), meta, 400, "error_description", "api-version"},
		{"IMDS no resource", imds.Endpoint() + q("api-version", "2018-02-01"), meta, 400, "error_description", "audience"},
		{"IMDS .default resource", imds.Endpoint() + q("api-version", "2018-02-01", "resource", "https://x/.default"), meta, 400, "error", "invalid_resource"},
		{"IMDS App Service's mi_res_id", imds.Endpoint() + q("api-version", "2018-02-01", "resource", "https://x", "mi_res_id", "/r"), meta, 400, "error_description", "mi_res_id"},
		{"IMDS unknown identity", imds.Endpoint() + q("api-version", "2018-02-01", "resource", "https://x", "client_id", "nobody"), meta, 400, "error_description", "Identity not found"},
		{"IMDS wrong path", imds.URL() + "/metadata/other", meta, 404, "error", "not_found"},
		{"App Service no header", app.Endpoint() + q("api-version", "2019-08-01", "resource", "https://x"), nil, 401, "message", "X-IDENTITY-HEADER"},
		{"App Service wrong header", app.Endpoint() + q("api-version", "2019-08-01", "resource", "https://x"), map[string]string{"X-IDENTITY-HEADER": "nope"}, 401, "message", "X-IDENTITY-HEADER"},
		{"App Service IMDS's msi_res_id", app.Endpoint() + q("api-version", "2019-08-01", "resource", "https://x", "msi_res_id", "/r"), map[string]string{"X-IDENTITY-HEADER": app.Secret()}, 400, "message", "msi_res_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := miGet(t, c, "GET", tc.url, tc.header, "")
			assert.Equal(t, tc.status, status)
			assert.Contains(t, body[tc.field], tc.want)
		})
	}

	// Service Fabric: https with the announced thumbprint, and its own error shape.
	var seen string
	sfc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		sum := sha1.Sum(cs.PeerCertificates[0].Raw)
		seen = strings.ToUpper(hex.EncodeToString(sum[:]))
		return nil
	}}}}
	defer sfc.CloseIdleConnections()
	status, _, body := miGet(t, sfc, "GET", sf.Endpoint()+q("api-version", "2019-07-01-preview", "resource", "https://x"), nil, "")
	assert.Equal(t, 401, status)
	assert.Equal(t, "SecretHeaderNotFound", body["error"].(map[string]any)["code"])
	assert.Equal(t, sf.Thumbprint(), seen)
	status, _, body = miGet(t, sfc, "GET", sf.Endpoint()+q("api-version", "2019-07-01-preview", "resource", "https://x"), map[string]string{"Secret": sf.Secret()}, "")
	assert.Equal(t, 200, status)
	assert.IsType(t, float64(0), body["expires_on"], "Service Fabric sends expires_on as a number")
}

func TestMIHostArcChallenge(t *testing.T) {
	t.Parallel()
	e := NewT(t, nil)
	e.SetSystemAssignedIdentity(ManagedIdentity{})
	arc, err := e.StartArc(t.TempDir())
	require.NoError(t, err)
	u := arc.Endpoint() + "?api-version=2020-06-01&resource=https%3A%2F%2Fx"
	status, h, _ := miGet(t, http.DefaultClient, "GET", u, map[string]string{"Metadata": "true"}, "")
	require.Equal(t, 401, status)
	path, ok := strings.CutPrefix(h.Get("WWW-Authenticate"), "Basic realm=")
	require.True(t, ok)
	assert.True(t, strings.HasPrefix(path, arc.KeyDir()))
	key, err := os.ReadFile(path)
	require.NoError(t, err)
	status, _, body := miGet(t, http.DefaultClient, "GET", u, map[string]string{"Metadata": "true", "Authorization": "Basic " + string(key)}, "")
	require.Equal(t, 200, status)
	assert.NotEmpty(t, body["access_token"])
	status, _, _ = miGet(t, http.DefaultClient, "GET", u, map[string]string{"Metadata": "true", "Authorization": "Basic " + string(key)}, "")
	assert.Equal(t, 401, status, "a key is good once")
}

func TestMIFaultForEmulatorTime(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	e := NewT(t, &Options{Clock: clk})
	e.SetSystemAssignedIdentity(ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	imds.InjectFault(MIFault{For: 70 * time.Second, Status: 410, SkipProbes: true})
	u := imds.Endpoint() + "?api-version=2018-02-01&resource=https%3A%2F%2Fx"
	get := func(h map[string]string) int {
		s, _, _ := miGet(t, http.DefaultClient, "GET", u, h, "")
		return s
	}
	meta := map[string]string{"Metadata": "true"}
	assert.Equal(t, 410, get(meta))
	assert.Equal(t, 400, get(nil), "probes are served normally")
	clk.Advance(69 * time.Second)
	assert.Equal(t, 410, get(meta))
	clk.Advance(time.Second)
	assert.Equal(t, 200, get(meta))
}

func TestMIHostCloseEndsHangs(t *testing.T) {
	t.Parallel()
	e, err := New(nil)
	require.NoError(t, err)
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	imds.InjectFault(MIFault{Hang: true})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(imds.Endpoint())
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return len(imds.Requests()) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, e.Close())
	assert.Error(t, <-done, "the held request ends without an answer")
}
