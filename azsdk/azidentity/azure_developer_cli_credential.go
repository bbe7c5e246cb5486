package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// AzureDeveloperCLICredentialOptions contains optional parameters for AzureDeveloperCLICredential.
type AzureDeveloperCLICredentialOptions struct {
	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// TenantID is the tenant to ask the tool for tokens from. Default: the
	// tool's current tenant.
	TenantID string
}

// AzureDeveloperCLICredential gets tokens from the Azure Developer CLI, signed in with "azd auth login". It runs the tool without a
// shell, bounded by a 10 s timeout, and caches the tokens it returns until
// they are due for refresh, so the tool runs about once per scope per token
// lifetime. It is safe for concurrent use.
type AzureDeveloperCLICredential struct {
	source
}

// NewAzureDeveloperCLICredential constructs a AzureDeveloperCLICredential. Pass nil to accept default options.
func NewAzureDeveloperCLICredential(options *AzureDeveloperCLICredentialOptions) (*AzureDeveloperCLICredential, error) {
	o := AzureDeveloperCLICredentialOptions{}
	if options != nil {
		o = *options
	}
	c, err := azcred.NewAzureDeveloperCLICredential(&azcred.AzureDeveloperCLICredentialOptions{
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		TenantID:                   o.TenantID,
	})
	if err != nil {
		return nil, err
	}
	return &AzureDeveloperCLICredential{newSource(credNameAzureDeveloperCLI, c, nil)}, nil
}

// GetToken asks the tool for an access token, or returns the cached one.
func (c *AzureDeveloperCLICredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*AzureDeveloperCLICredential)(nil)
