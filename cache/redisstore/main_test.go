package redisstore_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/cache/redisstore"
)

const (
	testTenant = "8a3c5d1e-0b4f-4c2a-9e7d-6f1b2a3c4d5e"
	testClient = "5f4e3d2c-1b0a-4987-8654-3210fedcba98"
	testSecret = "fleet-secret~value"
	armScope   = "https://management.azure.com/.default"
	childEnv   = "AZCRED_REDISSTORE_TEST_CHILD"
)

var testKey = bytesOf(1)

// bytesOf returns a 32-byte key filled with b.
func bytesOf(b byte) []byte {
	k := make([]byte, redisstore.KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

// TestMain runs the package's tests, or, when the test binary is started
// again as a child process by a test, that child's part.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	goleak.VerifyTestMain(m)
}

// childConfig is what a parent test hands a child process, as JSON in the
// environment.
type childConfig struct {
	Redis     string `json:"redis"`
	Authority string `json:"authority"`
	CAFile    string `json:"caFile"`
	Lease     string `json:"lease,omitempty"`
}

// childResult is what a child prints.
type childResult struct {
	TokenHash string  `json:"tokenHash"`
	Millis    float64 `json:"millis"`
}

func child(mode string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv+"_CONFIG")), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad config:", err)
		return 2
	}
	lease, _ := time.ParseDuration(cfg.Lease)
	store, err := redisstore.New(redisstore.Options{Addr: cfg.Redis, EncryptionKey: testKey, LockLease: lease})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer store.Close()
	switch mode {
	case "token":
		client, err := emulatorClient(cfg.CAFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		cred, err := azcred.NewClientSecretCredential(testTenant, testClient, testSecret, &azcred.ClientSecretCredentialOptions{
			ClientOptions: azcred.ClientOptions{AuthorityHost: cfg.Authority, Transport: client},
			Cache:         store,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 2
		}
		start := time.Now()
		tok, err := cred.GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{armScope}})
		took := time.Since(start)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: GetToken:", err)
			return 1
		}
		h := sha256.Sum256([]byte(tok.Token))
		_ = json.NewEncoder(os.Stdout).Encode(childResult{TokenHash: hex.EncodeToString(h[:]), Millis: float64(took.Microseconds()) / 1000})
		return 0
	case "lock":
		_, ok, err := store.TryLock(context.Background(), lockedKey)
		if err != nil || !ok {
			fmt.Fprintln(os.Stderr, "child: the lock was not taken:", ok, err)
			return 1
		}
		fmt.Println("locked")
		// Hold it until killed; the parent kills this process.
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintln(os.Stderr, "child: unknown mode", mode)
	return 2
}

var lockedKey = cache.EntryKey{Kind: cache.KindAccessToken, Partition: testClient + "@https://login.example", Key: testTenant + " " + armScope}

// emulatorClient trusts the emulator's CA, read from a PEM file.
func emulatorClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// fleet is an emulator with the test app and a Redis server.
type fleet struct {
	emu   *emulator.Emulator
	redis *redisServer
	cfg   childConfig
}

func newFleet(t *testing.T, opts *emulator.Options) *fleet {
	t.Helper()
	emu := emulator.NewT(t, opts)
	require.NoError(t, emu.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{testSecret}}))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, emu.CertPEM(), 0o600))
	r := startRedis(t)
	return &fleet{emu: emu, redis: r, cfg: childConfig{Redis: r.addr(), Authority: emu.URL(), CAFile: ca}}
}

// tokenRequests counts the token requests the emulator answered.
func (f *fleet) tokenRequests() int {
	n := 0
	for _, r := range f.emu.Requests() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/oauth2/v2.0/token") {
			n++
		}
	}
	return n
}

// credential builds a credential on the store with its own in-memory cache,
// standing for one process of the fleet.
func (f *fleet) credential(t *testing.T, store cache.Store) *azcred.ClientSecretCredential {
	t.Helper()
	c, err := azcred.NewClientSecretCredential(testTenant, testClient, testSecret, &azcred.ClientSecretCredentialOptions{
		ClientOptions:       azcred.ClientOptions{AuthorityHost: f.emu.URL(), Transport: f.emu.Client()},
		Cache:               store,
		DisableTokenSharing: true,
	})
	require.NoError(t, err)
	return c
}

// childCommand is the test binary started again in mode.
func childCommand(t *testing.T, mode string, cfg childConfig) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childEnv+"_CONFIG="+string(b))
	return cmd
}

// runChild runs a "token" child and returns what it printed.
func runChild(t *testing.T, cfg childConfig) childResult {
	t.Helper()
	cmd := childCommand(t, "token", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "child: %s", stderr.String())
	var r childResult
	require.NoError(t, json.Unmarshal(out, &r), "child printed %q", out)
	return r
}

// startLockHolder starts a child that takes the lock of lockedKey and
// holds it; it returns once the lock is held, with a function that kills
// the child.
func startLockHolder(t *testing.T, cfg childConfig) (kill func()) {
	t.Helper()
	cmd := childCommand(t, "lock", cfg)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	killed := false
	kill = func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	return kill
}
