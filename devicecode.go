package azcred

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/oauth"
)

const credNameDeviceCode = "DeviceCodeCredential"

// deviceCodeFetchTimeout bounds the credential's silent refreshes; it
// covers Entra's 15-minute device codes, as a person may be involved.
const deviceCodeFetchTimeout = 16 * time.Minute

// DeviceCodeMessage is what a [DeviceCodeCredential] tells the user: where
// to go and which code to enter.
type DeviceCodeMessage struct {
	// UserCode is the code the user enters.
	UserCode string
	// VerificationURL is the page where the user enters it.
	VerificationURL string
	// Message is the authority's instruction, naming both.
	Message string
	// ExpiresOn is when the code expires.
	ExpiresOn time.Time
}

// DeviceCodeCredentialOptions contains optional parameters for
// DeviceCodeCredential.
type DeviceCodeCredentialOptions struct {
	ClientOptions

	// AdditionallyAllowedTenants lists tenants, besides the credential's own,
	// that a request's TenantID may name; "*" allows any. Default: the
	// ';'-separated AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// AuthenticationRecord names the account to get tokens for silently,
	// from an earlier [DeviceCodeCredential.Authenticate] (with Cache, in an
	// earlier run). Default: none; the first token signs a user in.
	AuthenticationRecord AuthenticationRecord

	// Cache keeps the account's refresh tokens between runs, such as a
	// [cache.FileStore]. Default: none, refresh tokens live in memory only.
	Cache cache.Store

	// ClientID is the public client application to sign in to. Default: the
	// Azure development sign-on application,
	// "04b07795-8ddb-461a-bbee-02f9e1bf7b46". No environment variable.
	ClientID string

	// DisableAutomaticAuthentication makes GetToken return an
	// [*AuthenticationRequiredError] instead of prompting when it needs a
	// person; call Authenticate then. Default: false.
	DisableAutomaticAuthentication bool

	// TenantID is the tenant to sign in to. Default: "organizations" (any
	// work or school account; the account's own tenant afterwards). No
	// environment variable.
	TenantID string

	// UserPrompt shows the user the code and where to enter it; it must
	// return promptly (the credential polls after it returns) and a non-nil
	// error ends the sign-in. Default: print Message to standard error.
	UserPrompt func(context.Context, DeviceCodeMessage) error
}

// DeviceCodeCredential signs a user in with the device code flow: the user
// opens a page on any device, enters a code, and signs in there; the
// credential polls until they have. It suits terminals without a browser
// (SSH sessions, containers).
//
// Tokens are cached per credential and refreshed silently with the
// account's refresh token; the person is asked again only when the refresh
// token is refused. Sign-ins run one at a time, in the calling goroutine:
// the caller's context cancels one. A DeviceCodeCredential is safe for
// concurrent use.
type DeviceCodeCredential struct {
	client *publicClient
	prompt func(context.Context, DeviceCodeMessage) error
	clock  clock.Clock
}

// NewDeviceCodeCredential constructs a DeviceCodeCredential. Pass nil to
// accept default options.
func NewDeviceCodeCredential(options *DeviceCodeCredentialOptions) (*DeviceCodeCredential, error) {
	if options == nil {
		options = &DeviceCodeCredentialOptions{}
	}
	o := *options
	client, err := newPublicClient(publicConfig{
		name:          credNameDeviceCode,
		tenantID:      o.TenantID,
		clientID:      o.ClientID,
		options:       &o.ClientOptions,
		allowed:       o.AdditionallyAllowedTenants,
		record:        o.AuthenticationRecord,
		disableAuto:   o.DisableAutomaticAuthentication,
		store:         o.Cache,
		signInTimeout: deviceCodeFetchTimeout,
	})
	if err != nil {
		return nil, err
	}
	c := &DeviceCodeCredential{client: client, prompt: o.UserPrompt, clock: client.clock}
	if c.prompt == nil {
		c.prompt = func(_ context.Context, m DeviceCodeMessage) error {
			_, err := fmt.Fprintln(os.Stderr, m.Message)
			return err
		}
	}
	client.interact = c.signIn
	return c, nil
}

// GetToken returns an access token for the scopes in opts: from the cache,
// else silently with the account's refresh token, else by signing a user
// in (unless DisableAutomaticAuthentication is set).
func (c *DeviceCodeCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.client.getToken(ctx, opts)
}

// Authenticate signs a user in and returns the account's record, to pass
// as AuthenticationRecord later. opts may be nil; its Scopes default to the
// cloud's Azure Resource Manager ("https://management.azure.com/.default"
// in the public cloud).
func (c *DeviceCodeCredential) Authenticate(ctx context.Context, opts *TokenRequestOptions) (AuthenticationRecord, error) {
	return c.client.authenticate(ctx, opts)
}

// signIn runs the device code flow: ask for a code, show it, poll.
func (c *DeviceCodeCredential) signIn(ctx context.Context, endpoint string, r cache.Request) (*oauth.UserToken, error) {
	dcEndpoint, err := oauth.DeviceCodeEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	params := oauth.Params{Endpoint: dcEndpoint, ClientID: c.client.clientID, Scopes: r.Scopes, Claims: r.Claims, EnableCAE: r.EnableCAE}
	dc, err := c.client.oauth.StartDeviceCode(ctx, params)
	if err != nil {
		return nil, err
	}
	msg := DeviceCodeMessage{UserCode: dc.UserCode, VerificationURL: dc.VerificationURL, Message: dc.Message, ExpiresOn: dc.ExpiresOn}
	if msg.Message == "" {
		msg.Message = fmt.Sprintf("To sign in, open %s in a web browser and enter the code %s.", dc.VerificationURL, dc.UserCode)
	}
	if err := c.prompt(ctx, msg); err != nil {
		return nil, fmt.Errorf("the UserPrompt callback failed: %w", err)
	}
	params.Endpoint = endpoint
	interval := dc.Interval
	for {
		wait := interval
		if left := dc.ExpiresOn.Sub(c.clock.Now()); left < wait {
			wait = max(left, 0)
		}
		if err := clock.Sleep(ctx, c.clock, wait); err != nil {
			return nil, err
		}
		ut, err := c.client.oauth.PollDeviceCode(ctx, oauth.DevicePollParams{Params: params, DeviceCode: dc.DeviceCode})
		switch oauth.ErrorCode(err) {
		case "":
			return ut, err
		case oauth.CodeAuthorizationPending:
		case oauth.CodeSlowDown:
			interval += 5 * time.Second
		case oauth.CodeExpiredToken:
			return nil, fmt.Errorf("the device code expired before the user signed in; call again and enter the new code within its lifetime: %w", err)
		case oauth.CodeAuthorizationDeclined, oauth.CodeAccessDenied:
			return nil, fmt.Errorf("the user declined the sign-in: %w", err)
		default:
			return nil, err
		}
		if !c.clock.Now().Before(dc.ExpiresOn) {
			return nil, fmt.Errorf("the device code expired at %s before the user signed in; call again and enter the new code in time", dc.ExpiresOn.Format(time.RFC3339))
		}
	}
}

// String describes the credential.
func (c DeviceCodeCredential) String() string {
	return describe(credNameDeviceCode, c.client.describe()...).String()
}

// GoString is String.
func (c DeviceCodeCredential) GoString() string { return c.String() }

// LogValue implements [slog.LogValuer].
func (c DeviceCodeCredential) LogValue() slog.Value {
	return describe(credNameDeviceCode, c.client.describe()...).LogValue()
}

var _ TokenCredential = (*DeviceCodeCredential)(nil)
