package benchmarks

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the child process of the
// developer-loop measurements.
func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(m.Run())
}
