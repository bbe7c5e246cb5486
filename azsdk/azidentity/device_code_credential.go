package azidentity

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/azcred/azcred"
)

// DeviceCodeCredentialOptions contains optional parameters for
// DeviceCodeCredential.
type DeviceCodeCredentialOptions struct {
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

	// ClientID is the public client application to sign in to. Default: the
	// Azure development sign-on application,
	// "04b07795-8ddb-461a-bbee-02f9e1bf7b46".
	ClientID string

	// DisableAutomaticAuthentication makes GetToken return an
	// [AuthenticationRequiredError] instead of prompting when a person must
	// sign in; call Authenticate then. Default: false.
	DisableAutomaticAuthentication bool

	// DisableInstanceDiscovery has no effect (no discovery requests are
	// sent). Default: false.
	DisableInstanceDiscovery bool

	// TenantID is the tenant to sign in to. Default: "organizations" (work
	// and school accounts).
	TenantID string

	// UserPrompt shows the user the code and where to enter it; a non-nil
	// error ends the sign-in. Default: print Message to standard output.
	UserPrompt func(context.Context, DeviceCodeMessage) error
}

// DeviceCodeCredential signs a user in with the device code flow: the user
// opens a page on any device and enters a code, which suits sessions
// without a browser (SSH). It caches the account's tokens and refreshes them
// silently; it is safe for concurrent use.
type DeviceCodeCredential struct {
	source
	dc *azcred.DeviceCodeCredential
}

// NewDeviceCodeCredential constructs a DeviceCodeCredential. Pass nil to
// accept default options.
func NewDeviceCodeCredential(options *DeviceCodeCredentialOptions) (*DeviceCodeCredential, error) {
	o := DeviceCodeCredentialOptions{}
	if options != nil {
		o = *options
	}
	p, co, err := setup(&o.ClientOptions, false)
	if err != nil {
		return nil, err
	}
	prompt := o.UserPrompt
	if prompt == nil {
		prompt = func(_ context.Context, m DeviceCodeMessage) error {
			fmt.Println(m.Message)
			return nil
		}
	}
	c, err := azcred.NewDeviceCodeCredential(&azcred.DeviceCodeCredentialOptions{
		ClientOptions:                  co,
		AdditionallyAllowedTenants:     onlyTheseTenants(o.AdditionallyAllowedTenants),
		AuthenticationRecord:           azcred.AuthenticationRecord(o.AuthenticationRecord),
		Cache:                          store(o.Cache),
		ClientID:                       o.ClientID,
		DisableAutomaticAuthentication: o.DisableAutomaticAuthentication,
		TenantID:                       o.TenantID,
		UserPrompt: func(ctx context.Context, m azcred.DeviceCodeMessage) error {
			return prompt(ctx, DeviceCodeMessage{UserCode: m.UserCode, VerificationURL: m.VerificationURL, Message: m.Message})
		},
	})
	if err != nil {
		return nil, err
	}
	return &DeviceCodeCredential{source: newSource(credNameDeviceCode, c, p), dc: c}, nil
}

// Authenticate signs a user in for opts (default: the cloud's Azure
// Resource Manager scope) and returns the account's record, which a later
// credential can take to get its tokens silently.
func (c *DeviceCodeCredential) Authenticate(ctx context.Context, opts *policy.TokenRequestOptions) (AuthenticationRecord, error) {
	return authenticate(ctx, &c.source, c.dc.Authenticate, opts)
}

// GetToken returns a token for the signed-in user, signing one in first
// unless DisableAutomaticAuthentication is set.
func (c *DeviceCodeCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.getToken(ctx, opts)
}

// authenticate runs a core Authenticate inside an "Authenticate" span and
// converts its request, record and error.
func authenticate(ctx context.Context, s *source, auth func(context.Context, *azcred.TokenRequestOptions) (azcred.AuthenticationRecord, error), opts *policy.TokenRequestOptions) (rec AuthenticationRecord, err error) {
	if s.tracer.Enabled() {
		var end func(error)
		ctx, end = runtime.StartSpan(ctx, s.name+".Authenticate", s.tracer, nil)
		defer func() { end(err) }()
	}
	var co *azcred.TokenRequestOptions
	if opts != nil {
		r := coreRequest(*opts)
		co = &r
	}
	r, err := auth(ctx, co)
	if err != nil {
		return AuthenticationRecord{}, sourceError(ctx, s.name, s.p, err)
	}
	return AuthenticationRecord(r), nil
}

var _ azcore.TokenCredential = (*DeviceCodeCredential)(nil)
