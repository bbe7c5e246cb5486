package emulator

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddrMustBeLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.0.0.1:8443", "example.com:443", "nonsense"} {
		_, err := New(&Options{Addr: addr})
		require.Error(t, err, addr)
		assert.Contains(t, err.Error(), "Options.Addr", addr)
	}
	// A fixed loopback port is honoured.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	e, err := New(&Options{Addr: addr})
	require.NoError(t, err)
	defer e.Close()
	assert.Equal(t, "https://"+addr, e.URL())
}
