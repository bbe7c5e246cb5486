package azidentity

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/azcred/azcred"
)

// EnvironmentCredentialOptions contains optional parameters for
// EnvironmentCredential.
type EnvironmentCredentialOptions struct {
	// ClientOptions configures the pipeline of the credential's token
	// requests, as on [ClientSecretCredentialOptions].
	azcore.ClientOptions

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool
}

// EnvironmentCredential authenticates a service principal (or a user) whose
// details are in environment variables, read at construction:
//   - AZURE_TENANT_ID and AZURE_CLIENT_ID, with
//   - AZURE_CLIENT_SECRET (a secret), or
//   - AZURE_CLIENT_CERTIFICATE_PATH (a PEM or PKCS#12 file) and optionally
//     AZURE_CLIENT_CERTIFICATE_PASSWORD and AZURE_CLIENT_SEND_CERTIFICATE_CHAIN, or
//   - AZURE_USERNAME and AZURE_PASSWORD (deprecated: no MFA);
//
// AZURE_AUTHORITY_HOST and AZURE_ADDITIONALLY_ALLOWED_TENANTS apply as well.
// It caches its tokens; it is safe for concurrent use.
type EnvironmentCredential struct {
	source
}

// NewEnvironmentCredential constructs an EnvironmentCredential. Pass nil to
// accept default options. It fails when the variables configure no
// credential, naming the ones that are missing (never their values), or
// when the configuration they give cannot be used.
func NewEnvironmentCredential(options *EnvironmentCredentialOptions) (*EnvironmentCredential, error) {
	o := EnvironmentCredentialOptions{}
	if options != nil {
		o = *options
	}
	if userWithoutTenant() {
		return nil, errUserWithoutTenant
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	c, err := azcred.NewEnvironmentCredential(&azcred.EnvironmentCredentialOptions{
		ClientOptions:            co,
		DisableInstanceDiscovery: o.DisableInstanceDiscovery,
	})
	if err != nil {
		return nil, err
	}
	if logShould(EventAuthentication) {
		logWrite(EventAuthentication, credNameEnvironment+" will authenticate with "+environmentMode())
	}
	return &EnvironmentCredential{newSource(credNameEnvironment, c, p)}, nil
}

// GetToken requests an access token from Microsoft Entra ID, or returns the
// cached one.
func (c *EnvironmentCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

var _ azcore.TokenCredential = (*EnvironmentCredential)(nil)

// environmentMode names the credential the environment selects, in
// azidentity's order of precedence: secret, certificate, user and password.
func environmentMode() string {
	switch {
	case os.Getenv("AZURE_CLIENT_SECRET") != "":
		return credNameSecret
	case os.Getenv("AZURE_CLIENT_CERTIFICATE_PATH") != "":
		return credNameCert
	}
	return credNameUserPassword
}

// errUserWithoutTenant is azidentity's refusal of a username and password
// in the environment without AZURE_TENANT_ID.
var errUserWithoutTenant = errors.New(credNameEnvironment + ": AZURE_USERNAME and AZURE_PASSWORD select a username and password, but AZURE_TENANT_ID is not set; set it to the user's tenant ID")

// userWithoutTenant reports whether the environment selects a username and
// password (no client secret, no certificate) and leaves AZURE_TENANT_ID
// unset. The azcred core then signs in through the "organizations"
// authority; azidentity refuses, and its DefaultAzureCredential moves on to
// the next source, so this package does the same.
func userWithoutTenant() bool {
	set := func(name string) bool { return strings.TrimSpace(os.Getenv(name)) != "" }
	return !set("AZURE_CLIENT_SECRET") && !set("AZURE_CLIENT_CERTIFICATE_PATH") &&
		set("AZURE_USERNAME") && set("AZURE_PASSWORD") && !set("AZURE_TENANT_ID")
}
