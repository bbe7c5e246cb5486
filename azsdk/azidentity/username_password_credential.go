package azidentity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azsdk"
)

// UsernamePasswordCredentialOptions contains optional parameters for
// UsernamePasswordCredential.
type UsernamePasswordCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests, as on [ClientSecretCredentialOptions].
	azcore.ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: none.
	// As in azidentity, the AZURE_ADDITIONALLY_ALLOWED_TENANTS environment
	// variable does not apply (it does to DefaultAzureCredential and
	// EnvironmentCredential).
	AdditionallyAllowedTenants []string

	// AuthenticationRecord is accepted for compatibility; this credential
	// always signs in with its username and password. Default: none.
	AuthenticationRecord AuthenticationRecord

	// Cache is accepted for compatibility; this credential keeps its tokens
	// in memory only. Default: the zero Cache.
	Cache Cache

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool
}

// UsernamePasswordCredential signs a user in with a username and password
// (the resource owner password grant) for a public client application. It
// caches its tokens; it is safe for concurrent use.
//
// Deprecated: the flow cannot satisfy multifactor authentication, which
// Microsoft Entra ID requires ever more widely. Sign people in with
// [InteractiveBrowserCredential] or [DeviceCodeCredential], and use a
// service principal or managed identity for automation.
type UsernamePasswordCredential struct {
	source
	clientID, tenantID, username, authority string
	defaultScope                            string // Authenticate's, the cloud's resource manager
}

// NewUsernamePasswordCredential constructs a UsernamePasswordCredential for
// the public client app clientID. Pass nil to accept default options.
//
// Deprecated: see [UsernamePasswordCredential].
func NewUsernamePasswordCredential(tenantID string, clientID string, username string, password string, options *UsernamePasswordCredentialOptions) (*UsernamePasswordCredential, error) {
	o := UsernamePasswordCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewUsernamePasswordCredential(tenantID, clientID, username, password, &azcred.UsernamePasswordCredentialOptions{
		ClientOptions:              co,
		AdditionallyAllowedTenants: onlyTheseTenants(o.AdditionallyAllowedTenants),
		DisableInstanceDiscovery:   o.DisableInstanceDiscovery,
	})
	if err != nil {
		return nil, err
	}
	authority := o.Cloud.ActiveDirectoryAuthorityHost
	if authority == "" {
		authority = os.Getenv("AZURE_AUTHORITY_HOST")
	}
	if authority == "" {
		authority = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	audience := azsdk.CloudFromAzcore(o.Cloud).ResourceManagerAudience
	if audience == "" {
		audience = "https://management.azure.com"
	}
	return &UsernamePasswordCredential{
		source:       newSource(credNameUserPassword, c, p),
		clientID:     clientID,
		tenantID:     tenantID,
		username:     username,
		authority:    strings.TrimRight(authority, "/"),
		defaultScope: strings.TrimRight(audience, "/") + "/.default",
	}, nil
}

// Authenticate signs the user in for opts (default: the Azure Resource
// Manager scope of ClientOptions.Cloud, the public cloud's when Cloud names
// none) and returns the account's
// record, read from the claims of the access token it got.
//
// Deprecated: see [UsernamePasswordCredential].
func (c *UsernamePasswordCredential) Authenticate(ctx context.Context, opts *policy.TokenRequestOptions) (AuthenticationRecord, error) {
	tro := policy.TokenRequestOptions{}
	if opts != nil {
		tro = *opts
	}
	if len(tro.Scopes) == 0 {
		tro.Scopes = []string{c.defaultScope}
	}
	tok, err := c.getToken(ctx, tro)
	if err != nil {
		return AuthenticationRecord{}, err
	}
	claims, err := tokenClaims(tok.Token)
	if err != nil {
		return AuthenticationRecord{}, errors.New(credNameUserPassword + ".Authenticate: the access token does not describe its account (" + err.Error() + "); use GetToken, or sign in with InteractiveBrowserCredential to get a record")
	}
	rec := AuthenticationRecord{Authority: c.authority, ClientID: c.clientID, TenantID: claims.TenantID, Username: claims.PreferredUsername, Version: "1.0"}
	if rec.TenantID == "" {
		rec.TenantID = c.tenantID
	}
	if rec.Username == "" {
		rec.Username = claims.UPN
	}
	if rec.Username == "" {
		rec.Username = c.username
	}
	if claims.ObjectID != "" && rec.TenantID != "" {
		rec.HomeAccountID = claims.ObjectID + "." + rec.TenantID
	}
	return rec, nil
}

// GetToken requests an access token for the user from Microsoft Entra ID,
// or returns the cached one.
//
// Deprecated: see [UsernamePasswordCredential].
func (c *UsernamePasswordCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

// accountClaims are the claims of an access token that name its account.
type accountClaims struct {
	ObjectID          string `json:"oid"`
	TenantID          string `json:"tid"`
	PreferredUsername string `json:"preferred_username"`
	UPN               string `json:"upn"`
}

// tokenClaims reads the payload of a JWT without verifying it: the token
// came from the authority over TLS and is not trusted for anything but
// naming the account in a record.
func tokenClaims(token string) (accountClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return accountClaims{}, errors.New("it is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return accountClaims{}, errors.New("its payload is not base64url")
	}
	var c accountClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return accountClaims{}, errors.New("its payload is not JSON")
	}
	return c, nil
}

var _ azcore.TokenCredential = (*UsernamePasswordCredential)(nil)
