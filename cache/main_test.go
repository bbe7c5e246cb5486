package cache

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind. Tests wait
// for background fetches with Engine.Wait, never by sleeping.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
