package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// ClientAssertionCredentialOptions contains optional parameters for
// ClientAssertionCredential.
type ClientAssertionCredentialOptions struct {
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
}

// ClientAssertionCredential authenticates a service principal with a signed
// client assertion (a JWT) that a function of the caller provides, such as a
// federated token of another identity provider. It caches its tokens; it is
// safe for concurrent use.
type ClientAssertionCredential struct {
	source
}

// NewClientAssertionCredential constructs a ClientAssertionCredential for
// the app clientID in tenantID. getAssertion is called for every token
// request and must return a valid assertion each time. Pass nil to accept
// default options.
func NewClientAssertionCredential(tenantID, clientID string, getAssertion func(context.Context) (string, error), options *ClientAssertionCredentialOptions) (*ClientAssertionCredential, error) {
	o := ClientAssertionCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewClientAssertionCredential(tenantID, clientID, getAssertion, &azcred.ClientAssertionCredentialOptions{
		ClientOptions:              co,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
		Cache:                      store(o.Cache),
	})
	if err != nil {
		return nil, err
	}
	return &ClientAssertionCredential{newSource(credNameAssertion, c, p)}, nil
}

// GetToken requests an access token from Microsoft Entra ID, or returns the
// cached one.
func (c *ClientAssertionCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*ClientAssertionCredential)(nil)
