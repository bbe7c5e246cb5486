package azcred

import (
	"context"
	"errors"
	"log/slog"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameSecret = "ClientSecretCredential"

// ClientSecretCredentialOptions contains optional parameters for
// ClientSecretCredential.
type ClientSecretCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends instance or OpenID discovery requests, so it has no
	// effect. Default: false.
	DisableInstanceDiscovery bool
	// Cache keeps access tokens in a persistent store (such as
	// [cache.NewFileStore]) as well as in memory, so that later runs of the
	// program, and other processes sharing the store, reuse them until they
	// are due for refresh. Default: nil, memory only.
	Cache cache.Store
	// DisableTokenSharing gives the credential an in-memory token cache of
	// its own. By default credentials of this process built with the same
	// tenant, client ID, secret and options (the same Transport,
	// Logger, Retry and Cache values) share one, so that a credential built
	// per request costs one token request per token lifetime, not one per
	// credential. Default: false.
	DisableTokenSharing bool
}

// ClientSecretCredential authenticates an application (service principal)
// with a client secret, using Entra ID's client credentials grant. Its
// first token costs one request; later ones come from its cache until they
// are due for refresh. It is safe for concurrent use. It prints without its
// secret.
type ClientSecretCredential struct {
	client *entraClient
	desc   description
}

// NewClientSecretCredential constructs a ClientSecretCredential for the app
// clientID in tenantID with the value (not the ID) of one of its client
// secrets. Pass nil to accept default options.
func NewClientSecretCredential(tenantID, clientID, secret string, options *ClientSecretCredentialOptions) (*ClientSecretCredential, error) {
	if options == nil {
		options = &ClientSecretCredentialOptions{}
	}
	if secret == "" {
		return nil, errors.New(credNameSecret + ": the client secret is empty; give the secret's value (not its ID) from the app registration's \"Certificates & secrets\" page")
	}
	client, err := newEntraClient(entraConfig{
		name:     credNameSecret,
		tenantID: tenantID,
		clientID: clientID,
		options:  &options.ClientOptions,
		allowed:  options.AdditionallyAllowedTenants,
		store:    options.Cache,
		share:    shareUnless(options.DisableTokenSharing, shareParts{material: []string{secret}}),
		grant: func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error) {
			p.Auth.Secret = secret
			return c.ClientCredentials(ctx, p)
		},
	})
	if err != nil {
		return nil, err
	}
	return &ClientSecretCredential{
		client: client,
		desc:   describe(credNameSecret, "tenantID", tenantID, "clientID", clientID, "clientSecret", redactIf(secret)),
	}, nil
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh.
func (c *ClientSecretCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential without its secret.
func (c ClientSecretCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no secret.
func (c ClientSecretCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without the secret.
func (c ClientSecretCredential) LogValue() slog.Value { return c.desc.LogValue() }

func (ClientSecretCredential) credentialName() string { return credNameSecret }

var _ TokenCredential = (*ClientSecretCredential)(nil)
