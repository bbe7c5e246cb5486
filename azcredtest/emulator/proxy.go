package emulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The proxy part of the emulator: an HTTP CONNECT proxy on loopback that
// answers the public and sovereign clouds' Entra ID hosts itself. A client
// with HTTPS_PROXY set to it and the emulator's CA trusted talks to
// "login.microsoftonline.com" as usual (instance discovery included) and
// reaches the emulator; every other destination is refused. Nothing is ever
// tunnelled outward.

// authorityClouds are the Entra ID hosts of each cloud, as instance
// discovery groups them: the first is the host clients should use
// ("preferred_network"), the second the one their caches are keyed by.
var authorityClouds = []struct {
	network, cache string
	aliases        []string
}{
	{"login.microsoftonline.com", "login.windows.net", []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}},
	{"login.partner.microsoftonline.cn", "login.partner.microsoftonline.cn", []string{"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"}},
	{"login.microsoftonline.de", "login.microsoftonline.de", []string{"login.microsoftonline.de"}},
	{"login.microsoftonline.us", "login.microsoftonline.us", []string{"login.microsoftonline.us", "login.usgovcloudapi.net"}},
	{"login-us.microsoftonline.com", "login-us.microsoftonline.com", []string{"login-us.microsoftonline.com"}},
	{"login.sovcloud-identity.fr", "login.sovcloud-identity.fr", []string{"login.sovcloud-identity.fr"}},
	{"login.sovcloud-identity.de", "login.sovcloud-identity.de", []string{"login.sovcloud-identity.de"}},
	{"login.sovcloud-identity.sg", "login.sovcloud-identity.sg", []string{"login.sovcloud-identity.sg"}},
}

// AuthorityHosts returns the Entra ID hosts of the public and sovereign
// clouds that a [Proxy] answers as the emulator, such as
// "login.microsoftonline.com" and "login.chinacloudapi.cn".
func AuthorityHosts() []string {
	var out []string
	for _, c := range authorityClouds {
		out = append(out, c.aliases...)
	}
	return out
}

func isAuthorityHost(host string) bool {
	return slices.Contains(AuthorityHosts(), strings.ToLower(host))
}

// servedHostKey marks, in a request's context, the authority host a proxied
// request was addressed to.
type servedHostKey struct{}

// base returns the authority base URL r was addressed to: the public host
// for a request through the proxy, else the emulator's own URL.
func (e *Emulator) base(r *http.Request) string {
	if h, ok := r.Context().Value(servedHostKey{}).(string); ok {
		return "https://" + h
	}
	return e.url
}

// knownIssuer reports whether iss is the issuer of tenantID's tokens at the
// emulator's own address or at one of the authority hosts.
func (e *Emulator) knownIssuer(iss, tenantID string) bool {
	if iss == e.Issuer(tenantID) {
		return true
	}
	host, ok := strings.CutPrefix(iss, "https://")
	if !ok {
		return false
	}
	host, rest, _ := strings.Cut(host, "/")
	return isAuthorityHost(host) && rest == tenantID+"/v2.0"
}

// Proxy is the emulator's HTTPS CONNECT proxy. Start it with
// [Emulator.StartProxy]; the Emulator's Close closes it.
type Proxy struct {
	e       *Emulator
	url     string
	outer   *http.Server
	inner   *http.Server
	conns   *connQueue
	leaf    tls.Certificate
	targets sync.Map // *tls.Conn → the host its CONNECT named
	wg      sync.WaitGroup
	once    sync.Once
}

// StartProxy starts the emulator's HTTPS CONNECT proxy on a free loopback
// port. Clients that use it (HTTPS_PROXY=URL()) and trust [Emulator.CertPEM]
// reach the emulator when they connect to any of [AuthorityHosts] on port
// 443: instance discovery, OpenID configuration, keys, token, authorize and
// device code are answered as the emulator answers them at its own address,
// with the public host in issuers and endpoints, and client assertions
// addressed to that host's token endpoint are accepted. Azure Resource
// Manager's subscription list (management.azure.com and the sovereign
// clouds' ARM hosts, GET /subscriptions) is answered with an empty list for
// a token the emulator issued, because `az login` asks for it. Any other
// destination gets 403 with an explanation; the proxy never connects
// anywhere.
func (e *Emulator) StartProxy() (*Proxy, error) {
	leaf, err := e.certs.issueLeaf("login.microsoftonline.com", nil, append(AuthorityHosts(), armHosts...))
	if err != nil {
		return nil, fmt.Errorf("emulator: making the authority hosts' certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: listening on 127.0.0.1: %w", err)
	}
	p := &Proxy{e: e, url: "http://" + ln.Addr().String(), leaf: leaf, conns: newConnQueue(ln.Addr())}
	p.outer = &http.Server{
		Handler:           http.HandlerFunc(p.serveProxy),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	entra, arm := e.serve(e.routes()), e.serve(http.HandlerFunc(e.handleARM))
	p.inner = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, _ := r.Context().Value(servedHostKey{}).(string); isARMHost(h) {
				arm.ServeHTTP(w, r)
				return
			}
			entra.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if host, ok := p.targets.LoadAndDelete(c); ok {
				return context.WithValue(ctx, servedHostKey{}, host)
			}
			return ctx
		},
	}
	if err := e.addProxy(p); err != nil {
		_ = ln.Close()
		return nil, err
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		_ = p.outer.Serve(ln)
	}()
	go func() {
		defer p.wg.Done()
		_ = p.inner.Serve(p.conns)
	}()
	return p, nil
}

// URL returns the proxy's URL, "http://127.0.0.1:<port>": the value of
// HTTPS_PROXY for clients.
func (p *Proxy) URL() string { return p.url }

// Close stops the proxy and closes its connections. It is safe to call more
// than once.
func (p *Proxy) Close() {
	p.once.Do(func() {
		_ = p.outer.Close()
		_ = p.inner.Close()
		p.conns.close()
		p.wg.Wait()
	})
}

// serveProxy answers one request to the proxy itself: a CONNECT to an
// authority host is taken over and served by the emulator; anything else is
// refused.
func (p *Proxy) serveProxy(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		// The destination without user information, query or fragment,
		// which may hold secrets (a SAS signature, an authorization code).
		dest := url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: r.URL.Path}
		refuse(w, http.StatusMethodNotAllowed, fmt.Sprintf("azcred emulator proxy: only CONNECT to an Entra ID authority host is answered; %s %s is refused. The proxy never forwards requests: set NO_PROXY for destinations that are not Entra ID.", r.Method, dest.String()))
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "443"
	}
	if !(isAuthorityHost(host) || isARMHost(host)) || port != "443" {
		refuse(w, http.StatusForbidden, fmt.Sprintf("azcred emulator proxy: %s is not an Entra ID authority host, and the proxy never connects anywhere; it answers only %s on port 443 (and ARM's subscription list, for az login). Put %s in NO_PROXY, or do not send this program's other traffic through the emulator's proxy.", r.Host, strings.Join(AuthorityHosts(), ", "), host))
		return
	}
	conn, brw, err := hijack(w)
	if err != nil {
		return
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = conn.Close()
		return
	}
	var raw net.Conn = conn
	if n := brw.Reader.Buffered(); n > 0 {
		// The client sent its TLS hello before reading the answer.
		raw = &prefixConn{Conn: conn, r: io.MultiReader(io.LimitReader(brw.Reader, int64(n)), conn)}
	}
	tc := tls.Server(raw, p.inner.TLSConfig)
	p.targets.Store(tc, strings.ToLower(host))
	if !p.conns.push(tc) {
		p.targets.Delete(tc)
		_ = tc.Close()
	}
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// prefixConn is a connection whose first bytes were already read into a
// buffer.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// connQueue is a net.Listener that hands out the connections pushed into it.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

func (q *connQueue) Close() error { q.close(); return nil }

func (q *connQueue) Addr() net.Addr { return q.addr }

func (e *Emulator) addProxy(p *Proxy) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proxiesClosed {
		return errors.New("emulator: closed")
	}
	e.proxies = append(e.proxies, p)
	return nil
}

func (e *Emulator) closeProxies() {
	e.mu.Lock()
	e.proxiesClosed = true
	ps := e.proxies
	e.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
}

// handleInstanceDiscovery answers Entra's instance discovery: for an
// authorization endpoint on a known host, where that host's OpenID
// configuration is and which hosts are the same cloud.
func (e *Emulator) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ae := q.Get("authorization_endpoint")
	if ae == "" {
		e.writeSTSError(w, r, newSTSError(400, "invalid_request", 900144, "The request body must contain the following parameter: 'authorization_endpoint'. (The emulator requires it; Entra then describes login.microsoftonline.com.)"))
		return
	}
	u, err := url.Parse(ae)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		e.writeSTSError(w, r, newSTSError(400, "invalid_instance", 50049, "Unknown or invalid instance."))
		return
	}
	tenantPath, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if tenantPath == "" {
		tenantPath = "common"
	}
	var metadata []map[string]any
	for _, c := range authorityClouds {
		metadata = append(metadata, map[string]any{"preferred_network": c.network, "preferred_cache": c.cache, "aliases": c.aliases})
	}
	host := strings.ToLower(u.Host)
	var discovery string
	switch {
	case isAuthorityHost(host):
		discovery = "https://" + host + "/" + tenantPath + "/v2.0/.well-known/openid-configuration"
	case host == strings.ToLower(e.host):
		discovery = e.url + "/" + tenantPath + "/v2.0/.well-known/openid-configuration"
		metadata = append(metadata, map[string]any{"preferred_network": e.host, "preferred_cache": e.host, "aliases": []string{e.host}})
	default:
		e.writeSTSError(w, r, newSTSError(400, "invalid_instance", 50049, "Unknown or invalid instance. The emulator knows the public and sovereign clouds' hosts and its own address %s, not %s.", e.host, u.Host))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": discovery,
		"api-version":               "1.1",
		"metadata":                  metadata,
	})
}
