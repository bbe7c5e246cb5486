package azidentity

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// InteractiveBrowserCredentialOptions contains optional parameters for
// InteractiveBrowserCredential.
type InteractiveBrowserCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests, as on [ClientSecretCredentialOptions].
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// AuthenticationRecord names the account to get tokens for silently,
	// from an earlier Authenticate. Default: none; the first token signs a
	// user in.
	AuthenticationRecord AuthenticationRecord

	// Cache keeps the account's tokens between runs. Default: the zero
	// Cache, memory only.
	Cache Cache

	// ClientID is the public client application to sign in to; its
	// registration must allow "http://localhost" as a redirect URI.
	// Default: the Azure development sign-on application,
	// "04b07795-8ddb-461a-bbee-02f9e1bf7b46".
	ClientID string

	// DisableAutomaticAuthentication makes GetToken return an
	// [AuthenticationRequiredError] instead of opening a browser when a
	// person must sign in; call Authenticate then. Default: false.
	DisableAutomaticAuthentication bool

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool

	// LoginHint preselects the account, such as "user@contoso.com".
	// Default: none, the user picks.
	LoginHint string

	// RedirectURL is the redirect URI, "http://localhost:<port>", when the
	// app registration requires a fixed port. Default: localhost on a port
	// the system picks.
	RedirectURL string

	// TenantID is the tenant to sign in to. Default: "organizations" (work
	// and school accounts).
	TenantID string
}

// InteractiveBrowserCredential signs a user in through the system browser
// (authorization code flow with PKCE and a loopback redirect). It caches the
// account's tokens and refreshes them silently; it is safe for concurrent
// use.
type InteractiveBrowserCredential struct {
	source
	ib *azcred.InteractiveBrowserCredential
}

// NewInteractiveBrowserCredential constructs an
// InteractiveBrowserCredential. Pass nil to accept default options.
func NewInteractiveBrowserCredential(options *InteractiveBrowserCredentialOptions) (*InteractiveBrowserCredential, error) {
	o := InteractiveBrowserCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewInteractiveBrowserCredential(&azcred.InteractiveBrowserCredentialOptions{
		ClientOptions:                  co,
		AdditionallyAllowedTenants:     onlyTheseTenants(o.AdditionallyAllowedTenants),
		AuthenticationRecord:           azcred.AuthenticationRecord(o.AuthenticationRecord),
		Cache:                          store(o.Cache),
		ClientID:                       o.ClientID,
		DisableAutomaticAuthentication: o.DisableAutomaticAuthentication,
		LoginHint:                      o.LoginHint,
		RedirectURL:                    o.RedirectURL,
		TenantID:                       o.TenantID,
	})
	if err != nil {
		return nil, err
	}
	return &InteractiveBrowserCredential{source: newSource(credNameBrowser, c, p), ib: c}, nil
}

// Authenticate signs a user in for opts (default: the cloud's Azure
// Resource Manager scope) and returns the account's record.
func (c *InteractiveBrowserCredential) Authenticate(ctx context.Context, opts *policy.TokenRequestOptions) (AuthenticationRecord, error) {
	return authenticate(ctx, &c.source, c.ib.Authenticate, opts)
}

// GetToken returns a token for the signed-in user, opening a browser to
// sign one in first unless DisableAutomaticAuthentication is set.
func (c *InteractiveBrowserCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*InteractiveBrowserCredential)(nil)
