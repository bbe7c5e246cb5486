package azidentity

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azsdk/azidentity/internal/shared"
	"github.com/azcred/azcred/cache"
)

// The credentials' type names, which start their errors and name their spans.
const (
	credNameAssertion         = "ClientAssertionCredential"
	credNameAzureCLI          = "AzureCLICredential"
	credNameAzureDeveloperCLI = "AzureDeveloperCLICredential"
	credNameAzurePipelines    = "AzurePipelinesCredential"
	credNameAzurePowerShell   = "AzurePowerShellCredential"
	credNameBrowser           = "InteractiveBrowserCredential"
	credNameCert              = "ClientCertificateCredential"
	credNameChain             = "ChainedTokenCredential"
	credNameDefault           = "DefaultAzureCredential"
	credNameDeviceCode        = "DeviceCodeCredential"
	credNameEnvironment       = "EnvironmentCredential"
	credNameManagedIdentity   = "ManagedIdentityCredential"
	credNameOBO               = "OnBehalfOfCredential"
	credNameSecret            = "ClientSecretCredential"
	credNameUserPassword      = "UsernamePasswordCredential"
	credNameWorkloadIdentity  = "WorkloadIdentityCredential"
)

// Cache is a persistent token cache for the credentials whose options have a
// Cache field. The zero value keeps tokens in memory only (the default);
// [github.com/azcred/azcred/azsdk/azidentity/cache.New] returns one that
// keeps them in an encrypted file, shared by the processes of the user.
// Copies of a Cache share its store.
type Cache = shared.Cache

// store returns the azcred store of c, nil for memory only.
func store(c Cache) cache.Store { return shared.Store(c) }

// ParseCertificates loads certificates and a private key from certData, a
// PEM or PKCS#12 (PFX) file's content, for [NewClientCertificateCredential]
// and [NewOnBehalfOfCredentialWithCertificate]. password decrypts a PKCS#12
// file; pass nil when it has none. Unlike azidentity's, it reads PKCS#12
// files of any modern encryption (AES, SHA-256 MACs).
func ParseCertificates(certData []byte, password []byte) ([]*x509.Certificate, crypto.PrivateKey, error) {
	return azcred.ParseCertificates(certData, password)
}

// source is what every credential of this package holds (embedded, so that
// each prints as its redacted azcred counterpart does): the azcred
// credential that does the work, the pipeline its requests take, and the
// names of its spans.
type source struct {
	name   string
	span   string // "<name>.GetToken"
	core   azcred.TokenCredential
	p      *pipeline
	tracer tracing.Tracer
}

// newSource pairs a core credential with its pipeline (nil for the
// developer tools, which send no HTTP requests).
func newSource(name string, core azcred.TokenCredential, p *pipeline) source {
	s := source{name: name, span: name + ".GetToken", core: core, p: p}
	if p != nil {
		s.tracer = p.tracer
	}
	return s
}

// getToken gets a token from the core, inside a span when tracing is on,
// and converts its error. With tracing off and no log listener, a cached
// token costs no allocation.
func (s *source) getToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if !s.tracer.Enabled() {
		return s.fetch(ctx, opts)
	}
	ctx, end := runtime.StartSpan(ctx, s.span, s.tracer, nil)
	tok, err := s.fetch(ctx, opts)
	end(err)
	return tok, err
}

func (s *source) fetch(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := s.core.GetToken(ctx, coreRequest(opts))
	if err != nil {
		return azcore.AccessToken{}, sourceError(ctx, s.name, s.p, err)
	}
	if logShould(EventAuthentication) {
		logWrite(EventAuthentication, fmt.Sprintf("%s.GetToken() acquired a token for scope %q", s.name, strings.Join(opts.Scopes, ", ")))
	}
	return azcore.AccessToken{Token: tok.Token, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// coreCredential returns the azcred credential behind s, which this
// package's chains use directly.
func (s *source) coreCredential() azcred.TokenCredential { return s.core }

// String describes the credential as its azcred counterpart does, without
// any secret.
func (s *source) String() string {
	if st, ok := s.core.(fmt.Stringer); ok {
		return st.String()
	}
	return s.name
}

// GoString returns the same as String, so that %#v shows no secret either.
func (s *source) GoString() string { return s.String() }

// coreRequest converts azcore's token request to azcred's.
func coreRequest(o policy.TokenRequestOptions) azcred.TokenRequestOptions {
	return azcred.TokenRequestOptions{Scopes: o.Scopes, TenantID: o.TenantID, Claims: o.Claims, EnableCAE: o.EnableCAE}
}

// coreBacked is implemented by every credential of this package.
type coreBacked interface {
	coreCredential() azcred.TokenCredential
}

// onlyTheseTenants passes a credential's AdditionallyAllowedTenants option
// to the core so that the core does not read
// AZURE_ADDITIONALLY_ALLOWED_TENANTS for it: azidentity reads that variable
// only in DefaultAzureCredential and EnvironmentCredential, so a
// credential constructed directly allows exactly the tenants its options
// list.
func onlyTheseTenants(tenants []string) []string {
	if tenants == nil {
		return []string{}
	}
	return tenants
}
