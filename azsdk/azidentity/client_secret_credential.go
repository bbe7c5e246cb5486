package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// ClientSecretCredentialOptions contains optional parameters for
// ClientSecretCredential.
type ClientSecretCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests: transport, retries, policies, logging, telemetry, tracing,
	// cloud. Default: azcore's defaults and the public cloud (or the
	// AZURE_AUTHORITY_HOST environment variable when Cloud is empty).
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility: this package
	// never sends instance discovery requests, so it has no effect.
	// Default: false.
	DisableInstanceDiscovery bool

	// Cache keeps the credential's tokens in a persistent store as well as
	// in memory; see the cache package. Default: the zero Cache, memory only.
	Cache Cache
}

// ClientSecretCredential authenticates a service principal with a client
// secret. It caches its tokens and refreshes them before they expire; it is
// safe for concurrent use.
type ClientSecretCredential struct {
	source
}

// NewClientSecretCredential constructs a ClientSecretCredential for the app
// clientID in tenantID. Pass nil to accept default options.
func NewClientSecretCredential(tenantID string, clientID string, clientSecret string, options *ClientSecretCredentialOptions) (*ClientSecretCredential, error) {
	o := ClientSecretCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewClientSecretCredential(tenantID, clientID, clientSecret, &azcred.ClientSecretCredentialOptions{
		ClientOptions:              co,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
		Cache:                      store(o.Cache),
	})
	if err != nil {
		return nil, err
	}
	return &ClientSecretCredential{newSource(credNameSecret, c, p)}, nil
}

// GetToken requests an access token from Microsoft Entra ID, or returns the
// cached one. Azure SDK clients call it; applications rarely need to.
func (c *ClientSecretCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*ClientSecretCredential)(nil)
