package benchmarks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/azcred/azcred"
)

// fakeAzToken is the access token the fake az prints. Neither library
// looks inside a developer tool's token.
const fakeAzToken = "fake-az-access-token"

// fakeAz is a directory holding an executable `az` that answers
// `az account get-access-token` after a fixed delay, as the real one does
// when it is signed in, and appends a line to a file each time it runs.
type fakeAz struct {
	dir   string
	count string
}

// newFakeAz writes the fake az into a new temporary directory. It is a
// POSIX shell script whose only external command is sleep, named by its
// absolute path, because it runs with PATH holding only its own directory.
func newFakeAz(latency time.Duration) (*fakeAz, error) {
	if runtime.GOOS == "windows" {
		return nil, errors.New("benchmarks: the fake az is a POSIX shell script; run the developer-tool measurements on Linux or macOS")
	}
	sleep := ""
	if latency > 0 {
		p, err := exec.LookPath("sleep")
		if err != nil {
			return nil, fmt.Errorf("benchmarks: the fake az needs sleep(1): %w", err)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		sleep = fmt.Sprintf("%s %.3f\n", shellQuote(abs), latency.Seconds())
	}
	dir, err := os.MkdirTemp("", "azcred-fake-az-")
	if err != nil {
		return nil, err
	}
	f := &fakeAz{dir: dir, count: filepath.Join(dir, "runs")}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	answer := fmt.Sprintf(`{"accessToken":%q,"expiresOn":%q,"expires_on":%d,"subscription":%q,"tenant":%q,"tokenType":"Bearer"}`,
		fakeAzToken, exp.Local().Format("2006-01-02 15:04:05.000000"), exp.Unix(), "0f1e2d3c-4b5a-4968-8776-655443322110", benchTenant)
	script := "#!/bin/sh\n" +
		"echo run >> " + shellQuote(f.count) + "\n" +
		`if [ "$1 $2" != "account get-access-token" ]; then echo "fake az: unexpected command: $*" >&2; exit 2; fi` + "\n" +
		sleep +
		"printf '%s\\n' " + shellQuote(answer) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return f, nil
}

// runs is how many times the fake az has run.
func (f *fakeAz) runs() (int, error) {
	b, err := os.ReadFile(f.count)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return bytes.Count(b, []byte("\n")), err
}

func (f *fakeAz) remove() error { return os.RemoveAll(f.dir) }

// shellQuote quotes s as one word for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// credentialEnvPrefixes are the prefixes of the environment variables that
// make either library's DefaultAzureCredential or developer-tool
// credentials look somewhere else: Azure's own settings and the
// managed-identity endpoints of App Service, Arc, Cloud Shell, Service
// Fabric and IMDS.
var credentialEnvPrefixes = []string{"AZURE_", "IDENTITY_", "MSI_", "IMDS_"}

// isolateEnv makes the process's environment that of a laptop where the
// fake tools in dir are the only programs installed: PATH is dir alone and
// every variable with a prefix in credentialEnvPrefixes is removed. Both
// libraries still run /bin/sh by its absolute path (azidentity starts az
// through `/bin/sh -c`; azcred runs the executable it finds in PATH).
// restore puts back every variable it changed.
func isolateEnv(dir string) (restore func()) {
	saved := map[string]string{}
	absent := []string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		for _, p := range credentialEnvPrefixes {
			if strings.HasPrefix(strings.ToUpper(k), p) {
				saved[k] = v
				os.Unsetenv(k)
				break
			}
		}
	}
	if v, ok := os.LookupEnv("PATH"); ok {
		saved["PATH"] = v
	} else {
		absent = append(absent, "PATH")
	}
	os.Setenv("PATH", dir)
	// The tools' sign-in folders and azcred's persistent cache are the
	// run's own (in dir), never the user's.
	for k, v := range map[string]string{"HOME": dir, "XDG_CACHE_HOME": filepath.Join(dir, ".cache")} {
		if old, ok := os.LookupEnv(k); ok {
			saved[k] = old
		} else {
			absent = append(absent, k)
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, v := range saved {
			os.Setenv(k, v)
		}
		for _, k := range absent {
			os.Unsetenv(k)
		}
	}
}

// CLIResult is what [AzureCLI] saw.
type CLIResult struct {
	// Calls is how many times GetToken was called.
	Calls int
	// Processes is how many times az ran.
	Processes int
	// Elapsed is the time all calls took together.
	Elapsed time.Duration
}

// AzureCLI calls GetToken of lib's AzureCLICredential calls times in a row
// for one scope, with a fake az that takes latency per run and prints a
// token valid for an hour, and counts the az processes. It changes the
// process's environment while it runs (see the package documentation).
func AzureCLI(ctx context.Context, lib Library, calls int, latency time.Duration) (CLIResult, error) {
	if err := lib.check(); err != nil {
		return CLIResult{}, err
	}
	az, err := newFakeAz(latency)
	if err != nil {
		return CLIResult{}, err
	}
	defer az.remove()
	restore := isolateEnv(az.dir)
	defer restore()

	var get func(context.Context) (string, error)
	switch lib {
	case Azcred:
		c, err := azcred.NewAzureCLICredential(nil)
		if err != nil {
			return CLIResult{}, err
		}
		get = func(ctx context.Context) (string, error) {
			tok, err := c.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{armScope}})
			return tok.Token, err
		}
	case Azidentity:
		c, err := azidentity.NewAzureCLICredential(nil)
		if err != nil {
			return CLIResult{}, err
		}
		get = func(ctx context.Context) (string, error) {
			tok, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{armScope}})
			return tok.Token, err
		}
	default:
		return CLIResult{}, lib.check()
	}
	start := time.Now()
	for range calls {
		tok, err := get(ctx)
		if err != nil {
			return CLIResult{}, fmt.Errorf("benchmarks: %s's AzureCLICredential: %w", lib, err)
		}
		if tok != fakeAzToken {
			return CLIResult{}, fmt.Errorf("benchmarks: %s's AzureCLICredential returned a token the fake az did not print", lib)
		}
	}
	elapsed := time.Since(start)
	n, err := az.runs()
	return CLIResult{Calls: calls, Processes: n, Elapsed: elapsed}, err
}

// blackhole records the connections a client tried to open to addresses
// other than loopback, and never opens them.
type blackhole struct {
	mu    sync.Mutex
	addrs []string
	hc    *http.Client
}

// laptopNet is the one blackholed client every [Laptop] run gives its
// credential, whichever the library. One client for the whole process
// matters beyond fairness: azcred caches managed-identity tokens
// process-wide, and a later credential's fetches go through the client of
// the credential that created the cache entry.
var laptopNet = newBlackhole()

// newBlackhole makes a blackhole whose client's dialer connects to
// loopback addresses as usual and, for any other address (169.254.169.254
// among them), sends nothing and blocks until the dial's context ends, as a
// connection to a blackholed address does on a laptop that is not in Azure.
func newBlackhole() *blackhole {
	h := &blackhole{}
	var d net.Dialer
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return d.DialContext(ctx, network, addr)
		}
		h.mu.Lock()
		h.addrs = append(h.addrs, addr)
		h.mu.Unlock()
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	h.hc = &http.Client{Transport: t}
	return h
}

// dials returns how many dials h has seen, and since(n) the addresses of
// those after the first n.
func (h *blackhole) dials() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.addrs)
}

func (h *blackhole) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.addrs[n:])
}

// LaptopResult is what [Laptop] saw.
type LaptopResult struct {
	// Elapsed is the time from constructing DefaultAzureCredential to its
	// first token.
	Elapsed time.Duration
	// Blackholed lists the addresses ("host:port") of the connections the
	// credential tried to open to anything but loopback, in order: the IMDS
	// probe's, 169.254.169.254:80.
	Blackholed []string
}

// Laptop measures DefaultAzureCredential's time to its first token on a
// simulated developer laptop: no AZURE_* variables, a fake az that takes
// azLatency on a PATH holding only it, and an *http.Client (given to the
// credential as its transport; the same one for both libraries and every
// run) on which 169.254.169.254 never answers. Both
// libraries keep their default IMDS probe timeout (one second). It changes
// the process's environment while it runs (see the package documentation).
func Laptop(ctx context.Context, lib Library, azLatency time.Duration) (LaptopResult, error) {
	if err := lib.check(); err != nil {
		return LaptopResult{}, err
	}
	az, err := newFakeAz(azLatency)
	if err != nil {
		return LaptopResult{}, err
	}
	defer az.remove()
	restore := isolateEnv(az.dir)
	defer restore()

	before := laptopNet.dials()
	elapsed, err := laptopToken(ctx, lib)
	if err != nil {
		return LaptopResult{}, err
	}
	return LaptopResult{Elapsed: elapsed, Blackholed: laptopNet.since(before)}, nil
}

// laptopToken times lib's DefaultAzureCredential from construction to its
// first token in this process's environment, with the blackholed client as
// its transport, and checks that the token is the fake az's.
func laptopToken(ctx context.Context, lib Library) (time.Duration, error) {
	hc := laptopNet.hc
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	start := time.Now()
	var tok string
	switch lib {
	case Azcred:
		c, err := azcred.NewDefaultAzureCredential(&azcred.DefaultAzureCredentialOptions{
			ClientOptions: azcred.ClientOptions{Transport: hc},
		})
		if err != nil {
			return 0, err
		}
		t, err := c.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{armScope}})
		if err != nil {
			return 0, fmt.Errorf("benchmarks: %s's DefaultAzureCredential: %w", lib, err)
		}
		tok = t.Token
	case Azidentity:
		c, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: hc},
		})
		if err != nil {
			return 0, err
		}
		t, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{armScope}})
		if err != nil {
			return 0, fmt.Errorf("benchmarks: %s's DefaultAzureCredential: %w", lib, err)
		}
		tok = t.Token
	default:
		return 0, lib.check()
	}
	elapsed := time.Since(start)
	if tok != fakeAzToken {
		return 0, fmt.Errorf("benchmarks: %s's DefaultAzureCredential returned a token the fake az did not print", lib)
	}
	return elapsed, nil
}

// BinarySizesResult is what [BinarySizes] saw, in bytes.
type BinarySizesResult struct {
	// Sizes holds each library's minimal DefaultAzureCredential program.
	Sizes map[Library]int64
	// Baseline is the program that only fetches and decodes a JSON document
	// over HTTPS with the standard library, the floor under both.
	Baseline int64
}

// BinarySizes builds the minimal DefaultAzureCredential program of each
// library (./minimal/azcred and ./minimal/azidentity) and the standard
// library baseline (./minimal/nethttp) with
// `go build -trimpath -ldflags='-s -w'` and returns their sizes. moduleDir
// is the benchmarks module's directory; "" means the current directory,
// which must lie inside it. It needs the go command and the modules in the
// module cache (it works offline once `go mod download` ran).
func BinarySizes(ctx context.Context, moduleDir string) (BinarySizesResult, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return BinarySizesResult{}, fmt.Errorf("benchmarks: building the minimal programs needs the go command on PATH: %w", err)
	}
	out, err := os.MkdirTemp("", "azcred-binsize-")
	if err != nil {
		return BinarySizesResult{}, err
	}
	defer os.RemoveAll(out)
	build := func(name string) (int64, error) {
		bin := filepath.Join(out, name)
		cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", bin,
			"github.com/azcred/azcred/benchmarks/minimal/"+name)
		cmd.Dir = moduleDir
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("benchmarks: go build of the minimal %s program: %w\n%s", name, err, b)
		}
		fi, err := os.Stat(bin)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	r := BinarySizesResult{Sizes: map[Library]int64{}}
	for _, lib := range Libraries {
		if r.Sizes[lib], err = build(string(lib)); err != nil {
			return BinarySizesResult{}, err
		}
	}
	if r.Baseline, err = build("nethttp"); err != nil {
		return BinarySizesResult{}, err
	}
	return r, nil
}
