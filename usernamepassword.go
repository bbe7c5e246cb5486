package azcred

import (
	"context"
	"errors"
	"log/slog"

	"github.com/azcred/azcred/internal/oauth"
)

const credNameUsernamePassword = "UsernamePasswordCredential"

// UsernamePasswordCredentialOptions contains optional parameters for
// UsernamePasswordCredential.
type UsernamePasswordCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool
}

// UsernamePasswordCredential signs a user in with a username and password
// (the resource owner password credentials grant) for a public-client app.
//
// Deprecated: this flow cannot satisfy multifactor authentication, which
// Microsoft requires for ever more tenants and accounts; it fails for any
// account that needs MFA. Sign people in interactively (browser or device
// code) instead, and use a service principal or managed identity for
// automation.
type UsernamePasswordCredential struct {
	client *entraClient
	desc   description
}

// NewUsernamePasswordCredential constructs a UsernamePasswordCredential for
// the public-client app clientID. tenantID may be empty for
// "organizations". Pass nil to accept default options.
//
// Deprecated: see [UsernamePasswordCredential].
func NewUsernamePasswordCredential(tenantID, clientID, username, password string, options *UsernamePasswordCredentialOptions) (*UsernamePasswordCredential, error) {
	if options == nil {
		options = &UsernamePasswordCredentialOptions{}
	}
	if username == "" {
		return nil, errors.New(credNameUsernamePassword + ": the username is empty; give the user's sign-in name, such as user@contoso.com")
	}
	if password == "" {
		return nil, errors.New(credNameUsernamePassword + ": the password is empty")
	}
	client, err := newEntraClient(entraConfig{
		name:           credNameUsernamePassword,
		tenantID:       tenantID,
		clientID:       clientID,
		options:        &options.ClientOptions,
		allowed:        options.AdditionallyAllowedTenants,
		tenantOptional: true,
		grant: func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error) {
			return c.Password(ctx, oauth.PasswordParams{Params: p, Username: username, Password: password})
		},
	})
	if err != nil {
		return nil, err
	}
	return &UsernamePasswordCredential{
		client: client,
		desc:   describe(credNameUsernamePassword, "tenantID", tenantID, "clientID", clientID, "username", username, "password", redactIf(password)),
	}, nil
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh.
func (c *UsernamePasswordCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential without the password.
func (c UsernamePasswordCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no password.
func (c UsernamePasswordCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without the password.
func (c UsernamePasswordCredential) LogValue() slog.Value { return c.desc.LogValue() }

func (UsernamePasswordCredential) credentialName() string { return credNameUsernamePassword }

var _ TokenCredential = (*UsernamePasswordCredential)(nil)
