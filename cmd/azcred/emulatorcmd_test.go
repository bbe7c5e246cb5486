package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startEmulatorCommand runs `azcred emulator` with args until the test ends
// and returns its state folder and output.
func startEmulatorCommand(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	argv := append([]string{"emulator", "--addr", "127.0.0.1:0", "--state", state, "--arc-key-dir", filepath.Join(state, "arc")}, args...)
	go func() { done <- run(ctx, argv, out, out) }()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, 0, <-done)
	})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Stop with Ctrl-C") }, 20*time.Second, 5*time.Millisecond, "output: %s", out)
	return state, out
}

// sourceFile reads the variables a shell file exports, as a shell does.
func sourceFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := exec.Command("env", "-i", "sh", "-c", `. "$1" && env`, "sh", path).Output()
	require.NoError(t, err)
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "PWD" && k != "SHLVL" && k != "_" {
			vars[k] = v
		}
	}
	return vars
}

// With the environment `azcred emulator` prints (env.sh), every source it
// advertises works: EnvironmentCredential with the secret app, and
// ManagedIdentityCredential, which reads the same AZURE_CLIENT_ID, with the
// user-assigned identity that has that client ID.
func TestEmulatorEnvironmentWorksForDoctor(t *testing.T) {
	state, _ := startEmulatorCommand(t)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range identityPrefixes {
			if strings.HasPrefix(k, p) {
				t.Setenv(k, "")
				require.NoError(t, os.Unsetenv(k))
			}
		}
	}
	for k, v := range sourceFile(t, filepath.Join(state, "env.sh")) {
		t.Setenv(k, v)
	}
	t.Setenv("PATH", t.TempDir()) // no developer tools
	t.Setenv("HOME", t.TempDir())
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"doctor"}, &out, &errOut)
	assert.Equal(t, 0, code, "%s%s", out.String(), errOut.String())
	assert.Regexp(t, `(?m)^EnvironmentCredential +succeeded .*appid=`+demoClient, out.String())
	assert.Regexp(t, `(?m)^ManagedIdentityCredential +succeeded .*appid=`+demoClient, out.String())
}

func TestEmulatorTenantFileAndFaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tenant.json")
	require.NoError(t, os.WriteFile(file, []byte(`{
  "tenantId": "11111111-2222-4333-8444-555555555555",
  "apps": [{"name": "ci", "clientId": "aaaaaaaa-0000-4000-8000-000000000001", "secret": "s"}],
  "systemAssignedIdentity": {"name": "vm"},
  "hosts": ["imds"]
}`), 0o600))
	state, out := startEmulatorCommand(t, "--tenant-file", file, "--fault-rate", "100%", "--fault-kind", "429", "--token-lifetime", "5m")
	entries, err := os.ReadDir(filepath.Join(state, "hosts"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"ci.sh", "ci.env", "imds.sh", "imds.env"}, names)
	assert.Contains(t, out.String(), "Injecting 429 into 100% of token requests.")

	// Every token request is throttled, with Retry-After.
	vars := sourceFile(t, filepath.Join(state, "env.sh"))
	ca, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).PostForm(vars["AZURE_AUTHORITY_HOST"]+"/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"aaaaaaaa-0000-4000-8000-000000000001"}, "client_secret": {"s"}, "scope": {"https://management.azure.com/.default"},
	})
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
}

func TestEmulatorCommandRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"tenantId": "t", "apps": [{"name": "a", "clientId": "c", "secret": "s", "certificate": true}]}`), 0o600))
	unknown := filepath.Join(dir, "unknown.json")
	require.NoError(t, os.WriteFile(unknown, []byte(`{"tenantId": "t", "aps": []}`), 0o600))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--fault-rate", "150%"}, 2, "between 0 and 1"},
		{[]string{"--fault-kind", "teapot"}, 2, "use 429, 500, 503"},
		{[]string{"--tenant-file", bad, "--tenant", "x"}, 2, "-tenant change the default tenant"},
		{[]string{"--tenant-file", bad}, 1, "exactly one of secret, certificate"},
		{[]string{"--tenant-file", unknown}, 1, `unknown field "aps"`},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"emulator", "--addr", "127.0.0.1:0", "--state", t.TempDir()}, tc.args...)
		assert.Equal(t, tc.code, run(context.Background(), args, &out, &errOut), "%q", tc.args)
		assert.Contains(t, errOut.String(), tc.want, "%q", tc.args)
	}
}
