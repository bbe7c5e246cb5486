package azcred

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodePowerShell reverses encodePowerShell, as PowerShell does.
func decodePowerShell(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	require.Zero(t, len(b)%2)
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func TestAzurePowerShellArgv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		o        AzurePowerShellCredentialOptions
		req      TokenRequestOptions
		resource string
		tenant   string
	}{
		{"defaults", AzurePowerShellCredentialOptions{}, armRequest, "https://management.azure.com", ""},
		{"tenant option", AzurePowerShellCredentialOptions{TenantID: testTenant}, armRequest, "https://management.azure.com", testTenant},
		{"request tenant", AzurePowerShellCredentialOptions{}, TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, TenantID: "contoso.example"}, "https://vault.azure.net", "contoso.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recordingRunner{answer: answerFile(t, "azurepowershell/success")}
			tc.o.devToolSeams = devToolSeams{runner: r, getenv: envMap()}
			cred, err := NewAzurePowerShellCredential(&tc.o)
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), tc.req)
			require.NoError(t, err)
			cmds := r.commands()
			require.Len(t, cmds, 1)
			c := cmds[0]
			require.Len(t, c.Args, 6)
			assert.Equal(t, []string{"-NoProfile", "-NonInteractive", "-OutputFormat", "Text", "-EncodedCommand"}, c.Args[:5])
			assert.Equal(t, azurePowerShellScript(tc.resource, tc.tenant), decodePowerShell(t, c.Args[5]))
			assert.Equal(t, 10*time.Second, c.Timeout)
		})
	}
}

func TestAzurePowerShellExecutable(t *testing.T) {
	t.Parallel()
	c := azurePowerShellCommand("linux", "x")
	assert.Equal(t, "pwsh", c.Name)
	assert.Empty(t, c.Fallbacks)
	c = azurePowerShellCommand("darwin", "x")
	assert.Equal(t, "pwsh", c.Name)
	c = azurePowerShellCommand("windows", "x")
	assert.Equal(t, "pwsh.exe", c.Name)
	assert.Equal(t, []string{"powershell.exe"}, c.Fallbacks)
	assert.Equal(t, "x", decodePowerShell(t, c.Args[5]))
}

func TestAzurePowerShellScript(t *testing.T) {
	t.Parallel()
	s := azurePowerShellScript("https://management.azure.com", testTenant)
	for _, want := range []string{
		"Import-Module Az.Accounts -MinimumVersion 2.2.0 -PassThru",
		"ResourceUrl = 'https://management.azure.com'",
		"if ('" + testTenant + "' -ne '') { $p['TenantId'] = '" + testTenant + "' }",
		"$p['AsSecureString'] = $true",
		"SecureStringToBSTR", "ZeroFreeBSTR",
		"ToUnixTimeSeconds()",
		"ConvertTo-Json -Compress",
		psNoModule,
	} {
		assert.Contains(t, s, want)
	}
	// A non-ASCII character survives the UTF-16LE round trip.
	assert.Equal(t, "Grüße 🔑", decodePowerShell(t, encodePowerShell("Grüße 🔑")))
}

func TestAzurePowerShellThroughTheFake(t *testing.T) {
	t.Parallel()
	for _, golden := range []string{"success", "success-after-warning"} {
		f := newFakeTools(t, "azurepowershell/"+golden)
		cred, err := NewAzurePowerShellCredential(&AzurePowerShellCredentialOptions{devToolSeams: f.seams()})
		require.NoError(t, err)
		tok, err := cred.GetToken(context.Background(), armRequest)
		require.NoError(t, err, golden)
		assert.Equal(t, goldenToken1, tok.Token)
		assert.Equal(t, goldenExpiry, tok.ExpiresOn)
		calls := f.calls(t)
		require.Len(t, calls, 1)
		assert.Equal(t, "pwsh", calls[0].Tool)
		assert.Contains(t, decodePowerShell(t, calls[0].Args[5]), "ResourceUrl = 'https://management.azure.com'")
	}
}

func TestAzurePowerShellParse(t *testing.T) {
	t.Parallel()
	for in, msg := range map[string]string{
		"":                                 "PowerShell printed no JSON token answer",
		"WARNING: x":                       "PowerShell printed no JSON token answer",
		`{"ExpiresOn":1}`:                  "Get-AzAccessToken returned no token",
		`{"Token":"` + goldenToken1 + `"}`: "Get-AzAccessToken returned no expiry",
	} {
		_, err := parseAzurePowerShellToken([]byte(in))
		require.ErrorContains(t, err, msg)
		assert.NotContains(t, err.Error(), goldenToken1)
	}
}

func TestAzurePowerShellFailures(t *testing.T) {
	t.Parallel()
	claims := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	b64 := base64.StdEncoding.EncodeToString([]byte(claims))
	for _, tc := range []struct {
		golden      string
		o           AzurePowerShellCredentialOptions
		claims      string
		unavailable bool
		code        string
		msg         string
	}{
		{golden: "no-module", unavailable: true,
			msg: "AzurePowerShellCredential: the Az.Accounts module (2.2.0 or later) is not installed; run `Install-Module Az.Accounts -Scope CurrentUser` in PowerShell, then `Connect-AzAccount`"},
		{golden: "not-connected", unavailable: true,
			msg: "AzurePowerShellCredential: Azure PowerShell is not signed in (it said \"Get-AzAccessToken: Run Connect-AzAccount to login.\"); run `Connect-AzAccount` in PowerShell"},
		{golden: "not-connected", o: AzurePowerShellCredentialOptions{TenantID: testTenant}, unavailable: true,
			msg: "AzurePowerShellCredential: Azure PowerShell is not signed in (it said \"Get-AzAccessToken: Run Connect-AzAccount to login.\"); run `Connect-AzAccount -TenantId " + testTenant + "` in PowerShell"},
		{golden: "execution-policy", unavailable: true,
			msg: "AzurePowerShellCredential: PowerShell's execution policy prevented loading the Az.Accounts module (it said \"Import-Module: File C:\\\\Program Files\\\\WindowsPowerShell\\\\Modules\\\\Az.Accounts\\\\2.12.1\\\\Az.Accounts.psm1 cannot be loaded because running scripts is disabled on this system. For more information, see about_Execution_Policies at https://go.microsoft.com/fwlink/?LinkID=135170.\"); run `Set-ExecutionPolicy -Scope CurrentUser RemoteSigned` in PowerShell, or ask your administrator"},
		{golden: "authorization-manager", unavailable: true,
			msg: "AzurePowerShellCredential: PowerShell's execution policy prevented loading the Az.Accounts module (it said \"Import-Module: AuthorizationManager check failed.\"); run `Set-ExecutionPolicy -Scope CurrentUser RemoteSigned` in PowerShell, or ask your administrator"},
		{golden: "aadsts", code: "AADSTS700082",
			msg: "AzurePowerShellCredential: Entra ID refused Azure PowerShell's token request (AADSTS700082): Get-AzAccessToken: AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2022-11-01T10:00:00.0000000Z and was inactive for 90.00:00:00. Trace ID: 0c6d7e5a-1b2c-4d3e-8f90-a1b2c3d4e5f6 Correlation ID: 9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4 Timestamp: 2023-02-14 14:04:05Z; sign in again with `Connect-AzAccount` and retry"},
		{golden: "not-recognized", unavailable: true,
			msg: "AzurePowerShellCredential: Azure PowerShell (pwsh) is not installed or not on the search path; install PowerShell (https://aka.ms/powershell) and the Az.Accounts module (`Install-Module Az.Accounts -Scope CurrentUser`), then run `Connect-AzAccount`"},
		{golden: "success", claims: claims, o: AzurePowerShellCredentialOptions{TenantID: testTenant},
			msg: "AzurePowerShellCredential: the resource asks for additional claims (multifactor authentication or a conditional access policy), which Get-AzAccessToken cannot add; run `Connect-AzAccount -TenantId " + testTenant + " -ClaimsChallenge " + b64 + "` in PowerShell, then retry"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			f := newFakeTools(t, "azurepowershell/"+tc.golden)
			tc.o.devToolSeams = f.seams()
			cred, err := NewAzurePowerShellCredential(&tc.o)
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, Claims: tc.claims})
			require.Error(t, err)
			assert.Equal(t, tc.msg, err.Error())
			assert.Equal(t, tc.unavailable, isUnavailable(err))
			if !tc.unavailable {
				var af *AuthenticationFailedError
				require.ErrorAs(t, err, &af)
				assert.Equal(t, tc.code, af.ErrorCode)
			}
			assert.False(t, strings.Contains(err.Error(), goldenToken1))
			if _, err := os.Stat("/proc"); err == nil && tc.claims != "" {
				assert.Empty(t, f.calls(t))
			}
		})
	}
}
