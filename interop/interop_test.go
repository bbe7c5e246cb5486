// Package interop runs Microsoft's own clients — azidentity (Go) and
// @azure/identity (Node.js) — and azcred against the stand-alone `azcred
// emulator`, each in a child process whose only configuration is one of the
// emulator's hosts/*.sh files, sourced by a shell as a user would. Nothing
// disables instance discovery or points the authority host at the emulator:
// the clients talk to login.microsoftonline.com through the emulator's proxy.
package interop

import (
	"bufio"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env is the running emulator the tests share.
var env struct {
	state    string // the emulator's --state folder
	url      string // its Entra ID address
	gettoken string // the built gettoken program
	tenant   string
	home     string // an empty HOME for the children
	client   *http.Client
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "azcred-interop-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	bin := filepath.Join(tmp, "bin")
	azcredBin, gettoken := filepath.Join(bin, "azcred"), filepath.Join(bin, "gettoken")
	// Both builds at once: they are most of this package's wall time.
	builds := make(chan error, 2)
	for _, b := range []struct{ dir, out, pkg string }{{"..", azcredBin, "./cmd/azcred"}, {".", gettoken, "./gettoken"}} {
		go func() {
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			cmd.Dir = b.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				builds <- fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
				return
			}
			builds <- nil
		}()
	}
	for range 2 {
		if err := <-builds; err != nil {
			return 0, err
		}
	}
	env.gettoken = gettoken
	env.state = filepath.Join(tmp, "state")
	env.home = filepath.Join(tmp, "home")
	if err := os.MkdirAll(env.home, 0o700); err != nil {
		return 0, err
	}

	// The emulator as a user starts it; Arc's key folder is a temporary one
	// (clients accept only the agent's own, so Arc is not among the tests).
	emu := exec.Command(azcredBin, "emulator", "--addr", "127.0.0.1:0", "--state", env.state, "--arc-key-dir", filepath.Join(tmp, "arc"))
	emu.Stderr = os.Stderr
	stdout, err := emu.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := emu.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = emu.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- emu.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = emu.Process.Kill()
			<-done
		}
	}()
	ready := make(chan error, 1)
	go func() {
		// Reads the output until the emulator exits; reports once.
		sc := bufio.NewScanner(stdout)
		started := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "Entra ID emulator at "); ok && !started {
				env.url, _, _ = strings.Cut(u, " ")
			}
			if strings.HasPrefix(line, "Stop with Ctrl-C") && !started {
				started = true
				ready <- nil
			}
		}
		if !started {
			ready <- fmt.Errorf("its output ended early (%v)", sc.Err())
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return 0, fmt.Errorf("the emulator did not start: %w", err)
		}
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("the emulator did not start within 60 s")
	}
	var spec struct {
		TenantID string `json:"tenantId"`
	}
	b, err := os.ReadFile(filepath.Join(env.state, "tenant.json"))
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return 0, err
	}
	env.tenant = spec.TenantID
	ca, err := os.ReadFile(filepath.Join(env.state, "ca.pem"))
	if err != nil {
		return 0, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	env.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return m.Run(), nil
}

// hostVars reads the variables a hosts file sets, by sourcing it in a shell
// with an empty environment.
func hostVars(t *testing.T, host string) map[string]string {
	t.Helper()
	out, err := exec.Command("env", "-i", "bash", "-c", `. "$1" && env -0`, "bash", hostFile(host)).Output()
	require.NoError(t, err, host)
	vars := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

func hostFile(host string) string { return filepath.Join(env.state, "hosts", host+".sh") }

// inHost runs argv after sourcing the host's file in a shell, with nothing
// else in the environment but PATH and an empty HOME, and returns the
// tokens the program printed, by credential.
func inHost(t *testing.T, host string, dir string, argv ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", `. "$0" && exec "$@"`, hostFile(host)}, argv...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + env.home}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	tokens := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var res struct {
			Credential, Token, Error string
		}
		if json.Unmarshal([]byte(line), &res) != nil {
			continue
		}
		assert.Empty(t, res.Error, "%s in %s", res.Credential, host)
		if res.Token != "" {
			tokens[res.Credential] = res.Token
		}
	}
	require.NoError(t, err, "%s in %s: %s", argv, host, stderr.String())
	return tokens
}

// checkToken verifies the token's signature with the tenant's published
// keys and checks that it is for the ARM audience and, for an app, that
// app.
func checkToken(t *testing.T, token, wantApp string, managed bool) {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return jwksKey(t, kid)
	}, jwt.WithValidMethods([]string{"RS256"}))
	require.NoError(t, err)
	assert.Equal(t, "https://management.azure.com", claims["aud"])
	if wantApp != "" {
		assert.Equal(t, wantApp, claims["appid"])
	}
	if managed {
		assert.NotEmpty(t, claims["xms_mirid"], "a managed identity's token names its resource")
	} else {
		assert.Equal(t, env.tenant, claims["tid"])
	}
}

func jwksKey(t *testing.T, kid string) (*rsa.PublicKey, error) {
	resp, err := env.client.Get(env.url + "/" + env.tenant + "/discovery/v2.0/keys")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var set struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		require.NoError(t, err1)
		require.NoError(t, err2)
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, fmt.Errorf("no key %q in the tenant's JWKS", kid)
}

// cases are the hosts and, for each, the credentials a program there uses.
var cases = []struct {
	host    string
	managed bool
	goCreds []string // gettoken's credential names
	node    []string // token.mjs's credential names
}{
	{"secret", false, []string{"client-secret", "environment", "default", "azcred-default"}, []string{"client-secret", "environment", "default"}},
	{"certificate", false, []string{"client-certificate", "environment", "default", "azcred-default"}, []string{"client-certificate", "environment", "default"}},
	{"certificate-pfx", false, []string{"client-certificate", "environment", "azcred-default"}, nil},
	{"workload-identity", false, []string{"workload-identity", "default", "azcred-default"}, []string{"workload-identity", "default"}},
	{"app-service", true, []string{"managed-identity", "default", "azcred-default"}, []string{"managed-identity", "default"}},
	{"azure-ml", true, []string{"managed-identity", "default", "azcred-default"}, []string{"managed-identity", "default"}},
	{"cloud-shell", true, []string{"managed-identity", "default", "azcred-default"}, []string{"managed-identity", "default"}},
	// @azure/identity does not reach the Service Fabric endpoint, whose
	// self-signed certificate Go clients pin by IDENTITY_SERVER_THUMBPRINT.
	{"service-fabric", true, []string{"managed-identity", "default", "azcred-default"}, nil},
	// azidentity has no setting for the IMDS address (it always asks its
	// link-local IMDS address), so only azcred and @azure/identity, which read
	// AZURE_POD_IDENTITY_AUTHORITY_HOST, run on the emulated VM.
	{"imds", true, []string{"azcred-default"}, []string{"managed-identity", "default"}},
}

func TestAzidentity(t *testing.T) {
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			t.Parallel()
			tokens := inHost(t, c.host, ".", append([]string{env.gettoken}, c.goCreds...)...)
			for _, cred := range c.goCreds {
				require.Contains(t, tokens, cred)
				checkToken(t, tokens[cred], hostVars(t, c.host)["AZURE_CLIENT_ID"], c.managed)
			}
		})
	}
}

func TestNodeAzureIdentity(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not on PATH: install Node.js 20 or later (Debian: apt-get install nodejs npm), then run `npm ci --prefix interop/node`")
	}
	dir, err := filepath.Abs("node")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@azure", "identity", "package.json")); err != nil {
		t.Fatal("@azure/identity is not installed: run `npm ci --prefix interop/node` (with network access; .ci/run does it before the tests)")
	}
	for _, c := range cases {
		if len(c.node) == 0 {
			continue
		}
		t.Run(c.host, func(t *testing.T) {
			t.Parallel()
			tokens := inHost(t, c.host, dir, append([]string{"node", "token.mjs"}, c.node...)...)
			for _, cred := range c.node {
				require.Contains(t, tokens, cred)
				checkToken(t, tokens[cred], hostVars(t, c.host)["AZURE_CLIENT_ID"], c.managed)
			}
		})
	}
}

// The hosts files stay self-contained and never point the authority host at
// the emulator: the clients above reach it as login.microsoftonline.com.
func TestHostFilesUseThePublicAuthority(t *testing.T) {
	for _, c := range cases {
		vars := hostVars(t, c.host)
		if h, ok := vars["AZURE_AUTHORITY_HOST"]; ok {
			assert.Equal(t, "https://login.microsoftonline.com/", h, c.host)
		}
		assert.NotEmpty(t, vars["HTTPS_PROXY"], c.host)
		assert.Contains(t, vars["NO_PROXY"], "127.0.0.1", c.host)
		for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} {
			assert.FileExists(t, vars[k], "%s: %s", c.host, k)
		}
	}
}
