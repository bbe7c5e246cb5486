package azcred

import (
	"context"
	"crypto/sha1" // #nosec G505 -- Service Fabric names its certificate by SHA-1 thumbprint
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagedIdentityServiceFabricCredentialsShareTransport makes many
// Service Fabric credentials for one pinned endpoint, each asking for its
// own resource, against a loopback TLS server: they share one pinned
// transport and its connection pool, so descriptors and connections do not
// grow with the number of credentials (each used to copy a transport and
// keep its own TLS connection open).
func TestManagedIdentityServiceFabricCredentialsShareTransport(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	var conns, reqs atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%s","expires_on":%d,"resource":%q,"token_type":"Bearer"}`,
			r.URL.Query().Get("resource"), time.Now().Add(time.Hour).Unix(), r.URL.Query().Get("resource"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	sum := sha1.Sum(srv.Certificate().Raw) // #nosec G401
	getenv := envMap(EnvIdentityEndpoint, srv.URL+"/metadata/identity/oauth2/token", EnvIdentityHeader, "sf-header",
		EnvIdentityServerThumbprint, hex.EncodeToString(sum[:]))
	noHimds := filepath.Join(t.TempDir(), "no-himds")

	const n = 300
	run := func(label string, transport *http.Client) {
		t.Helper()
		connsBefore, reqsBefore, before := conns.Load(), reqs.Load(), openFDs(t)
		for i := range n {
			c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{
				ClientOptions: ClientOptions{getenv: getenv, Transport: doerOrNil(transport)},
				himdsPath:     noHimds,
			})
			require.NoError(t, err)
			resource := "https://" + label + strconv.Itoa(i) + ".example"
			tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{resource + "/.default"}})
			require.NoError(t, err, "credential %d", i)
			require.Equal(t, "tok-"+resource, tok.Token)
		}
		grown, opened := openFDs(t)-before, conns.Load()-connsBefore
		t.Logf("%d Service Fabric credentials (%s): %d new descriptors, %d connections opened", n, label, grown, opened)
		assert.Equal(t, int64(n), reqs.Load()-reqsBefore, "one request per resource")
		assert.Less(t, grown, 32, "descriptors do not grow with the number of credentials")
		assert.Less(t, opened, int64(32), "credentials share connections")
	}
	run("default", nil)
	// Credentials given the same caller's client share its pinned copy too.
	run("caller", &http.Client{Transport: &http.Transport{}})
}

// doerOrNil keeps a nil *http.Client out of the Transport option's
// interface, where it would not compare equal to nil.
func doerOrNil(c *http.Client) Doer {
	if c == nil {
		return nil
	}
	return c
}
