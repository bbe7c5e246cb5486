// Package httpx is azcred's HTTP pipeline: one logical request becomes up to
// MaxRetries+1 tries with exponential backoff and jitter, honouring the
// server's Retry-After; response bodies are read through a size limit;
// redirects are refused; every try carries azcred's User-Agent and a
// client-request-id. Nothing it logs or returns holds a header value, a query
// string or a body, so secrets in requests never leak through it.
package httpx

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// Version is azcred's version as sent in the User-Agent header.
const Version = "0.1.0"

// UserAgent is the User-Agent header value of every request azcred sends:
// azcred/<version> (<goos>/<goarch>).
var UserAgent = fmt.Sprintf("azcred/%s (%s/%s)", Version, runtime.GOOS, runtime.GOARCH)

// Doer sends one HTTP request. *http.Client implements it, and so does the
// Transport field of the root package's ClientOptions.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Timeouts of the default transport. There is deliberately no overall client
// timeout: the pipeline bounds each try itself (Policy.TryTimeout).
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 60 * time.Second
	idleConnTimeout       = 90 * time.Second
)

var defaultClient = sync.OnceValue(func() *http.Client {
	return &http.Client{Transport: newTransport(), CheckRedirect: refuseRedirect}
})

// newTransport returns a transport with bounded dial, TLS handshake and
// response-header waits, the proxy taken from the environment and HTTP/2.
func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// refuseRedirect makes an *http.Client hand a 3xx back to the pipeline instead
// of following it, so a token request is never re-sent to another host.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewDoer returns the Doer the pipeline sends with, following the transport
// rule of azcred:
//   - nil (or a nil *http.Client): azcred's own shared client, with dial, TLS
//     handshake and response-header timeouts, the proxy from the environment,
//     HTTP/2, and no redirects;
//   - a caller's *http.Client: a shallow copy whose CheckRedirect refuses
//     redirects (the caller's value is not changed);
//   - any other Doer: d itself. It must not follow redirects; the pipeline
//     turns any 3xx it sees into a *RedirectError all the same.
func NewDoer(d Doer) Doer {
	switch c := d.(type) {
	case nil:
		return defaultClient()
	case *http.Client:
		if c == nil {
			return defaultClient()
		}
		cp := *c
		cp.CheckRedirect = refuseRedirect
		return &cp
	default:
		return d
	}
}

// ErrCannotClone reports that CloneClient was given a Doer whose transport it
// cannot copy.
var ErrCannotClone = errors.New("the transport must be nil, an *http.Client, or an *http.Client whose Transport is nil or an *http.Transport, so that it can be copied")

// CloneClient returns an *http.Client for a source that must change its
// transport (for example to bypass a proxy) without touching the caller's:
// the client's fields are copied, its *http.Transport is cloned, and redirects
// are refused. For nil it clones azcred's default transport. Any other Doer
// gives an error wrapping ErrCannotClone.
func CloneClient(d Doer) (*http.Client, error) {
	switch c := d.(type) {
	case nil:
		return &http.Client{Transport: newTransport(), CheckRedirect: refuseRedirect}, nil
	case *http.Client:
		if c == nil {
			return &http.Client{Transport: newTransport(), CheckRedirect: refuseRedirect}, nil
		}
		cp := *c
		cp.CheckRedirect = refuseRedirect
		switch t := c.Transport.(type) {
		case nil:
			cp.Transport = http.DefaultTransport.(*http.Transport).Clone()
		case *http.Transport:
			cp.Transport = t.Clone()
		default:
			return nil, fmt.Errorf("cannot copy a client whose Transport is a custom RoundTripper: %w", ErrCannotClone)
		}
		return &cp, nil
	default:
		return nil, fmt.Errorf("cannot copy a custom Doer: %w", ErrCannotClone)
	}
}
