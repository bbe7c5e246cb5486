package benchmarks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred/azcredtest/emulator"
	dropin "github.com/azcred/azcred/azsdk/azidentity"
)

// DropIn is azcred's drop-in for azidentity (azsdk/azidentity): azidentity's
// API on the azcred core. It is measured in the rows of its own that
// compare it with azidentity, not in every row.
const DropIn Library = "azsdk/azidentity"

// dropInCredential builds the drop-in's ClientSecretCredential against e
// exactly as azidentity's is built (same options, same azcore types), minus
// DisableInstanceDiscovery, which the drop-in ignores.
func dropInCredential(e *emulator.Emulator) (getFunc, error) {
	c, err := dropin.NewClientSecretCredential(benchTenant, benchClient, benchSecret, &dropin.ClientSecretCredentialOptions{
		ClientOptions: azcoreOptions(e),
	})
	if err != nil {
		return nil, err
	}
	opts := policy.TokenRequestOptions{Scopes: []string{armScope}}
	return func(ctx context.Context) (time.Time, error) {
		tok, err := c.GetToken(ctx, opts)
		return tok.ExpiresOn, err
	}, nil
}

// dropInRows measures the drop-in's first token and cached GetToken (one
// goroutine, the median of o.CachedRepeats runs) and returns the rows that
// put them beside azidentity's figures from the same run (first and
// single[1]); the cached row's label also gives the azcred core's figure
// (single[0]), the drop-in's target being within 2× of it.
func dropInRows(ctx context.Context, o RunOptions, first FirstTokenResult, single [2]testing.BenchmarkResult) ([]Row, error) {
	fmt.Fprintf(o.Progress, "first token: %s\n", DropIn)
	f, err := FirstToken(ctx, DropIn, o.FirstTokenRuns)
	if err != nil {
		return nil, err
	}
	var runs []testing.BenchmarkResult
	for i := range o.CachedRepeats {
		fmt.Fprintf(o.Progress, "cached GetToken, 1 goroutine, run %d of %d: %s\n", i+1, o.CachedRepeats, DropIn)
		r, err := CachedGetToken(ctx, DropIn, false)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	c := medianRun(runs)
	core := nsPerOp(single[0])
	label := fmt.Sprintf("Drop-in %s (azcred column), cached GetToken (1 goroutine, median of %d; azcred core %.1f ns/op, drop-in %.2f× of it)", DropIn, o.CachedRepeats, core, nsPerOp(c)/core)
	return []Row{
		compare("Drop-in "+string(DropIn)+" (azcred column), first token, client secret: HTTP requests", f.Requests, first.Requests, 0, formatCount),
		compare(fmt.Sprintf("Drop-in %s (azcred column), first token, client secret: latency (median of %d, loopback)", DropIn, o.FirstTokenRuns),
			float64(f.Latency), float64(first.Latency), timingTolerance, formatDuration),
		compare(label+": time", nsPerOp(c), nsPerOp(single[1]), timingTolerance, formatNsOp),
		compare("Drop-in "+string(DropIn)+" (azcred column), cached GetToken (1 goroutine): allocations", float64(c.AllocsPerOp()), float64(single[1].AllocsPerOp()), 0, formatAllocs),
	}, nil
}
