package benchmarks

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the child processes of the
// measurements: one process of the developer-loop runs (ChildMain), or,
// started with FleetChildArg, one process of the fleet (cmd/fleet's part).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == FleetChildArg {
		os.Exit(FleetChild(os.Args[2:]))
	}
	ChildMain()
	os.Exit(m.Run())
}
