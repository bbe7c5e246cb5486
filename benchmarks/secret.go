package benchmarks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
)

// Library names one of the two libraries measured.
type Library string

// The libraries measured.
const (
	Azcred     Library = "azcred"
	Azidentity Library = "azidentity"
)

// Libraries lists the measured libraries, azcred first, in the order of the
// table's columns.
var Libraries = []Library{Azcred, Azidentity}

// check refuses a Library other than the two measured and the drop-in.
func (l Library) check() error {
	if l != Azcred && l != Azidentity && l != DropIn {
		return fmt.Errorf("benchmarks: unknown library %q; use %q or %q", l, Azcred, Azidentity)
	}
	return nil
}

// The app every client-secret measurement authenticates as.
const (
	benchTenant = "7d1c3f0e-2a4b-4c6d-8e0f-1a2b3c4d5e01"
	benchClient = "3a9e1f2b-4c5d-4e6f-8a7b-9c0d1e2f3a01"
	benchSecret = "side-by-side-secret"
	armScope    = "https://management.azure.com/.default"
)

// msalExpiryMargin is how long before ExpiresOn azidentity (MSAL) already
// treats a cached token as expired: its cache refuses tokens that expire
// within the next 5 minutes.
const msalExpiryMargin = 5 * time.Minute

// newAuthority starts an emulator whose tokens live for lifetime and that
// knows the benchmark app.
func newAuthority(lifetime time.Duration) (*emulator.Emulator, error) {
	e, err := emulator.New(&emulator.Options{TokenLifetime: lifetime})
	if err != nil {
		return nil, err
	}
	if err := e.RegisterApp(emulator.App{TenantID: benchTenant, ClientID: benchClient, Secrets: []string{benchSecret}}); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	return e, nil
}

// getFunc is one GetToken call of a credential for the ARM scope; it
// returns the token's expiry.
type getFunc func(ctx context.Context) (time.Time, error)

// secretCredential builds lib's ClientSecretCredential against e, with the
// settings a user would give: azcred needs only the authority host,
// azidentity also instance discovery turned off (the emulator is not a
// known cloud). Both send through the emulator's client.
func secretCredential(lib Library, e *emulator.Emulator) (getFunc, error) {
	switch lib {
	case Azcred:
		// Each credential stands for a new process: without the opt-out,
		// credentials of one identity and secret in this process would share
		// one cache, and a new one would cost no request at all.
		c, err := azcred.NewClientSecretCredential(benchTenant, benchClient, benchSecret, &azcred.ClientSecretCredentialOptions{
			ClientOptions:       azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()},
			DisableTokenSharing: true,
		})
		if err != nil {
			return nil, err
		}
		opts := azcred.TokenRequestOptions{Scopes: []string{armScope}}
		return func(ctx context.Context) (time.Time, error) {
			tok, err := c.GetToken(ctx, opts)
			return tok.ExpiresOn, err
		}, nil
	case Azidentity:
		c, err := azidentity.NewClientSecretCredential(benchTenant, benchClient, benchSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcoreOptions(e),
			DisableInstanceDiscovery: true,
		})
		if err != nil {
			return nil, err
		}
		opts := policy.TokenRequestOptions{Scopes: []string{armScope}}
		return func(ctx context.Context) (time.Time, error) {
			tok, err := c.GetToken(ctx, opts)
			return tok.ExpiresOn, err
		}, nil
	case DropIn:
		return dropInCredential(e)
	}
	return nil, lib.check()
}

// azcoreOptions points azidentity at e.
func azcoreOptions(e *emulator.Emulator) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL() + "/"},
		Transport: e.Client(),
	}
}

// tokenPOSTs counts the token requests e received.
func tokenPOSTs(e *emulator.Emulator) int {
	n := 0
	for _, r := range e.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// warm opens a connection to e through its client, so that the first
// measured request of either library finds one in the pool instead of paying
// for a TLS handshake, then forgets the request.
func warm(ctx context.Context, e *emulator.Emulator) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL()+"/"+benchTenant+"/v2.0/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := e.Client().Do(req)
	if err != nil {
		return err
	}
	if err := resp.Body.Close(); err != nil {
		return err
	}
	e.ResetRequests()
	return nil
}

// FirstTokenResult is what [FirstToken] saw.
type FirstTokenResult struct {
	// Runs is how many new credentials got their first token.
	Runs int
	// Requests is the mean number of HTTP requests one first token took.
	Requests float64
	// Latency is the median time from the credential's construction to its
	// first token.
	Latency time.Duration
}

// FirstToken constructs runs new client-secret credentials of lib one after
// another against one emulator and gets each one's first token, counting
// the HTTP requests that reached the emulator and timing construction plus
// GetToken. The emulator's connection is opened beforehand, so no run pays
// for a TLS handshake.
func FirstToken(ctx context.Context, lib Library, runs int) (FirstTokenResult, error) {
	if err := lib.check(); err != nil {
		return FirstTokenResult{}, err
	}
	if runs < 1 {
		return FirstTokenResult{}, fmt.Errorf("benchmarks: FirstToken needs at least one run, got %d", runs)
	}
	e, err := newAuthority(0)
	if err != nil {
		return FirstTokenResult{}, err
	}
	defer e.Close()
	if err := warm(ctx, e); err != nil {
		return FirstTokenResult{}, err
	}
	latencies := make([]time.Duration, 0, runs)
	for range runs {
		start := time.Now()
		get, err := secretCredential(lib, e)
		if err != nil {
			return FirstTokenResult{}, err
		}
		if _, err := get(ctx); err != nil {
			return FirstTokenResult{}, fmt.Errorf("benchmarks: %s's first token: %w", lib, err)
		}
		latencies = append(latencies, time.Since(start))
	}
	return FirstTokenResult{
		Runs:     runs,
		Requests: float64(len(e.Requests())) / float64(runs),
		Latency:  median(latencies),
	}, nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cachedBench prepares lib's client-secret credential holding a token and
// returns a benchmark body that calls its GetToken, one goroutine or
// parallel, and a func that ends the emulator and reports whether any call
// failed or reached the authority.
func cachedBench(ctx context.Context, lib Library, parallel bool) (body func(*testing.B), done func() error, err error) {
	if err := lib.check(); err != nil {
		return nil, nil, err
	}
	e, err := newAuthority(0)
	if err != nil {
		return nil, nil, err
	}
	get, err := secretCredential(lib, e)
	if err == nil {
		_, err = get(ctx)
	}
	if err != nil {
		return nil, nil, errors.Join(err, e.Close())
	}
	var failure atomic.Pointer[error]
	fail := func(b *testing.B, err error) {
		failure.CompareAndSwap(nil, &err)
		b.Error(err)
	}
	body = func(b *testing.B) {
		b.ReportAllocs()
		if !parallel {
			for b.Loop() {
				if _, err := get(ctx); err != nil {
					fail(b, err)
					return
				}
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := get(ctx); err != nil {
					fail(b, err)
					return
				}
			}
		})
	}
	done = func() error {
		var errs []error
		if p := failure.Load(); p != nil {
			errs = append(errs, fmt.Errorf("benchmarks: %s's cached GetToken failed: %w", lib, *p))
		}
		if n := tokenPOSTs(e); n != 1 {
			errs = append(errs, fmt.Errorf("benchmarks: %s's cached GetToken sent %d token requests, want the first one only", lib, n))
		}
		return errors.Join(append(errs, e.Close())...)
	}
	return body, done, nil
}

// CachedGetToken measures GetToken of lib's client-secret credential while
// it holds a token that is far from expiry (an hour, well outside MSAL's
// last 5 minutes), with [testing.Benchmark]: from one goroutine, or from
// GOMAXPROCS goroutines when parallel is true.
func CachedGetToken(ctx context.Context, lib Library, parallel bool) (testing.BenchmarkResult, error) {
	body, done, err := cachedBench(ctx, lib, parallel)
	if err != nil {
		return testing.BenchmarkResult{}, err
	}
	r := testing.Benchmark(body)
	return r, done()
}

// StormResult is what [Storm] saw.
type StormResult struct {
	// Callers is how many goroutines called GetToken at once.
	Callers int
	// Requests is how many HTTP requests reached the authority.
	Requests int
	// Worst is the longest any caller waited for its token.
	Worst time.Duration
	// Median is the median caller's wait.
	Median time.Duration
}

// stormLifetime is how long the storm's tokens live past the point where
// each library stops handing them out, so that the wait for expiry is short.
const stormLifetime = time.Second

// Storm lets lib's client-secret credential get a token, waits until that
// token is expired by the library's own rule (azcred: past ExpiresOn;
// azidentity: inside MSAL's last 5 minutes, so its tokens live 5 minutes
// longer), then releases callers goroutines at once into GetToken. It counts
// the token requests they caused and how long each waited.
func Storm(ctx context.Context, lib Library, callers int) (StormResult, error) {
	if err := lib.check(); err != nil {
		return StormResult{}, err
	}
	if callers < 1 {
		return StormResult{}, fmt.Errorf("benchmarks: Storm needs at least one caller, got %d", callers)
	}
	lifetime := stormLifetime
	if lib == Azidentity {
		lifetime += msalExpiryMargin
	}
	e, err := newAuthority(lifetime)
	if err != nil {
		return StormResult{}, err
	}
	defer e.Close()
	get, err := secretCredential(lib, e)
	if err != nil {
		return StormResult{}, err
	}
	exp, err := get(ctx)
	if err != nil {
		return StormResult{}, err
	}
	if lib == Azidentity {
		exp = exp.Add(-msalExpiryMargin)
	}
	// The token the storm fetches lives an hour, so that no caller, however
	// late the scheduler runs it, finds it stale and causes a second fetch.
	e.SetTokenLifetime(time.Hour + msalExpiryMargin)
	e.ResetRequests()

	// Park every caller before the token expires, then release them all.
	start := make(chan struct{})
	var parked, finished sync.WaitGroup
	waits := make([]time.Duration, callers)
	errs := make([]error, callers)
	for i := range callers {
		parked.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			parked.Done()
			<-start
			t0 := time.Now()
			_, errs[i] = get(ctx)
			waits[i] = time.Since(t0)
		}()
	}
	parked.Wait()
	timer := time.NewTimer(time.Until(exp) + 20*time.Millisecond)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
		close(start)
		finished.Wait()
		return StormResult{}, ctx.Err()
	}
	close(start)
	finished.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		return StormResult{}, fmt.Errorf("benchmarks: %d of %s's %d storm callers failed, the first with: %w", failed, lib, callers, first)
	}
	return StormResult{
		Callers:  callers,
		Requests: len(e.Requests()),
		Worst:    slices.Max(waits),
		Median:   median(waits),
	}, nil
}
