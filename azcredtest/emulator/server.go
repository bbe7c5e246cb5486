package emulator

import (
	"bufio"
	"encoding/base64"
	"math/big"
	"net"
	"net/http"
	"strings"
)

func (e *Emulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.handleOpenIDConfiguration)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", e.handleKeys)
	mux.HandleFunc("GET /{tenant}/discovery/keys", e.handleKeys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.handleToken)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", e.handleAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/authorize", e.handleAuthorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", e.handleDeviceCode)
	mux.HandleFunc("GET /devicelogin", e.handleDeviceLogin)
	mux.HandleFunc("GET /common/discovery/instance", e.handleInstanceDiscovery)
	mux.HandleFunc("POST /devicelogin", e.handleDeviceLogin)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			e.writeSTSError(w, r, newSTSError(400, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a %s request.", r.Method))
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error":             "not_found",
			"error_description": "The emulator serves no endpoint at " + r.Method + " " + r.URL.Path + ".",
		})
	})
	return mux
}

// serve records every request, applies injected faults and counts the
// handlers in flight so that Close can wait for them.
func (e *Emulator) serve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.enter() {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		defer e.leave()
		if r.Method == http.MethodPost {
			_ = r.ParseForm() // a bad body shows up as missing parameters
		}
		rec := &Request{
			Method: r.Method,
			Path:   r.URL.Path,
			Query:  cloneValues(r.URL.Query()),
			Header: r.Header.Clone(),
			Form:   cloneValues(r.PostForm),
			Time:   e.clk.Now(),
		}
		e.mu.Lock()
		e.requests = append(e.requests, rec)
		hook := e.onRequest
		e.mu.Unlock()
		if hook != nil {
			hook(rec.Path)
		}

		sw := &statusWriter{ResponseWriter: w}
		if f, ok := e.takeFault(r.URL.Path); ok {
			e.applyFault(sw, r, f, next)
		} else {
			next.ServeHTTP(sw, r)
		}
		e.mu.Lock()
		rec.Status = sw.status
		e.mu.Unlock()
	})
}

func (e *Emulator) enter() bool {
	e.inflightMu.Lock()
	defer e.inflightMu.Unlock()
	if e.closed {
		return false
	}
	e.inflight++
	return true
}

func (e *Emulator) leave() {
	e.inflightMu.Lock()
	e.inflight--
	if e.inflight == 0 {
		e.idle.Broadcast()
	}
	e.inflightMu.Unlock()
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (Hijack, Flush).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// hijack takes the connection over; the caller closes it.
func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w).Hijack()
}

// handleOpenIDConfiguration serves the tenant's OpenID Connect discovery
// document, with an issuer that matches its tokens' "iss".
func (e *Emulator) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("tenant")
	issuerTenant := t
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		issuerTenant = "{tenantid}"
	default:
		if _, ok := e.lookupTenant(t); !ok {
			se := errUnknownTenant(t)
			se.oauth = "invalid_tenant"
			e.writeSTSError(w, r, se)
			return
		}
	}
	root := e.base(r)
	base := root + "/" + t
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                root + "/" + issuerTenant + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "preferred_username", "ver"},
		"request_uri_parameter_supported":       false,
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"tenant_region_scope":                   "emulated",
		"cloud_instance_name":                   strings.TrimPrefix(root, "https://"),
	})
}

// handleKeys serves the JSON Web Key Set with the token signing key.
func (e *Emulator) handleKeys(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("tenant")
	issuerTenant := t
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		issuerTenant = "{tenantid}"
	default:
		if _, ok := e.lookupTenant(t); !ok {
			se := errUnknownTenant(t)
			se.oauth = "invalid_tenant"
			e.writeSTSError(w, r, se)
			return
		}
	}
	pub := e.signKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty":    "RSA",
		"use":    "sig",
		"alg":    "RS256",
		"kid":    e.kid,
		"x5t":    e.kid,
		"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"issuer": e.base(r) + "/" + issuerTenant + "/v2.0",
	}}})
}

func (e *Emulator) lookupTenant(id string) (*tenant, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tenants[strings.ToLower(id)]
	return t, ok
}
