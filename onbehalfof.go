package azcred

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/azcred/azcred/internal/jwtx"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameOBO = "OnBehalfOfCredential"

// OnBehalfOfCredentialOptions contains optional parameters for
// OnBehalfOfCredential.
type OnBehalfOfCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool

	// SendCertificateChain sends the certificate chain (x5c) with each
	// assertion; only for NewOnBehalfOfCredentialWithCertificate. Default:
	// false.
	SendCertificateChain bool
}

// OnBehalfOfCredential lets a middle-tier service call another API as the
// user who called it: it exchanges the user's access token (the "user
// assertion") for a token to the downstream resource, with the on-behalf-of
// flow. Make one credential per user assertion; its cache holds that user's
// tokens only. It is safe for concurrent use and prints without secrets.
type OnBehalfOfCredential struct {
	client *entraClient
	desc   description
}

// NewOnBehalfOfCredentialWithSecret constructs an OnBehalfOfCredential for
// the middle-tier app clientID in tenantID, which authenticates with a
// client secret. userAssertion is the access token the service received.
// Pass nil to accept default options.
func NewOnBehalfOfCredentialWithSecret(tenantID, clientID, userAssertion, clientSecret string, options *OnBehalfOfCredentialOptions) (*OnBehalfOfCredential, error) {
	if clientSecret == "" {
		return nil, errors.New(credNameOBO + ": the client secret is empty; give the secret's value (not its ID) from the app registration")
	}
	return newOnBehalfOf(tenantID, clientID, userAssertion, options, "clientSecret", redactIf(clientSecret),
		func(oauth.Params) oauth.ClientAuth { return oauth.ClientAuth{Secret: clientSecret} })
}

// NewOnBehalfOfCredentialWithCertificate constructs an OnBehalfOfCredential
// for the middle-tier app clientID in tenantID, which authenticates with a
// certificate and its RSA key (see [NewClientCertificateCredential]). Pass
// nil to accept default options.
func NewOnBehalfOfCredentialWithCertificate(tenantID, clientID, userAssertion string, certs []*x509.Certificate, key crypto.PrivateKey, options *OnBehalfOfCredentialOptions) (*OnBehalfOfCredential, error) {
	if options == nil {
		options = &OnBehalfOfCredentialOptions{}
	}
	auth, thumbprint, err := newCertificateAuth(credNameOBO, certs, key, options.SendCertificateChain, &options.ClientOptions)
	if err != nil {
		return nil, err
	}
	return newOnBehalfOf(tenantID, clientID, userAssertion, options, "certificateSHA256", thumbprint, auth)
}

// NewOnBehalfOfCredentialWithClientAssertions constructs an
// OnBehalfOfCredential for the middle-tier app clientID in tenantID, which
// authenticates with assertions that getAssertion returns (see
// [NewClientAssertionCredential]). Pass nil to accept default options.
func NewOnBehalfOfCredentialWithClientAssertions(tenantID, clientID, userAssertion string, getAssertion func(context.Context) (string, error), options *OnBehalfOfCredentialOptions) (*OnBehalfOfCredential, error) {
	if getAssertion == nil {
		return nil, errors.New(credNameOBO + ": the assertion callback is nil; pass a function that returns the client assertion (a signed JWT)")
	}
	return newOnBehalfOf(tenantID, clientID, userAssertion, options, "clientAssertion", "callback",
		func(oauth.Params) oauth.ClientAuth { return oauth.ClientAuth{Assertion: getAssertion} })
}

func newOnBehalfOf(tenantID, clientID, userAssertion string, options *OnBehalfOfCredentialOptions, authKey, authValue string, auth certificateAuth) (*OnBehalfOfCredential, error) {
	if options == nil {
		options = &OnBehalfOfCredentialOptions{}
	}
	if err := checkUserAssertion(userAssertion); err != nil {
		return nil, err
	}
	client, err := newEntraClient(entraConfig{
		name:     credNameOBO,
		tenantID: tenantID,
		clientID: clientID,
		options:  &options.ClientOptions,
		allowed:  options.AdditionallyAllowedTenants,
		grant: func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error) {
			p.Auth = auth(p)
			return c.OnBehalfOf(ctx, oauth.OnBehalfOfParams{Params: p, UserAssertion: userAssertion})
		},
	})
	if err != nil {
		return nil, err
	}
	return &OnBehalfOfCredential{
		client: client,
		desc:   describe(credNameOBO, "tenantID", tenantID, "clientID", clientID, authKey, authValue, "userAssertion", redactIf(userAssertion)),
	}, nil
}

// checkUserAssertion refuses a user assertion that is not a JWT, before it
// is sent anywhere. It never echoes the assertion.
func checkUserAssertion(assertion string) error {
	if assertion == "" {
		return errors.New(credNameOBO + ": the user assertion is empty; pass the access token your service received in the caller's Authorization header (without \"Bearer \")")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := jwtx.DecodeHeader(assertion, &header); err != nil || header.Alg == "" {
		return fmt.Errorf("%s: the user assertion is not a JWT; pass the access token your service received in the caller's Authorization header (without \"Bearer \")", credNameOBO)
	}
	return nil
}

// GetToken returns an access token for the scopes in opts on behalf of the
// user, from the cache when it holds one that is not due for refresh.
func (c *OnBehalfOfCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential without secrets.
func (c OnBehalfOfCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no secret.
func (c OnBehalfOfCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without secrets.
func (c OnBehalfOfCredential) LogValue() slog.Value { return c.desc.LogValue() }

func (OnBehalfOfCredential) credentialName() string { return credNameOBO }

var _ TokenCredential = (*OnBehalfOfCredential)(nil)
