package emulator

import (
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- Service Fabric names its certificate by SHA-1 thumbprint
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The managed-identity part of the emulator: one plain-http loopback
// listener per Azure host kind (Service Fabric: https with a self-signed
// certificate whose thumbprint the host puts in the environment), each
// speaking its host's protocol strictly (api-version, secret header,
// identity parameters, resource) and answering in its host's error shapes.
// Tokens are RS256 JWTs signed by the Emulator's key, for identities
// registered with SetSystemAssignedIdentity and AddUserAssignedIdentity.

// MIHostKind is a kind of managed-identity host.
type MIHostKind int

// The host kinds.
const (
	HostIMDS MIHostKind = iota
	HostAppService
	HostServiceFabric
	HostAzureML
	HostCloudShell
	HostArc
)

// String names the host kind.
func (k MIHostKind) String() string {
	return [...]string{"IMDS", "App Service", "Service Fabric", "Azure ML", "Cloud Shell", "Azure Arc"}[k]
}

// DefaultManagedIdentityTenant is the tenant of managed identities that
// name none.
const DefaultManagedIdentityTenant = "5f0e8a2c-6a7b-4f3e-9d1c-0a1b2c3d4e5f"

// ManagedIdentity is a managed identity of the emulated Azure resource. Empty
// IDs are derived from the others.
type ManagedIdentity struct {
	// ClientID is the identity's application (client) ID: the tokens' appid.
	ClientID string
	// ObjectID is its service principal's object ID: the tokens' oid and sub.
	ObjectID string
	// ResourceID is its ARM resource ID, such as
	// "/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>":
	// the tokens' xms_mirid.
	ResourceID string
	// TenantID is its tenant. Default: DefaultManagedIdentityTenant.
	TenantID string
}

func (mi *ManagedIdentity) fill(kind string) {
	seed := mi.ClientID + mi.ObjectID + mi.ResourceID
	if seed == "" {
		seed = kind
	}
	if mi.ClientID == "" {
		mi.ClientID = derivedID("mi-client", seed)
	}
	if mi.ObjectID == "" {
		mi.ObjectID = derivedID("mi-object", seed)
	}
	if mi.ResourceID == "" {
		mi.ResourceID = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + mi.ClientID
	}
	if mi.TenantID == "" {
		mi.TenantID = DefaultManagedIdentityTenant
	}
}

// miRegistry is the Emulator's managed-identity state; its zero value is
// ready.
type miRegistry struct {
	mu     sync.Mutex
	system *ManagedIdentity
	users  []ManagedIdentity
	hosts  []*MIHost
	closed bool
}

// SetSystemAssignedIdentity gives the emulated resource a system-assigned
// identity, replacing any; empty IDs are derived. It returns the identity
// with its IDs filled in. Without one, requests for the system-assigned
// identity get the host's "no identity" answer.
func (e *Emulator) SetSystemAssignedIdentity(mi ManagedIdentity) ManagedIdentity {
	mi.fill("system")
	e.mi.mu.Lock()
	e.mi.system = &mi
	e.mi.mu.Unlock()
	return mi
}

// AddUserAssignedIdentity assigns a user-assigned identity to the emulated
// resource; empty IDs are derived. It returns the identity with its IDs
// filled in.
func (e *Emulator) AddUserAssignedIdentity(mi ManagedIdentity) ManagedIdentity {
	mi.fill("user")
	e.mi.mu.Lock()
	e.mi.users = append(e.mi.users, mi)
	e.mi.mu.Unlock()
	return mi
}

// lookupIdentity finds the identity a request names: by is "" for the
// system-assigned one, else "client", "object" or "resource".
func (e *Emulator) lookupIdentity(by, value string) (ManagedIdentity, bool) {
	e.mi.mu.Lock()
	defer e.mi.mu.Unlock()
	if by == "" {
		if e.mi.system == nil {
			return ManagedIdentity{}, false
		}
		return *e.mi.system, true
	}
	all := e.mi.users
	if e.mi.system != nil {
		all = append([]ManagedIdentity{*e.mi.system}, all...)
	}
	for _, mi := range all {
		var have string
		switch by {
		case "client":
			have = mi.ClientID
		case "object":
			have = mi.ObjectID
		case "resource":
			have = mi.ResourceID
		}
		if strings.EqualFold(have, value) {
			return mi, true
		}
	}
	return ManagedIdentity{}, false
}

func (r *miRegistry) add(h *MIHost) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("emulator: closed")
	}
	r.hosts = append(r.hosts, h)
	return nil
}

// Hosts returns the managed-identity host endpoints started so far, in the
// order they were started.
func (e *Emulator) Hosts() []*MIHost {
	e.mi.mu.Lock()
	defer e.mi.mu.Unlock()
	return append([]*MIHost(nil), e.mi.hosts...)
}

// closeHosts closes every host endpoint; the Emulator's Close calls it.
func (r *miRegistry) closeHosts() {
	r.mu.Lock()
	r.closed = true
	hosts := r.hosts
	r.mu.Unlock()
	for _, h := range hosts {
		h.Close()
	}
}

// MIFault describes how a host endpoint misbehaves. Set one or more fields:
// they combine in this order: Delay or Gate, then Hang or Drop, then the
// answer (Status, Header, and Body or NonJSON). A fault with only Delay or
// Gate set serves the request normally afterwards.
type MIFault struct {
	// Count is how many requests the fault applies to; zero or less means 1.
	// Ignored when For is set.
	Count int
	// For applies the fault to every request until this much time of the
	// Emulator's clock has passed since the first request it applied to
	// ("410 for 70 seconds").
	For time.Duration
	// SkipProbes leaves requests without the host's secret or Metadata
	// header (probes) alone: they are served normally and do not count.
	SkipProbes bool
	// Status is the answer's status. Default: 200 when NonJSON is set, else
	// the normal answer is served.
	Status int
	// Header holds headers added to the answer, such as Retry-After.
	Header http.Header
	// Body is the answer's body, as given.
	Body []byte
	// NonJSON answers with an HTML page instead of JSON.
	NonJSON bool
	// Delay holds the request this long on the system clock first.
	Delay time.Duration
	// Gate holds the request until the channel is closed (a slow endpoint
	// whose pace the test sets).
	Gate <-chan struct{}
	// Hang accepts the request and never answers, until the client gives up
	// or the endpoint closes.
	Hang bool
	// Drop closes the connection without answering.
	Drop bool
}

type pendingMIFault struct {
	f     MIFault
	left  int
	until time.Time // set by the first request when f.For > 0
}

// MIHost is one managed-identity host endpoint of an Emulator. Start it with
// StartIMDS, StartAppService, StartServiceFabric, StartAzureML,
// StartCloudShell or StartArc; the Emulator's Close closes it. It is safe
// for concurrent use.
type MIHost struct {
	e          *Emulator
	kind       MIHostKind
	base       string
	path       string
	secret     string
	keyDir     string
	thumbprint string
	srv        *http.Server
	serveDone  chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	handlers   sync.WaitGroup

	mu       sync.Mutex
	requests []*Request
	faults   []*pendingMIFault
	random   []randomMIFault
	fields   func(map[string]any)
	arcKeys  map[string]string // key → file
	closed   bool
}

// StartIMDS starts an emulated Azure Instance Metadata Service. Point
// clients at URL(), the IMDS base URL (AZURE_POD_IDENTITY_AUTHORITY_HOST).
func (e *Emulator) StartIMDS() (*MIHost, error) {
	return e.startHost(HostIMDS, "/metadata/identity/oauth2/token", "")
}

// StartAppService starts an emulated App Service (also Functions and
// Container Apps) identity endpoint.
func (e *Emulator) StartAppService() (*MIHost, error) {
	return e.startHost(HostAppService, "/msi/token", "")
}

// StartServiceFabric starts an emulated Service Fabric identity endpoint,
// on https with a self-signed certificate (see Thumbprint).
func (e *Emulator) StartServiceFabric() (*MIHost, error) {
	return e.startHost(HostServiceFabric, "/metadata/identity/oauth2/token", "")
}

// StartAzureML starts an emulated Azure Machine Learning identity endpoint.
// DEFAULT_IDENTITY_CLIENT_ID in Env is the system-assigned identity's client
// ID, so set that identity first.
func (e *Emulator) StartAzureML() (*MIHost, error) {
	return e.startHost(HostAzureML, "/MSI/token", "")
}

// StartCloudShell starts an emulated Cloud Shell identity endpoint.
func (e *Emulator) StartCloudShell() (*MIHost, error) {
	return e.startHost(HostCloudShell, "/oauth2/token", "")
}

// StartArc starts an emulated Azure Arc agent, which writes the key files
// of its challenges into keyDir (a test's temporary folder standing in for
// the agent's token folder).
func (e *Emulator) StartArc(keyDir string) (*MIHost, error) {
	if keyDir == "" {
		return nil, errors.New("emulator: StartArc needs a folder for the key files")
	}
	return e.startHost(HostArc, "/metadata/identity/oauth2/token", keyDir)
}

func (e *Emulator) startHost(kind MIHostKind, path, keyDir string) (*MIHost, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("emulator: listening on 127.0.0.1: %w", err)
	}
	h := &MIHost{
		e:         e,
		kind:      kind,
		path:      path,
		secret:    randomToken(24),
		keyDir:    keyDir,
		serveDone: make(chan struct{}),
		done:      make(chan struct{}),
		arcKeys:   map[string]string{},
	}
	h.base = "http://" + ln.Addr().String()
	h.srv = &http.Server{
		Handler:           http.HandlerFunc(h.serve),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if kind == HostServiceFabric {
		certs, err := newServerCertificates()
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("emulator: generating the Service Fabric certificate: %w", err)
		}
		sum := sha1.Sum(certs.leaf.Certificate[0]) // #nosec G401
		h.thumbprint = strings.ToUpper(hex.EncodeToString(sum[:]))
		h.base = "https://" + ln.Addr().String()
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{certs.leaf}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
	}
	if err := e.mi.add(h); err != nil {
		_ = ln.Close()
		return nil, err
	}
	go func() {
		defer close(h.serveDone)
		_ = h.srv.Serve(ln)
	}()
	return h, nil
}

// Close stops the endpoint, ends the requests it holds and waits for its
// goroutines. It is safe to call more than once.
func (h *MIHost) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.done)
		_ = h.srv.Close()
		<-h.serveDone
		h.handlers.Wait()
	})
}

// Kind returns the host kind.
func (h *MIHost) Kind() MIHostKind { return h.kind }

// URL returns the endpoint's base URL, "http://127.0.0.1:<port>" (https for
// Service Fabric): for IMDS, the base URL clients take.
func (h *MIHost) URL() string { return h.base }

// Endpoint returns the token endpoint's full URL.
func (h *MIHost) Endpoint() string { return h.base + h.path }

// Secret returns the secret the host puts in the environment
// (IDENTITY_HEADER or MSI_SECRET); the endpoint demands it in a header.
func (h *MIHost) Secret() string { return h.secret }

// Thumbprint returns the SHA-1 thumbprint (upper-case hex) of the Service
// Fabric endpoint's certificate; "" for other hosts.
func (h *MIHost) Thumbprint() string { return h.thumbprint }

// KeyDir returns the folder the Arc agent writes its key files into.
func (h *MIHost) KeyDir() string { return h.keyDir }

// Env returns the environment variables the host sets for its processes.
// For IMDS it gives AZURE_POD_IDENTITY_AUTHORITY_HOST, the base URL override.
func (h *MIHost) Env() map[string]string {
	switch h.kind {
	case HostAppService:
		return map[string]string{"IDENTITY_ENDPOINT": h.Endpoint(), "IDENTITY_HEADER": h.secret}
	case HostServiceFabric:
		return map[string]string{"IDENTITY_ENDPOINT": h.Endpoint(), "IDENTITY_HEADER": h.secret, "IDENTITY_SERVER_THUMBPRINT": h.thumbprint}
	case HostAzureML:
		m := map[string]string{"MSI_ENDPOINT": h.Endpoint(), "MSI_SECRET": h.secret}
		if sys, ok := h.e.lookupIdentity("", ""); ok {
			m["DEFAULT_IDENTITY_CLIENT_ID"] = sys.ClientID
		}
		return m
	case HostCloudShell:
		return map[string]string{"MSI_ENDPOINT": h.Endpoint()}
	case HostArc:
		return map[string]string{"IDENTITY_ENDPOINT": h.Endpoint(), "IMDS_ENDPOINT": h.base}
	default:
		return map[string]string{"AZURE_POD_IDENTITY_AUTHORITY_HOST": h.base}
	}
}

// Requests returns copies of the requests the endpoint received, oldest
// first.
func (h *MIHost) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Request, len(h.requests))
	for i, r := range h.requests {
		out[i] = Request{Method: r.Method, Path: r.Path, Query: cloneValues(r.Query), Header: r.Header.Clone(), Form: cloneValues(r.Form), Status: r.Status, Time: r.Time}
	}
	return out
}

// InjectFault queues f; queued faults are matched oldest first, one per
// request.
func (h *MIHost) InjectFault(f MIFault) {
	n := f.Count
	if n <= 0 {
		n = 1
	}
	f.Header = f.Header.Clone()
	f.Body = append([]byte(nil), f.Body...)
	h.mu.Lock()
	h.faults = append(h.faults, &pendingMIFault{f: f, left: n})
	h.mu.Unlock()
}

// ClearFaults removes the queued faults.
func (h *MIHost) ClearFaults() {
	h.mu.Lock()
	h.faults = nil
	h.mu.Unlock()
}

// SetTokenFields sets a function that may change each successful token
// response's fields before they are sent (to send expires_on in another
// form, or leave a field out); nil removes it.
func (h *MIHost) SetTokenFields(f func(fields map[string]any)) {
	h.mu.Lock()
	h.fields = f
	h.mu.Unlock()
}

// isProbe reports whether r lacks the header that proves the caller knows
// the host (its secret, or Metadata: true).
func (h *MIHost) isProbe(r *http.Request) bool {
	switch h.kind {
	case HostAppService:
		return r.Header.Get("X-IDENTITY-HEADER") == ""
	case HostServiceFabric, HostAzureML:
		return r.Header.Get("Secret") == ""
	default:
		return r.Header.Get("Metadata") == ""
	}
}

func (h *MIHost) takeFault(r *http.Request) (MIFault, bool) {
	probe := h.isProbe(r)
	now := h.e.clk.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, p := range h.faults {
		if p.f.SkipProbes && probe {
			continue
		}
		if p.f.For > 0 {
			if p.until.IsZero() {
				p.until = now.Add(p.f.For)
			}
			if now.Before(p.until) {
				return p.f, true
			}
			h.faults = append(h.faults[:i:i], h.faults[i+1:]...)
			return h.takeFaultAfterExpiry(probe)
		}
		p.left--
		if p.left == 0 {
			h.faults = append(h.faults[:i:i], h.faults[i+1:]...)
		}
		return p.f, true
	}
	return h.takeRandomFault(probe)
}

// RandomMIFault applies an MIFault to a share of an endpoint's requests
// chosen at random.
type RandomMIFault struct {
	// Rate is the share of requests that get the fault, from 0 (none) to 1
	// (every one).
	Rate float64
	// Fault is what a chosen request gets; its Count and For are ignored,
	// its SkipProbes is honoured.
	Fault MIFault
}

type randomMIFault struct {
	rate float64
	f    MIFault
}

// SetRandomFaults replaces the endpoint's random faults with rf; none
// removes them. A request that no queued fault (InjectFault) applies to is
// checked against them in order, and gets the first whose dice roll says so.
func (h *MIHost) SetRandomFaults(rf ...RandomMIFault) error {
	var out []randomMIFault
	for i, r := range rf {
		if r.Rate < 0 || r.Rate > 1 || r.Rate != r.Rate {
			return fmt.Errorf("emulator: RandomMIFault[%d].Rate %v is not between 0 and 1", i, r.Rate)
		}
		f := r.Fault
		f.Header = f.Header.Clone()
		f.Body = append([]byte(nil), f.Body...)
		out = append(out, randomMIFault{rate: r.Rate, f: f})
	}
	h.mu.Lock()
	h.random = out
	h.mu.Unlock()
	return nil
}

// takeRandomFault rolls the dice for a request; h.mu is held.
func (h *MIHost) takeRandomFault(probe bool) (MIFault, bool) {
	for _, r := range h.random {
		if !(r.f.SkipProbes && probe) && mrand.Float64() < r.rate {
			return r.f, true
		}
	}
	return MIFault{}, false
}

// takeFaultAfterExpiry looks further after a timed fault ran out; h.mu is
// held.
func (h *MIHost) takeFaultAfterExpiry(probe bool) (MIFault, bool) {
	for i, p := range h.faults {
		if (p.f.SkipProbes && probe) || p.f.For > 0 {
			continue
		}
		p.left--
		if p.left == 0 {
			h.faults = append(h.faults[:i:i], h.faults[i+1:]...)
		}
		return p.f, true
	}
	return h.takeRandomFault(probe)
}

func (h *MIHost) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	h.handlers.Add(1)
	h.mu.Unlock()
	defer h.handlers.Done()
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
	}
	rec := &Request{Method: r.Method, Path: r.URL.Path, Query: cloneValues(r.URL.Query()), Header: r.Header.Clone(), Form: cloneValues(r.PostForm), Time: h.e.clk.Now()}
	h.mu.Lock()
	h.requests = append(h.requests, rec)
	h.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w}
	if f, ok := h.takeFault(r); ok {
		h.applyFault(sw, r, f)
	} else {
		h.answer(sw, r)
	}
	h.mu.Lock()
	rec.Status = sw.status
	h.mu.Unlock()
}

func (h *MIHost) applyFault(w http.ResponseWriter, r *http.Request, f MIFault) {
	var wait <-chan struct{} = f.Gate
	var timer *time.Timer
	if f.Delay > 0 {
		timer = time.NewTimer(f.Delay)
		defer timer.Stop()
	}
	if wait != nil || timer != nil {
		var tc <-chan time.Time
		if timer != nil {
			tc = timer.C
		}
		select {
		case <-wait:
		case <-tc:
		case <-r.Context().Done():
			return
		case <-h.done:
			dropConnection(w)
			return
		}
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-h.done:
			dropConnection(w)
		}
		return
	}
	if f.Drop {
		dropConnection(w)
		return
	}
	if f.Status == 0 && !f.NonJSON && f.Body == nil && len(f.Header) == 0 {
		h.answer(w, r)
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := f.Body
	hd := w.Header()
	for k, vs := range f.Header {
		hd[k] = append([]string(nil), vs...)
	}
	if f.NonJSON {
		body = []byte("<html><head><title>Welcome</title></head><body>This is not a managed identity endpoint.</body></html>")
		hd.Set("Content-Type", "text/html")
	} else if len(body) > 0 && hd.Get("Content-Type") == "" {
		hd.Set("Content-Type", "application/json; charset=utf-8")
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// hostError is an answer in the host's error shape.
type hostError struct {
	status int
	code   string // IMDS-style "error", Service Fabric "code"
	msg    string
}

func (h *MIHost) writeError(w http.ResponseWriter, r *http.Request, he hostError) {
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = newID()
	}
	var body any
	switch h.kind {
	case HostAppService, HostAzureML:
		body = map[string]any{"statusCode": he.status, "message": he.msg, "correlationId": corr}
	case HostServiceFabric:
		body = map[string]any{"error": map[string]any{"correlationId": corr, "code": he.code, "message": he.msg}}
	default:
		body = map[string]any{"error": he.code, "error_description": he.msg}
	}
	writeJSON(w, he.status, body)
}

// answer validates a request exactly as its host does and issues a token.
func (h *MIHost) answer(w http.ResponseWriter, r *http.Request) {
	if !h.pathMatches(r.URL.Path) {
		h.writeError(w, r, hostError{http.StatusNotFound, "not_found", "The requested path " + r.URL.Path + " was not found; the token endpoint is " + h.path + "."})
		return
	}
	wantMethod := http.MethodGet
	if h.kind == HostCloudShell {
		wantMethod = http.MethodPost
	}
	if r.Method != wantMethod {
		h.writeError(w, r, hostError{http.StatusMethodNotAllowed, "method_not_allowed", "The endpoint accepts only " + wantMethod + " requests."})
		return
	}
	if he, ok := h.checkSecret(r); !ok {
		h.writeError(w, r, he)
		return
	}
	params := r.URL.Query()
	if h.kind == HostCloudShell {
		if len(r.URL.RawQuery) > 0 {
			h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", "Cloud Shell takes its parameters in a form body, not the query. (The emulator refuses a query on purpose; Cloud Shell would ignore it and miss the resource.)"})
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", "The body must be application/x-www-form-urlencoded."})
			return
		}
		params = r.PostForm
	}
	apis, idParams := h.protocol()
	allowed := map[string]bool{"resource": true}
	if len(apis) > 0 {
		allowed["api-version"] = true
		if v := params.Get("api-version"); !slices.Contains(apis, v) {
			h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("Invalid or missing api-version %q; this endpoint supports %s.", v, strings.Join(apis, ", "))})
			return
		}
	}
	for p := range idParams {
		allowed[p] = true
	}
	for p, vs := range params {
		if !allowed[p] {
			h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("Unexpected parameter %q. (The emulator refuses it on purpose, to catch misspelt identity parameters; the %s service ignores parameters it does not know, and would then pick the default identity.)", p, h.kind)})
			return
		}
		if len(vs) != 1 {
			h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("The parameter %q is repeated. (The emulator refuses this on purpose; the %s service would use one of the values.)", p, h.kind)})
			return
		}
	}
	resource := params.Get("resource")
	switch {
	case resource == "":
		h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", "Required audience parameter not specified"})
		return
	case strings.HasSuffix(resource, "/.default") || strings.ContainsAny(resource, " \t"):
		h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_resource", fmt.Sprintf("AADSTS500011: The resource principal named %s was not found in the tenant.", resource)})
		return
	}
	by, value := "", ""
	for p, kind := range idParams {
		if v := params.Get(p); v != "" {
			if by != "" {
				h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", "Only one of the identity parameters may be given."})
				return
			}
			by, value = kind, v
		}
	}
	if h.kind == HostAzureML && by == "client" {
		if sys, ok := h.e.lookupIdentity("", ""); ok && strings.EqualFold(sys.ClientID, value) {
			by, value = "", ""
		}
	}
	if h.kind == HostArc && !h.arcAuthorized(w, r) {
		return
	}
	mi, ok := h.e.lookupIdentity(by, value)
	if !ok {
		msg := "Identity not found"
		if h.kind == HostAppService || h.kind == HostAzureML {
			msg = "Unable to load the proper Managed Identity."
		}
		h.writeError(w, r, hostError{http.StatusBadRequest, "invalid_request", msg})
		return
	}
	h.issueToken(w, r, mi, resource, by)
}

// imdsAPIVersions are the api-versions the IMDS identity endpoint accepts
// (the service documents these; current clients send 2018-02-01 or 2019-08-01).
var imdsAPIVersions = []string{
	"2018-02-01", "2019-03-11", "2019-06-01", "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01",
	"2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01",
	"2021-03-01", "2021-05-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13", "2023-07-01",
}

// protocol returns the host's api-versions (none for Cloud Shell) and its
// identity parameters with the identity kind each names.
func (h *MIHost) protocol() ([]string, map[string]string) {
	switch h.kind {
	case HostAppService:
		return []string{"2019-08-01"}, map[string]string{"client_id": "client", "object_id": "object", "mi_res_id": "resource"}
	case HostServiceFabric:
		return []string{"2019-07-01-preview"}, nil
	case HostAzureML:
		return []string{"2017-09-01"}, map[string]string{"clientid": "client"}
	case HostCloudShell:
		return nil, nil
	case HostArc:
		// Older agents' clients send 2019-11-01; the agent takes both.
		return []string{"2020-06-01", "2019-11-01"}, map[string]string{"client_id": "client", "object_id": "object", "msi_res_id": "resource"}
	default:
		return imdsAPIVersions, map[string]string{"client_id": "client", "object_id": "object", "msi_res_id": "resource"}
	}
}

// pathMatches reports whether path names the host's token endpoint. IMDS,
// like the real service, takes a trailing slash and any case in the path
// (msal-node sends "/metadata/identity/oauth2/token/" in some setups); the
// other hosts want it exact.
func (h *MIHost) pathMatches(path string) bool {
	if h.kind == HostIMDS {
		return strings.EqualFold(strings.TrimSuffix(path, "/"), h.path)
	}
	return path == h.path
}

// checkSecret checks the header that authenticates the caller to the host.
func (h *MIHost) checkSecret(r *http.Request) (hostError, bool) {
	switch h.kind {
	case HostAppService:
		if v := r.Header.Get("X-IDENTITY-HEADER"); v != h.secret {
			return hostError{http.StatusUnauthorized, "unauthorized", "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER."}, false
		}
	case HostServiceFabric:
		if v := r.Header.Get("Secret"); v == "" {
			return hostError{http.StatusUnauthorized, "SecretHeaderNotFound", "Secret is not found in the request headers."}, false
		} else if v != h.secret {
			return hostError{http.StatusUnauthorized, "SecretHeaderInvalid", "The Secret header does not match."}, false
		}
	case HostAzureML:
		if v := r.Header.Get("secret"); v != h.secret {
			return hostError{http.StatusUnauthorized, "unauthorized", "The secret header is missing or does not match MSI_SECRET."}, false
		}
	default:
		if r.Header.Get("Metadata") != "true" {
			return hostError{http.StatusBadRequest, "invalid_request", "Required metadata header not specified"}, false
		}
	}
	return hostError{}, true
}

// arcAuthorized runs the Arc agent's challenge: a request without a valid
// key gets a 401 naming a new key file; a valid key is accepted once.
func (h *MIHost) arcAuthorized(w http.ResponseWriter, r *http.Request) bool {
	if auth := r.Header.Get("Authorization"); auth != "" {
		key, ok := strings.CutPrefix(auth, "Basic ")
		h.mu.Lock()
		file, known := h.arcKeys[key]
		if ok && known {
			delete(h.arcKeys, key)
		}
		h.mu.Unlock()
		if ok && known {
			_ = os.Remove(file)
			return true
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	key := hex.EncodeToString(b)
	file := filepath.Join(h.keyDir, newID()+".key")
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		h.writeError(w, r, hostError{http.StatusInternalServerError, "server_error", "The agent could not write its key file."})
		return false
	}
	h.mu.Lock()
	h.arcKeys[key] = file
	h.mu.Unlock()
	w.Header().Set("WWW-Authenticate", "Basic realm="+file)
	h.writeError(w, r, hostError{http.StatusUnauthorized, "unauthorized", "Authorization required: send the content of the key file named in WWW-Authenticate."})
	return false
}

// issueToken answers with a token for mi in the host's response shape.
func (h *MIHost) issueToken(w http.ResponseWriter, r *http.Request, mi ManagedIdentity, resource, by string) {
	e := h.e
	e.mu.Lock()
	lifetime, refreshIn := e.lifetime, e.refreshIn
	e.mu.Unlock()
	now := e.clk.Now()
	exp := now.Add(lifetime)
	claims := map[string]any{
		"aud":       resource,
		"iss":       e.Issuer(mi.TenantID),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       exp.Unix(),
		"tid":       mi.TenantID,
		"oid":       mi.ObjectID,
		"sub":       mi.ObjectID,
		"appid":     mi.ClientID,
		"azp":       mi.ClientID,
		"appidacr":  "2",
		"idtyp":     "app",
		"xms_mirid": mi.ResourceID,
		"uti":       randomToken(16),
		"ver":       "1.0",
	}
	at, err := signRS256(e.signKey, e.kid, claims)
	if err != nil {
		h.writeError(w, r, hostError{http.StatusInternalServerError, "server_error", "The token could not be signed."})
		return
	}
	secs := int64(lifetime / time.Second)
	epoch := strconv.FormatInt(exp.Unix(), 10)
	resp := map[string]any{"access_token": at, "resource": resource, "token_type": "Bearer"}
	switch h.kind {
	case HostServiceFabric:
		resp["expires_on"] = exp.Unix()
	case HostAppService, HostAzureML:
		resp["expires_on"] = epoch
		resp["client_id"] = mi.ClientID
	case HostCloudShell:
		resp["expires_in"] = strconv.FormatInt(secs, 10)
		resp["expires_on"] = epoch
		resp["not_before"] = strconv.FormatInt(now.Unix(), 10)
		resp["refresh_token"] = ""
	case HostArc:
		resp["expires_in"] = secs
		resp["expires_on"] = epoch
		resp["not_before"] = strconv.FormatInt(now.Unix(), 10)
		resp["client_id"] = mi.ClientID
		if by != "" {
			resp["object_id"] = mi.ObjectID
			resp["msi_res_id"] = mi.ResourceID
		}
	default:
		resp["client_id"] = mi.ClientID
		resp["expires_in"] = strconv.FormatInt(secs, 10)
		resp["ext_expires_in"] = strconv.FormatInt(secs, 10)
		resp["expires_on"] = epoch
		resp["not_before"] = strconv.FormatInt(now.Unix(), 10)
	}
	if refreshIn > 0 {
		resp["refresh_in"] = int64(refreshIn / time.Second)
	}
	h.mu.Lock()
	hook := h.fields
	h.mu.Unlock()
	if hook != nil {
		hook(resp)
	}
	writeJSON(w, http.StatusOK, resp)
}
