package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// AzureCLICredentialOptions contains optional parameters for AzureCLICredential.
type AzureCLICredentialOptions struct {
	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// Subscription is the subscription (name or ID) to ask the Azure CLI for
	// tokens of, instead of its current one. Default: the CLI's current
	// subscription.
	Subscription string

	// TenantID is the tenant to ask the tool for tokens from. Default: the
	// tool's current tenant.
	TenantID string
}

// AzureCLICredential gets tokens from the Azure CLI, signed in with "az login". It runs the tool without a
// shell, bounded by a 10 s timeout, and caches the tokens it returns until
// they are due for refresh, so the tool runs about once per scope per token
// lifetime. It is safe for concurrent use.
type AzureCLICredential struct {
	source
}

// NewAzureCLICredential constructs a AzureCLICredential. Pass nil to accept default options.
func NewAzureCLICredential(options *AzureCLICredentialOptions) (*AzureCLICredential, error) {
	o := AzureCLICredentialOptions{}
	if options != nil {
		o = *options
	}
	c, err := azcred.NewAzureCLICredential(&azcred.AzureCLICredentialOptions{
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		TenantID:                   o.TenantID,
		Subscription:               o.Subscription,
	})
	if err != nil {
		return nil, err
	}
	return &AzureCLICredential{newSource(credNameAzureCLI, c, nil)}, nil
}

// GetToken asks the tool for an access token, or returns the cached one.
func (c *AzureCLICredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.getToken(ctx, opts)
	return tok, claimsRefusal(opts, err)
}

var _ azcore.TokenCredential = (*AzureCLICredential)(nil)
