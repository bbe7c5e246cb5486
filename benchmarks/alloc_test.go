//go:build !race

package benchmarks

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The race detector adds allocations of its own, hence the build tag.

// TestCachedGetTokenAllocations is the allocations row of the table as a
// test: azcred's cached GetToken allocates nothing, azidentity's does.
// AllocsPerRun forbids t.Parallel.
func TestCachedGetTokenAllocations(t *testing.T) {
	allocs := map[Library]float64{}
	for _, lib := range Libraries {
		e, err := newAuthority(0)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, e.Close()) })
		get, err := secretCredential(lib, e)
		require.NoError(t, err)
		ctx := context.Background()
		_, err = get(ctx)
		require.NoError(t, err)
		allocs[lib] = testing.AllocsPerRun(100, func() { _, _ = get(ctx) })
		assert.Equal(t, 1, tokenPOSTs(e), lib)
	}
	assert.Zero(t, allocs[Azcred])
	assert.Less(t, allocs[Azcred], allocs[Azidentity])
}
