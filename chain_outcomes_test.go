//go:build linux || darwin

package azcred

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/exec"
)

// The outcomes of DefaultAzureCredential's speculation rule on simulated
// hosts: fake az, pwsh and azd executables that record their runs, IMDS on
// loopback (an emulator endpoint that records requests, or an address whose
// connections hang), and a log handler that keeps every record. Counting
// happens only after every goroutine the chain started has ended.

// recordHandler is a slog.Handler that keeps every record.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// at returns the messages of the records at level.
func (h *recordHandler) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level == level {
			out = append(out, r.Message)
		}
	}
	return out
}

// attemptTime is when the chain logged its use of source's answer.
func (h *recordHandler) attemptTime(t *testing.T, source string) time.Time {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = found || (a.Key == "source" && a.Value.String() == source && strings.HasSuffix(r.Message, " attempt"))
			return true
		})
		if found {
			return r.Time
		}
	}
	t.Fatalf("no attempt record for %s", source)
	return time.Time{}
}

// attemptError is the error of the chain's Debug record about source.
func (h *recordHandler) attemptError(t *testing.T, source string) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		var src, msg string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "source":
				src = a.Value.String()
			case "error":
				msg = a.Value.String()
			}
			return true
		})
		if r.Level == slog.LevelDebug && src == source && strings.HasSuffix(r.Message, " attempt") {
			return msg
		}
	}
	t.Fatalf("no Debug attempt record for %s", source)
	return ""
}

// blackholedIMDS returns the base URL of a loopback address where
// connecting hangs, as it does for the IMDS link-local address on a machine outside
// Azure: a listener with a backlog of 0 that never accepts, whose queue is
// filled by one held connection, so that the kernel drops later SYNs.
func blackholedIMDS(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return "http://" + addr // the queue is full: connecting now hangs
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Fatal("cannot emulate a black-holed address on loopback: connections to a listener that never accepts keep succeeding")
	return ""
}

// host is a simulated machine for DefaultAzureCredential.
type host struct {
	tools *fakeTools
	logs  *recordHandler
	env   []string
}

func newHost(t *testing.T, imdsBase string, script ...string) *host {
	t.Helper()
	return &host{tools: newFakeTools(t, script...), logs: &recordHandler{}, env: []string{EnvPodIdentityAuthorityHost, imdsBase}}
}

// withoutTool removes a fake tool from the search path (not installed).
func (h *host) withoutTool(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, os.Remove(filepath.Join(h.tools.bin, name)))
}

func (h *host) options(kv ...string) *DefaultAzureCredentialOptions {
	o := &DefaultAzureCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(append(append([]string{}, h.env...), kv...)...)}}
	o.toolRunner = exec.OS{Path: h.tools.bin}
	o.Logger = slog.New(h.logs)
	return o
}

// infoNamesOnly checks that Info names the winner, once, and no other
// source of the chain.
func (h *host) infoNamesOnly(t *testing.T, winner string) {
	t.Helper()
	info := h.logs.at(slog.LevelInfo)
	assert.Contains(t, info, "DefaultAzureCredential authenticated with "+winner)
	for _, m := range info {
		for _, s := range allDefaultSources {
			if s != winner {
				assert.NotContains(t, m, s, "an Info record about a source whose answer was not used")
			}
		}
	}
}

// runs lists the tools that ran, in order.
func (h *host) runs(t *testing.T) []string {
	var out []string
	for _, c := range h.tools.calls(t) {
		out = append(out, c.Tool)
	}
	return out
}

func TestDefaultChainConfiguredServerStartsNothingElse(t *testing.T) {
	t.Parallel()
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, e *emulator.Emulator) []string // the host's variables
		winner string
	}{
		{"service principal in the environment", func(t *testing.T, e *emulator.Emulator) []string {
			return []string{EnvTenantID, testTenant, EnvClientID, testClient, EnvClientSecret, testSecret, EnvAuthorityHost, e.URL()}
		}, "EnvironmentCredential"},
		{"workload identity configured", func(t *testing.T, e *emulator.Emulator) []string {
			k8s := emulator.NewKubernetesIssuerT(t, nil)
			const wiClient = "33333333-4444-5555-6666-777777777777"
			require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenant, ClientID: wiClient,
				Federated: []emulator.FederatedCredential{k8s.FederatedCredential("default", "workload")}}))
			file := emulator.NewProjectedTokenFile(t.TempDir())
			sa, err := k8s.Mint(emulator.ServiceAccountToken{Namespace: "default", Name: "workload"})
			require.NoError(t, err)
			require.NoError(t, file.Write(sa))
			return []string{EnvTenantID, tenant, EnvClientID, wiClient, EnvFederatedTokenFile, file.Path(), EnvAuthorityHost, e.URL()}
		}, "WorkloadIdentityCredential"},
		{"App Service", func(t *testing.T, e *emulator.Emulator) []string {
			e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
			app, err := e.StartAppService()
			require.NoError(t, err)
			var kv []string
			for k, v := range app.Env() {
				kv = append(kv, k, v)
			}
			return kv
		}, "ManagedIdentityCredential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newSecretEmulator(t, nil)
			e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
			imds, err := e.StartIMDS() // would answer, if anything asked it
			require.NoError(t, err)
			h := newHost(t, imds.URL(), "!fresh") // every tool would give a token
			o := h.options(tc.setup(t, e)...)
			o.Transport = e.Client()
			c, err := NewDefaultAzureCredential(o)
			require.NoError(t, err)
			before := len(e.Requests())
			_, err = c.GetToken(context.Background(), armRequest)
			c.chain.waitProbes()
			require.NoError(t, err)
			name, _ := c.Resolved()
			assert.Equal(t, tc.winner, name)

			assert.Empty(t, h.runs(t), "no developer tool ran")
			assert.Empty(t, imds.Requests(), "IMDS was not asked")
			if tc.winner != "ManagedIdentityCredential" {
				assert.Len(t, e.Requests()[before:], 1, "one token request")
			}
			assert.Empty(t, h.logs.at(slog.LevelWarn), "no Warn record")
			h.infoNamesOnly(t, tc.winner)
		})
	}
}

func TestDefaultChainVMStartsNoTool(t *testing.T) {
	t.Parallel()
	e := emulator.NewT(t, nil)
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	h := newHost(t, imds.URL(), "!fresh")
	c, err := NewDefaultAzureCredential(h.options())
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	c.chain.waitProbes()
	require.NoError(t, err)
	name, _ := c.Resolved()
	assert.Equal(t, "ManagedIdentityCredential", name)
	assert.Empty(t, h.runs(t), "no developer tool ran")
	assert.Len(t, imds.Requests(), 1, "the token request only")
	assert.Empty(t, h.logs.at(slog.LevelWarn))
}

// The two ways a laptop's IMDS address misbehaves.
var laptopIMDS = []struct {
	name string
	// start returns the IMDS base URL and the IMDS requests it expects
	// (-1: none can be seen, no connection is made).
	start func(t *testing.T) (base string, requests func() int)
}{
	{"connect hangs", func(t *testing.T) (string, func() int) {
		return blackholedIMDS(t), nil
	}},
	{"accepted, never answered", func(t *testing.T) (string, func() int) {
		e := emulator.NewT(t, nil)
		imds, err := e.StartIMDS()
		require.NoError(t, err)
		imds.InjectFault(emulator.MIFault{Hang: true, Count: 2})
		return imds.URL(), func() int { return len(imds.Requests()) }
	}},
}

func TestDefaultChainLaptopRunsOnlyTheSignedInTool(t *testing.T) {
	t.Parallel()
	for _, mode := range laptopIMDS {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			base, requests := mode.start(t)
			h := newHost(t, base, "!fresh@300ms") // az is signed in and takes 300 ms
			c, err := NewDefaultAzureCredential(h.options())
			require.NoError(t, err)
			start := time.Now()
			tok, err := c.GetToken(context.Background(), armRequest)
			elapsed := time.Since(start)
			c.chain.waitProbes()
			require.NoError(t, err)
			assert.Equal(t, goldenToken1, tok.Token)
			name, _ := c.Resolved()
			assert.Equal(t, "AzureCLICredential", name)

			assert.Equal(t, []string{"az"}, h.runs(t), "az ran once; pwsh and azd never")
			if requests != nil {
				assert.Equal(t, 2, requests(), "the token request and one probe")
			}
			// az ran while IMDS was being decided: it started before the
			// chain had managed identity's answer.
			azStart := h.tools.calls(t)[0].Start
			assert.True(t, azStart.Before(h.logs.attemptTime(t, "ManagedIdentityCredential")), "az overlapped the IMDS wait")
			// About max(probe, az), not their sum (1.3 s), nor two probe
			// windows (2 s); the bound leaves room for a loaded machine.
			assert.Less(t, elapsed, 1900*time.Millisecond)
			assert.Empty(t, h.logs.at(slog.LevelWarn), "no Warn record")
			h.infoNamesOnly(t, "AzureCLICredential")
		})
	}
}

func TestDefaultChainLaptopToolsOneAtATimeInOrder(t *testing.T) {
	t.Parallel()
	for _, pwsh := range []bool{true, false} {
		t.Run(fmt.Sprintf("pwsh installed=%v", pwsh), func(t *testing.T) {
			t.Parallel()
			// az is not signed in, pwsh (when present) is not connected,
			// azd is signed in; the runs take the script's lines in turn.
			script := []string{"azurecli/not-logged-in@100ms", "!fresh"}
			want := []string{"az", "azd"}
			if pwsh {
				script = []string{"azurecli/not-logged-in@100ms", "azurepowershell/not-connected@100ms", "!fresh"}
				want = []string{"az", "pwsh", "azd"}
			}
			h := newHost(t, blackholedIMDS(t), script...)
			if !pwsh {
				h.withoutTool(t, "pwsh")
			}
			c, err := NewDefaultAzureCredential(h.options())
			require.NoError(t, err)
			tok, err := c.GetToken(context.Background(), armRequest)
			c.chain.waitProbes()
			require.NoError(t, err)
			assert.Equal(t, goldenToken1, tok.Token)
			name, _ := c.Resolved()
			assert.Equal(t, "AzureDeveloperCLICredential", name)
			assert.Equal(t, want, h.runs(t), "each tool at most once, in order")
			calls := h.tools.calls(t)
			for i := 1; i < len(calls); i++ {
				// One at a time: a tool starts only after the one before it
				// has answered (each takes at least 100 ms).
				assert.GreaterOrEqual(t, calls[i].Start.Sub(calls[i-1].Start), 100*time.Millisecond, "%s started while %s ran", calls[i].Tool, calls[i-1].Tool)
			}
			assert.Empty(t, h.logs.at(slog.LevelWarn), "unavailable sources log at Debug only")
			assert.Contains(t, h.logs.attemptError(t, "AzureCLICredential"), "az login", "a needed source's reason is logged at Debug")
			h.infoNamesOnly(t, "AzureDeveloperCLICredential")
		})
	}
}

// A configuration that the environment selects but that cannot work stops
// the chain with its own error, and nothing after it is started.
func TestDefaultChainBrokenConfigurationStops(t *testing.T) {
	t.Parallel()
	certPath := func(t *testing.T, name string) string {
		p, err := filepath.Abs(filepath.Join("testdata", "certs", name))
		require.NoError(t, err)
		return p
	}
	for _, tc := range []struct {
		name     string
		env      func(t *testing.T) []string
		source   string
		variable string
	}{
		{"certificate file missing", func(t *testing.T) []string {
			return []string{EnvTenantID, testTenant, EnvClientID, testClient, EnvClientCertificatePath, filepath.Join(t.TempDir(), "missing.pem")}
		}, "EnvironmentCredential", "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"certificate file unreadable (a directory)", func(t *testing.T) []string {
			return []string{EnvTenantID, testTenant, EnvClientID, testClient, EnvClientCertificatePath, t.TempDir()}
		}, "EnvironmentCredential", "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"wrong certificate password", func(t *testing.T) []string {
			return []string{EnvTenantID, testTenant, EnvClientID, testClient, EnvClientCertificatePath, certPath(t, "modern.pfx"), EnvClientCertificatePassword, "pw-wrong-7431"}
		}, "EnvironmentCredential", "AZURE_CLIENT_CERTIFICATE_PASSWORD"},
		{"no private key", func(t *testing.T) []string {
			return []string{EnvTenantID, testTenant, EnvClientID, testClient, EnvClientCertificatePath, certPath(t, "pem-no-key.pem")}
		}, "EnvironmentCredential", "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"malformed tenant", func(t *testing.T) []string {
			return []string{EnvTenantID, "not a tenant", EnvClientID, testClient, EnvClientSecret, testSecret}
		}, "EnvironmentCredential", "AZURE_TENANT_ID"},
		{"secret without its tenant", func(t *testing.T) []string {
			return []string{EnvClientID, testClient, EnvClientSecret, testSecret}
		}, "EnvironmentCredential", "AZURE_CLIENT_SECRET"},
		{"username without password", func(t *testing.T) []string {
			return []string{EnvClientID, testClient, EnvUsername, "user@contoso.com"}
		}, "EnvironmentCredential", "AZURE_PASSWORD"},
		{"token file without client ID", func(t *testing.T) []string {
			return []string{EnvTenantID, testTenant, EnvFederatedTokenFile, filepath.Join(t.TempDir(), "token")}
		}, "WorkloadIdentityCredential", "AZURE_FEDERATED_TOKEN_FILE"},
		{"token file missing", func(t *testing.T) []string {
			return []string{EnvTenantID, testTenant, EnvClientID, testClient, EnvFederatedTokenFile, filepath.Join(t.TempDir(), "token")}
		}, "WorkloadIdentityCredential", "AZURE_FEDERATED_TOKEN_FILE"},
		{"App Service endpoint malformed", func(t *testing.T) []string {
			return []string{EnvIdentityEndpoint, "not a url", EnvIdentityHeader, "secret-header"}
		}, "ManagedIdentityCredential", "IDENTITY_ENDPOINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := emulator.NewT(t, nil)
			e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
			imds, err := e.StartIMDS() // a VM: falling through would authenticate as its identity
			require.NoError(t, err)
			h := newHost(t, imds.URL(), "!fresh")
			c, err := NewDefaultAzureCredential(h.options(tc.env(t)...))
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), armRequest)
			c.chain.waitProbes()
			require.Error(t, err)
			assert.False(t, isUnavailable(err), "a broken configuration is not unavailable: %v", err)
			first, _, _ := strings.Cut(err.Error(), "\n")
			assert.Contains(t, first, tc.source+" failed, so the chain stopped")
			assert.Contains(t, first, tc.variable, "the first line names the variable")
			_, resolved := c.Resolved()
			assert.False(t, resolved)
			assert.Empty(t, h.runs(t), "no later source started")
			if tc.source != "ManagedIdentityCredential" {
				assert.Empty(t, imds.Requests(), "IMDS was not asked")
			}
			for _, s := range []string{testSecret, "secret-header", "pw-wrong-7431"} {
				assert.NotContains(t, err.Error(), s)
			}
		})
	}
}

// With nothing selected, every source is unavailable and the environment's
// reason lists what is missing.
func TestDefaultChainNothingSelectedListsWhatIsMissing(t *testing.T) {
	t.Parallel()
	h := newHost(t, closedIMDS(t), "azurecli/not-logged-in")
	h.withoutTool(t, "pwsh")
	h.withoutTool(t, "azd")
	c, err := NewDefaultAzureCredential(h.options(EnvTenantID, testTenant))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	c.chain.waitProbes()
	require.Error(t, err)
	assert.True(t, isUnavailable(err), "%v", err)
	assert.Contains(t, err.Error(), "set: AZURE_TENANT_ID; missing: AZURE_CLIENT_ID, one of AZURE_CLIENT_SECRET")
	assert.Empty(t, h.logs.at(slog.LevelWarn))
	report := c.Diagnose(context.Background(), armRequest)
	require.NotEmpty(t, report)
	assert.Contains(t, report[0].Err.Error(), "missing: AZURE_CLIENT_ID")
}
