package azcred

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameCertificate = "ClientCertificateCredential"

// ClientCertificateCredentialOptions contains optional parameters for
// ClientCertificateCredential.
type ClientCertificateCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// DisableInstanceDiscovery is accepted for compatibility with azidentity.
	// azcred never sends discovery requests, so it has no effect. Default:
	// false.
	DisableInstanceDiscovery bool

	// SendCertificateChain sends the certificate and its chain (the x5c
	// header) with every assertion, which apps that trust certificates by
	// subject name and issuer require. Default: false.
	SendCertificateChain bool
	// Cache keeps access tokens in a persistent store (such as
	// [cache.NewFileStore]) as well as in memory, so that later runs of the
	// program, and other processes sharing the store, reuse them until they
	// are due for refresh. Default: nil, memory only.
	Cache cache.Store
	// DisableTokenSharing gives the credential an in-memory token cache of
	// its own. By default credentials of this process built with the same
	// tenant, client ID, certificates, private key, SendCertificateChain and options (the same Transport,
	// Logger, Retry and Cache values) share one, so that a credential built
	// per request costs one token request per token lifetime, not one per
	// credential. Default: false.
	DisableTokenSharing bool
}

// ClientCertificateCredential authenticates an application (service
// principal) with a certificate: each token request carries a fresh client
// assertion signed with the certificate's RSA key (PS256, or RS256 for
// AD FS). It is safe for concurrent use and caches its tokens. It prints
// without its key.
type ClientCertificateCredential struct {
	client *entraClient
	desc   description
}

// NewClientCertificateCredential constructs a ClientCertificateCredential for
// the app clientID in tenantID. certs holds the certificate registered on the
// app and, optionally, its chain; key is its RSA private key (an
// *rsa.PrivateKey, or any crypto.Signer with an RSA public key, such as a
// hardware key). [ParseCertificates] reads both from PEM or PKCS#12 data.
// Pass nil to accept default options.
//
// A certificate outside its validity period is logged as a warning; the
// credential still tries, as Entra ID decides.
func NewClientCertificateCredential(tenantID, clientID string, certs []*x509.Certificate, key crypto.PrivateKey, options *ClientCertificateCredentialOptions) (*ClientCertificateCredential, error) {
	if options == nil {
		options = &ClientCertificateCredentialOptions{}
	}
	auth, thumbprint, err := newCertificateAuth(credNameCertificate, certs, key, options.SendCertificateChain, &options.ClientOptions)
	if err != nil {
		return nil, err
	}
	client, err := newEntraClient(entraConfig{
		name:     credNameCertificate,
		tenantID: tenantID,
		clientID: clientID,
		options:  &options.ClientOptions,
		allowed:  options.AdditionallyAllowedTenants,
		store:    options.Cache,
		share:    shareUnless(options.DisableTokenSharing, certificateShare(certs, key, options.SendCertificateChain)),
		grant: func(ctx context.Context, c *oauth.Client, p oauth.Params) (*oauth.Token, error) {
			p.Auth = auth(p)
			return c.ClientCredentials(ctx, p)
		},
	})
	if err != nil {
		return nil, err
	}
	return &ClientCertificateCredential{
		client: client,
		desc:   describe(credNameCertificate, "tenantID", tenantID, "clientID", clientID, "certificateSHA256", thumbprint),
	}, nil
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh.
func (c *ClientCertificateCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// String describes the credential without its key.
func (c ClientCertificateCredential) String() string { return c.desc.String() }

// GoString is String, so that %#v shows no key.
func (c ClientCertificateCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer] without the key.
func (c ClientCertificateCredential) LogValue() slog.Value { return c.desc.LogValue() }

// certificateAuth makes the client authentication of one token request: an
// assertion for that request's endpoint.
type certificateAuth func(p oauth.Params) oauth.ClientAuth

// newCertificateAuth checks a certificate and its key and returns how to
// sign assertions with them, and the certificate's SHA-256 thumbprint (hex)
// to show in descriptions. It is shared by the certificate and on-behalf-of
// credentials.
func newCertificateAuth(credential string, certs []*x509.Certificate, key crypto.PrivateKey, sendChain bool, co *ClientOptions) (certificateAuth, string, error) {
	if len(certs) == 0 {
		return nil, "", errors.New(credential + ": no certificate was given; pass the certificate registered on the app (ParseCertificates reads PEM and PKCS#12 files)")
	}
	for i, c := range certs {
		if c == nil {
			return nil, "", fmt.Errorf("%s: certificate %d is nil; pass the certificates ParseCertificates returned", credential, i)
		}
	}
	if key == nil || reflect.ValueOf(key).Kind() == reflect.Pointer && reflect.ValueOf(key).IsNil() {
		return nil, "", errors.New(credential + ": no private key was given; pass the certificate's RSA private key (ParseCertificates reads it with the certificate)")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("%s: the private key (%T) cannot sign; pass an *rsa.PrivateKey or a crypto.Signer", credential, key)
	}
	pub, ok := signer.Public().(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("%s: the private key is %s; Entra ID client certificates need an RSA key", credential, keyKind(key))
	}
	ordered, err := signerFirst(certs, pub)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", credential, err)
	}
	leaf := ordered[0]
	clk := clock.OrReal(co.clockOrNil())
	certificateExpiryWarning(co.logger(), credential, leaf.NotBefore, leaf.NotAfter, clk.Now())
	sum := sha256.Sum256(leaf.Raw)
	auth := func(p oauth.Params) oauth.ClientAuth {
		return oauth.ClientAuth{Assertion: func(context.Context) (string, error) {
			return oauth.BuildAssertion(oauth.AssertionParams{
				ClientID:  p.ClientID,
				Audience:  p.Endpoint,
				Key:       signer,
				Cert:      leaf,
				Chain:     ordered[1:],
				SendChain: sendChain,
				ADFS:      oauth.IsADFS(p.Endpoint),
				Clock:     clk,
			})
		}}
	}
	return auth, hex.EncodeToString(sum[:]), nil
}

func (ClientCertificateCredential) credentialName() string { return credNameCertificate }

var _ TokenCredential = (*ClientCertificateCredential)(nil)

// certificateShare is what a certificate credential shares its engine by:
// every certificate sent, the chain flag, and the private key (its PKCS #8
// encoding, hashed with the rest; a key held elsewhere, such as a hardware
// signer, by its identity).
func certificateShare(certs []*x509.Certificate, key crypto.PrivateKey, chain bool) shareParts {
	p := shareParts{material: []string{fmt.Sprint(chain)}}
	for _, c := range certs {
		p.material = append(p.material, string(c.Raw))
	}
	if der, err := x509.MarshalPKCS8PrivateKey(key); err == nil {
		p.material = append(p.material, string(der))
	} else {
		p.seam = key
	}
	return p
}
