package azcred

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/exec"
)

const credNameAzureCLI = "AzureCLICredential"

// AzureCLICredentialOptions contains optional parameters for
// AzureCLICredential.
type AzureCLICredentialOptions struct {
	// AdditionallyAllowedTenants lists tenants, besides TenantID, that a
	// request's TenantID may name; "*" allows any. When TenantID is empty any
	// tenant is allowed. Default: the ';'-separated
	// AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// Subscription is the name or ID of the subscription whose tenant the
	// token comes from, passed to az as --subscription. Names may contain
	// letters, digits, spaces and "- _ ."; prefer the ID. A request that
	// names a tenant passes --tenant instead, since az takes only one of
	// them. It cannot be set together with TenantID. Default: az's current
	// subscription.
	Subscription string

	// TenantID is the tenant tokens come from, passed to az as --tenant.
	// Default: the tenant of az's current subscription.
	TenantID string

	// Timeout bounds one run of az; when it passes, az and every process it
	// started are killed. A caller's own deadline only decides how long that
	// caller waits: a run that other callers share goes on. Default: 10 s.
	Timeout time.Duration

	// DisableCache makes every GetToken run az, as other Azure identity
	// libraries do. By default the credential keeps each token until it is
	// due for refresh, so a token outlives an `az account set` or
	// `az logout` until then. With caching disabled a caller's
	// cancellation also stops its own run. Default: false (cache).
	DisableCache bool

	// DisablePersistentCache keeps tokens in this process's memory only. By
	// default a token az printed is also kept, encrypted, in the
	// user's cache folder (on Linux ~/.cache/azcred/devtools, the key in
	// the kernel keyring), so that the user's next process gets it without
	// starting az, until it is due for refresh. An entry is used only
	// while the tool's sign-in files are unchanged (see the credential's
	// documentation), so signing in or out, or choosing another account,
	// tenant or subscription, means az runs again. Where no key
	// store works, the token stays in memory only. Default: false, or true
	// when the AZCRED_DISABLE_TOOL_TOKEN_CACHE environment variable is "1"
	// or "true".
	DisablePersistentCache bool

	// Logger receives the credential's diagnostics. Records never contain
	// tokens. Default: discard.
	Logger *slog.Logger

	devToolSeams
	// location is the time zone of the "expiresOn" that az versions before
	// 2.54 print without a zone. Default: time.Local (the zone az ran in).
	location *time.Location
}

// AzureCLICredential authenticates as the account signed in to the Azure
// CLI: it runs `az account get-access-token` (never through a shell) and
// reads the token az prints.
//
// Tokens are cached: a second GetToken for the same scope and tenant within
// the token's fresh window starts no process, and concurrent callers share
// one run of az. A cached token therefore outlives `az account set` and
// `az logout` until it is due for refresh; set
// [AzureCLICredentialOptions.DisableCache] to run az on every call. It is
// safe for concurrent use.
//
// Tokens also persist between processes: the user's next process gets a
// token from an encrypted file in the user's cache folder, without starting
// the tool, while the tool's sign-in files (its profile, MSAL token cache, service principals and cloud in $AZURE_CONFIG_DIR (default ~/.azure)) are unchanged and the
// token is not due for refresh; set [AzureCLICredentialOptions.DisablePersistentCache]
// or AZCRED_DISABLE_TOOL_TOKEN_CACHE to keep tokens in memory only.
type AzureCLICredential struct {
	tool *devTool
	desc description
}

// NewAzureCLICredential constructs an AzureCLICredential. Pass nil to accept
// default options.
func NewAzureCLICredential(options *AzureCLICredentialOptions) (*AzureCLICredential, error) {
	var o AzureCLICredentialOptions
	if options != nil {
		o = *options
	}
	if o.Subscription != "" {
		if err := validateSubscription(credNameAzureCLI, o.Subscription); err != nil {
			return nil, err
		}
		if o.TenantID != "" {
			return nil, errors.New(credNameAzureCLI + ": both TenantID and Subscription are set, and az accepts only one of them; set only one (a subscription's tenant is implied by it)")
		}
	}
	loc := o.location
	if loc == nil {
		loc = time.Local
	}
	sub := o.Subscription
	tool, err := newDevTool(devToolConfig{
		name:           credNameAzureCLI,
		tool:           "the Azure CLI",
		install:        "install it (https://aka.ms/azure-cli) and run `az login`",
		tenantID:       o.TenantID,
		allowed:        o.AdditionallyAllowedTenants,
		timeout:        o.Timeout,
		disableCache:   o.DisableCache,
		short:          "az",
		state:          azureCLIState,
		disablePersist: o.DisablePersistentCache,
		keyExtra:       sub,
		logger:         o.Logger,
		seams:          o.devToolSeams,
		prepare: func(r cache.Request) (devToolRun, error) {
			return azureCLIRun(r, sub, loc)
		},
	})
	if err != nil {
		return nil, err
	}
	return &AzureCLICredential{tool: tool, desc: describe(credNameAzureCLI, "tenantID", o.TenantID, "subscription", o.Subscription,
		"timeout", tool.timeout.String(), "cache", cacheDoc(o.DisableCache))}, nil
}

// GetToken returns an access token for the one scope in opts, from the cache
// when it holds one that is not due for refresh, else from az.
func (c *AzureCLICredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.tool.getToken(ctx, opts)
}

// azureCLIArgs is az's argument list for a resource, tenant and
// subscription (the tenant wins when both are given).
func azureCLIArgs(resource, tenant, subscription string) []string {
	args := []string{"account", "get-access-token", "--output", "json", "--resource", resource}
	switch {
	case tenant != "":
		args = append(args, "--tenant", tenant)
	case subscription != "":
		args = append(args, "--subscription", subscription)
	}
	return args
}

// azureCLIRun validates a request and says how to run az for it.
func azureCLIRun(r cache.Request, subscription string, loc *time.Location) (devToolRun, error) {
	resource, err := resourceOf(credNameAzureCLI, r.Scopes)
	if err != nil {
		return devToolRun{}, err
	}
	login := "az login"
	if r.TenantID != "" {
		login += " --tenant " + r.TenantID
	}
	if r.Claims != "" {
		return devToolRun{}, NewAuthenticationFailedError(credNameAzureCLI, fmt.Sprintf(
			"the resource asks for additional claims (multifactor authentication or a conditional access policy), which az cannot add to a token it already holds; run `az login --claims-challenge %s%s` (Azure CLI 2.76 or later), then retry",
			base64.StdEncoding.EncodeToString([]byte(r.Claims)), strings.TrimPrefix(login, "az login")), nil)
	}
	return devToolRun{
		cmd: exec.Command{
			Name: "az",
			Args: azureCLIArgs(resource, r.TenantID, subscription),
			Env:  noColor,
		},
		parse: func(stdout []byte) (cache.Token, error) {
			return parseAzureCLIToken(stdout, loc)
		},
		failure: func(text string) error {
			return azureCLIFailure(text, login, subscription)
		},
	}, nil
}

// azureCLILocalLayout is the layout of "expiresOn", in the local time of
// the machine az ran on, without a zone.
const azureCLILocalLayout = "2006-01-02 15:04:05.999999"

// parseAzureCLIToken reads az's answer. The expiry is "expires_on" (Unix
// seconds, az 2.54 and later) when present, else "expiresOn" read in loc.
func parseAzureCLIToken(stdout []byte, loc *time.Location) (cache.Token, error) {
	var out struct {
		AccessToken string      `json:"accessToken"`
		ExpiresOnTS json.Number `json:"expires_on"`
		ExpiresOn   string      `json:"expiresOn"`
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		return cache.Token{}, NewAuthenticationFailedError(credNameAzureCLI,
			"az printed something that is not its JSON token answer; run `az account get-access-token --output json` in a terminal to check it, and update the Azure CLI", nil)
	}
	if out.AccessToken == "" {
		return cache.Token{}, NewAuthenticationFailedError(credNameAzureCLI,
			"az's answer has no \"accessToken\"; run `az account get-access-token --output json` in a terminal to check it, and update the Azure CLI", nil)
	}
	exp, err := azureCLIExpiry(string(out.ExpiresOnTS), out.ExpiresOn, loc)
	if err != nil {
		return cache.Token{}, NewAuthenticationFailedError(credNameAzureCLI, err.Error()+"; update the Azure CLI", nil)
	}
	return cache.Token{Value: out.AccessToken, ExpiresOn: exp}, nil
}

// azureCLIExpiry reads az's expiry: epoch seconds when given, else the
// zone-less local time read in loc. It returns UTC.
func azureCLIExpiry(epoch, local string, loc *time.Location) (time.Time, error) {
	if epoch != "" {
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}, fmt.Errorf("az's \"expires_on\" %q is not a number of seconds", epoch)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if local == "" {
		return time.Time{}, errors.New("az's answer has no expiry (neither \"expires_on\" nor \"expiresOn\")")
	}
	t, err := time.ParseInLocation(azureCLILocalLayout, local, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("az's \"expiresOn\" %q is not a time of the form %q", local, azureCLILocalLayout)
	}
	return t.UTC(), nil
}

// azureCLIFailure reads az's stderr.
func azureCLIFailure(text, login, subscription string) error {
	code := aadstsCode.FindString(text)
	switch {
	case code != "":
		e := NewAuthenticationFailedError(credNameAzureCLI, fmt.Sprintf("Entra ID refused the Azure CLI's token request (%s): %s; sign in again with `%s` and retry", code, text, login), nil)
		e.ErrorCode = code
		return e
	case strings.Contains(text, "az account set"):
		set := "az account set --subscription <subscription ID>"
		if subscription != "" {
			set = "az account set --subscription " + quoteArg(subscription)
		}
		return NewCredentialUnavailableError(credNameAzureCLI, fmt.Sprintf("the Azure CLI has no subscription selected (it said %q); run `%s`", text, set), nil)
	case strings.Contains(text, "az login"):
		return NewCredentialUnavailableError(credNameAzureCLI, fmt.Sprintf("the Azure CLI is not signed in (it said %q); run `%s`", text, login), nil)
	case strings.Contains(text, "unrecognized arguments") || strings.Contains(text, "is not in the"):
		return NewAuthenticationFailedError(credNameAzureCLI, fmt.Sprintf("the Azure CLI did not understand `az account get-access-token`: %s; update the Azure CLI (`az upgrade`)", text), nil)
	case strings.Contains(text, "Subscription") && strings.Contains(text, "not found"):
		return NewAuthenticationFailedError(credNameAzureCLI, fmt.Sprintf("%s; check the Subscription option against `az account list --output table`", text), nil)
	}
	return nil
}

// quoteArg quotes a shell word for a command shown to a person when it
// contains a space.
func quoteArg(s string) string {
	if strings.ContainsRune(s, ' ') {
		return `"` + s + `"`
	}
	return s
}

// String describes the credential.
func (c AzureCLICredential) String() string { return c.desc.String() }

// GoString is String.
func (c AzureCLICredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer].
func (c AzureCLICredential) LogValue() slog.Value { return c.desc.LogValue() }

var _ TokenCredential = (*AzureCLICredential)(nil)
