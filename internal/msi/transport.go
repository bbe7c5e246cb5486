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
	"strings"
	"time"

	"github.com/azcred/azcred/internal/httpx"
)

type httpTransport = http.Transport

// boundDial limits every connection attempt of t to d while bounded
// reports true, so that a chain learns at once that nothing listens at the
// IMDS address; once IMDS has answered, connections are not bounded.
// (Deciding per dial keeps one transport, so the connection of the first
// token serves the later requests too.)
func boundDial(t *http.Transport, d time.Duration, bounded func() bool) {
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !bounded() {
			return dial(ctx, network, addr)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return dial(ctx, network, addr)
	}
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
