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
	"github.com/azcred/azcred/internal/lru"
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

// pinnedClient returns a client whose TLS accepts exactly the server
// certificate whose SHA-1 thumbprint is thumbprint (hex, with any ':' or
// spaces), as Service Fabric's self-signed endpoint requires: a shallow copy
// of the caller's *http.Client (or a new client for none) that refuses
// redirects and sends through pinnedTransport's shared transport.
func pinnedClient(d httpx.Doer, thumbprint string) (*http.Client, error) {
	want, err := decodeThumbprint(thumbprint)
	if err != nil {
		return nil, err
	}
	cannot := &ConfigError{"Service Fabric managed identity pins the endpoint's certificate, so ClientOptions.Transport must be nil or an *http.Client whose Transport is nil or an *http.Transport"}
	hc := &http.Client{}
	var base *http.Transport // nil: azcred's own transport
	switch c := d.(type) {
	case nil:
	case *http.Client:
		if c == nil {
			break
		}
		*hc = *c
		switch t := c.Transport.(type) {
		case nil:
			base = http.DefaultTransport.(*http.Transport)
		case *http.Transport:
			base = t
		default:
			return nil, cannot
		}
	default:
		return nil, cannot
	}
	//lint:ignore SA1019 a transport that dials TLS through the deprecated hook is refused too
	if base != nil && (base.DialTLSContext != nil || base.DialTLS != nil) {
		return nil, &ConfigError{"Service Fabric managed identity pins the endpoint's certificate, so ClientOptions.Transport must not dial TLS itself (DialTLSContext)"}
	}
	hc.Transport = pinnedTransport(base, [sha1.Size]byte(want))
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc, nil
}

// ownTransport is the template of azcred's own transport, which pinned
// copies start from when the caller gives none.
var ownTransport = sync.OnceValue(func() *http.Transport {
	hc, err := httpx.CloneClient(nil)
	if err != nil {
		panic(err) // CloneClient(nil) cannot fail
	}
	return hc.Transport.(*http.Transport)
})

// pinnedKey names one shared pinned transport: the caller's transport it
// was copied from (the zero pointer for azcred's own) and the thumbprint.
type pinnedKey struct {
	base  weak.Pointer[http.Transport]
	thumb [sha1.Size]byte
}

// pinnedMax bounds the process-wide map of pinned transports. A process
// normally talks to one Service Fabric cluster, so one entry is the usual
// case; the bound only keeps many thumbprints or caller transports from
// growing the map without end.
const pinnedMax = 64

// pinnedTransports holds, per caller transport and thumbprint, the pinned
// copy every Service Fabric credential with that pair shares, with its
// connection pool (each credential used to copy a transport of its own and
// keep its own connection). It holds at most pinnedMax entries; past that
// the one used least recently is dropped and its idle connections closed
// (credentials holding it keep using it; a new credential makes a new
// copy). A caller transport's key is weak, so its entry goes when the
// caller's transport does. A copy is taken when the pair is first seen;
// later changes to the caller's transport do not reach it.
var (
	pinnedMu         sync.Mutex
	pinnedTransports = lru.New(pinnedMax, func(_ pinnedKey, t *http.Transport) { t.CloseIdleConnections() })
)

func pinnedTransport(base *http.Transport, thumb [sha1.Size]byte) *http.Transport {
	k := pinnedKey{thumb: thumb}
	if base != nil {
		k.base = weak.Make(base)
	}
	pinnedMu.Lock()
	defer pinnedMu.Unlock()
	if c, ok := pinnedTransports.Get(k); ok {
		return c
	}
	from := base
	if from == nil {
		from = ownTransport()
	}
	c := pinnedTransports.GetOrAdd(k, func() *http.Transport { return pin(from, thumb) })
	if base != nil {
		runtime.AddCleanup(base, func(c *http.Transport) {
			pinnedMu.Lock()
			defer pinnedMu.Unlock()
			pinnedTransports.RemoveIf(k, func(t *http.Transport) bool { return t == c })
		}, c)
	}
	return c
}

// pin returns a copy of t, without a proxy, whose TLS accepts exactly the
// server certificate with SHA-1 thumbprint want.
func pin(t *http.Transport, want [sha1.Size]byte) *http.Transport {
	c := t.Clone()
	var cfg *tls.Config
	if c.TLSClientConfig != nil {
		cfg = c.TLSClientConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg.InsecureSkipVerify = true // #nosec G402 -- replaced by the pin below
	cfg.VerifyPeerCertificate = nil
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &tls.CertificateVerificationError{Err: errThumbprint}
		}
		if sha1.Sum(cs.PeerCertificates[0].Raw) != want { // #nosec G401
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: errThumbprint}
		}
		return nil
	}
	c.TLSClientConfig = cfg
	c.Proxy = nil
	return c
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
