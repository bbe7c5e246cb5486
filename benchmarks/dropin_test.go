package benchmarks

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDropInFirstTokenAndCache checks the premises of the drop-in's rows:
// its first token takes one request, like the azcred core's, and its cached
// GetToken stays local.
func TestDropInFirstTokenAndCache(t *testing.T) {
	t.Parallel()
	f, err := FirstToken(context.Background(), DropIn, 2)
	require.NoError(t, err)
	assert.Equal(t, 1.0, f.Requests)
	body, done, err := cachedBench(context.Background(), DropIn, false)
	require.NoError(t, err)
	r := testing.Benchmark(body)
	require.NoError(t, done(), "one token request, no failed call")
	assert.Zero(t, r.AllocsPerOp(), "a cached GetToken of the drop-in allocates nothing")
}
