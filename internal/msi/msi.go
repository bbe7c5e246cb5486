// Package msi gets tokens from the managed-identity endpoints of Azure
// hosts: IMDS on virtual machines, App Service (and Functions, Container
// Apps), Service Fabric, Azure Machine Learning, Cloud Shell and Azure Arc.
// It detects the host from the environment, speaks each host's wire
// protocol, retries as the host needs, and classifies failures as
// "unavailable" (no managed identity here) or not. It knows nothing of the
// root package: the root wraps its results and errors.
package msi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/httpx"
	"github.com/azcred/azcred/internal/redact"
)

// Source is a kind of managed-identity host.
type Source int

// The sources, in the order detection tries them (IMDS last).
const (
	IMDS Source = iota
	AppService
	ServiceFabric
	AzureML
	CloudShell
	AzureArc
)

// String names the source as messages show it.
func (s Source) String() string {
	switch s {
	case AppService:
		return "App Service"
	case ServiceFabric:
		return "Service Fabric"
	case AzureML:
		return "Azure ML"
	case CloudShell:
		return "Cloud Shell"
	case AzureArc:
		return "Azure Arc"
	default:
		return "IMDS"
	}
}

// IDKind says how a user-assigned identity is named.
type IDKind int

// The kinds of identity: system-assigned (None) or user-assigned by client,
// object or resource ID.
const (
	None IDKind = iota
	ClientID
	ObjectID
	ResourceID
)

// String names the kind as messages show it.
func (k IDKind) String() string {
	switch k {
	case ClientID:
		return "client ID"
	case ObjectID:
		return "object ID"
	case ResourceID:
		return "resource ID"
	default:
		return "system-assigned"
	}
}

// ID selects the identity: Kind None is the system-assigned one.
type ID struct {
	Kind  IDKind
	Value string
}

// String describes the identity.
func (id ID) String() string {
	if id.Kind == None {
		return "system-assigned identity"
	}
	return fmt.Sprintf("user-assigned identity with %s %q", id.Kind, id.Value)
}

// DefaultIMDSBase is the IMDS base URL when nothing else is configured.
const DefaultIMDSBase = "http://169.254.169.254"

// imdsPath is the path of the IMDS token endpoint.
const imdsPath = "/metadata/identity/oauth2/token"

// arcDefaultEndpoint is the Arc agent's endpoint when only its file shows
// that it is installed.
const arcDefaultEndpoint = "http://127.0.0.1:40342" + imdsPath

// The api-version of each source.
const (
	apiIMDS          = "2018-02-01"
	apiAppService    = "2019-08-01"
	apiServiceFabric = "2019-07-01-preview"
	apiAzureML       = "2017-09-01"
	apiArc           = "2020-06-01"
)

// DefaultProbeTimeout bounds connecting to IMDS, and waiting for its first
// answer, inside a chain.
const DefaultProbeTimeout = time.Second

// imdsGoneWindow is how long a 410 from IMDS is retried at least: IMDS
// answers 410 for up to 70 s while it updates.
const imdsGoneWindow = 70 * time.Second

// IMDSDefaults is the retry policy of IMDS and Azure Arc: 6 retries from
// 2 s up to 25 s apart (with the lowest jitter the waits add up to more than
// 90 s, beyond IMDS's 70 s of 410 answers), one minute per try.
var IMDSDefaults = httpx.Policy{
	MaxRetries:    6,
	RetryDelay:    2 * time.Second,
	MaxRetryDelay: 25 * time.Second,
	TryTimeout:    time.Minute,
}

// imdsRetryStatuses are retried by IMDS and Arc besides 408, 429 and the
// 5xx that httpx retries for every source: 404, 410, and the 501 and 505
// that httpx leaves out (IMDS retries every 5xx, as in azidentity).
var imdsRetryStatuses = []int{404, 410, http.StatusNotImplemented, http.StatusHTTPVersionNotSupported}

// Config configures a Client. The zero value detects the source from the
// process environment and uses azcred's own transport.
type Config struct {
	// Name is the credential's name, for messages.
	Name string
	// Getenv reads the environment; nil is the process's.
	Getenv env.Getenv
	// ID is the identity to ask for.
	ID ID
	// IMDSBase is the IMDS base URL; "" means AZURE_POD_IDENTITY_AUTHORITY_HOST,
	// else DefaultIMDSBase.
	IMDSBase string
	// Transport sends requests (after httpx's transport rule).
	Transport httpx.Doer
	// Retry is the caller's retry policy; zero fields take the source's.
	Retry httpx.Policy
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Clock times waits; nil is the system clock.
	Clock clock.Clock
	// ArcKeyDir is the folder the Arc agent's key files must be in; ""
	// means the platform's.
	ArcKeyDir string
	// HimdsPath is the Arc agent's executable whose presence means Arc; ""
	// means the platform's.
	HimdsPath string
	// Chain turns on the chain behaviour of IMDS: a bounded first request
	// and a probe, so that a machine without IMDS is found out fast. It
	// lasts until IMDS first answers; later requests use the full policy.
	Chain bool
	// ProbeTimeout bounds the chain's first connection and answer; 0 means
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
}

// Client gets tokens from one managed-identity endpoint. It is safe for
// concurrent use and caches nothing.
type Client struct {
	name     string
	source   Source
	id       ID
	endpoint *url.URL         // the token endpoint, without query
	secret   string           // IDENTITY_HEADER / MSI_SECRET
	redactor *redact.Redactor // removes secret from what the client reports
	mlClient string           // Azure ML: clientid parameter
	arcDir   string
	http     *httpx.Client // the source's full policy
	single   *httpx.Client // one try, no retries (chain mode)
	clock    clock.Clock
	logger   *slog.Logger
	chain    bool
	probeTO  time.Duration
	traced   bool // the transport is ours, so connection traces are reliable
	retryOff bool // the caller asked for no retries
	// imdsSeen records that IMDS has answered a request of this client in
	// HTTP (chain mode). From then on chain mode is over: requests go
	// through the full policy, and connecting is no longer bounded by the
	// probe timeout.
	imdsSeen atomic.Bool

	firstAnswered func() // test hook: a chain's first request has its answer
}

// Source returns the detected source.
func (c *Client) Source() Source { return c.source }

// Endpoint returns the token endpoint's URL (no query), the key of the
// process-wide cache.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// ID returns the identity the client asks for.
func (c *Client) ID() ID { return c.id }

// ConfigError reports a configuration that cannot work, found at
// construction.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

// UnavailableError means no managed identity is available here: the
// endpoint does not answer, answers as something else, or has no identity.
type UnavailableError struct {
	Msg string
	Err error
}

func (e *UnavailableError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ResponseError is an endpoint's refusal: a final non-2xx answer, or a 2xx
// that is not a usable token.
type ResponseError struct {
	// Msg says what failed and what to do.
	Msg string
	// StatusCode is the answer's status.
	StatusCode int
	// Body is an excerpt of the answer's body, any token removed.
	Body string
	// Err is a cause, or nil.
	Err error
}

func (e *ResponseError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *ResponseError) Unwrap() error { return e.Err }

// New detects the source from the environment, checks that it supports the
// identity, and builds the client. Its errors are *ConfigError.
func New(cfg Config) (*Client, error) {
	getenv := env.OrOS(cfg.Getenv)
	if cfg.ID.Kind != None && strings.TrimSpace(cfg.ID.Value) == "" {
		return nil, &ConfigError{fmt.Sprintf("the %s of the user-assigned identity is empty; give its value, or no ID for the system-assigned identity", cfg.ID.Kind)}
	}
	c := &Client{
		name:     cfg.Name,
		id:       cfg.ID,
		clock:    clock.OrReal(cfg.Clock),
		logger:   cfg.Logger,
		chain:    cfg.Chain,
		probeTO:  cfg.ProbeTimeout,
		retryOff: cfg.Retry.MaxRetries < 0,
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.probeTO <= 0 {
		c.probeTO = DefaultProbeTimeout
	}
	idEndpoint, idHeader := getenv(env.IdentityEndpoint), getenv(env.IdentityHeader)
	msiEndpoint := getenv(env.MSIEndpoint)
	var raw string
	switch {
	case idEndpoint != "" && idHeader != "":
		raw, c.secret = idEndpoint, idHeader
		c.source = AppService
		if getenv(env.IdentityServerThumbprint) != "" {
			c.source = ServiceFabric
		}
	case msiEndpoint != "":
		raw = msiEndpoint
		c.source = CloudShell
		if s := getenv(env.MSISecret); s != "" {
			c.source, c.secret = AzureML, s
			c.mlClient = getenv(env.DefaultIdentityClientID)
		}
	case idEndpoint != "" && getenv(env.IMDSEndpoint) != "":
		raw, c.source = idEndpoint, AzureArc
	case fileExists(himdsPath(cfg.HimdsPath, getenv)):
		raw, c.source = arcDefaultEndpoint, AzureArc
	default:
		c.source = IMDS
		base, err := ResolveIMDSBase(cfg.IMDSBase, getenv)
		if err != nil {
			return nil, err
		}
		raw = base + imdsPath
	}
	u, err := parseEndpoint(c.source, raw)
	if err != nil {
		return nil, err
	}
	c.endpoint = u
	if err := c.checkIdentity(); err != nil {
		return nil, err
	}
	if c.source == AzureML && c.id.Kind == ClientID {
		c.mlClient = c.id.Value
	}
	if c.source == AzureArc {
		if c.arcDir, err = arcKeyDir(cfg.ArcKeyDir, getenv); err != nil {
			return nil, err
		}
	}
	if err := c.buildHTTP(cfg, getenv); err != nil {
		return nil, err
	}
	c.redactor = redact.New(c.secret)
	return c, nil
}

// ResolveIMDSBase returns the IMDS base URL: option, else
// AZURE_POD_IDENTITY_AUTHORITY_HOST, else DefaultIMDSBase; normalised to
// scheme://host[:port] plus any path, without a trailing slash.
func ResolveIMDSBase(option string, getenv env.Getenv) (string, error) {
	from, raw := "the IMDSEndpoint option", option
	if raw == "" {
		from, raw = "the "+env.PodIdentityAuthorityHost+" environment variable", env.OrOS(getenv)(env.PodIdentityAuthorityHost)
	}
	if raw == "" {
		return DefaultIMDSBase, nil
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", &ConfigError{fmt.Sprintf("%s is not a valid IMDS base URL; give one such as %q, with no query or user information", from, DefaultIMDSBase)}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// parseEndpoint checks a host's endpoint URL.
func parseEndpoint(s Source, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, &ConfigError{fmt.Sprintf("the %s managed-identity endpoint from the environment is not an absolute http(s) URL; check %s", s, endpointVar(s))}
	}
	if s == ServiceFabric && u.Scheme != "https" {
		return nil, &ConfigError{fmt.Sprintf("the Service Fabric managed-identity endpoint must use https; check %s", env.IdentityEndpoint)}
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

func endpointVar(s Source) string {
	switch s {
	case AzureML, CloudShell:
		return env.MSIEndpoint
	case IMDS:
		return env.PodIdentityAuthorityHost
	default:
		return env.IdentityEndpoint
	}
}

// checkIdentity refuses identities the source cannot serve.
func (c *Client) checkIdentity() error {
	if c.id.Kind == None {
		return nil
	}
	switch {
	case c.source == ServiceFabric:
		return &ConfigError{"Service Fabric does not support choosing a user-assigned identity at runtime: configure the identity in the application manifest and give no ID"}
	case c.source == CloudShell:
		return &ConfigError{"Cloud Shell supports only the signed-in user's identity: give no ID"}
	case c.source == AzureML && c.id.Kind != ClientID:
		return &ConfigError{fmt.Sprintf("Azure ML accepts user-assigned identities by client ID only, not by %s: give the identity's client ID", c.id.Kind)}
	}
	return nil
}

// buildHTTP makes the source's HTTP clients: IMDS and Arc bypass proxies
// (and, in a chain, bound connecting by the probe timeout until IMDS has
// answered); Service Fabric pins the server certificate.
func (c *Client) buildHTTP(cfg Config, getenv env.Getenv) error {
	transport := cfg.Transport
	defaults, statuses := httpx.EntraDefaults, []int(nil)
	switch c.source {
	case IMDS, AzureArc:
		defaults, statuses = IMDSDefaults, imdsRetryStatuses
		hc, err := directClient(cfg.Transport)
		if err == nil {
			c.traced = cfg.Transport == nil
			transport = probeBounding{hc: hc, bound: c.probeTO, probing: c.probing}
		}
	case ServiceFabric:
		hc, err := pinnedClient(cfg.Transport, getenv(env.IdentityServerThumbprint))
		if err != nil {
			return err
		}
		transport = hc
	}
	o := httpx.Options{
		Transport:     transport,
		Retry:         cfg.Retry,
		Defaults:      defaults,
		RetryStatuses: statuses,
		Logger:        c.logger,
		Clock:         c.clock,
	}
	c.http = httpx.New(o)
	o.Retry = httpx.Policy{MaxRetries: -1, TryTimeout: c.http.Policy().TryTimeout}
	c.single = httpx.New(o)
	return nil
}

// probing reports whether the client is in chain mode and IMDS has not
// answered it yet: the first contact, which the probe timeout bounds.
func (c *Client) probing() bool {
	return c.chain && c.source == IMDS && !c.imdsSeen.Load()
}

// Probing reports whether the client is in chain mode on IMDS and IMDS
// has not answered it yet, so that its next token request may have to wait
// out the probe timeout.
func (c *Client) Probing() bool { return c.probing() }

// sawIMDS records that IMDS answered in HTTP, which ends chain mode.
func (c *Client) sawIMDS() {
	if c.chain && !c.imdsSeen.Load() {
		c.imdsSeen.Store(true)
		c.logger.Debug("azcred IMDS has answered; its requests now use the full retry policy")
	}
}

// Describe returns the log line that names the source and identity.
func (c *Client) Describe() string {
	s := fmt.Sprintf("%s will use %s managed identity", c.name, c.source)
	if c.id.Kind != None {
		s += fmt.Sprintf(" with %s %q", c.id.Kind, c.id.Value)
	}
	return s
}

func errorsAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
