package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// AzurePowerShellCredentialOptions contains optional parameters for AzurePowerShellCredential.
type AzurePowerShellCredentialOptions struct {
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

// AzurePowerShellCredential gets tokens from Azure PowerShell, signed in with "Connect-AzAccount". It runs the tool without a
// shell, bounded by a 10 s timeout, and caches the tokens it returns until
// they are due for refresh, so the tool runs about once per scope per token
// lifetime. It is safe for concurrent use.
type AzurePowerShellCredential struct {
	source
}

// NewAzurePowerShellCredential constructs a AzurePowerShellCredential. Pass nil to accept default options.
func NewAzurePowerShellCredential(options *AzurePowerShellCredentialOptions) (*AzurePowerShellCredential, error) {
	o := AzurePowerShellCredentialOptions{}
	if options != nil {
		o = *options
	}
	c, err := azcred.NewAzurePowerShellCredential(&azcred.AzurePowerShellCredentialOptions{
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		TenantID:                   o.TenantID,
	})
	if err != nil {
		return nil, err
	}
	return &AzurePowerShellCredential{newSource(credNameAzurePowerShell, c, nil)}, nil
}

// GetToken asks the tool for an access token, or returns the cached one.
func (c *AzurePowerShellCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.getToken(ctx, opts)
	return tok, claimsRefusal(opts, err)
}

var _ azcore.TokenCredential = (*AzurePowerShellCredential)(nil)
