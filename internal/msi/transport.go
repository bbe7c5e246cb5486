package msi

import (
	"context"
	"crypto/sha1" // #nosec G505 -- Service Fabric names its certificate by SHA-1 thumbprint
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/azcred/azcred/internal/httpx"
)

// dialBoundKey is the request-context key of a connection bound: a
// time.Duration that limits each dial of the request.
type dialBoundKey struct{}

// boundDial makes t limit each connection attempt by the bound in the
// request's context, when there is one. The bound rides on the request, not
// on the transport, so one transport (and its connection pool) serves
// clients in and out of chain mode.
func boundDial(t *http.Transport) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d, ok := ctx.Value(dialBoundKey{}).(time.Duration)
		if !ok {
			return dial(ctx, network, addr)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return dial(ctx, network, addr)
	}
}

// sharedDirect is the process-wide client of IMDS and Arc clients built
// without a caller's transport: azcred's default transport without a proxy,
// with boundDial. Sharing it keeps one connection pool per endpoint however
// many credentials the process makes (each used to hold its own pool, and
// with it idle connections, for as long as it lived).
var sharedDirect = sync.OnceValue(func() *http.Client {
	hc, err := httpx.CloneClient(nil)
	if err != nil {
		panic(err) // CloneClient(nil) cannot fail
	}
	t := hc.Transport.(*http.Transport)
	t.Proxy = nil
	boundDial(t)
	return hc
})

// probeBounding sends through hc, adding the probe's connection bound to a
// request's context while probing reports true (a chain's first contact
// with IMDS). hc does not follow redirects.
type probeBounding struct {
	hc      *http.Client
	bound   time.Duration
	probing func() bool
}

func (p probeBounding) Do(req *http.Request) (*http.Response, error) {
	if p.probing() {
		req = req.WithContext(context.WithValue(req.Context(), dialBoundKey{}, p.bound))
	}
	return p.hc.Do(req)
}

// errThumbprint is the pinning failure.
var errThumbprint = errors.New("the Service Fabric endpoint's certificate does not match IDENTITY_SERVER_THUMBPRINT")

// pinnedClient copies the caller's client so that its TLS accepts exactly
// the server certificate whose SHA-1 thumbprint is thumbprint (hex, with
// any ':' or spaces), as Service Fabric's self-signed endpoint requires.
func pinnedClient(d httpx.Doer, thumbprint string) (*http.Client, error) {
	want, err := decodeThumbprint(thumbprint)
	if err != nil {
		return nil, err
	}
	hc, err := httpx.CloneClient(d)
	if err != nil {
		return nil, &ConfigError{"Service Fabric managed identity pins the endpoint's certificate, so ClientOptions.Transport must be nil or an *http.Client whose Transport is nil or an *http.Transport"}
	}
	t := hc.Transport.(*http.Transport)
	//lint:ignore SA1019 a transport that dials TLS through the deprecated hook is refused too
	if t.DialTLSContext != nil || t.DialTLS != nil {
		return nil, &ConfigError{"Service Fabric managed identity pins the endpoint's certificate, so ClientOptions.Transport must not dial TLS itself (DialTLSContext)"}
	}
	var cfg *tls.Config
	if t.TLSClientConfig != nil {
		cfg = t.TLSClientConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.InsecureSkipVerify = true // #nosec G402 -- replaced by the pin below
	cfg.VerifyPeerCertificate = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &tls.CertificateVerificationError{Err: errThumbprint}
		}
		got := sha1.Sum(cs.PeerCertificates[0].Raw) // #nosec G401
		if string(got[:]) != string(want) {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: errThumbprint}
		}
		return nil
	}
	t.TLSClientConfig = cfg
	t.Proxy = nil
	return hc, nil
}

func decodeThumbprint(s string) ([]byte, error) {
	clean := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha1.Size {
		return nil, &ConfigError{fmt.Sprintf("IDENTITY_SERVER_THUMBPRINT is not a SHA-1 thumbprint (40 hex digits): got %d characters", len(clean))}
	}
	return b, nil
}

// directClient returns the client IMDS and Arc requests go through: for no
// transport, the shared sharedDirect; for a caller's *http.Client whose
// Transport is nil or an *http.Transport, a copy of the client whose
// transport is directTransport's copy of it. Other Doers give an error and
// are used as they are.
func directClient(d httpx.Doer) (*http.Client, error) {
	if hc, ok := d.(*http.Client); d == nil || ok && hc == nil {
		return sharedDirect(), nil
	}
	hc, ok := d.(*http.Client)
	if !ok {
		return nil, httpx.ErrCannotClone
	}
	var t *http.Transport
	switch ct := hc.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport)
	case *http.Transport:
		t = ct
	default:
		return nil, httpx.ErrCannotClone
	}
	cp := *hc
	cp.Transport = directTransport(t)
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp, nil
}

// directTransports holds, per caller transport, its copy without a proxy
// and with boundDial: every credential given the same transport shares the
// copy and its connection pool. The key is weak, so the entry goes when
// the caller's transport does. A copy is taken when the transport is first
// seen; later changes to the caller's transport do not reach it.
var (
	directMu         sync.Mutex
	directTransports = map[weak.Pointer[http.Transport]]*http.Transport{}
)

func directTransport(t *http.Transport) *http.Transport {
	k := weak.Make(t)
	directMu.Lock()
	defer directMu.Unlock()
	if c := directTransports[k]; c != nil {
		return c
	}
	c := t.Clone()
	c.Proxy = nil
	boundDial(c)
	directTransports[k] = c
	runtime.AddCleanup(t, func(k weak.Pointer[http.Transport]) {
		directMu.Lock()
		delete(directTransports, k)
		directMu.Unlock()
		c.CloseIdleConnections()
	}, k)
	return c
}
