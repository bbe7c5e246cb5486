package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
)

// VMResult is what [VM] saw.
type VMResult struct {
	// Runs is how many first tokens were measured.
	Runs int
	// Requests is the number of IMDS requests per first token.
	Requests float64
	// Latency is the median time from constructing DefaultAzureCredential
	// to its first token.
	Latency time.Duration
}

// imdsAddr is the address both libraries send IMDS requests to.
const imdsAddr = "169.254.169.254:80"

// vmClient returns an *http.Client whose dialer connects every connection
// meant for IMDS (169.254.169.254:80) to the loopback address to instead,
// and refuses any other address that is not loopback: a VM's network,
// without a packet leaving the machine.
func vmClient(to string) *http.Client {
	var d net.Dialer
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == imdsAddr {
			return d.DialContext(ctx, network, to)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("benchmarks: refusing to dial %s, which is not loopback", addr)
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: t}
}

// vmHost is a simulated Azure VM: the emulator's IMDS on loopback, reached
// at 169.254.169.254 through client. Each first token asks for a resource of
// its own, because both libraries cache managed-identity tokens beyond one
// credential.
type vmHost struct {
	e    *emulator.Emulator
	imds *emulator.MIHost
	addr string // the IMDS listener's loopback address
	next int    // the next resource's number
}

func newVMHost() (*vmHost, error) {
	e, err := emulator.New(nil)
	if err != nil {
		return nil, err
	}
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	imds, err := e.StartIMDS()
	if err != nil {
		return nil, errors.Join(err, e.Close())
	}
	u, err := url.Parse(imds.URL())
	if err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return &vmHost{e: e, imds: imds, addr: u.Host}, nil
}

func (h *vmHost) Close() error { return h.e.Close() }

// firstToken constructs lib's DefaultAzureCredential and gets its first
// token, for a resource no earlier call asked for, through a client of its
// own: a process's first token includes connecting to IMDS, and neither
// library may reuse a connection an earlier run opened.
func (h *vmHost) firstToken(ctx context.Context, lib Library) error {
	scope := fmt.Sprintf("https://vm-bench-%d.example.com/.default", h.next)
	h.next++
	hc := vmClient(h.addr)
	defer hc.CloseIdleConnections()
	switch lib {
	case Azcred:
		c, err := azcred.NewDefaultAzureCredential(&azcred.DefaultAzureCredentialOptions{ClientOptions: azcred.ClientOptions{Transport: hc}})
		if err != nil {
			return err
		}
		if _, err := c.GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
			return fmt.Errorf("benchmarks: %s's DefaultAzureCredential on a VM: %w", lib, err)
		}
	case Azidentity:
		c, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
		if err != nil {
			return err
		}
		if _, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}}); err != nil {
			return fmt.Errorf("benchmarks: %s's DefaultAzureCredential on a VM: %w", lib, err)
		}
	default:
		return lib.check()
	}
	return nil
}

// isolateVM makes the process's environment that of a VM with no
// developer tools: no AZURE_* variables and an empty search path.
func isolateVM() (restore func(), err error) {
	empty, err := os.MkdirTemp("", "azcred-bench-vm-")
	if err != nil {
		return nil, err
	}
	undo := isolateEnv(empty)
	return func() {
		undo()
		os.RemoveAll(empty)
	}, nil
}

// VM measures DefaultAzureCredential's first token on a simulated Azure VM:
// no AZURE_* variables, no developer tools on the search path, and IMDS
// answering at 169.254.169.254 (the emulator's IMDS on loopback, reached
// through [vmClient], a new one for each run, given to the credential as
// its transport). It changes
// the process's environment while it runs (see the package documentation).
func VM(ctx context.Context, lib Library, runs int) (VMResult, error) {
	if err := lib.check(); err != nil {
		return VMResult{}, err
	}
	if runs < 1 {
		return VMResult{}, fmt.Errorf("benchmarks: VM needs at least one run, got %d", runs)
	}
	h, err := newVMHost()
	if err != nil {
		return VMResult{}, err
	}
	defer h.Close()
	restore, err := isolateVM()
	if err != nil {
		return VMResult{}, err
	}
	defer restore()
	latencies := make([]time.Duration, 0, runs)
	for range runs {
		start := time.Now()
		if err := h.firstToken(ctx, lib); err != nil {
			return VMResult{}, err
		}
		latencies = append(latencies, time.Since(start))
	}
	return VMResult{Runs: runs, Requests: float64(len(h.imds.Requests())) / float64(runs), Latency: median(latencies)}, nil
}
