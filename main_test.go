package azcred

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them. The
// emulators close at each test's cleanup; connections that net/http keeps for
// reuse are its own, not goroutines azcred starts.
//
// No test writes to the persistent cache of the user running the tests:
// the developer tools' persistent cache is off unless a test gives its own
// store (devToolSeams.toolStore).
func TestMain(m *testing.M) {
	defaultToolStore = nil
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
