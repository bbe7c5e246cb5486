package probewait

import (
	"context"
	"testing"
)

func TestSignalCallsTheHookOfTheContext(t *testing.T) {
	t.Parallel()
	Signal(context.Background()) // no hook: nothing happens
	calls := 0
	ctx := With(context.Background(), func() { calls++ })
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	Signal(child)
	Signal(context.WithoutCancel(child)) // values survive, as in a cache engine's fetch
	if calls != 2 {
		t.Fatalf("the hook ran %d times, want 2", calls)
	}
}
