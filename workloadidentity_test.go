package azcred

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
)

const (
	wiNamespace = "payments"
	wiAccount   = "api"
	vaultScope  = "https://vault.azure.net/.default"
)

// wiEnv is an emulator and a Kubernetes issuer on one fake clock, an app
// that trusts the service account wiNamespace/wiAccount, and a projected
// token file holding a fresh token.
type wiEnv struct {
	e    *emulator.Emulator
	clk  *clock.Fake
	k8s  *emulator.KubernetesIssuer
	file *emulator.ProjectedTokenFile
}

func newWIEnv(t *testing.T) wiEnv {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	v := wiEnv{
		e:    emulator.NewT(t, &emulator.Options{Clock: clk, SigningKey: ccSigningKey()}),
		clk:  clk,
		k8s:  emulator.NewKubernetesIssuerT(t, &emulator.KubernetesIssuerOptions{Clock: clk}),
		file: emulator.NewProjectedTokenFile(t.TempDir()),
	}
	v.register(t, v.k8s.FederatedCredential(wiNamespace, wiAccount))
	v.write(t, v.mint(t, emulator.ServiceAccountToken{}))
	return v
}

func (v wiEnv) register(t *testing.T, fics ...emulator.FederatedCredential) {
	t.Helper()
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Federated: fics}))
}

// mint mints a token of the workload's service account; zero fields of sa
// take the workload's values.
func (v wiEnv) mint(t *testing.T, sa emulator.ServiceAccountToken) string {
	t.Helper()
	if sa.Namespace == "" {
		sa.Namespace, sa.Name = wiNamespace, wiAccount
	}
	tok, err := v.k8s.Mint(sa)
	require.NoError(t, err)
	return tok
}

func (v wiEnv) write(t *testing.T, token string) {
	t.Helper()
	require.NoError(t, v.file.Write(token))
}

// options configures a credential through the fake environment, as the AKS
// webhook does, plus the variables in extra.
func (v wiEnv) options(extra ...string) *WorkloadIdentityCredentialOptions {
	kv := append([]string{"AZURE_CLIENT_ID", testClient, "AZURE_TENANT_ID", testTenant, "AZURE_FEDERATED_TOKEN_FILE", v.file.Path()}, extra...)
	return &WorkloadIdentityCredentialOptions{ClientOptions: ClientOptions{
		AuthorityHost: v.e.URL(), Transport: v.e.Client(), getenv: envMap(kv...), clock: v.clk,
	}}
}

// assertionsSent returns the client assertions the emulator received.
func (v wiEnv) assertionsSent() []string {
	var out []string
	for _, r := range v.e.Requests() {
		if a := r.Form.Get("client_assertion"); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// countingFiles wraps the OS file reader and counts reads.
type countingFiles struct {
	mu    sync.Mutex
	reads int
}

func (c *countingFiles) stat(path string) (fs.FileInfo, error) { return osFiles{}.stat(path) }

func (c *countingFiles) read(path string, limit int64) ([]byte, fs.FileInfo, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return osFiles{}.read(path, limit)
}

func (c *countingFiles) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func TestWorkloadIdentitySameTokenForSeveralScopes(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	files := &countingFiles{}
	o := v.options()
	o.files = files
	c, err := NewWorkloadIdentityCredential(o)
	require.NoError(t, err)
	want, err := os.ReadFile(v.file.Path())
	require.NoError(t, err)

	ctx := context.Background()
	for _, scope := range []string{armScope, vaultScope, "https://storage.azure.com/.default"} {
		tok, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{scope}})
		require.NoError(t, err, scope)
		claims, err := v.e.VerifyAccessToken(tok.Token)
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSuffix(scope, "/.default"), claims["aud"])
		assert.Equal(t, "2", claims["azpacr"])
	}
	reqs := v.e.Requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", r.Path)
		assert.Equal(t, string(want), r.Form.Get("client_assertion"), "the projected token, resent: no jti replay check")
		assert.Equal(t, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", r.Form.Get("client_assertion_type"))
		assert.Equal(t, testClient, r.Form.Get("client_id"))
		assert.Equal(t, "client_credentials", r.Form.Get("grant_type"))
		assert.Empty(t, r.Form.Get("client_secret"))
	}
	assert.Equal(t, 1, files.count(), "an unchanged, young file is read once")
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	assert.Len(t, v.e.Requests(), 3, "cached")
}

func TestWorkloadIdentityRotation(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	files := &countingFiles{}
	o := v.options()
	o.files = files
	c, err := NewWorkloadIdentityCredential(o)
	require.NoError(t, err)
	ctx := context.Background()
	a, err := os.ReadFile(v.file.Path())
	require.NoError(t, err)

	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	require.Equal(t, []string{string(a)}, v.assertionsSent())

	// The kubelet rotates the file (a "..data" swap); B lives two hours.
	b := v.mint(t, emulator.ServiceAccountToken{Lifetime: 2 * time.Hour})
	require.NotEqual(t, string(a), b)
	v.write(t, b)

	// Force the cached token stale: past its expiry, so the next call fetches.
	v.clk.Advance(61 * time.Minute)
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	sent := v.assertionsSent()
	require.Len(t, sent, 2)
	assert.Equal(t, b, sent[1], "the rotated token is used with no restart")

	t.Run("a changed file is read again at once", func(t *testing.T) {
		c2 := v.mint(t, emulator.ServiceAccountToken{Lifetime: 2 * time.Hour, Audiences: []string{emulator.DefaultFederatedAudience, "extra"}})
		v.write(t, c2)
		reads := files.count()
		_, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{vaultScope}})
		require.NoError(t, err)
		sent := v.assertionsSent()
		assert.Equal(t, c2, sent[len(sent)-1], "no clock advance: the modification (a new ..data target) alone causes the read")
		assert.Equal(t, reads+1, files.count())
	})
}

// fakeFiles is a token file whose content the test sets; its FileInfo only
// changes when the test says so.
type fakeFiles struct {
	mu      sync.Mutex
	content []byte
	mod     time.Time
	reads   int
}

type fakeInfo struct {
	size int64
	mod  time.Time
}

func (f fakeInfo) Name() string       { return "token" }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return 0o644 }
func (f fakeInfo) ModTime() time.Time { return f.mod }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return nil }

func (f *fakeFiles) stat(string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeInfo{int64(len(f.content)), f.mod}, nil
}

func (f *fakeFiles) read(_ string, _ int64) ([]byte, fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return append([]byte(nil), f.content...), fakeInfo{int64(len(f.content)), f.mod}, nil
}

// set changes the content but, to isolate the other rules, not the
// FileInfo the stat rule compares.
func (f *fakeFiles) set(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.content = []byte(s)
}

func (f *fakeFiles) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func TestWorkloadIdentityReReadRules(t *testing.T) {
	t.Parallel()
	// Tokens of equal size, so that only the rule under test can cause a read.
	for _, tc := range []struct {
		name     string
		lifetime time.Duration // of the first token
		advance  time.Duration
		reread   bool
	}{
		{"young file, far from exp: held", time.Hour, 4 * time.Minute, false},
		{"held for more than five minutes: read", time.Hour, 5*time.Minute + time.Second, true},
		{"near its own exp: read", 3 * time.Minute, 2*time.Minute + 30*time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newWIEnv(t)
			first := v.mint(t, emulator.ServiceAccountToken{Lifetime: tc.lifetime})
			files := &fakeFiles{content: []byte(first), mod: v.clk.Now()}
			o := v.options()
			o.files = files
			c, err := NewWorkloadIdentityCredential(o)
			require.NoError(t, err)
			ctx := context.Background()
			_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}})
			require.NoError(t, err)

			v.clk.Advance(tc.advance)
			second := v.mint(t, emulator.ServiceAccountToken{Lifetime: tc.lifetime})
			require.Len(t, second, len(first))
			files.set(second)
			_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{vaultScope}})
			require.NoError(t, err)
			sent := v.assertionsSent()
			require.Len(t, sent, 2)
			if tc.reread {
				assert.Equal(t, 2, files.count())
				assert.Equal(t, second, sent[1])
			} else {
				assert.Equal(t, 1, files.count())
				assert.Equal(t, first, sent[1])
			}
		})
	}
}

func TestWorkloadIdentityNeverSendsAnExpiredToken(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	v.write(t, v.mint(t, emulator.ServiceAccountToken{IssuedAt: v.clk.Now().Add(-2 * time.Hour)}))
	c, err := NewWorkloadIdentityCredential(v.options())
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	require.Error(t, err)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.True(t, strings.HasPrefix(err.Error(), "WorkloadIdentityCredential: "), err.Error())
	assert.Contains(t, err.Error(), "expired at")
	assert.Contains(t, err.Error(), v.file.Path())
	assert.Contains(t, err.Error(), "rotates the projected token")
	assert.Empty(t, v.e.Requests(), "nothing was sent")

	// A token held in memory that expires is not sent either: the file is
	// read again, and still holds the expired token.
	v.write(t, v.mint(t, emulator.ServiceAccountToken{Lifetime: 10 * time.Minute}))
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	require.Len(t, v.e.Requests(), 1)
	v.clk.Advance(11 * time.Minute)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{vaultScope}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expired at")
	assert.Len(t, v.e.Requests(), 1, "nothing more was sent")
}

func TestWorkloadIdentityBadTokenFiles(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	noExp := "eyJhbGciOiJSUzI1NiJ9." + "eyJpc3MiOiJ4In0" + ".c2ln" // {"iss":"x"}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "absent"), "cannot read the service-account token file"},
		{"directory", dir, "is a directory"},
		{"empty", write("empty", nil), "is empty"},
		{"only a line break", write("newline", []byte("\n")), "is empty"},
		{"not a JWT", write("text", []byte("hello world")), "does not hold a JWT"},
		{"JWT without exp", write("noexp", []byte(noExp)), "no exp claim"},
		{"10 MB", write("big", bytes.Repeat([]byte("a"), 10<<20)), "larger than 65536 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := v.options()
			o.TokenFilePath = tc.path
			c, err := NewWorkloadIdentityCredential(o)
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.Error(t, err)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af)
			assert.True(t, strings.HasPrefix(err.Error(), "WorkloadIdentityCredential: "), err.Error())
			assert.Contains(t, err.Error(), tc.path)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Empty(t, v.e.Requests())

	t.Run("a token file with a trailing line break works", func(t *testing.T) {
		t.Parallel()
		o := v.options()
		o.TokenFilePath = write("withnewline", []byte(v.mint(t, emulator.ServiceAccountToken{})+"\n"))
		c, err := NewWorkloadIdentityCredential(o)
		require.NoError(t, err)
		_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
		require.NoError(t, err)
	})
}

func TestWorkloadIdentityConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     []string
		opts    WorkloadIdentityCredentialOptions
		missing []string
	}{
		{"nothing", nil, WorkloadIdentityCredentialOptions{}, []string{"AZURE_CLIENT_ID (option ClientID)", "AZURE_TENANT_ID (option TenantID)", "AZURE_FEDERATED_TOKEN_FILE (option TokenFilePath)"}},
		{"no token file", []string{"AZURE_CLIENT_ID", testClient, "AZURE_TENANT_ID", testTenant}, WorkloadIdentityCredentialOptions{}, []string{"AZURE_FEDERATED_TOKEN_FILE (option TokenFilePath)"}},
		{"whitespace client ID", []string{"AZURE_CLIENT_ID", " \n", "AZURE_TENANT_ID", testTenant, "AZURE_FEDERATED_TOKEN_FILE", "/f"}, WorkloadIdentityCredentialOptions{}, []string{"AZURE_CLIENT_ID (option ClientID)"}},
		{"options fill the gaps", []string{"AZURE_FEDERATED_TOKEN_FILE", "/f"}, WorkloadIdentityCredentialOptions{ClientID: testClient, TenantID: testTenant}, nil},
		{"trimmed environment values", []string{"AZURE_CLIENT_ID", testClient + "\n", "AZURE_TENANT_ID", " " + testTenant, "AZURE_FEDERATED_TOKEN_FILE", "/f\n"}, WorkloadIdentityCredentialOptions{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.opts
			o.getenv = envMap(tc.env...)
			c, err := NewWorkloadIdentityCredential(&o)
			if tc.missing == nil {
				require.NoError(t, err)
				assert.Equal(t, "WorkloadIdentityCredential{tenantID: "+testTenant+", clientID: "+testClient+", tokenFilePath: /f, azureProxy: false}", c.String())
				return
			}
			require.Error(t, err)
			// A token file selects workload identity: then a gap is a
			// broken configuration, not "unavailable".
			selected := slices.Contains(tc.env, "AZURE_FEDERATED_TOKEN_FILE") || o.TokenFilePath != ""
			assert.Equal(t, !selected, isUnavailable(err), "%v", err)
			if selected {
				assert.Contains(t, err.Error(), "AZURE_FEDERATED_TOKEN_FILE (option TokenFilePath) selects workload identity")
			}
			for _, m := range tc.missing {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestWorkloadIdentityFederationRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fics   func(v wiEnv) []emulator.FederatedCredential
		token  func(t *testing.T, v wiEnv) string
		code   string
		status int
		names  []string // what the error must name
	}{
		{"issuer", func(v wiEnv) []emulator.FederatedCredential {
			f := v.k8s.FederatedCredential(wiNamespace, wiAccount)
			f.Issuer = strings.TrimSuffix(f.Issuer, "/") // the classic trailing-slash mismatch
			return []emulator.FederatedCredential{f}
		}, nil, "AADSTS700211", 400, []string{`iss "` + "%ISSUER%" + `"`, "Check the Issuer"}},
		{"subject", func(v wiEnv) []emulator.FederatedCredential {
			return []emulator.FederatedCredential{v.k8s.FederatedCredential(wiNamespace, "other")}
		}, nil, "AADSTS700213", 400, []string{`sub "system:serviceaccount:payments:api"`, "Check the Subject"}},
		{"audience", func(v wiEnv) []emulator.FederatedCredential {
			f := v.k8s.FederatedCredential(wiNamespace, wiAccount)
			f.Audience = "api://other"
			return []emulator.FederatedCredential{f}
		}, nil, "AADSTS700212", 400, []string{`aud ["api://AzureADTokenExchange"]`, "Check the Audience"}},
		{"no record for the combination", func(v wiEnv) []emulator.FederatedCredential {
			other := v.k8s.FederatedCredential(wiNamespace, wiAccount)
			other.Issuer = "https://other-cluster.example/"
			return []emulator.FederatedCredential{v.k8s.FederatedCredential(wiNamespace, "other"), other}
		}, nil, "AADSTS70021", 400, []string{`iss "%ISSUER%"`, `sub "system:serviceaccount:payments:api"`, "No federated identity credential matches"}},
		{"time range", func(v wiEnv) []emulator.FederatedCredential {
			return []emulator.FederatedCredential{v.k8s.FederatedCredential(wiNamespace, wiAccount)}
		}, func(t *testing.T, v wiEnv) string {
			return v.mint(t, emulator.ServiceAccountToken{IssuedAt: v.clk.Now().Add(10 * time.Minute)}) // nbf ahead: a node's clock is wrong
		}, "AADSTS700024", 401, []string{"exp " + "%EXP%", "time range"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newWIEnv(t)
			v.register(t, tc.fics(v)...)
			if tc.token != nil {
				v.write(t, tc.token(t, v))
			}
			c, err := NewWorkloadIdentityCredential(v.options())
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.Error(t, err)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af)
			assert.Equal(t, tc.code, af.ErrorCode)
			assert.Equal(t, tc.status, af.StatusCode)
			sent := v.assertionsSent()
			require.Len(t, sent, 1)
			claims, cerr := readAssertionClaims(sent[0])
			require.NoError(t, cerr)
			for _, n := range tc.names {
				n = strings.ReplaceAll(n, "%ISSUER%", v.k8s.Issuer())
				n = strings.ReplaceAll(n, "%EXP%", claims.exp.UTC().Format(time.RFC3339))
				assert.Contains(t, err.Error(), n)
			}
			assert.NotContains(t, err.Error(), sent[0], "the assertion itself is never shown")
		})
	}
}

// TestWorkloadIdentityReadsTheProcessEnvironment proves the defaults come
// from the real environment (so it cannot run in parallel).
func TestWorkloadIdentityReadsTheProcessEnvironment(t *testing.T) {
	v := newWIEnv(t)
	t.Setenv("AZURE_CLIENT_ID", testClient)
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", v.file.Path())
	t.Setenv("AZURE_AUTHORITY_HOST", v.e.URL())
	t.Setenv("AZURE_REGIONAL_AUTHORITY_NAME", "")
	c, err := NewWorkloadIdentityCredential(&WorkloadIdentityCredentialOptions{ClientOptions: ClientOptions{Transport: v.e.Client(), clock: v.clk}})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	assert.Len(t, v.assertionsSent(), 1)
}

// The AKS token proxy.

func (v wiEnv) proxyOptions(t *testing.T, p *emulator.AKSProxy, extra ...string) *WorkloadIdentityCredentialOptions {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(ca, p.CAPEM(), 0o600))
	kv := append([]string{"AZURE_KUBERNETES_TOKEN_PROXY", p.URL(), "AZURE_KUBERNETES_CA_FILE", ca, "AZURE_KUBERNETES_SNI_NAME", p.SNIName()}, extra...)
	o := v.options(kv...)
	o.EnableAzureProxy = true
	o.Retry.MaxRetries = -1
	// The authority is not reachable: every request must go to the proxy.
	o.AuthorityHost = "https://login.unreachable.invalid"
	return o
}

func TestWorkloadIdentityThroughAKSProxy(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	p := emulator.NewAKSProxy(t, v.e, nil)
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"CA file", nil},
		{"CA data", []string{"AZURE_KUBERNETES_CA_FILE", "", "AZURE_KUBERNETES_CA_DATA", string(p.CAPEM())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := v.proxyOptions(t, p, tc.extra...)
			c, err := NewWorkloadIdentityCredential(o)
			require.NoError(t, err)
			assert.Contains(t, c.String(), "azureProxy: true")
			before := len(p.Requests())
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.NoError(t, err)
			reqs := p.Requests()[before:]
			require.Len(t, reqs, 1)
			assert.Equal(t, "/aks-token-proxy/"+testTenant+"/oauth2/v2.0/token", reqs[0].Path, "proxy path + original path")
			assert.Equal(t, p.SNIName(), reqs[0].ServerName, "the SNI name is sent")
			assert.Equal(t, http.StatusOK, reqs[0].Status)
		})
	}
	t.Run("query kept", func(t *testing.T) {
		cfg, err := readProxyConfig(envMap("AZURE_KUBERNETES_TOKEN_PROXY", p.URL()+"/", "AZURE_KUBERNETES_CA_DATA", string(p.CAPEM()), "AZURE_KUBERNETES_SNI_NAME", p.SNIName()))
		require.NoError(t, err)
		d, err := newProxyDoer(v.e.Client(), cfg, osFiles{}, discardLogger)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodGet, "https://login.unreachable.invalid/t/v2.0/.well-known/openid-configuration?a=1&b=x%2Fy", nil)
		require.NoError(t, err)
		resp, err := d.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		reqs := p.Requests()
		last := reqs[len(reqs)-1]
		assert.Equal(t, "/aks-token-proxy/t/v2.0/.well-known/openid-configuration", last.Path)
		assert.Equal(t, "a=1&b=x%2Fy", last.RawQuery)
	})
}

func TestWorkloadIdentityAKSProxyNeedsTheSNIName(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	p := emulator.NewAKSProxy(t, v.e, nil)
	c, err := NewWorkloadIdentityCredential(v.proxyOptions(t, p, "AZURE_KUBERNETES_SNI_NAME", ""))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	require.Error(t, err)
	assert.Empty(t, p.Requests())
	assert.Equal(t, []string{""}, p.RefusedServerNames(), "without the SNI name the proxy refuses the handshake")
	assert.Empty(t, v.e.Requests())
}

func TestWorkloadIdentityAKSProxyCARotation(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	p := emulator.NewAKSProxy(t, v.e, nil)
	logger, logs := recordLogs()
	o := v.proxyOptions(t, p)
	o.Logger = logger
	c, err := NewWorkloadIdentityCredential(o)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)

	require.NoError(t, p.RotateCA())
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{vaultScope}})
	require.Error(t, err, "the old CA does not verify the proxy's new certificate")

	path := o.getenv(EnvKubernetesCAFile)
	require.NoError(t, os.WriteFile(path, p.CAPEM(), 0o600))
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{vaultScope}})
	require.NoError(t, err, "the new CA in the file is used by the next request")
	assert.Contains(t, logs.String(), "CA file changed")

	require.NoError(t, os.WriteFile(path, nil, 0o600))
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
	require.NoError(t, err, "an empty CA file (mid-update) keeps the CA in use")
	assert.Len(t, p.Requests(), 3)
}

func TestWorkloadIdentityAKSProxyInvalidConfiguration(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	p := emulator.NewAKSProxy(t, v.e, nil)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.crt")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	notPEM := filepath.Join(dir, "text.crt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"http URL", []string{"AZURE_KUBERNETES_TOKEN_PROXY", strings.Replace(p.URL(), "https:", "http:", 1)}, `its scheme is "http"; the proxy must use https`},
		{"user information", []string{"AZURE_KUBERNETES_TOKEN_PROXY", strings.Replace(p.URL(), "https://", "https://user:pw@", 1)}, "user information"},
		{"query", []string{"AZURE_KUBERNETES_TOKEN_PROXY", p.URL() + "?x=1"}, "has a query"},
		{"fragment", []string{"AZURE_KUBERNETES_TOKEN_PROXY", p.URL() + "#f"}, "has a fragment"},
		{"no host", []string{"AZURE_KUBERNETES_TOKEN_PROXY", "https:///path"}, "no host"},
		{"not a URL", []string{"AZURE_KUBERNETES_TOKEN_PROXY", "proxy.local:443"}, "AZURE_KUBERNETES_TOKEN_PROXY is not a valid token proxy URL"},
		{"CA file and CA data", []string{"AZURE_KUBERNETES_CA_DATA", string(p.CAPEM())}, "both AZURE_KUBERNETES_CA_FILE and AZURE_KUBERNETES_CA_DATA are set"},
		{"proxy URL missing", []string{"AZURE_KUBERNETES_TOKEN_PROXY", ""}, "AZURE_KUBERNETES_TOKEN_PROXY is not set but AZURE_KUBERNETES_CA_FILE, AZURE_KUBERNETES_SNI_NAME are"},
		{"proxy URL missing, SNI only", []string{"AZURE_KUBERNETES_TOKEN_PROXY", "", "AZURE_KUBERNETES_CA_FILE", ""}, "AZURE_KUBERNETES_TOKEN_PROXY is not set but AZURE_KUBERNETES_SNI_NAME is"},
		{"empty CA file", []string{"AZURE_KUBERNETES_CA_FILE", empty}, "is empty"},
		{"missing CA file", []string{"AZURE_KUBERNETES_CA_FILE", filepath.Join(dir, "absent")}, "cannot read the AKS token proxy's CA file"},
		{"CA file without PEM", []string{"AZURE_KUBERNETES_CA_FILE", notPEM}, "holds no PEM certificate"},
		{"CA data without PEM", []string{"AZURE_KUBERNETES_CA_FILE", "", "AZURE_KUBERNETES_CA_DATA", "garbage"}, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewWorkloadIdentityCredential(v.proxyOptions(t, p, tc.env...))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "WorkloadIdentityCredential: "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "user:pw")
			assert.False(t, isUnavailable(err))

			o := v.proxyOptions(t, p, tc.env...)
			o.EnableAzureProxy = false
			_, err = NewWorkloadIdentityCredential(o)
			assert.NoError(t, err, "without EnableAzureProxy the proxy variables are not read")
		})
	}
	assert.Empty(t, p.Requests())
}

func TestWorkloadIdentityAKSProxyRefusesARedirect(t *testing.T) {
	t.Parallel()
	v := newWIEnv(t)
	p := emulator.NewAKSProxy(t, v.e, nil)
	v.e.InjectFault(emulator.Fault{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {"https://elsewhere.invalid/"}}, Count: 1})
	c, err := NewWorkloadIdentityCredential(v.proxyOptions(t, p))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	require.Error(t, err)
	var re *httpx.RedirectError
	assert.ErrorAs(t, err, &re)
	assert.Len(t, p.Requests(), 1, "the redirect is not followed")
}
