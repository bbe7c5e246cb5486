package azidentity

import (
	"context"
	"crypto"
	"crypto/x509"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// OnBehalfOfCredentialOptions contains optional parameters for
// OnBehalfOfCredential.
type OnBehalfOfCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests, as on [ClientSecretCredentialOptions].
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool

	// SendCertificateChain sends the certificate chain (x5c) with each
	// assertion of a certificate credential. Default: false.
	SendCertificateChain bool
}

// OnBehalfOfCredential exchanges a user's access token (the user assertion
// a web API received) for a token to another API on that user's behalf,
// the on-behalf-of flow. It caches its tokens; it is safe for concurrent use.
type OnBehalfOfCredential struct {
	source
}

// NewOnBehalfOfCredentialWithCertificate constructs an OnBehalfOfCredential
// whose app authenticates with a certificate. Pass nil to accept default
// options.
func NewOnBehalfOfCredentialWithCertificate(tenantID, clientID, userAssertion string, certs []*x509.Certificate, key crypto.PrivateKey, options *OnBehalfOfCredentialOptions) (*OnBehalfOfCredential, error) {
	return newOBO(options, func(o *azcred.OnBehalfOfCredentialOptions) (*azcred.OnBehalfOfCredential, error) {
		return azcred.NewOnBehalfOfCredentialWithCertificate(tenantID, clientID, userAssertion, certs, key, o)
	})
}

// NewOnBehalfOfCredentialWithClientAssertions constructs an
// OnBehalfOfCredential whose app authenticates with assertions from
// getAssertion, called for every token request. Pass nil to accept default
// options.
func NewOnBehalfOfCredentialWithClientAssertions(tenantID, clientID, userAssertion string, getAssertion func(context.Context) (string, error), options *OnBehalfOfCredentialOptions) (*OnBehalfOfCredential, error) {
	return newOBO(options, func(o *azcred.OnBehalfOfCredentialOptions) (*azcred.OnBehalfOfCredential, error) {
		return azcred.NewOnBehalfOfCredentialWithClientAssertions(tenantID, clientID, userAssertion, getAssertion, o)
	})
}

// NewOnBehalfOfCredentialWithSecret constructs an OnBehalfOfCredential
// whose app authenticates with a client secret. Pass nil to accept default
// options.
func NewOnBehalfOfCredentialWithSecret(tenantID, clientID, userAssertion, clientSecret string, options *OnBehalfOfCredentialOptions) (*OnBehalfOfCredential, error) {
	return newOBO(options, func(o *azcred.OnBehalfOfCredentialOptions) (*azcred.OnBehalfOfCredential, error) {
		return azcred.NewOnBehalfOfCredentialWithSecret(tenantID, clientID, userAssertion, clientSecret, o)
	})
}

// newOBO converts the options and calls build with them.
func newOBO(options *OnBehalfOfCredentialOptions, build func(*azcred.OnBehalfOfCredentialOptions) (*azcred.OnBehalfOfCredential, error)) (*OnBehalfOfCredential, error) {
	o := OnBehalfOfCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := build(&azcred.OnBehalfOfCredentialOptions{
		ClientOptions:              co,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
		SendCertificateChain:       o.SendCertificateChain,
	})
	if err != nil {
		return nil, err
	}
	return &OnBehalfOfCredential{newSource(credNameOBO, c, p)}, nil
}

// GetToken requests an access token for the user from Microsoft Entra ID,
// or returns the cached one.
func (o *OnBehalfOfCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return o.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*OnBehalfOfCredential)(nil)
