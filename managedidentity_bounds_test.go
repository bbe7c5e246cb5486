package azcred

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openFDs counts the process's open file descriptors (Linux).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestManagedIdentityManyCredentialsStayBounded makes 2,500 credentials (well
// past the registry's bound; each used to keep a connection of its own),
// each for its own user-assigned identity, against a loopback IMDS: the
// process-wide cache stays at its bound and the credentials share one
// connection pool instead of keeping a connection each.
func TestManagedIdentityManyCredentialsStayBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	var conns, reqs atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%s","expires_in":"3600","expires_on":"%d","resource":%q,"token_type":"Bearer","client_id":%q}`,
			r.URL.Query().Get("client_id"), time.Now().Add(time.Hour).Unix(), r.URL.Query().Get("resource"), r.URL.Query().Get("client_id"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	noHimds := filepath.Join(t.TempDir(), "no-himds")
	before := openFDs(t)
	const n = 2_500
	creds := make([]*ManagedIdentityCredential, 0, n)
	for i := range n {
		c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{
			ClientOptions: ClientOptions{getenv: func(string) string { return "" }},
			ID:            ClientID("client-" + strconv.Itoa(i)),
			IMDSEndpoint:  srv.URL,
			himdsPath:     noHimds,
		})
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), armRequest)
		require.NoError(t, err, "credential %d", i)
		require.Equal(t, "tok-client-"+strconv.Itoa(i), tok.Token)
		creds = append(creds, c)
	}
	grown := openFDs(t) - before
	miRegistryMu.Lock()
	entries := miRegistry.Len()
	miRegistryMu.Unlock()
	t.Logf("%d credentials: %d new descriptors, %d connections opened, %d registry entries", n, grown, conns.Load(), entries)
	assert.LessOrEqual(t, entries, miRegistryMax, "the process-wide cache is bounded")
	assert.Less(t, grown, 64, "descriptors do not grow with the number of credentials")
	assert.Less(t, conns.Load(), int64(64), "credentials share connections")

	// A credential whose entry was dropped from the registry keeps its own
	// cached token: no new request.
	reqsBefore := reqs.Load()
	tok, err := creds[0].GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, "tok-client-0", tok.Token)
	assert.Equal(t, reqsBefore, reqs.Load())
	assert.Equal(t, int64(n), reqs.Load(), "one request per identity")

	// Credentials given the same caller's client share its copy too.
	caller := &http.Client{Transport: &http.Transport{}}
	connsBefore, before := conns.Load(), openFDs(t)
	for i := range n {
		c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{
			ClientOptions: ClientOptions{getenv: func(string) string { return "" }, Transport: caller},
			ID:            ClientID("caller-" + strconv.Itoa(i)),
			IMDSEndpoint:  srv.URL,
			himdsPath:     noHimds,
		})
		require.NoError(t, err)
		_, err = c.GetToken(context.Background(), armRequest)
		require.NoError(t, err, "credential %d", i)
	}
	grown = openFDs(t) - before
	t.Logf("%d credentials with one caller transport: %d new descriptors, %d connections opened", n, grown, conns.Load()-connsBefore)
	assert.Less(t, grown, 64, "descriptors do not grow with the number of credentials")
	assert.Less(t, conns.Load()-connsBefore, int64(64), "credentials share connections")
}
