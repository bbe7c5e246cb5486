package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// WorkloadIdentityCredentialOptions contains optional parameters for
// WorkloadIdentityCredential.
type WorkloadIdentityCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests, as on [ClientSecretCredentialOptions].
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

	// ClientID is the app's client ID. Default: the AZURE_CLIENT_ID
	// environment variable.
	ClientID string

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool

	// EnableAzureProxy sends token requests through the AKS identity
	// binding proxy when its environment variables are set. Default: false.
	EnableAzureProxy bool

	// TenantID is the app's tenant. Default: the AZURE_TENANT_ID
	// environment variable.
	TenantID string

	// TokenFilePath is the projected service account token file. Default:
	// the AZURE_FEDERATED_TOKEN_FILE environment variable.
	TokenFilePath string
}

// WorkloadIdentityCredential authenticates with Kubernetes workload identity
// federation (AKS and others): it exchanges the service account token that
// Kubernetes projects into the pod for an Entra ID token. It caches its
// tokens; it is safe for concurrent use.
type WorkloadIdentityCredential struct {
	source
}

// NewWorkloadIdentityCredential constructs a WorkloadIdentityCredential.
// Pass nil to accept default options.
func NewWorkloadIdentityCredential(options *WorkloadIdentityCredentialOptions) (*WorkloadIdentityCredential, error) {
	o := WorkloadIdentityCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewWorkloadIdentityCredential(&azcred.WorkloadIdentityCredentialOptions{
		ClientOptions:              co,
		ClientID:                   o.ClientID,
		TenantID:                   o.TenantID,
		TokenFilePath:              o.TokenFilePath,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
		EnableAzureProxy:           o.EnableAzureProxy,
		Cache:                      store(o.Cache),
	})
	if err != nil {
		return nil, err
	}
	return &WorkloadIdentityCredential{newSource(credNameWorkloadIdentity, c, p)}, nil
}

// GetToken requests an access token from Microsoft Entra ID, or returns the
// cached one.
func (w *WorkloadIdentityCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return w.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*WorkloadIdentityCredential)(nil)
