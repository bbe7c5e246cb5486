package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// AzurePipelinesCredentialOptions contains optional parameters for
// AzurePipelinesCredential.
type AzurePipelinesCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's requests (to
	// Azure DevOps and to Entra ID), as on [ClientSecretCredentialOptions].
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// Cache keeps the credential's access tokens in a persistent store as
	// well as in memory (see [Cache]). Default: the zero Cache (memory only).
	Cache Cache

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool
}

// AzurePipelinesCredential authenticates as the service connection of an
// Azure Pipelines run, with the OIDC token Azure DevOps issues to the run
// (from the SYSTEM_OIDCREQUESTURI endpoint). It caches its tokens; it is
// safe for concurrent use.
type AzurePipelinesCredential struct {
	source
}

// NewAzurePipelinesCredential constructs an AzurePipelinesCredential for the
// service connection serviceConnectionID, whose app is clientID in tenantID.
// systemAccessToken is the run's $(System.AccessToken). Pass nil to accept
// default options.
func NewAzurePipelinesCredential(tenantID, clientID, serviceConnectionID, systemAccessToken string, options *AzurePipelinesCredentialOptions) (*AzurePipelinesCredential, error) {
	o := AzurePipelinesCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewAzurePipelinesCredential(tenantID, clientID, serviceConnectionID, systemAccessToken, &azcred.AzurePipelinesCredentialOptions{
		ClientOptions:              co,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
		Cache:                      store(o.Cache),
	})
	if err != nil {
		return nil, err
	}
	return &AzurePipelinesCredential{newSource(credNameAzurePipelines, c, p)}, nil
}

// GetToken requests an access token from Microsoft Entra ID, or returns the
// cached one.
func (a *AzurePipelinesCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return a.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*AzurePipelinesCredential)(nil)
