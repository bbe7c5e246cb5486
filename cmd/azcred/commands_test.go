package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/internal/jwtx"
)

// isolate clears every variable the default chain reads, points IMDS at a
// closed loopback port and sets PATH to a folder holding only the given fake
// tools (name → stdout). It uses t.Setenv, so its tests are not parallel.
func isolate(t *testing.T, tools map[string]string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake tools are shell scripts")
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range []string{"AZURE_", "IDENTITY_", "MSI_", "IMDS_", "SYSTEM_OIDC"} {
			if strings.HasPrefix(k, p) {
				t.Setenv(k, "")
				require.NoError(t, os.Unsetenv(k))
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", closed)
	bin := t.TempDir()
	for name, out := range tools {
		file := filepath.Join(bin, name+".json")
		require.NoError(t, os.WriteFile(file, []byte(out), 0o600))
		script := fmt.Sprintf("#!/bin/sh\nexec /bin/cat '%s'\n", file)
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte(script), 0o700))
	}
	t.Setenv("PATH", bin)
	// The developer tools' sign-in folders and the persistent cache are
	// the test's own, never the user's.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	t.Setenv("AZD_CONFIG_DIR", filepath.Join(home, ".azd"))
}

// azOutput is what a signed-in az prints for a token with these claims.
func azOutput(t *testing.T, claims map[string]any) (string, string) {
	t.Helper()
	b, err := json.Marshal(claims)
	require.NoError(t, err)
	token := jwtx.Encode([]byte(`{"alg":"none"}`)) + "." + jwtx.Encode(b) + ".c2ln"
	out, err := json.Marshal(map[string]any{"accessToken": token, "expires_on": time.Now().Add(time.Hour).Unix(), "tokenType": "Bearer"})
	require.NoError(t, err)
	return token, string(out)
}

func TestDoctorWithNothingConfigured(t *testing.T) {
	isolate(t, nil)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"doctor"}, &out, &errOut)
	assert.Equal(t, 1, code, errOut.String())
	s := out.String()
	for _, src := range sourceNames[:6] {
		assert.Regexp(t, src+`\s+asked\s+unavailable`, s)
	}
	assert.Contains(t, s, "Why, and what to do:")
	assert.Contains(t, s, "No source is available")
	assert.Contains(t, errOut.String(), "no source of the default chain gave a token")
}

func TestDoctorFindsAz(t *testing.T) {
	_, az := azOutput(t, map[string]any{"tid": "tenant-1", "oid": "oid-1", "upn": "dev@contoso.com"})
	isolate(t, map[string]string{"az": az})
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"doctor"}, &out, &errOut)
	assert.Equal(t, 0, code, errOut.String())
	s := out.String()
	assert.Regexp(t, `AzureCLICredential\s+asked\s+succeeded\s+\S+\s+upn=dev@contoso.com oid=oid-1 tid=tenant-1`, s)
	assert.Regexp(t, `AzurePowerShellCredential\s+not started\s+unavailable`, s, "asked by doctor, not by GetToken")
	assert.Contains(t, s, "GetToken starts EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential, AzureCLICredential.")
	assert.Contains(t, s, "Not started: AzurePowerShellCredential, AzureDeveloperCLICredential (AzureCLICredential gave a token first).")
	assert.Contains(t, s, "DefaultAzureCredential would use AzureCLICredential.")
	assert.NotContains(t, s, "c2ln", "no token in the report")

	out.Reset()
	code = run(context.Background(), []string{"doctor", "--output", "json"}, &out, &errOut)
	assert.Equal(t, 0, code)
	var rows []doctorRow
	require.NoError(t, json.Unmarshal(out.Bytes(), &rows))
	require.Len(t, rows, 6)
	assert.Equal(t, "AzureCLICredential", rows[3].Source)
	assert.Equal(t, "succeeded", rows[3].Outcome)
	assert.Equal(t, "dev@contoso.com", rows[3].Identity["upn"])
	assert.Equal(t, "unavailable", rows[0].Outcome)
	assert.NotEmpty(t, rows[0].Message)
	assert.Equal(t, "asked", rows[3].GetToken)
	assert.Equal(t, "not started", rows[5].GetToken)
	assert.Equal(t, "AzureCLICredential gave a token first", rows[5].NotStarted)
}

func TestTokenCommand(t *testing.T) {
	token, az := azOutput(t, map[string]any{"tid": "tenant-1"})
	isolate(t, map[string]string{"az": az})

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"token", "--output", "raw"}, &out, &errOut), errOut.String())
	assert.Equal(t, token+"\n", out.String())

	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"token", "--source", "azureclicredential", "--scope", "https://vault.azure.net/.default"}, &out, &errOut), errOut.String())
	var got tokenOutput
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, token, got.AccessToken)
	assert.Equal(t, "Bearer", got.TokenType)
	assert.Equal(t, "AzureCLICredential", got.Source)
	assert.NotZero(t, got.ExpiresOnTS)

	out.Reset()
	errOut.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"token", "--source", "EnvironmentCredential"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "EnvironmentCredential")
	assert.Empty(t, out.String())
}

func TestCommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"token", "--output", "xml"},
		{"token", "--source", "nope"},
		{"token", "extra"},
		{"doctor", "--output", "yaml"},
		{"doctor", "--bogus"},
	} {
		var out, errOut bytes.Buffer
		assert.Equal(t, 2, run(context.Background(), args, &out, &errOut), "%q", args)
		assert.NotEmpty(t, errOut.String(), "%q", args)
	}
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run(context.Background(), []string{"token", "-h"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-scope")
}

func TestEmulatorCommand(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	state := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "--addr", addr, "--state", state, "--arc-key-dir", filepath.Join(state, "arc")}, out, out)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Stop with Ctrl-C") }, 10*time.Second, 5*time.Millisecond)

	env, err := os.ReadFile(filepath.Join(state, "env.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(env), "export AZURE_AUTHORITY_HOST='https://"+addr+"'")
	assert.Contains(t, string(env), "export SSL_CERT_FILE='"+filepath.Join(state, "ca.pem")+"'")
	assert.Contains(t, out.String(), "AZURE_POD_IDENTITY_AUTHORITY_HOST='http://127.0.0.1:")

	// The whole default tenant: one self-contained file per host.
	for _, name := range []string{"secret", "certificate", "certificate-pfx", "workload-identity", "user", "imds", "app-service", "azure-ml", "cloud-shell", "service-fabric", "arc"} {
		sh, err := os.ReadFile(filepath.Join(state, "hosts", name+".sh"))
		require.NoError(t, err, name)
		for _, v := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "HTTPS_PROXY", "NO_PROXY"} {
			assert.Contains(t, string(sh), "export "+v+"=", "%s.sh", name)
		}
		dotenv, err := os.ReadFile(filepath.Join(state, "hosts", name+".env"))
		require.NoError(t, err, name)
		assert.Contains(t, string(dotenv), "\nHTTPS_PROXY=http://127.0.0.1:", "%s.env", name)
	}
	_, err = os.Stat(filepath.Join(state, "certs", "certificate.pfx"))
	assert.NoError(t, err)

	// A client that trusts ca.pem gets a token with the printed secret.
	caPEM, err := os.ReadFile(filepath.Join(state, "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	cred, err := azcred.NewClientSecretCredential(demoTenant, demoClient, demoSecret, &azcred.ClientSecretCredentialOptions{
		ClientOptions: azcred.ClientOptions{AuthorityHost: "https://" + addr, Transport: client},
	})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{defaultScope}})
	require.NoError(t, err)

	cancel()
	assert.Equal(t, 0, <-done)
	assert.Contains(t, out.String(), "Stopping.")

	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), []string{"emulator", "--addr", "0.0.0.0:0"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "not a loopback address")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
