package azcred

import (
	"context"
	"encoding/base64"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
	_ "time/tzdata" // zones for the expiry table, whatever the machine has

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/exec"
)

func TestAzureCLIArgv(t *testing.T) {
	t.Parallel()
	base := []string{"account", "get-access-token", "--output", "json"}
	for _, tc := range []struct {
		name string
		o    AzureCLICredentialOptions
		req  TokenRequestOptions
		want []string
	}{
		{"defaults", AzureCLICredentialOptions{}, armRequest,
			append(base, "--resource", "https://management.azure.com")},
		{"v1 resource kept", AzureCLICredentialOptions{}, TokenRequestOptions{Scopes: []string{"https://vault.azure.net"}},
			append(base, "--resource", "https://vault.azure.net")},
		{"tenant option", AzureCLICredentialOptions{TenantID: testTenant}, armRequest,
			append(base, "--resource", "https://management.azure.com", "--tenant", testTenant)},
		{"subscription name with spaces", AzureCLICredentialOptions{Subscription: "My Sub"}, armRequest,
			append(base, "--resource", "https://management.azure.com", "--subscription", "My Sub")},
		{"request tenant", AzureCLICredentialOptions{}, TokenRequestOptions{Scopes: []string{armScope}, TenantID: "contoso.onmicrosoft.com"},
			append(base, "--resource", "https://management.azure.com", "--tenant", "contoso.onmicrosoft.com")},
		{"request tenant wins over subscription", AzureCLICredentialOptions{Subscription: "sub", AdditionallyAllowedTenants: []string{"*"}},
			TokenRequestOptions{Scopes: []string{armScope}, TenantID: "contoso.onmicrosoft.com"},
			append(base, "--resource", "https://management.azure.com", "--tenant", "contoso.onmicrosoft.com")},
		{"request for the configured tenant", AzureCLICredentialOptions{TenantID: testTenant}, TokenRequestOptions{Scopes: []string{armScope}, TenantID: testTenant},
			append(base, "--resource", "https://management.azure.com", "--tenant", testTenant)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recordingRunner{answer: answerFile(t, "azurecli/success-2.54")}
			tc.o.devToolSeams = devToolSeams{runner: r, getenv: envMap()}
			cred, err := NewAzureCLICredential(&tc.o)
			require.NoError(t, err)
			_, err = cred.GetToken(context.Background(), tc.req)
			require.NoError(t, err)
			cmds := r.commands()
			require.Len(t, cmds, 1)
			assert.Equal(t, "az", cmds[0].Name)
			assert.Empty(t, cmds[0].Fallbacks)
			assert.Equal(t, tc.want, cmds[0].Args)
			assert.Equal(t, []string{"AZURE_CORE_NO_COLOR=true", "NO_COLOR=true"}, cmds[0].Env)
			assert.Equal(t, 10*time.Second, cmds[0].Timeout)
		})
	}
}

func TestAzureCLIArgvThroughTheFake(t *testing.T) {
	t.Parallel()
	f := newFakeTools(t, "azurecli/success-2.54")
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{Subscription: "My Sub", devToolSeams: f.seams()})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	calls := f.calls(t)
	require.Len(t, calls, 1)
	assert.Equal(t, []string{"account", "get-access-token", "--output", "json", "--resource", "https://management.azure.com", "--subscription", "My Sub"}, calls[0].Args)
}

func TestAzureCLIConstructor(t *testing.T) {
	t.Parallel()
	_, err := NewAzureCLICredential(&AzureCLICredentialOptions{TenantID: testTenant, Subscription: "s"})
	assert.ErrorContains(t, err, "both TenantID and Subscription are set")
	_, err = NewAzureCLICredential(&AzureCLICredentialOptions{Subscription: `s"; rm -rf ~`})
	assert.ErrorContains(t, err, `contains '"', which is not allowed`)
	_, err = NewAzureCLICredential(&AzureCLICredentialOptions{TenantID: "a/b"})
	assert.ErrorContains(t, err, `contains '/'`)
	c, err := NewAzureCLICredential(nil)
	require.NoError(t, err)
	assert.Equal(t, "AzureCLICredential{tenantID: , subscription: , timeout: 10s, cache: enabled}", c.String())
}

func TestAzureCLIScopes(t *testing.T) {
	t.Parallel()
	r := &recordingRunner{answer: answerFile(t, "azurecli/success-2.54")}
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{devToolSeams: devToolSeams{runner: r, getenv: envMap()}})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope, "https://vault.azure.net/.default"}})
	assert.EqualError(t, err, `AzureCLICredential: GetToken needs exactly one scope, got 2; ask for one resource at a time, such as "https://management.azure.com/.default"`)
	_, err = cred.GetToken(context.Background(), TokenRequestOptions{})
	assert.ErrorContains(t, err, "exactly one scope, got 0")
	assert.Empty(t, r.commands())
}

// Every expiry format az prints, read in several zones. az before 2.54
// prints only "expiresOn", the local time of the machine without a zone.
func TestAzureCLIExpiry(t *testing.T) {
	t.Parallel()
	zone := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		require.NoError(t, err)
		return l
	}
	instant := time.Date(2023, 2, 14, 15, 4, 5, 0, time.UTC)
	for _, loc := range []*time.Location{time.UTC, zone("Europe/Berlin"), zone("Asia/Kolkata"), zone("America/Los_Angeles"), zone("Pacific/Chatham"), zone("Australia/Lord_Howe")} {
		local := instant.In(loc)
		for _, tc := range []struct {
			name, epoch, local string
			want               time.Time
		}{
			{"epoch only", "1676387045", "", instant},
			{"epoch wins over local", "1676387045", "1999-01-01 00:00:00.000000", instant},
			{"local with microseconds", "", local.Format("2006-01-02 15:04:05") + ".000000", instant},
			{"local with fraction", "", local.Add(123456 * time.Microsecond).Format("2006-01-02 15:04:05.000000"), instant.Add(123456 * time.Microsecond)},
			{"local without fraction", "", local.Format("2006-01-02 15:04:05"), instant},
			{"local with short fraction", "", local.Format("2006-01-02 15:04:05") + ".5", instant.Add(500 * time.Millisecond)},
		} {
			t.Run(loc.String()+"/"+tc.name, func(t *testing.T) {
				got, err := azureCLIExpiry(tc.epoch, tc.local, loc)
				require.NoError(t, err)
				assert.True(t, tc.want.Equal(got), "got %s, want %s", got, tc.want)
				assert.Equal(t, time.UTC, got.Location())
			})
		}
	}
	// A DST gap in Berlin: 02:30 does not exist on 2023-03-26; Go moves it
	// forward, which is as good as az's own arithmetic.
	got, err := azureCLIExpiry("", "2023-03-26 02:30:00.000000", zone("Europe/Berlin"))
	require.NoError(t, err)
	assert.Equal(t, time.Date(2023, 3, 26, 1, 30, 0, 0, time.UTC), got)

	for _, bad := range []struct{ epoch, local, msg string }{
		{"", "", `az's answer has no expiry (neither "expires_on" nor "expiresOn")`},
		{"", "2023-02-14T15:04:05Z", `az's "expiresOn" "2023-02-14T15:04:05Z" is not a time of the form "2006-01-02 15:04:05.999999"`},
		{"1.5e9", "", `az's "expires_on" "1.5e9" is not a number of seconds`},
		{"-5", "", `az's "expires_on" "-5" is not a number of seconds`},
	} {
		_, err := azureCLIExpiry(bad.epoch, bad.local, time.UTC)
		assert.EqualError(t, err, bad.msg)
	}
}

func TestAzureCLIParse(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	for _, tc := range []struct {
		golden string
		loc    *time.Location
		want   time.Time
	}{
		// 2.45 printed "16:04:05" in Berlin, where it ran.
		{"success-2.45", berlin, goldenExpiry},
		// Read in another zone, the same text is another instant: the
		// reason the zone is a seam.
		{"success-2.45", time.UTC, goldenExpiry.Add(time.Hour)},
		{"success-2.54", time.UTC, goldenExpiry},
		{"success-2.54", berlin, goldenExpiry},
	} {
		b, err := os.ReadFile("testdata/azurecli/" + tc.golden + ".stdout")
		require.NoError(t, err)
		tok, err := parseAzureCLIToken(b, tc.loc)
		require.NoError(t, err)
		assert.Equal(t, goldenToken1, tok.Value)
		assert.Equal(t, tc.want, tok.ExpiresOn, "%s in %s", tc.golden, tc.loc)
	}
	for in, msg := range map[string]string{
		`WARNING: not json`:                       "az printed something that is not its JSON token answer",
		`{"expires_on": 1676387045}`:              `az's answer has no "accessToken"`,
		`{"accessToken": "` + goldenToken1 + `"}`: "az's answer has no expiry",
	} {
		_, err := parseAzureCLIToken([]byte(in), time.UTC)
		require.ErrorContains(t, err, msg)
		assert.NotContains(t, err.Error(), goldenToken1)
	}
}

// The same 2.45 output read with the process's own zone (time.Local, fixed
// when the process starts): the test binary runs itself again with TZ set.
func TestAzureCLIExpiryInProcessZone(t *testing.T) {
	if want := os.Getenv("AZCRED_TZ_WANT"); want != "" {
		// The child: default options, so time.Local.
		b, err := os.ReadFile("testdata/azurecli/success-2.45.stdout")
		require.NoError(t, err)
		r := &recordingRunner{answer: func(exec.Command) (exec.Result, error) { return exec.Result{Stdout: b}, nil }}
		cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{DisableCache: true, devToolSeams: devToolSeams{runner: r, getenv: envMap()}})
		require.NoError(t, err)
		tok, err := cred.GetToken(context.Background(), armRequest)
		require.NoError(t, err)
		assert.Equal(t, want, strconv.FormatInt(tok.ExpiresOn.Unix(), 10), "TZ=%s", os.Getenv("TZ"))
		return
	}
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	for tz, want := range map[string]time.Time{
		"Europe/Berlin":       goldenExpiry,                         // where the output was made
		"UTC":                 goldenExpiry.Add(time.Hour),          // 16:04:05 UTC
		"Asia/Kolkata":        goldenExpiry.Add(-270 * time.Minute), // 16:04:05 IST = 10:34:05 UTC
		"America/Los_Angeles": goldenExpiry.Add(9 * time.Hour),      // 16:04:05 PST = 00:04:05 UTC
	} {
		t.Run(tz, func(t *testing.T) {
			t.Parallel()
			cmd := osexec.Command(exe, "-test.run=^TestAzureCLIExpiryInProcessZone$", "-test.v")
			cmd.Env = append(os.Environ(), "TZ="+tz, "AZCRED_TZ_WANT="+strconv.FormatInt(want.Unix(), 10), "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), "--- PASS: TestAzureCLIExpiryInProcessZone")
		})
	}
}

// Every stderr az prints, with what users see.
func TestAzureCLIFailures(t *testing.T) {
	t.Parallel()
	claims := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	b64 := base64.StdEncoding.EncodeToString([]byte(claims))
	for _, tc := range []struct {
		golden      string
		o           AzureCLICredentialOptions
		req         TokenRequestOptions
		unavailable bool
		code        string
		msg         string
	}{
		{golden: "not-logged-in", unavailable: true,
			msg: "AzureCLICredential: the Azure CLI is not signed in (it said \"ERROR: Please run 'az login' to setup account.\"); run `az login`"},
		{golden: "not-logged-in", o: AzureCLICredentialOptions{TenantID: testTenant}, unavailable: true,
			msg: "AzureCLICredential: the Azure CLI is not signed in (it said \"ERROR: Please run 'az login' to setup account.\"); run `az login --tenant " + testTenant + "`"},
		{golden: "no-subscription", unavailable: true,
			msg: "AzureCLICredential: the Azure CLI has no subscription selected (it said \"ERROR: No subscription found. Run 'az account set' to select a subscription.\"); run `az account set --subscription <subscription ID>`"},
		{golden: "no-subscription", o: AzureCLICredentialOptions{Subscription: "my sub"}, unavailable: true,
			msg: "AzureCLICredential: the Azure CLI has no subscription selected (it said \"ERROR: No subscription found. Run 'az account set' to select a subscription.\"); run `az account set --subscription \"my sub\"`"},
		{golden: "aadsts", code: "AADSTS50076",
			msg: "AzureCLICredential: Entra ID refused the Azure CLI's token request (AADSTS50076): ERROR: AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '797f4846-ba00-4fd7-ba43-dac1f8f63013'. Trace ID: 0c6d7e5a-1b2c-4d3e-8f90-a1b2c3d4e5f6 Correlation ID: 9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4 Timestamp: 2023-02-14 14:04:05Z\nInteractive authentication is needed. Please run:\naz login --scope https://management.core.windows.net//.default; sign in again with `az login` and retry"},
		{golden: "subscription-not-found", o: AzureCLICredentialOptions{Subscription: "my sub"},
			msg: "AzureCLICredential: ERROR: Subscription 'my sub' not found. Check the spelling and casing and try again.; check the Subscription option against `az account list --output table`"},
		{golden: "unrecognized-arguments",
			msg: "AzureCLICredential: the Azure CLI did not understand `az account get-access-token`: ERROR: unrecognized arguments: --bogus\n\nExamples from AI knowledge base:\nhttps://aka.ms/cli_ref\nRead more about the command in reference docs; update the Azure CLI (`az upgrade`)"},
		{golden: "tenant-and-subscription",
			msg: "AzureCLICredential: the Azure CLI failed: ERROR: Please specify only one of subscription and tenant, not both"},
		{golden: "broken-install", unavailable: true,
			msg: "AzureCLICredential: the Azure CLI (az) is not installed or not on the search path; install it (https://aka.ms/azure-cli) and run `az login`"},
		{golden: "not-json",
			msg: "AzureCLICredential: az printed something that is not its JSON token answer; run `az account get-access-token --output json` in a terminal to check it, and update the Azure CLI"},
		{golden: "success-2.54", req: TokenRequestOptions{Scopes: []string{armScope}, Claims: claims},
			msg: "AzureCLICredential: the resource asks for additional claims (multifactor authentication or a conditional access policy), which az cannot add to a token it already holds; run `az login --claims-challenge " + b64 + "` (Azure CLI 2.76 or later), then retry"},
		{golden: "success-2.54", req: TokenRequestOptions{Scopes: []string{armScope}, Claims: claims, TenantID: "contoso.example"},
			msg: "AzureCLICredential: the resource asks for additional claims (multifactor authentication or a conditional access policy), which az cannot add to a token it already holds; run `az login --claims-challenge " + b64 + " --tenant contoso.example` (Azure CLI 2.76 or later), then retry"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			f := newFakeTools(t, "azurecli/"+tc.golden)
			tc.o.devToolSeams = f.seams()
			cred, err := NewAzureCLICredential(&tc.o)
			require.NoError(t, err)
			req := tc.req
			if req.Scopes == nil {
				req.Scopes = []string{armScope}
			}
			_, err = cred.GetToken(context.Background(), req)
			require.Error(t, err)
			assert.Equal(t, tc.msg, err.Error())
			assert.Equal(t, tc.unavailable, isUnavailable(err))
			if !tc.unavailable {
				var af *AuthenticationFailedError
				require.ErrorAs(t, err, &af)
				assert.Equal(t, tc.code, af.ErrorCode)
			}
			if tc.req.Claims != "" {
				assert.Empty(t, f.calls(t), "a claims request runs no az")
			}
		})
	}
}

// The only true az: when Debian's azure-cli is installed here, its real
// "not signed in" answer maps to unavailable. Skipped when az is absent (as
// in CI).
func TestAzureCLILiveNotSignedIn(t *testing.T) {
	t.Parallel()
	path, err := osexec.LookPath("az")
	if err != nil {
		t.Skip("az is not installed")
	}
	if testing.Short() {
		t.Skip("starts the real az (seconds)")
	}
	cfg := t.TempDir()
	environ := append(os.Environ(), "AZURE_CONFIG_DIR="+cfg, "AZURE_CORE_COLLECT_TELEMETRY=false")
	cred, err := NewAzureCLICredential(&AzureCLICredentialOptions{Timeout: 60 * time.Second, devToolSeams: devToolSeams{
		runner: exec.OS{Path: filepath.Dir(path), Environ: environ}, getenv: envMap(), clock: clock.Real,
	}})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.Error(t, err)
	assert.True(t, isUnavailable(err), "%v", err)
	assert.Contains(t, err.Error(), "run `az login`")
}
