package azidentity

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// DefaultAzureCredentialOptions contains optional parameters for
// DefaultAzureCredential.
type DefaultAzureCredentialOptions struct {
	// ClientOptions configures the pipeline of the chain's HTTP requests
	// (environment, workload identity and managed identity), as on
	// [ClientSecretCredentialOptions]; managed identity's IMDS requests take
	// its retry defaults for the fields Retry leaves zero.
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides each source's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool

	// RequireAzureTokenCredentials makes the constructor fail unless the
	// AZURE_TOKEN_CREDENTIALS environment variable selects the sources.
	// Default: false.
	RequireAzureTokenCredentials bool

	// TenantID is the tenant of workload identity and of the developer
	// tools. Default: AZURE_TENANT_ID for workload identity, the tools'
	// current tenant.
	TenantID string
}

// DefaultAzureCredential tries, in order: [EnvironmentCredential],
// [WorkloadIdentityCredential], [ManagedIdentityCredential] (with
// AZURE_CLIENT_ID selecting a user-assigned identity),
// [AzureCLICredential], [AzureDeveloperCLICredential] and
// [AzurePowerShellCredential], and keeps using the first that gives a
// token. AZURE_TOKEN_CREDENTIALS narrows the list: "prod" (the first three),
// "dev" (the tools), or one of those six credentials' names (in any case);
// any other value makes [NewDefaultAzureCredential] fail.
//
// Unlike azidentity's, it decides sources concurrently where that cannot
// change the answer (a developer tool may start while IMDS is being probed,
// so a laptop waits about as long as the slowest source it needs, not the
// sum), and a source whose configuration is present but broken stops the
// chain instead of letting a later source authenticate as someone else.
// Inside the chain, a developer tool's failure counts as unavailable, as in
// azidentity. It is safe for concurrent use.
type DefaultAzureCredential struct {
	chain  *azcred.DefaultAzureCredential
	logged atomic.Bool
}

// NewDefaultAzureCredential constructs a DefaultAzureCredential. Pass nil
// to accept default options. It fails only for an invalid
// AZURE_TOKEN_CREDENTIALS (or a missing one when it is required) and bad
// client options; a source that cannot be set up reports why when the chain
// reaches it.
func NewDefaultAzureCredential(options *DefaultAzureCredentialOptions) (*DefaultAzureCredential, error) {
	o := DefaultAzureCredentialOptions{}
	if options != nil {
		o = *options
	}
	if err := checkTokenCredentials(); err != nil {
		return nil, err
	}
	_, co, err := setupChain(&o.ClientOptions, true, true)
	if err != nil {
		return nil, err
	}
	if len(o.AdditionallyAllowedTenants) == 0 {
		// An empty list means the environment variable, as in azidentity.
		o.AdditionallyAllowedTenants = nil
	}
	// A username and password without a tenant leave EnvironmentCredential
	// out, as azidentity's chain finds it unavailable; when it is the only
	// source selected, nothing is left to try.
	excludeEnvironment := userWithoutTenant()
	if excludeEnvironment {
		if strings.EqualFold(os.Getenv("AZURE_TOKEN_CREDENTIALS"), credNameEnvironment) {
			return nil, errUserWithoutTenant
		}
		if logShould(EventAuthentication) {
			logWrite(EventAuthentication, "NewDefaultAzureCredential: "+errUserWithoutTenant.Error()+"; the chain goes on without EnvironmentCredential")
		}
	}
	c, err := azcred.NewDefaultAzureCredential(&azcred.DefaultAzureCredentialOptions{
		ExcludeEnvironmentCredential: excludeEnvironment,
		ClientOptions:                co,
		AdditionallyAllowedTenants:   o.AdditionallyAllowedTenants,
		TenantID:                     o.TenantID,
		RequireAzureTokenCredentials: o.RequireAzureTokenCredentials,
		DisableInstanceDiscovery:     o.DisableInstanceDiscovery,
		DeveloperToolOrder:           []string{credNameAzureCLI, credNameAzureDeveloperCLI, credNameAzurePowerShell},
	})
	if err != nil {
		return nil, err
	}
	return &DefaultAzureCredential{chain: c}, nil
}

// defaultChainNames are the sources AZURE_TOKEN_CREDENTIALS may name.
var defaultChainNames = []string{
	credNameEnvironment, credNameWorkloadIdentity, credNameManagedIdentity,
	credNameAzureCLI, credNameAzureDeveloperCLI, credNameAzurePowerShell,
}

// checkTokenCredentials accepts the AZURE_TOKEN_CREDENTIALS values
// azidentity accepts: exactly "dev" or "prod", or the name of a source of
// the chain in any case. The azcred core accepts more (any case and
// surrounding spaces for "dev" and "prod", and InteractiveBrowserCredential,
// which would open a browser); a program must not behave differently
// with this package than with azidentity.
func checkTokenCredentials() error {
	v, ok := os.LookupEnv("AZURE_TOKEN_CREDENTIALS")
	if !ok || v == "dev" || v == "prod" {
		return nil
	}
	for _, name := range defaultChainNames {
		if strings.EqualFold(v, name) {
			return nil
		}
	}
	return fmt.Errorf("%s: AZURE_TOKEN_CREDENTIALS=%q is not valid; set it to \"dev\", \"prod\" (both lower case) or one of %s, or unset it to try every source",
		credNameDefault, v, strings.Join(defaultChainNames, ", "))
}

// GetToken returns a token from the first source that gives one.
func (c *DefaultAzureCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.chain.GetToken(ctx, coreRequest(opts))
	if err != nil {
		return azcore.AccessToken{}, chainError(ctx, credNameDefault, err)
	}
	if !c.logged.Load() && logShould(EventAuthentication) && c.logged.CompareAndSwap(false, true) {
		if name, ok := c.chain.Resolved(); ok {
			logWrite(EventAuthentication, credNameDefault+" authenticated with "+name)
		}
	}
	return azcore.AccessToken{Token: tok.Token, ExpiresOn: tok.ExpiresOn, RefreshOn: tok.RefreshOn}, nil
}

// coreCredential lets a chain of this package use the azcred chain directly.
func (c *DefaultAzureCredential) coreCredential() azcred.TokenCredential { return c.chain }

var _ azcore.TokenCredential = (*DefaultAzureCredential)(nil)
