package azcred

import (
	"context"
	"encoding/base64"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/exec"
)

func TestAzdArgv(t *testing.T) {
	t.Parallel()
	claims := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	b64 := base64.StdEncoding.EncodeToString([]byte(claims))
	base := []string{"auth", "token", "--output", "json", "--no-prompt"}
	for _, tc := range []struct {
		name string
		o    AzureDeveloperCLICredentialOptions
		req  TokenRequestOptions
		want []string
	}{
		{"defaults", AzureDeveloperCLICredentialOptions{}, armRequest,
			append(base, "--scope", armScope)},
		{"scopes passed as they are", AzureDeveloperCLICredentialOptions{}, TokenRequestOptions{Scopes: []string{"api://app/read", "api://app/write"}},
			append(base, "--scope", "api://app/read", "--scope", "api://app/write")},
		{"tenant option", AzureDeveloperCLICredentialOptions{TenantID: testTenant}, armRequest,
			append(base, "--scope", armScope, "--tenant-id", testTenant)},
		{"request tenant", AzureDeveloperCLICredentialOptions{}, TokenRequestOptions{Scopes: []string{armScope}, TenantID: "contoso.example"},
			append(base, "--scope", armScope, "--tenant-id", "contoso.example")},
		{"claims", AzureDeveloperCLICredentialOptions{TenantID: testTenant}, TokenRequestOptions{Scopes: []string{armScope}, Claims: claims},
			append(base, "--scope", armScope, "--tenant-id", testTenant, "--claims", b64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recordingRunner{answer: answerFile(t, "azd/success")}
			tc.o.devToolSeams = devToolSeams{runner: r, getenv: envMap()}
			cred, err := NewAzureDeveloperCLICredential(&tc.o)
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), tc.req)
			require.NoError(t, err)
			cmds := r.commands()
			require.Len(t, cmds, 1)
			assert.Equal(t, "azd", cmds[0].Name)
			assert.Equal(t, tc.want, cmds[0].Args)
			assert.Equal(t, 10*time.Second, cmds[0].Timeout)
		})
	}
}

func TestAzdArgvThroughTheFake(t *testing.T) {
	t.Parallel()
	f := newFakeTools(t, "azd/success")
	cred, err := NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{TenantID: testTenant, devToolSeams: f.seams()})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"api://app/read", armScope}})
	require.NoError(t, err)
	assert.Equal(t, goldenExpiry, tok.ExpiresOn)
	calls := f.calls(t)
	require.Len(t, calls, 1)
	assert.Equal(t, []string{"auth", "token", "--output", "json", "--no-prompt", "--scope", "api://app/read", "--scope", armScope, "--tenant-id", testTenant}, calls[0].Args)
}

func TestAzdScopes(t *testing.T) {
	t.Parallel()
	r := &recordingRunner{answer: answerFile(t, "azd/success")}
	cred, err := NewAzureDeveloperCLICredential(&AzureDeveloperCLICredentialOptions{devToolSeams: devToolSeams{runner: r, getenv: envMap()}})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{})
	assert.EqualError(t, err, `AzureDeveloperCLICredential: GetToken needs at least one scope, such as "https://management.azure.com/.default"`)
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope, "--help"}})
	assert.ErrorContains(t, err, `the scope "--help" starts with '-'`, "a scope that looks like a flag is refused, though it would be one argument after --scope")
	assert.Empty(t, r.commands())
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope, "x y"}})
	assert.ErrorContains(t, err, "contains ' '")
}

func TestAzdParse(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/azd/success.stdout")
	require.NoError(t, err)
	tok, err := parseAzdToken(b)
	require.NoError(t, err)
	assert.Equal(t, goldenToken1, tok.Value)
	assert.Equal(t, goldenExpiry, tok.ExpiresOn)
	for in, want := range map[string]time.Time{
		`{"token":"t","expiresOn":"2023-02-14T15:04:05Z"}`:        goldenExpiry,
		`{"token":"t","expiresOn":"2023-02-14T15:04:05.250Z"}`:    goldenExpiry.Add(250 * time.Millisecond),
		`{"token":"t","expiresOn":"2023-02-14T16:04:05+01:00"}`:   goldenExpiry,
		`{"token":"t","expiresOn":"2023-02-14T10:34:05.0-04:30"}`: goldenExpiry,
	} {
		tok, err := parseAzdToken([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, want, tok.ExpiresOn, in)
	}
	for in, msg := range map[string]string{
		`not json`:                             "azd printed something that is not its JSON token answer",
		`{"expiresOn":"2023-02-14T15:04:05Z"}`: `azd's answer has no "token"`,
		`{"token":"` + goldenToken1 + `","expiresOn":"2023-02-14 15:04:05"}`: `azd's "expiresOn" "2023-02-14 15:04:05" is not an RFC 3339 time`,
	} {
		_, err := parseAzdToken([]byte(in))
		require.ErrorContains(t, err, msg)
		assert.NotContains(t, err.Error(), goldenToken1)
	}
}

func TestAzdMessage(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		b, err := os.ReadFile("testdata/azd/" + name + ".stderr")
		require.NoError(t, err)
		return string(b)
	}
	assert.Equal(t, "fetching token: not logged in, run `azd auth login` to login", azdMessage(read("not-logged-in")))
	assert.Equal(t, "ERROR: fetching token: not logged in, run `azd auth login` to login", azdMessage(read("not-logged-in-legacy")))
	assert.Contains(t, azdMessage(read("aadsts-legacy")), "ERROR: fetching token: AADSTS50079:")
	assert.NotContains(t, azdMessage(read("aadsts-legacy")), "Suggestion", "the first console message")
	assert.Equal(t, "plain text", azdMessage("plain text"))
	assert.Equal(t, `{"type":"consoleMessage","data":{"message":"\n"}}`, azdMessage(`{"type":"consoleMessage","data":{"message":"\n"}}`))
}

func TestAzdFailures(t *testing.T) {
	t.Parallel()
	claims := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	for _, tc := range []struct {
		golden      string
		o           AzureDeveloperCLICredentialOptions
		claims      string
		unavailable bool
		code        string
		msg         string
	}{
		{golden: "not-logged-in", unavailable: true,
			msg: "AzureDeveloperCLICredential: the Azure Developer CLI is not signed in (it said \"fetching token: not logged in, run `azd auth login` to login\"); run `azd auth login`"},
		{golden: "not-logged-in-legacy", o: AzureDeveloperCLICredentialOptions{TenantID: testTenant}, unavailable: true,
			msg: "AzureDeveloperCLICredential: the Azure Developer CLI is not signed in (it said \"ERROR: fetching token: not logged in, run `azd auth login` to login\"); run `azd auth login --tenant-id " + testTenant + "`"},
		{golden: "aadsts", code: "AADSTS90002",
			msg: "AzureDeveloperCLICredential: Entra ID refused azd's token request (AADSTS90002): AADSTS90002: Tenant 'contoso.example' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.; sign in again with `azd auth login` and retry"},
		{golden: "aadsts-legacy", code: "AADSTS50079", claims: claims,
			msg: "AzureDeveloperCLICredential: Entra ID refused azd's token request (AADSTS50079): ERROR: fetching token: AADSTS50079: Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication. Trace ID: 0c6d7e5a-1b2c-4d3e-8f90-a1b2c3d4e5f6 Correlation ID: 9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4 Timestamp: 2023-02-14 14:04:05Z; sign in again with `azd auth login` to satisfy the claims challenge and retry"},
		{golden: "unknown-claims-flag", claims: claims,
			msg: "AzureDeveloperCLICredential: the resource asks for additional claims (multifactor authentication or a conditional access policy), and this azd is too old to pass them; azd 1.18.1 or later is needed: update azd (https://aka.ms/azure-dev/install), then retry"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			f := newFakeTools(t, "azd/"+tc.golden)
			tc.o.devToolSeams = f.seams()
			cred, err := NewAzureDeveloperCLICredential(&tc.o)
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
		})
	}
}

var _ exec.Runner = (*recordingRunner)(nil)
