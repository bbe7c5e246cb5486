package azcred

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/exec"
)

const credNameAzurePowerShell = "AzurePowerShellCredential"

// AzurePowerShellCredentialOptions contains optional parameters for
// AzurePowerShellCredential.
type AzurePowerShellCredentialOptions struct {
	// AdditionallyAllowedTenants lists tenants, besides TenantID, that a
	// request's TenantID may name; "*" allows any. When TenantID is empty any
	// tenant is allowed. Default: the ';'-separated
	// AZURE_ADDITIONALLY_ALLOWED_TENANTS environment variable.
	AdditionallyAllowedTenants []string

	// TenantID is the tenant tokens come from, passed to Get-AzAccessToken
	// as -TenantId. Default: the tenant of Azure PowerShell's context.
	TenantID string

	// Timeout bounds one run of PowerShell; when it passes, PowerShell and
	// every process it started are killed. A caller's own deadline only
	// decides how long that caller waits. Default: 10 s.
	Timeout time.Duration

	// DisableCache makes every GetToken run PowerShell. By default the
	// credential keeps each token until it is due for refresh, so a token
	// outlives `Disconnect-AzAccount` or `Set-AzContext` until then.
	// With caching disabled a caller's
	// cancellation also stops its own run. Default: false (cache).
	DisableCache bool

	// DisablePersistentCache keeps tokens in this process's memory only. By
	// default a token PowerShell printed is also kept, encrypted, in the
	// user's cache folder (on Linux ~/.cache/azcred/devtools, the key in
	// the kernel keyring), so that the user's next process gets it without
	// starting PowerShell, until it is due for refresh. An entry is used only
	// while the tool's sign-in files are unchanged (see the credential's
	// documentation), so signing in or out, or choosing another account,
	// tenant or subscription, means PowerShell runs again. Where no key
	// store works, the token stays in memory only. Default: false, or true
	// when the AZCRED_DISABLE_TOOL_TOKEN_CACHE environment variable is "1"
	// or "true".
	DisablePersistentCache bool

	// Logger receives the credential's diagnostics. Records never contain
	// tokens. Default: discard.
	Logger *slog.Logger

	devToolSeams
}

// AzurePowerShellCredential authenticates as the account signed in to
// Azure PowerShell: it runs PowerShell (pwsh; on Windows pwsh.exe, else
// powershell.exe) with a script that calls Get-AzAccessToken of the
// Az.Accounts module, passed with -EncodedCommand, never through a shell.
//
// Tokens are cached: a second GetToken for the same scope and tenant within
// the token's fresh window starts no process, and concurrent callers share
// one run. A cached token therefore outlives `Disconnect-AzAccount` until it
// is due for refresh; set [AzurePowerShellCredentialOptions.DisableCache] to
// run PowerShell on every call. It is safe for concurrent use.
//
// Tokens also persist between processes: the user's next process gets a
// token from an encrypted file in the user's cache folder, without starting
// the tool, while the tool's sign-in files (~/.Azure/AzureRmContext.json) are unchanged and the
// token is not due for refresh; set [AzurePowerShellCredentialOptions.DisablePersistentCache]
// or AZCRED_DISABLE_TOOL_TOKEN_CACHE to keep tokens in memory only.
type AzurePowerShellCredential struct {
	tool *devTool
	desc description
}

// NewAzurePowerShellCredential constructs an AzurePowerShellCredential.
// Pass nil to accept default options.
func NewAzurePowerShellCredential(options *AzurePowerShellCredentialOptions) (*AzurePowerShellCredential, error) {
	var o AzurePowerShellCredentialOptions
	if options != nil {
		o = *options
	}
	tool, err := newDevTool(devToolConfig{
		name:           credNameAzurePowerShell,
		tool:           "Azure PowerShell",
		install:        "install PowerShell (https://aka.ms/powershell) and the Az.Accounts module (`Install-Module Az.Accounts -Scope CurrentUser`), then run `Connect-AzAccount`",
		tenantID:       o.TenantID,
		allowed:        o.AdditionallyAllowedTenants,
		timeout:        o.Timeout,
		disableCache:   o.DisableCache,
		short:          "pwsh",
		state:          azurePowerShellState,
		disablePersist: o.DisablePersistentCache,
		logger:         o.Logger,
		seams:          o.devToolSeams,
		prepare:        azurePowerShellRun,
	})
	if err != nil {
		return nil, err
	}
	return &AzurePowerShellCredential{tool: tool, desc: describe(credNameAzurePowerShell, "tenantID", o.TenantID,
		"timeout", tool.timeout.String(), "cache", cacheDoc(o.DisableCache))}, nil
}

// GetToken returns an access token for the one scope in opts, from the cache
// when it holds one that is not due for refresh, else from PowerShell.
func (c *AzurePowerShellCredential) GetToken(ctx context.Context, opts TokenRequestOptions) (AccessToken, error) {
	return c.tool.getToken(ctx, opts)
}

// Markers the script writes to stderr for the cases it detects itself.
const (
	psNoModule = "AZCRED_NO_AZ_ACCOUNTS"
)

// azurePowerShellScript gets a token for resource (and tenant, when not
// empty) and prints {"Token": ..., "ExpiresOn": <unix seconds>} on one
// line. Both values passed validation, so they hold no quote.
//
// Az.Accounts from 2.17 until 5.0 returns a plain string unless asked for
// -AsSecureString; 5.0 and later return a SecureString. The script accepts
// either and converts a SecureString through a BSTR it then zeroes.
func azurePowerShellScript(resource, tenant string) string {
	return fmt.Sprintf(`$ErrorActionPreference = 'Stop'
$m = Import-Module Az.Accounts -MinimumVersion 2.2.0 -PassThru -ErrorAction SilentlyContinue
if (-not $m) {
  [Console]::Error.WriteLine('%s: the Az.Accounts module, version 2.2.0 or later, is not installed')
  exit 2
}
$p = @{ ResourceUrl = '%s'; WarningAction = 'Ignore' }
if ('%s' -ne '') { $p['TenantId'] = '%s' }
if ($m.Version -ge [version]'2.17.0' -and $m.Version -lt [version]'5.0.0') { $p['AsSecureString'] = $true }
$t = Get-AzAccessToken @p
$v = $t.Token
if ($v -is [System.Security.SecureString]) {
  $b = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($v)
  try { $v = [System.Runtime.InteropServices.Marshal]::PtrToStringBSTR($b) }
  finally { [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($b) }
}
[pscustomobject]@{ Token = $v; ExpiresOn = $t.ExpiresOn.ToUnixTimeSeconds() } | ConvertTo-Json -Compress
`, psNoModule, resource, tenant, tenant)
}

// encodePowerShell encodes a script for -EncodedCommand: base64 of its
// UTF-16LE form.
func encodePowerShell(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, v := range u {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// azurePowerShellCommand is the command that runs script.
func azurePowerShellCommand(goos, script string) exec.Command {
	c := exec.Command{
		Name: "pwsh",
		Args: []string{"-NoProfile", "-NonInteractive", "-OutputFormat", "Text", "-EncodedCommand", encodePowerShell(script)},
		Env:  noColor,
	}
	if goos == "windows" {
		c.Name, c.Fallbacks = "pwsh.exe", []string{"powershell.exe"}
	}
	return c
}

// azurePowerShellRun validates a request and says how to run PowerShell for
// it.
func azurePowerShellRun(r cache.Request) (devToolRun, error) {
	resource, err := resourceOf(credNameAzurePowerShell, r.Scopes)
	if err != nil {
		return devToolRun{}, err
	}
	connect := "Connect-AzAccount"
	if r.TenantID != "" {
		connect += " -TenantId " + r.TenantID
	}
	if r.Claims != "" {
		return devToolRun{}, NewAuthenticationFailedError(credNameAzurePowerShell, fmt.Sprintf(
			"the resource asks for additional claims (multifactor authentication or a conditional access policy), which Get-AzAccessToken cannot add; run `%s -ClaimsChallenge %s` in PowerShell, then retry",
			connect, base64.StdEncoding.EncodeToString([]byte(r.Claims))), nil)
	}
	return devToolRun{
		cmd:     azurePowerShellCommand(runtime.GOOS, azurePowerShellScript(resource, r.TenantID)),
		parse:   parseAzurePowerShellToken,
		failure: func(text string) error { return azurePowerShellFailure(text, connect) },
	}, nil
}

// parseAzurePowerShellToken reads the script's answer: the last line of
// stdout that holds a JSON object (PowerShell may print other lines first).
func parseAzurePowerShellToken(stdout []byte) (cache.Token, error) {
	var out struct {
		Token     string `json:"Token"`
		ExpiresOn *int64 `json:"ExpiresOn"`
	}
	lines := bytes.Split(bytes.TrimSpace(stdout), []byte("\n"))
	ok := false
	for i := len(lines) - 1; i >= 0 && !ok; i-- {
		if line := bytes.TrimSpace(lines[i]); bytes.HasPrefix(line, []byte("{")) {
			ok = json.Unmarshal(line, &out) == nil
		}
	}
	switch {
	case !ok:
		return cache.Token{}, NewAuthenticationFailedError(credNameAzurePowerShell,
			"PowerShell printed no JSON token answer; check that `Get-AzAccessToken` works in PowerShell, and update the Az.Accounts module", nil)
	case out.Token == "":
		return cache.Token{}, NewAuthenticationFailedError(credNameAzurePowerShell,
			"Get-AzAccessToken returned no token; check that `Get-AzAccessToken` works in PowerShell, and update the Az.Accounts module", nil)
	case out.ExpiresOn == nil || *out.ExpiresOn <= 0:
		return cache.Token{}, NewAuthenticationFailedError(credNameAzurePowerShell,
			"Get-AzAccessToken returned no expiry; update the Az.Accounts module", nil)
	}
	return cache.Token{Value: out.Token, ExpiresOn: time.Unix(*out.ExpiresOn, 0).UTC()}, nil
}

// azurePowerShellFailure reads PowerShell's stderr.
func azurePowerShellFailure(text, connect string) error {
	code := aadstsCode.FindString(text)
	switch {
	case strings.Contains(text, psNoModule):
		return NewCredentialUnavailableError(credNameAzurePowerShell,
			"the Az.Accounts module (2.2.0 or later) is not installed; run `Install-Module Az.Accounts -Scope CurrentUser` in PowerShell, then `Connect-AzAccount`", nil)
	case strings.Contains(text, "AuthorizationManager check failed") || strings.Contains(text, "running scripts is disabled") || strings.Contains(text, "about_Execution_Policies"):
		return NewCredentialUnavailableError(credNameAzurePowerShell, fmt.Sprintf(
			"PowerShell's execution policy prevented loading the Az.Accounts module (it said %q); run `Set-ExecutionPolicy -Scope CurrentUser RemoteSigned` in PowerShell, or ask your administrator", firstLine(text)), nil)
	case code != "":
		e := NewAuthenticationFailedError(credNameAzurePowerShell, fmt.Sprintf("Entra ID refused Azure PowerShell's token request (%s): %s; sign in again with `%s` and retry", code, text, connect), nil)
		e.ErrorCode = code
		return e
	case strings.Contains(text, "Connect-AzAccount"):
		return NewCredentialUnavailableError(credNameAzurePowerShell, fmt.Sprintf("Azure PowerShell is not signed in (it said %q); run `%s` in PowerShell", firstLine(text), connect), nil)
	}
	return nil
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// String describes the credential.
func (c AzurePowerShellCredential) String() string { return c.desc.String() }

// GoString is String.
func (c AzurePowerShellCredential) GoString() string { return c.desc.String() }

// LogValue implements [slog.LogValuer].
func (c AzurePowerShellCredential) LogValue() slog.Value { return c.desc.LogValue() }

var _ TokenCredential = (*AzurePowerShellCredential)(nil)
