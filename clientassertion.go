package azcred

import (
	"context"
	"errors"
	"log/slog"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameAssertion = "ClientAssertionCredential"

// ClientAssertionCredentialOptions contains optional parameters for
// ClientAssertionCredential.
type ClientAssertionCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool
	// Cache keeps access tokens in a persistent store (such as
	// [cache.NewFileStore]) as well as in memory, so that later runs of the
	// program, and other processes sharing the store, reuse them until they
	// are due for refresh. Default: nil, memory only.
	Cache cache.Store
}

// ClientAssertionCredential authenticates an application with an assertion
// that a callback supplies: a JWT signed elsewhere (a key vault, an HSM) or a
// token from a federated identity provider (workload identity federation).
// The callback is called once per token request, so it may return a rotating
// token; tokens are cached. It is safe for concurrent use if the callback is.
//
// Unlike the secret, certificate and workload identity credentials, two
// ClientAssertionCredentials never share their in-memory cache: a callback
// cannot be compared with another, so nothing proves that both hold the same
// secret. Build the credential once and reuse it, or give it a Cache.
type ClientAssertionCredential struct {
	client *entraClient
	desc   description
}

// NewClientAssertionCredential constructs a ClientAssertionCredential for the
// app clientID in tenantID. getAssertion returns the assertion to send; it
// receives the token request's context. Pass nil to accept default options.
func NewClientAssertionCredential(tenantID, clientID string, getAssertion func(context.Context) (string, error), options *ClientAssertionCredentialOptions) (*ClientAssertionCredential, error) {
	if options == nil {
		options = &ClientAssertionCredentialOptions{}
	}
	if getAssertion == nil {
		return nil, errors.New(credNameAssertion + ": the assertion callback is nil; pass a function that returns the client assertion (a signed JWT)")
	}
	client, err := newEntraClient(entraConfig{
		name:     credNameAssertion,
		tenantID: tenantID,
		clientID: clientID,
		options:  &options.ClientOptions,
		allowed:  options.AdditionallyAllowedTenants,
		store:    options.Cache,
		grant: func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error) {
			p.Auth.Assertion = getAssertion
			return c.ClientCredentials(ctx, p)
		},
	})
	if err != nil {
		return nil, err
	}
	return &ClientAssertionCredential{
		client: client,
		desc:   describe(credNameAssertion, "tenantID", tenantID, "clientID", clientID),
	}, nil
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh. An error of the callback, or
// an empty assertion, fails the request with an
// [*AuthenticationFailedError] that wraps it.
func (c *ClientAssertionCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential.
func (c ClientAssertionCredential) String() string { return c.desc.String() }

// GoString is String.
func (c ClientAssertionCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer].
func (c ClientAssertionCredential) LogValue() slog.Value { return c.desc.LogValue() }

func (ClientAssertionCredential) credentialName() string { return credNameAssertion }

var _ TokenCredential = (*ClientAssertionCredential)(nil)
