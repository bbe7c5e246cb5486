package azidentity

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azsdk"
)

// moduleName and moduleVersion name this package in the User-Agent header
// azcore's telemetry policy sends ("azsdk-go-azidentity/v0.1.0 ...", followed
// by azcred's own product token) and in the tracer it asks the
// TracingProvider for.
const (
	moduleName    = "github.com/azcred/azcred/azsdk/azidentity"
	moduleVersion = "v0.1.0"
	// traceNamespace is the az.namespace attribute of this package's spans,
	// the value Azure SDK credentials use.
	traceNamespace = "Microsoft.Entra"
)

// imdsTokenPath is the path of the Instance Metadata Service's (and Azure
// Arc's) token endpoint; requests to it take the managed-identity retry
// defaults.
const imdsTokenPath = "/metadata/identity/oauth2/token"

// pipeline sends a credential's HTTP requests through azcore: the caller's
// per-call and per-retry policies, telemetry, azcore's retry policy, request
// logging and HTTP spans, and the caller's transport. It is the core
// credential's Doer; azcred's own retries are switched off so that only
// azcore's ClientOptions.Retry applies.
type pipeline struct {
	entra  runtime.Pipeline
	imds   runtime.Pipeline // for managed identity's IMDS and Arc requests; else entra
	tracer tracing.Tracer

	// probing holds IMDS requests to one try until IMDS has answered once,
	// inside DefaultAzureCredential: a machine without IMDS must be found out
	// within the chain's probe timeout, not after azcore's retries. Like
	// azidentity's probe, later requests get the full retry policy.
	probing  bool
	answered atomic.Bool

	// lastFailure is the request line of the latest response with an error
	// status, which AuthenticationFailedError.RawResponse reports.
	lastFailure atomic.Pointer[requestLine]
}

// requestLine is what an error reports of a request: never its query or
// body, which may carry secrets.
type requestLine struct {
	method, scheme, host, path string
	status                     int
}

// newPipeline builds the pipeline for o. With managedIdentity, requests to
// the IMDS token endpoint take azidentity's managed-identity retry defaults
// for the fields o.Retry leaves zero; with chain too, they are tried once
// until IMDS has answered.
func newPipeline(o *azcore.ClientOptions, managedIdentity, chain bool) (*pipeline, error) {
	cp := azcore.ClientOptions{}
	if o != nil {
		cp = *o
	}
	if cp.Transport == nil {
		cp.Transport = defaultTransport
	}
	plOpts := runtime.PipelineOptions{Tracing: runtime.TracingOptions{Namespace: traceNamespace}}
	client, err := azcore.NewClient(moduleName, moduleVersion, plOpts, &cp)
	if err != nil {
		return nil, err
	}
	p := &pipeline{entra: client.Pipeline(), imds: client.Pipeline(), tracer: client.Tracer(), probing: managedIdentity && chain}
	if managedIdentity {
		mi := cp
		setIMDSRetryDefaults(&mi.Retry)
		if o == nil || o.Transport == nil {
			mi.Transport = imdsTransport
		}
		p.imds = runtime.NewPipeline(moduleName, moduleVersion, plOpts, &mi)
	}
	return p, nil
}

// defaultTransport is the transport when ClientOptions.Transport is nil:
// Go's default transport, and redirects handed back instead of followed, so
// a token request is never re-sent to another host.
var defaultTransport = &http.Client{
	Transport:     http.DefaultTransport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// imdsTransport is the default transport of IMDS and Azure Arc requests,
// which go to the host itself: as defaultTransport, but never through a
// proxy from the environment (HTTPS_PROXY does not exempt 169.254.169.254).
var imdsTransport = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	return &http.Client{Transport: t, CheckRedirect: defaultTransport.CheckRedirect}
}()

// setIMDSRetryDefaults fills the zero fields of o with the retry policy
// azidentity gives managed identity: 6 retries, 2 s first delay, 25 s
// maximum delay, a 1 minute try timeout, and the statuses the IMDS
// documentation asks clients to retry (404, 410, 429, and 500 to 511).
func setIMDSRetryDefaults(o *policy.RetryOptions) {
	if o.MaxRetries == 0 {
		o.MaxRetries = 6
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = 2 * time.Second
	}
	if o.MaxRetryDelay == 0 {
		o.MaxRetryDelay = 25 * time.Second
	}
	if o.TryTimeout == 0 {
		o.TryTimeout = time.Minute
	}
	if o.StatusCodes == nil {
		o.StatusCodes = []int{
			http.StatusNotFound, http.StatusGone, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusNotImplemented, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusHTTPVersionNotSupported,
			http.StatusVariantAlsoNegotiates,
			http.StatusInsufficientStorage, http.StatusLoopDetected, http.StatusNotExtended,
			http.StatusNetworkAuthenticationRequired,
		}
	}
}

// Do implements azcred.Doer: it sends r through the pipeline.
func (p *pipeline) Do(r *http.Request) (*http.Response, error) {
	pl := p.entra
	imds := strings.HasSuffix(r.URL.Path, imdsTokenPath)
	if imds {
		pl = p.imds
		if p.probing && !p.answered.Load() {
			r = r.WithContext(policy.WithRetryOptions(r.Context(), policy.RetryOptions{MaxRetries: -1}))
		}
	}
	req, err := runtime.NewRequestFromRequest(r)
	if err != nil {
		return nil, err
	}
	res, err := pl.Do(req)
	if err == nil && imds {
		p.answered.Store(true)
	}
	if err == nil && res.StatusCode >= http.StatusBadRequest {
		p.lastFailure.Store(&requestLine{method: r.Method, scheme: r.URL.Scheme, host: r.URL.Host, path: r.URL.Path, status: res.StatusCode})
	}
	return res, err
}

// errNoAuthorityHost is azidentity's refusal of a cloud configuration that
// names services but no authority host.
var errNoAuthorityHost = errors.New("the cloud configuration has no ActiveDirectoryAuthorityHost: set ClientOptions.Cloud.ActiveDirectoryAuthorityHost, or leave Cloud empty for the public cloud")

// coreOptions returns the azcred ClientOptions of o, with p as the Doer and
// azcred's retries off (azcore's retry policy in p retries instead). An
// authority host in o.Cloud wins over AZURE_AUTHORITY_HOST, which applies
// only when o.Cloud is empty, as in azidentity.
func (p *pipeline) coreOptions(o *azcore.ClientOptions) (azcred.ClientOptions, error) {
	co := azcred.ClientOptions{
		Transport: p,
		Retry:     azcred.RetryOptions{MaxRetries: -1, TryTimeout: -1},
	}
	if o == nil {
		return co, nil
	}
	switch host := o.Cloud.ActiveDirectoryAuthorityHost; {
	case host != "":
		co.Cloud = azsdk.CloudFromAzcore(o.Cloud)
		co.AuthorityHost = host
	case len(o.Cloud.Services) > 0:
		return co, errNoAuthorityHost
	}
	return co, nil
}

var _ azcred.Doer = (*pipeline)(nil)

// setup builds the pipeline of o and the azcred ClientOptions that send
// through it.
func setup(o *azcore.ClientOptions, managedIdentity bool) (*pipeline, azcred.ClientOptions, error) {
	return setupChain(o, managedIdentity, false)
}

// setupChain is setup for DefaultAzureCredential (chain true).
func setupChain(o *azcore.ClientOptions, managedIdentity, chain bool) (*pipeline, azcred.ClientOptions, error) {
	p, err := newPipeline(o, managedIdentity, chain)
	if err != nil {
		return nil, azcred.ClientOptions{}, err
	}
	co, err := p.coreOptions(o)
	if err != nil {
		return nil, azcred.ClientOptions{}, err
	}
	return p, co, nil
}
