package azcred

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/exec"
)

const credNameAzureDeveloperCLI = "AzureDeveloperCLICredential"

// AzureDeveloperCLICredentialOptions contains optional parameters for
// AzureDeveloperCLICredential.
type AzureDeveloperCLICredentialOptions struct {
	// AdditionallyAllowedTenants lists tenants, besides TenantID, that a
	// request's TenantID may name; "*" allows any. When TenantID is empty any
	// tenant is allowed. Default: the ';'-separated
	// AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// TenantID is the tenant tokens come from, passed to azd as
	// --tenant-id. Default: azd's own (the tenant it signed in to).
	TenantID string

	// Timeout bounds one run of azd; when it passes, azd and every process
	// it started are killed. A caller's own deadline only decides how long
	// that caller waits. Default: 10 s.
	Timeout time.Duration

	// DisableCache makes every GetToken run azd. By default the credential
	// keeps each token until it is due for refresh, so a token outlives
	// `azd auth logout` until then. With caching disabled a caller's
	// cancellation also stops its own run. Default: false (cache).
	DisableCache bool

	// DisablePersistentCache keeps tokens in this process's memory only. By
	// default a token azd printed is also kept, encrypted, in the
	// user's cache folder (on Linux ~/.cache/azcred/devtools, the key in
	// the kernel keyring), so that the user's next process gets it without
	// starting azd, until it is due for refresh. An entry is used only
	// while the tool's sign-in files are unchanged (see the credential's
	// documentation), so signing in or out, or choosing another account,
	// tenant or subscription, means azd runs again. Where no key
	// store works, or azd uses external authentication (AZD_AUTH_ENDPOINT
	// set, as in Visual Studio Code, whose signed-in account no file
	// records), the token stays in memory only. Default: false, or true
	// when the AZCRED_DISABLE_TOOL_TOKEN_CACHE environment variable is "1"
	// or "true".
	DisablePersistentCache bool

	// Logger receives the credential's diagnostics. Records never contain
	// tokens. Default: discard.
	Logger *slog.Logger

	devToolSeams
}

// AzureDeveloperCLICredential authenticates as the account signed in to
// the Azure Developer CLI: it runs `azd auth token` (never through a shell)
// and reads the token azd prints. It passes a request's Claims to azd, which
// needs azd 1.18.1 or later.
//
// Tokens are cached: a second GetToken for the same scopes and tenant within
// the token's fresh window starts no process, and concurrent callers share
// one run of azd. A cached token therefore outlives `azd auth logout` until
// it is due for refresh; set [AzureDeveloperCLICredentialOptions.DisableCache]
// to run azd on every call. It is safe for concurrent use.
//
// Tokens also persist between processes: the user's next process gets a
// token from an encrypted file in the user's cache folder, without starting
// the tool, while the tool's sign-in files (auth.json, config.json and the files under auth/ in $AZD_CONFIG_DIR (default ~/.azd)) are unchanged and the
// token is not due for refresh; set [AzureDeveloperCLICredentialOptions.DisablePersistentCache]
// or AZCRED_DISABLE_TOOL_TOKEN_CACHE to keep tokens in memory only.
type AzureDeveloperCLICredential struct {
	tool *devTool
	desc description
}

// NewAzureDeveloperCLICredential constructs an AzureDeveloperCLICredential.
// Pass nil to accept default options.
func NewAzureDeveloperCLICredential(options *AzureDeveloperCLICredentialOptions) (*AzureDeveloperCLICredential, error) {
	var o AzureDeveloperCLICredentialOptions
	if options != nil {
		o = *options
	}
	tool, err := newDevTool(devToolConfig{
		name:           credNameAzureDeveloperCLI,
		tool:           "the Azure Developer CLI",
		install:        "install it (https://aka.ms/azure-dev/install) and run `azd auth login`",
		tenantID:       o.TenantID,
		allowed:        o.AdditionallyAllowedTenants,
		timeout:        o.Timeout,
		disableCache:   o.DisableCache,
		short:          "azd",
		state:          azdState,
		disablePersist: o.DisablePersistentCache,
		logger:         o.Logger,
		seams:          o.devToolSeams,
		prepare:        azdRun,
	})
	if err != nil {
		return nil, err
	}
	return &AzureDeveloperCLICredential{tool: tool, desc: describe(credNameAzureDeveloperCLI, "tenantID", o.TenantID,
		"timeout", tool.timeout.String(), "cache", cacheDoc(o.DisableCache))}, nil
}

// GetToken returns an access token for the scopes in opts, from the cache
// when it holds one that is not due for refresh, else from azd.
func (c *AzureDeveloperCLICredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.tool.getToken(ctx, opts)
}

// azdArgs is azd's argument list; claims is already base64.
func azdArgs(scopes []string, tenant, claims string) []string {
	args := []string{"auth", "token", "--output", "json", "--no-prompt"}
	for _, s := range scopes {
		args = append(args, "--scope", s)
	}
	if tenant != "" {
		args = append(args, "--tenant-id", tenant)
	}
	if claims != "" {
		args = append(args, "--claims", claims)
	}
	return args
}

// azdRun validates a request and says how to run azd for it.
func azdRun(r cache.Request) (devToolRun, error) {
	if len(r.Scopes) == 0 {
		return devToolRun{}, fmt.Errorf("%s: GetToken needs at least one scope, such as \"https://management.azure.com/.default\"", credNameAzureDeveloperCLI)
	}
	for _, s := range r.Scopes {
		if err := validateToolScope(credNameAzureDeveloperCLI, s); err != nil {
			return devToolRun{}, err
		}
	}
	var claims string
	if r.Claims != "" {
		claims = base64.StdEncoding.EncodeToString([]byte(r.Claims))
	}
	login := "azd auth login"
	if r.TenantID != "" {
		login += " --tenant-id " + r.TenantID
	}
	return devToolRun{
		cmd: exec.Command{
			Name: "azd",
			Args: azdArgs(r.Scopes, r.TenantID, claims),
			Env:  noColor,
		},
		parse:   parseAzdToken,
		failure: func(text string) error { return azdFailure(azdMessage(text), login, r.Claims != "") },
	}, nil
}

// parseAzdToken reads azd's answer: {"token": ..., "expiresOn": RFC 3339}.
func parseAzdToken(stdout []byte) (cache.Token, error) {
	var out struct {
		Token     string `json:"token"`
		ExpiresOn string `json:"expiresOn"`
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		return cache.Token{}, NewAuthenticationFailedError(credNameAzureDeveloperCLI,
			"azd printed something that is not its JSON token answer; run `azd auth token --output json` in a terminal to check it, and update azd", nil)
	}
	if out.Token == "" {
		return cache.Token{}, NewAuthenticationFailedError(credNameAzureDeveloperCLI,
			"azd's answer has no \"token\"; run `azd auth token --output json` in a terminal to check it, and update azd", nil)
	}
	exp, err := time.Parse(time.RFC3339Nano, out.ExpiresOn)
	if err != nil {
		return cache.Token{}, NewAuthenticationFailedError(credNameAzureDeveloperCLI,
			fmt.Sprintf("azd's \"expiresOn\" %q is not an RFC 3339 time such as \"2006-01-02T15:04:05Z\"; update azd", out.ExpiresOn), nil)
	}
	return cache.Token{Value: out.Token, ExpiresOn: exp.UTC()}, nil
}

// azdMessage extracts the message of azd's stderr, which is JSON lines with
// --output json: azd 1.23.7 and later write {"error": "..."} (perhaps after
// an empty console message); older ones write
// {"type":"consoleMessage","data":{"message":"..."}}. Text that is not JSON
// is returned as it is.
func azdMessage(text string) string {
	var console string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m struct {
			Error string `json:"error"`
			Data  struct {
				Message string `json:"message"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if e := strings.TrimSpace(m.Error); e != "" {
			return e
		}
		if msg := strings.TrimSpace(m.Data.Message); msg != "" && console == "" {
			console = msg
		}
	}
	if console != "" {
		return console
	}
	return text
}

// azdFailure reads azd's error message.
func azdFailure(msg, login string, withClaims bool) error {
	code := aadstsCode.FindString(msg)
	switch {
	case strings.Contains(msg, "unknown flag: --claims"):
		return NewAuthenticationFailedError(credNameAzureDeveloperCLI,
			"the resource asks for additional claims (multifactor authentication or a conditional access policy), and this azd is too old to pass them; azd 1.18.1 or later is needed: update azd (https://aka.ms/azure-dev/install), then retry", nil)
	case code != "":
		what := "sign in again with `" + login + "`"
		if withClaims {
			what = "sign in again with `" + login + "` to satisfy the claims challenge"
		}
		e := NewAuthenticationFailedError(credNameAzureDeveloperCLI, fmt.Sprintf("Entra ID refused azd's token request (%s): %s; %s and retry", code, msg, what), nil)
		e.ErrorCode = code
		return e
	case strings.Contains(strings.ToLower(msg), "not logged in") && strings.Contains(msg, "azd auth login"):
		return NewCredentialUnavailableError(credNameAzureDeveloperCLI, fmt.Sprintf("the Azure Developer CLI is not signed in (it said %q); run `%s`", msg, login), nil)
	case strings.Contains(msg, "unknown command") || strings.Contains(msg, "unknown flag"):
		return NewAuthenticationFailedError(credNameAzureDeveloperCLI, fmt.Sprintf("azd did not understand `azd auth token`: %s; update azd (https://aka.ms/azure-dev/install)", msg), nil)
	case msg != "":
		return NewAuthenticationFailedError(credNameAzureDeveloperCLI, fmt.Sprintf("the Azure Developer CLI failed: %s; run `azd auth token --output json` in a terminal to see why", msg), nil)
	}
	return nil
}

// String describes the credential.
func (c AzureDeveloperCLICredential) String() string { return c.desc.String() }

// GoString is String.
func (c AzureDeveloperCLICredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer].
func (c AzureDeveloperCLICredential) LogValue() slog.Value { return c.desc.LogValue() }

var _ TokenCredential = (*AzureDeveloperCLICredential)(nil)
