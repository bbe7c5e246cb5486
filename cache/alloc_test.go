//go:build !race

package cache

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The race detector adds allocations of its own, hence the build tag.

func TestHitDoesNotAllocate(t *testing.T) {
	e := New(staticFetch, nil)
	t.Cleanup(e.Wait)
	ctx := context.Background()
	_, err := e.Get(ctx, vault)
	require.NoError(t, err)
	repeated := Request{Scopes: []string{vault.Scopes[0], vault.Scopes[0]}}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = e.Get(ctx, vault) }), "single-scope hit")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = e.Get(ctx, repeated) }), "one scope repeated")
	assert.Zero(t, testing.AllocsPerRun(100, func() { sink = keyOf(vault) }), "single-scope key")
}
