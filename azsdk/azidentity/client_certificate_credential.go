package azidentity

import (
	"context"
	"crypto"
	"crypto/x509"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// ClientCertificateCredentialOptions contains optional parameters for
// ClientCertificateCredential.
type ClientCertificateCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests, as on [ClientSecretCredentialOptions].
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// Cache keeps the credential's tokens in a persistent store as well as
	// in memory. Default: the zero Cache, memory only.
	Cache Cache

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool

	// SendCertificateChain sends the certificate chain (the x5c header) with
	// each assertion, which subject-name/issuer authentication needs.
	// Default: false.
	SendCertificateChain bool
}

// ClientCertificateCredential authenticates a service principal with a
// certificate. It caches its tokens and refreshes them before they expire;
// it is safe for concurrent use.
type ClientCertificateCredential struct {
	source
}

// NewClientCertificateCredential constructs a ClientCertificateCredential
// for the app clientID in tenantID. certs must hold the certificate of key
// first; [ParseCertificates] loads both from a file. Pass nil to accept
// default options.
func NewClientCertificateCredential(tenantID string, clientID string, certs []*x509.Certificate, key crypto.PrivateKey, options *ClientCertificateCredentialOptions) (*ClientCertificateCredential, error) {
	o := ClientCertificateCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewClientCertificateCredential(tenantID, clientID, certs, key, &azcred.ClientCertificateCredentialOptions{
		ClientOptions:              co,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
		SendCertificateChain:       o.SendCertificateChain,
		Cache:                      store(o.Cache),
	})
	if err != nil {
		return nil, err
	}
	return &ClientCertificateCredential{newSource(credNameCert, c, p)}, nil
}

// GetToken requests an access token from Microsoft Entra ID, or returns the
// cached one.
func (c *ClientCertificateCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*ClientCertificateCredential)(nil)
