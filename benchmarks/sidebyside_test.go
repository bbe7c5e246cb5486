package benchmarks

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/cache"
)

// The side-by-side measurements, run small: these tests check what the
// table's counted rows claim (requests, processes, the blackholed probe),
// never timings, which belong to `go run ./cmd/sidebyside`.

func TestFirstTokenRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lib  Library
		want float64
	}{
		{Azcred, 1},     // the token request
		{Azidentity, 2}, // OpenID configuration, then the token request
	}
	for _, tt := range tests {
		t.Run(string(tt.lib), func(t *testing.T) {
			t.Parallel()
			r, err := FirstToken(context.Background(), tt.lib, 3)
			require.NoError(t, err)
			assert.Equal(t, 3, r.Runs)
			assert.Equal(t, tt.want, r.Requests)
			assert.Positive(t, r.Latency)
		})
	}
}

func TestFirstTokenNeedsARun(t *testing.T) {
	t.Parallel()
	_, err := FirstToken(context.Background(), Azcred, 0)
	assert.ErrorContains(t, err, "at least one run")
}

func TestUnknownLibrary(t *testing.T) {
	t.Parallel()
	ctx, lib := context.Background(), Library("msal")
	_, err := FirstToken(ctx, lib, 1)
	assert.ErrorContains(t, err, `unknown library "msal"`)
	_, err = Storm(ctx, lib, 1)
	assert.ErrorContains(t, err, `unknown library "msal"`)
	_, _, err = cachedBench(ctx, lib, false)
	assert.ErrorContains(t, err, `unknown library "msal"`)
	_, err = AzureCLI(ctx, lib, 1, 0)
	assert.ErrorContains(t, err, `unknown library "msal"`)
	_, err = Laptop(ctx, lib, 0)
	assert.ErrorContains(t, err, `unknown library "msal"`)
}

// TestCachedGetTokenStaysLocal checks the premise of the cached rows: once
// a credential holds a token, GetToken answers from it and the authority
// sees no further request.
func TestCachedGetTokenStaysLocal(t *testing.T) {
	t.Parallel()
	for _, lib := range Libraries {
		t.Run(string(lib), func(t *testing.T) {
			t.Parallel()
			e, err := newAuthority(0)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, e.Close()) })
			get, err := secretCredential(lib, e)
			require.NoError(t, err)
			first, err := get(context.Background())
			require.NoError(t, err)
			for range 50 {
				exp, err := get(context.Background())
				require.NoError(t, err)
				assert.Equal(t, first, exp)
			}
			assert.Equal(t, 1, tokenPOSTs(e))
		})
	}
}

// TestCachedBenchDone checks the benchmark's own bookkeeping: after the
// warm-up only, done reports nothing wrong and stops the emulator.
func TestCachedBenchDone(t *testing.T) {
	t.Parallel()
	for _, lib := range Libraries {
		body, done, err := cachedBench(context.Background(), lib, true)
		require.NoError(t, err)
		assert.NotNil(t, body)
		assert.NoError(t, done(), lib)
	}
}

func TestStormRequests(t *testing.T) {
	t.Parallel()
	for _, lib := range Libraries {
		t.Run(string(lib), func(t *testing.T) {
			t.Parallel()
			r, err := Storm(context.Background(), lib, 200)
			require.NoError(t, err)
			assert.Equal(t, 200, r.Callers)
			if lib == Azcred {
				// Every caller waits on one shared fetch.
				assert.Equal(t, 1, r.Requests)
			} else {
				assert.GreaterOrEqual(t, r.Requests, 1)
			}
			assert.GreaterOrEqual(t, r.Worst, r.Median)
		})
	}
}

func TestStormContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Storm(ctx, Azcred, 10)
	assert.ErrorIs(t, err, context.Canceled)
}

func requirePOSIX(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake az is a POSIX shell script")
	}
}

// TestFakeAz runs the fake az the way both libraries do and checks that it
// answers like az, counts its runs and refuses other commands.
func TestFakeAz(t *testing.T) {
	requirePOSIX(t)
	t.Parallel()
	az, err := newFakeAz(time.Millisecond)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, az.remove()) })
	bin := filepath.Join(az.dir, "az")

	out, err := exec.Command(bin, "account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com").Output()
	require.NoError(t, err)
	var answer struct {
		AccessToken string `json:"accessToken"`
		ExpiresOn   string `json:"expiresOn"`
		ExpiresOnTS int64  `json:"expires_on"`
		TokenType   string `json:"tokenType"`
	}
	require.NoError(t, json.Unmarshal(out, &answer))
	assert.Equal(t, fakeAzToken, answer.AccessToken)
	assert.Equal(t, "Bearer", answer.TokenType)
	assert.WithinDuration(t, time.Now().Add(time.Hour), time.Unix(answer.ExpiresOnTS, 0), time.Minute)
	local, err := time.ParseInLocation("2006-01-02 15:04:05.000000", answer.ExpiresOn, time.Local)
	require.NoError(t, err)
	assert.Equal(t, answer.ExpiresOnTS, local.Unix())

	err = exec.Command(bin, "login").Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 2, exit.ExitCode())

	n, err := az.runs()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

// TestIsolateEnv checks that the developer-tool rows see only the fake
// tools and no credential settings, and that the environment comes back.
func TestIsolateEnv(t *testing.T) {
	t.Setenv("AZURE_CLIENT_ID", "some-client")
	t.Setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/token")
	t.Setenv("MSI_ENDPOINT", "http://127.0.0.1:1/msi")
	t.Setenv("IMDS_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("AZCRED_UNRELATED", "kept")
	path := os.Getenv("PATH")

	restore := isolateEnv("/nonexistent/fake-tools")
	for _, k := range []string{"AZURE_CLIENT_ID", "IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT"} {
		_, ok := os.LookupEnv(k)
		assert.False(t, ok, k)
	}
	assert.Equal(t, "/nonexistent/fake-tools", os.Getenv("PATH"))
	assert.Equal(t, "kept", os.Getenv("AZCRED_UNRELATED"))
	restore()

	assert.Equal(t, "some-client", os.Getenv("AZURE_CLIENT_ID"))
	assert.Equal(t, "http://127.0.0.1:1/token", os.Getenv("IDENTITY_ENDPOINT"))
	assert.Equal(t, "http://127.0.0.1:1/msi", os.Getenv("MSI_ENDPOINT"))
	assert.Equal(t, "http://127.0.0.1:1", os.Getenv("IMDS_ENDPOINT"))
	assert.Equal(t, path, os.Getenv("PATH"))
}

// TestAzureCLIProcesses cannot run in parallel: both libraries find az
// through the process's PATH.
func TestAzureCLIProcesses(t *testing.T) {
	requirePOSIX(t)
	tests := []struct {
		lib  Library
		want int
	}{
		{Azcred, 1},     // cached after the first run
		{Azidentity, 5}, // az on every call
	}
	for _, tt := range tests {
		t.Run(string(tt.lib), func(t *testing.T) {
			r, err := AzureCLI(context.Background(), tt.lib, 5, 0)
			require.NoError(t, err)
			assert.Equal(t, 5, r.Calls)
			assert.Equal(t, tt.want, r.Processes)
		})
	}
}

// TestLaptop cannot run in parallel: it changes PATH and AZURE_*. Both
// libraries must probe IMDS through the blackholed client (and never
// connect), then fall through to the fake az.
func TestLaptop(t *testing.T) {
	requirePOSIX(t)
	t.Setenv("AZURE_TENANT_ID", benchTenant)
	t.Setenv("AZURE_CLIENT_ID", benchClient)
	t.Setenv("AZURE_CLIENT_SECRET", benchSecret)
	for _, lib := range Libraries {
		t.Run(string(lib), func(t *testing.T) {
			r, err := Laptop(context.Background(), lib, 10*time.Millisecond)
			require.NoError(t, err)
			assert.Contains(t, r.Blackholed, "169.254.169.254:80")
			for _, a := range r.Blackholed {
				assert.Equal(t, "169.254.169.254:80", a)
			}
			// The probe gives up after its one-second timeout.
			assert.GreaterOrEqual(t, r.Elapsed, time.Second)
		})
	}
	// The variables set above, which would have made the chain use the
	// environment's client secret, are back.
	assert.Equal(t, benchSecret, os.Getenv("AZURE_CLIENT_SECRET"))
}

func TestCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		a, b      float64
		tolerance float64
		want      string
	}{
		{"azcred lower", 1, 2, 0, "azcred (2.0×)"},
		{"azidentity lower", 30, 3, 0, "azidentity (10×)"},
		{"same", 1, 1, 0, "same"},
		{"within tolerance", 100, 105, timingTolerance, "within 10%"},
		{"outside tolerance", 100, 120, timingTolerance, "azcred (1.2×)"},
		{"zero", 0, 18, 0, "azcred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := compare("m", tt.a, tt.b, tt.tolerance, formatCount)
			assert.Equal(t, tt.want, r.Better)
			assert.Equal(t, formatCount(tt.a), r.Azcred)
			assert.Equal(t, formatCount(tt.b), r.Azidentity)
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{formatDuration(850), "850 ns"},
		{formatDuration(2500), "2.5 µs"},
		{formatDuration(float64(1200 * time.Microsecond)), "1.2 ms"},
		{formatDuration(float64(1310 * time.Millisecond)), "1.31 s"},
		{formatCount(2), "2"},
		{formatCount(1.5), "1.50"},
		{formatMiB(8 << 20), "8.0 MiB"},
		{formatNsOp(73.25), "73.2 ns/op"},
		{formatAllocs(18), "18 allocs/op"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.got)
	}
}

func TestTableMarkdown(t *testing.T) {
	t.Parallel()
	tab := Table{Rows: []Row{compare("requests", 1, 2, 0, formatCount)}}
	assert.Equal(t, "| measure | azcred | azidentity | lower |\n|---|---:|---:|---|\n| requests | 1 | 2 | azcred (2.0×) |\n", tab.Markdown())
}

func TestMedianRun(t *testing.T) {
	t.Parallel()
	runs := []testing.BenchmarkResult{
		{N: 10, T: 3000 * time.Nanosecond},
		{N: 10, T: 1000 * time.Nanosecond},
		{N: 10, T: 2000 * time.Nanosecond},
	}
	assert.Equal(t, 200.0, nsPerOp(medianRun(runs)))
	assert.Equal(t, 300.0, nsPerOp(runs[0]), "the runs are left in their order")
	assert.Zero(t, nsPerOp(testing.BenchmarkResult{}))
}

// TestVM cannot run in parallel: it changes PATH and AZURE_*. Both
// libraries reach the emulator's IMDS through the redirecting client only;
// azcred's first token is its one token request.
func TestVM(t *testing.T) {
	requirePOSIX(t)
	for _, lib := range Libraries {
		t.Run(string(lib), func(t *testing.T) {
			r, err := VM(context.Background(), lib, 2)
			require.NoError(t, err)
			assert.Equal(t, 2, r.Runs)
			assert.Positive(t, r.Latency)
			if lib == Azcred {
				assert.Equal(t, 1.0, r.Requests, "one IMDS request per first token")
			} else {
				assert.GreaterOrEqual(t, r.Requests, 1.0)
			}
		})
	}
}

func TestSecondProcess(t *testing.T) {
	requirePOSIX(t)
	ctx := context.Background()
	_, keyErr := cache.DefaultKeyStore().Key("devtools")
	for _, firmware := range []bool{true, false} {
		a, err := SecondProcess(ctx, Azcred, 50*time.Millisecond, firmware)
		require.NoError(t, err)
		assert.Equal(t, 1, a.FirstRuns, "azcred's first process runs az")
		if errors.Is(keyErr, cache.ErrKeyStoreUnavailable) {
			assert.Equal(t, 1, a.SecondRuns, "no key store here: az runs again, as without the cache")
		} else {
			assert.Equal(t, 0, a.SecondRuns, "azcred's second process takes az's token from the persistent cache")
		}
		if firmware {
			assert.Equal(t, 0, a.SecondBlackholed, "a laptop's firmware: no IMDS probe")
		} else {
			assert.Positive(t, a.SecondBlackholed, "no firmware facts: IMDS is probed")
		}
	}
	b, err := SecondProcess(ctx, Azidentity, 50*time.Millisecond, true)
	require.NoError(t, err)
	assert.Equal(t, 1, b.FirstRuns)
	assert.Equal(t, 1, b.SecondRuns, "azidentity runs az in every process")
	assert.Positive(t, b.SecondBlackholed, "and probes IMDS in every process")
}

func TestOffAzureFirstProcess(t *testing.T) {
	requirePOSIX(t)
	a, err := OffAzureFirstProcess(context.Background(), Azcred, 50*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 1, a.Runs)
	assert.Equal(t, 0, a.Blackholed, "azcred does not probe IMDS where the firmware is not Microsoft's")
	b, err := OffAzureFirstProcess(context.Background(), Azidentity, 50*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 1, b.Runs)
	assert.Positive(t, b.Blackholed, "azidentity probes IMDS anyway")
}
