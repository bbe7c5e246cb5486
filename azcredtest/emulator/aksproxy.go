package emulator

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// AKSProxyOptions contains optional parameters for [NewAKSProxy].
type AKSProxyOptions struct {
	// SNIName is the TLS server name clients must send (the value of
	// AZURE_KUBERNETES_SNI_NAME); the certificate is issued for it.
	// Connections that send another name, or none, are refused during the
	// handshake. Default: "aks-token-proxy.emulator.invalid".
	SNIName string

	// PathPrefix is the path of the proxy URL; requests must start with it
	// and are forwarded with it removed. Default: "/aks-token-proxy".
	PathPrefix string
}

// ProxyRequest is one request an [AKSProxy] received.
type ProxyRequest struct {
	// Method, Path and RawQuery are those the proxy received.
	Method, Path, RawQuery string
	// ServerName is the TLS server name (SNI) the client sent.
	ServerName string
	// Status is the status answered.
	Status int
}

// AKSProxy is a fake AKS token proxy (identity binding): an HTTPS server on
// 127.0.0.1 with a certificate from a CA of its own ([AKSProxy.CAPEM], the
// content of AZURE_KUBERNETES_CA_FILE), that checks the client's SNI name and
// forwards "<PathPrefix>/<rest>?<query>" to the Emulator's "/<rest>?<query>".
// It records every request ([AKSProxy.Requests]), can rotate its CA
// ([AKSProxy.RotateCA]) and is safe for concurrent use.
type AKSProxy struct {
	e      *Emulator
	sni    string
	prefix string
	srv    *httptest.Server

	mu       sync.Mutex
	caPEM    []byte
	cert     *tls.Certificate
	requests []ProxyRequest
	refused  []string
}

// NewAKSProxy starts an AKSProxy in front of e and closes it when the test
// ends. It fails tb when it cannot start. Pass nil to accept default options.
func NewAKSProxy(tb testing.TB, e *Emulator, opts *AKSProxyOptions) *AKSProxy {
	tb.Helper()
	var o AKSProxyOptions
	if opts != nil {
		o = *opts
	}
	if o.SNIName == "" {
		o.SNIName = "aks-token-proxy.emulator.invalid"
	}
	if o.PathPrefix == "" {
		o.PathPrefix = "/aks-token-proxy"
	}
	p := &AKSProxy{e: e, sni: o.SNIName, prefix: "/" + strings.Trim(o.PathPrefix, "/")}
	if err := p.RotateCA(); err != nil {
		tb.Fatalf("emulator: AKS proxy certificates: %v", err)
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.handle))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if hello.ServerName != p.sni {
				p.mu.Lock()
				p.refused = append(p.refused, hello.ServerName)
				p.mu.Unlock()
				return nil, fmt.Errorf("emulator: AKS proxy: the client sent the server name %q, not %q", hello.ServerName, p.sni)
			}
			return nil, nil
		},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.cert, nil
		},
	}
	p.srv.StartTLS()
	tb.Cleanup(p.Close)
	return p
}

// URL returns the proxy URL, "https://127.0.0.1:<port><PathPrefix>": the
// value of AZURE_KUBERNETES_TOKEN_PROXY.
func (p *AKSProxy) URL() string { return p.srv.URL + p.prefix }

// SNIName returns the server name clients must send.
func (p *AKSProxy) SNIName() string { return p.sni }

// CAPEM returns the PEM of the CA that issued the proxy's current
// certificate.
func (p *AKSProxy) CAPEM() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.caPEM...)
}

// RotateCA replaces the proxy's CA and certificate with new ones and closes
// the open connections, so that clients must verify the new certificate.
func (p *AKSProxy) RotateCA() error {
	caPEM, cert, err := newProxyCertificates(p.sni)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.caPEM, p.cert = caPEM, cert
	p.mu.Unlock()
	if p.srv != nil {
		p.srv.CloseClientConnections()
	}
	return nil
}

// Requests returns the requests received, oldest first.
func (p *AKSProxy) Requests() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.requests...)
}

// RefusedServerNames returns the SNI names of the handshakes refused
// because they named another server ("" when the client sent none).
func (p *AKSProxy) RefusedServerNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// Close stops the proxy. It is safe to call more than once.
func (p *AKSProxy) Close() { p.srv.Close() }

func (p *AKSProxy) handle(w http.ResponseWriter, r *http.Request) {
	rec := ProxyRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if r.TLS != nil {
		rec.ServerName = r.TLS.ServerName
	}
	rec.Status = p.forward(w, r)
	p.mu.Lock()
	p.requests = append(p.requests, rec)
	p.mu.Unlock()
}

func (p *AKSProxy) forward(w http.ResponseWriter, r *http.Request) int {
	rest, ok := strings.CutPrefix(r.URL.Path, p.prefix)
	if !ok || !strings.HasPrefix(rest, "/") {
		http.Error(w, "emulator: AKS proxy: the path must start with "+p.prefix+"/", http.StatusNotFound)
		return http.StatusNotFound
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "emulator: AKS proxy: reading the request failed", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	target := p.e.URL() + rest
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, "emulator: AKS proxy: "+err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for k, vs := range r.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			out.Header[k] = append([]string(nil), vs...)
		}
	}
	resp, err := p.e.Client().Do(out)
	if err != nil {
		http.Error(w, "emulator: AKS proxy: the emulator did not answer", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			w.Header()[k] = append([]string(nil), vs...)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return resp.StatusCode
}

var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

// newProxyCertificates makes a CA and a certificate for sni and 127.0.0.1
// signed by it, and returns the CA's PEM.
func newProxyCertificates(sni string) ([]byte, *tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "azcred emulator AKS proxy CA " + newID()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: sni},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{sni},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	if sni == "" {
		return nil, nil, errors.New("the SNI name is empty")
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, &tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}, nil
}
