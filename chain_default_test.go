package azcred

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/exec"
	"github.com/azcred/azcred/internal/jwtx"
)

// closedIMDS returns the base URL of a loopback port nothing listens on: a
// default chain under test never reaches a real IMDS.
func closedIMDS(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// noTools is a runner on which no developer tool is installed.
var noTools = &recordingRunner{answer: func(c exec.Command) (exec.Result, error) {
	return exec.Result{}, &exec.NotFoundError{Name: c.Name}
}}

// dacOptions is a default chain's options with a fake environment (kv) that
// always points IMDS at loopback, and no developer tools.
func dacOptions(t testing.TB, kv ...string) *DefaultAzureCredentialOptions {
	t.Helper()
	kv = append([]string{EnvPodIdentityAuthorityHost, closedIMDS(t)}, kv...)
	return &DefaultAzureCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(kv...)}, toolRunner: noTools}
}

var allDefaultSources = []string{"EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential", "AzureCLICredential", "AzurePowerShellCredential", "AzureDeveloperCLICredential"}

func TestDefaultAzureCredentialSourceSelection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		value   string // AZURE_TOKEN_CREDENTIALS; "" = unset
		modify  func(o *DefaultAzureCredentialOptions)
		want    []string
		wantErr string
	}{
		{name: "unset: every non-interactive source, in order", want: allDefaultSources},
		{name: "dev", value: "dev", want: []string{"AzureCLICredential", "AzurePowerShellCredential", "AzureDeveloperCLICredential"}},
		{name: "prod", value: "prod", want: []string{"EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"}},
		{name: "DEV, trimmed and any case", value: "  DEV\n", want: []string{"AzureCLICredential", "AzurePowerShellCredential", "AzureDeveloperCLICredential"}},
		{name: "one credential", value: "ManagedIdentityCredential", want: []string{"ManagedIdentityCredential"}},
		{name: "one credential, any case", value: "azureclicredential", want: []string{"AzureCLICredential"}},
		{name: "each credential by name: environment", value: "EnvironmentCredential", want: []string{"EnvironmentCredential"}},
		{name: "workload identity", value: "WorkloadIdentityCredential", want: []string{"WorkloadIdentityCredential"}},
		{name: "powershell", value: "AzurePowerShellCredential", want: []string{"AzurePowerShellCredential"}},
		{name: "azd", value: "AzureDeveloperCLICredential", want: []string{"AzureDeveloperCLICredential"}},
		{name: "interactive by name enables it", value: "InteractiveBrowserCredential", want: []string{"InteractiveBrowserCredential"}},
		{name: "invalid value", value: "cli", wantErr: `AZURE_TOKEN_CREDENTIALS="cli" is not valid; use one of "dev", "prod", "EnvironmentCredential"`},
		{name: "a credential outside the chain", value: "ClientSecretCredential", wantErr: "is not valid"},
		{name: "required but unset", modify: func(o *DefaultAzureCredentialOptions) { o.RequireAzureTokenCredentials = true }, wantErr: "RequireAzureTokenCredentials is set but AZURE_TOKEN_CREDENTIALS is not"},
		{name: "required and set", value: "prod", modify: func(o *DefaultAzureCredentialOptions) { o.RequireAzureTokenCredentials = true }, want: []string{"EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential"}},
		{name: "exclusions", modify: func(o *DefaultAzureCredentialOptions) {
			o.ExcludeEnvironmentCredential, o.ExcludeAzurePowerShellCredential = true, true
		}, want: []string{"WorkloadIdentityCredential", "ManagedIdentityCredential", "AzureCLICredential", "AzureDeveloperCLICredential"}},
		{name: "exclusions narrow the variable's selection", value: "dev", modify: func(o *DefaultAzureCredentialOptions) { o.ExcludeAzureCLICredential = true },
			want: []string{"AzurePowerShellCredential", "AzureDeveloperCLICredential"}},
		{name: "everything excluded", value: "ManagedIdentityCredential", modify: func(o *DefaultAzureCredentialOptions) { o.ExcludeManagedIdentityCredential = true }, wantErr: "every source is excluded"},
		{name: "interactive enabled comes last", modify: func(o *DefaultAzureCredentialOptions) { o.EnableInteractiveBrowserCredential = true },
			want: append(append([]string{}, allDefaultSources...), "InteractiveBrowserCredential")},
		{name: "both managed identity IDs", modify: func(o *DefaultAzureCredentialOptions) {
			o.ManagedIdentityID, o.ManagedIdentityClientID = ObjectID("x"), "y"
		}, wantErr: "ManagedIdentityID and ManagedIdentityClientID are both set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var kv []string
			if tc.value != "" {
				kv = []string{EnvTokenCredentials, tc.value}
			}
			o := dacOptions(t, kv...)
			if tc.modify != nil {
				tc.modify(o)
			}
			c, err := NewDefaultAzureCredential(o)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.True(t, strings.HasPrefix(err.Error(), "DefaultAzureCredential: "), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Sources())
		})
	}
}

func TestDefaultAzureCredentialSetButEmptyVariableIsInvalid(t *testing.T) {
	t.Setenv(EnvTokenCredentials, "")
	t.Setenv(EnvPodIdentityAuthorityHost, closedIMDS(t))
	_, err := NewDefaultAzureCredential(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `AZURE_TOKEN_CREDENTIALS="" is not valid`)
}

func TestDefaultAzureCredentialNothingConfigured(t *testing.T) {
	t.Parallel()
	c, err := NewDefaultAzureCredential(dacOptions(t, EnvTenantID, "72f988bf-86f1-41af-91ab-2d7cd011db47"))
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), armRequest)
	c.chain.waitProbes()
	require.Error(t, err)
	var u *CredentialUnavailableError
	require.ErrorAs(t, err, &u, "every source unavailable: the chain is unavailable")
	var ce *ChainError
	require.ErrorAs(t, err, &ce)
	attempts := ce.Attempts()
	require.Len(t, attempts, len(allDefaultSources))
	for i, a := range attempts {
		assert.Equal(t, allDefaultSources[i], a.Source)
		assert.Equal(t, OutcomeUnavailable, a.Outcome, "%s: %v", a.Source, a.Err)
	}
	text := err.Error()
	assert.Contains(t, text, "AZURE_TENANT_ID", "the environment placeholder says which variables are set")
	assert.Contains(t, text, "AZURE_CLIENT_ID", "and which are missing")
	_, resolved := c.Resolved()
	assert.False(t, resolved)
}

func TestDefaultAzureCredentialManagedIdentityClientIDDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		modify func(*DefaultAzureCredentialOptions)
		env    []string
		want   string
	}{
		{name: "AZURE_CLIENT_ID when nothing is set", env: []string{EnvClientID, "from-env"}, want: "ClientID(from-env)"},
		{name: "ManagedIdentityClientID wins", env: []string{EnvClientID, "from-env"}, modify: func(o *DefaultAzureCredentialOptions) { o.ManagedIdentityClientID = "from-option" }, want: "ClientID(from-option)"},
		{name: "ManagedIdentityID wins", env: []string{EnvClientID, "from-env"}, modify: func(o *DefaultAzureCredentialOptions) { o.ManagedIdentityID = ResourceID("/subscriptions/x") }, want: "ResourceID(/subscriptions/x)"},
		{name: "system-assigned otherwise", want: "system-assigned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := dacOptions(t, append([]string{EnvTokenCredentials, "ManagedIdentityCredential"}, tc.env...)...)
			if tc.modify != nil {
				tc.modify(o)
			}
			c, err := NewDefaultAzureCredential(o)
			require.NoError(t, err)
			mi, ok := c.chain.sources[0].cred.(*ManagedIdentityCredential)
			require.True(t, ok, "%T", c.chain.sources[0].cred)
			assert.Contains(t, mi.String(), identityText(tc.want))
		})
	}
}

// identityText is how a ManagedIdentityCredential describes its identity.
func identityText(s string) string {
	if s == "system-assigned" {
		return "system-assigned"
	}
	kind, value, _ := strings.Cut(strings.TrimSuffix(s, ")"), "(")
	return map[string]string{"ClientID": "client ID", "ObjectID": "object ID", "ResourceID": "resource ID"}[kind] + " " + value
}

// fakeJWT builds an unsigned JWT with claims, for sources whose tokens the
// chain only reads.
func fakeJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	require.NoError(t, err)
	return jwtx.Encode([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + jwtx.Encode(b) + ".c2ln"
}

// azSays is a runner whose az answers with token and whose other tools are
// not installed.
func azSays(t testing.TB, token string) *recordingRunner {
	out, err := json.Marshal(map[string]any{"accessToken": token, "expires_on": time.Now().Add(time.Hour).Unix(), "tokenType": "Bearer"})
	require.NoError(t, err)
	return &recordingRunner{answer: func(c exec.Command) (exec.Result, error) {
		if c.Name == "az" {
			return exec.Result{Stdout: out}, nil
		}
		return exec.Result{}, &exec.NotFoundError{Name: c.Name}
	}}
}

func TestDefaultAzureCredentialSimulatedHosts(t *testing.T) {
	t.Parallel()
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

	t.Run("service principal in CI (environment)", func(t *testing.T) {
		t.Parallel()
		e := newSecretEmulator(t, nil)
		var logs bytes.Buffer
		o := dacOptions(t, EnvTenantID, testTenant, EnvClientID, testClient, EnvClientSecret, testSecret)
		o.AuthorityHost, o.Transport = e.URL(), e.Client()
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c, err := NewDefaultAzureCredential(o)
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), armRequest)
		c.chain.waitProbes()
		require.NoError(t, err)
		claims, err := e.VerifyAccessToken(tok.Token)
		require.NoError(t, err)
		assert.Equal(t, testClient, claims["appid"])
		name, ok := c.Resolved()
		assert.True(t, ok)
		assert.Equal(t, "EnvironmentCredential", name)
		assert.Contains(t, logs.String(), "DefaultAzureCredential authenticated with EnvironmentCredential")
		assert.Contains(t, logs.String(), "appid="+testClient)
		assert.NotContains(t, logs.String(), tok.Token)
		assert.NotContains(t, logs.String(), testSecret)
	})

	t.Run("laptop with az signed in", func(t *testing.T) {
		t.Parallel()
		token := fakeJWT(t, map[string]any{"tid": tenant, "oid": "user-oid", "upn": "dev@contoso.com"})
		var logs bytes.Buffer
		o := dacOptions(t)
		o.toolRunner = azSays(t, token)
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c, err := NewDefaultAzureCredential(o)
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), armRequest)
		c.chain.waitProbes()
		require.NoError(t, err)
		assert.Equal(t, token, tok.Token)
		name, _ := c.Resolved()
		assert.Equal(t, "AzureCLICredential", name)
		assert.Contains(t, logs.String(), "authenticated with AzureCLICredential")
		assert.Contains(t, logs.String(), "upn=dev@contoso.com")
	})

	t.Run("AKS pod with workload identity", func(t *testing.T) {
		t.Parallel()
		e := emulator.NewT(t, nil)
		k8s := emulator.NewKubernetesIssuerT(t, nil)
		const wiClient = "33333333-4444-5555-6666-777777777777"
		require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenant, ClientID: wiClient,
			Federated: []emulator.FederatedCredential{k8s.FederatedCredential("default", "workload")}}))
		file := emulator.NewProjectedTokenFile(t.TempDir())
		sa, err := k8s.Mint(emulator.ServiceAccountToken{Namespace: "default", Name: "workload"})
		require.NoError(t, err)
		require.NoError(t, file.Write(sa))
		o := dacOptions(t, EnvTenantID, tenant, EnvClientID, wiClient, EnvFederatedTokenFile, file.Path(), EnvAuthorityHost, e.URL())
		o.Transport = e.Client()
		c, err := NewDefaultAzureCredential(o)
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), armRequest)
		c.chain.waitProbes()
		require.NoError(t, err)
		claims, err := e.VerifyAccessToken(tok.Token)
		require.NoError(t, err)
		assert.Equal(t, wiClient, claims["appid"])
		name, _ := c.Resolved()
		assert.Equal(t, "WorkloadIdentityCredential", name)
	})

	t.Run("Azure VM with IMDS: first token is one request", func(t *testing.T) {
		t.Parallel()
		e := emulator.NewT(t, nil)
		mi := e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
		imds, err := e.StartIMDS()
		require.NoError(t, err)
		o := dacOptions(t)
		o.getenv = envMap(EnvPodIdentityAuthorityHost, imds.URL())
		c, err := NewDefaultAzureCredential(o)
		require.NoError(t, err)
		tok, err := c.GetToken(context.Background(), armRequest)
		c.chain.waitProbes()
		require.NoError(t, err)
		claims, err := e.VerifyAccessToken(tok.Token)
		require.NoError(t, err)
		assert.Equal(t, mi.ObjectID, claims["oid"])
		name, _ := c.Resolved()
		assert.Equal(t, "ManagedIdentityCredential", name)
		assert.Len(t, imds.Requests(), 1, "no separate probe on a healthy IMDS")
	})

	t.Run("a broken environment stops the chain with its failure", func(t *testing.T) {
		t.Parallel()
		e := newSecretEmulator(t, nil)
		o := dacOptions(t, EnvTenantID, testTenant, EnvClientID, testClient, EnvClientSecret, "wrong-secret")
		o.AuthorityHost, o.Transport = e.URL(), e.Client()
		o.toolRunner = azSays(t, fakeJWT(t, map[string]any{"tid": tenant}))
		c, err := NewDefaultAzureCredential(o)
		require.NoError(t, err)
		_, err = c.GetToken(context.Background(), armRequest)
		c.chain.waitProbes()
		var af *AuthenticationFailedError
		require.ErrorAs(t, err, &af, "a configured source that fails is not skipped")
		assert.Equal(t, "AADSTS7000215", af.ErrorCode)
		assert.False(t, isUnavailable(err))
		var ce *ChainError
		require.ErrorAs(t, err, &ce)
		require.Len(t, ce.Attempts(), 1)
		assert.Contains(t, err.Error(), "EnvironmentCredential failed, so the chain stopped")
	})
}

func TestDefaultAzureCredentialSequentialAndConcurrentAgree(t *testing.T) {
	t.Parallel()
	token := fakeJWT(t, map[string]any{"tid": "t"})
	for _, disable := range []bool{false, true} {
		o := dacOptions(t)
		o.toolRunner = azSays(t, token)
		o.DisableConcurrentProbing = disable
		c, err := NewDefaultAzureCredential(o)
		require.NoError(t, err)
		assert.Equal(t, !disable, c.chain.probe)
		tok, err := c.GetToken(context.Background(), armRequest)
		c.chain.waitProbes()
		require.NoError(t, err)
		assert.Equal(t, token, tok.Token)
		name, _ := c.Resolved()
		assert.Equal(t, "AzureCLICredential", name)
	}
}

func TestDefaultAzureCredentialDiagnose(t *testing.T) {
	t.Parallel()
	token := fakeJWT(t, map[string]any{"tid": "tenant-1", "oid": "oid-1", "upn": "dev@contoso.com"})
	o := dacOptions(t)
	o.toolRunner = azSays(t, token)
	o.EnableInteractiveBrowserCredential = true
	c, err := NewDefaultAzureCredential(o)
	require.NoError(t, err)
	report := c.Diagnose(context.Background(), armRequest)
	require.Len(t, report, 7)
	byName := map[string]ChainAttempt{}
	for _, a := range report {
		byName[a.Source] = a
	}
	assert.Equal(t, OutcomeSucceeded, byName["AzureCLICredential"].Outcome)
	assert.Equal(t, map[string]string{"tid": "tenant-1", "oid": "oid-1", "upn": "dev@contoso.com"}, byName["AzureCLICredential"].Identity)
	assert.Equal(t, OutcomeUnavailable, byName["AzurePowerShellCredential"].Outcome, "%v", byName["AzurePowerShellCredential"].Err)
	assert.Contains(t, byName["InteractiveBrowserCredential"].Err.Error(), "not asked")
	_, resolved := c.Resolved()
	assert.False(t, resolved, "diagnosing does not pick a source")
}

func TestPlaceholderSource(t *testing.T) {
	t.Parallel()
	broken := errors.New("WorkloadIdentityCredential: AZURE_FEDERATED_TOKEN_FILE selects workload identity, but AZURE_CLIENT_ID is not set")
	p := placeholderSource{name: "WorkloadIdentityCredential", err: broken}
	_, err := p.GetToken(context.Background(), armRequest)
	assert.Same(t, broken, err, "a broken configuration is reported as it is")
	assert.False(t, isUnavailable(err))
	assert.Equal(t, costDecided, p.chainCost(), "it decides the chain")
	orig := NewCredentialUnavailableError("EnvironmentCredential", "missing", nil)
	absent := placeholderSource{name: "EnvironmentCredential", err: orig}
	_, err = absent.GetToken(context.Background(), armRequest)
	assert.Same(t, orig, err)
	assert.Equal(t, costAbsent, absent.chainCost())
}

// blockingRunner is a tool runner whose runs block until released, and that
// records whether a run's context was ever cancelled (a killed tool).
type blockingRunner struct {
	started  chan struct{}
	release  chan struct{}
	finished chan bool // true when the run's context was still live at the end
}

func (b *blockingRunner) Run(ctx context.Context, c exec.Command) (exec.Result, error) {
	if c.Name != "az" {
		return exec.Result{}, &exec.NotFoundError{Name: c.Name}
	}
	close(b.started)
	select {
	case <-b.release:
		b.finished <- ctx.Err() == nil
	case <-ctx.Done():
		b.finished <- false
		return exec.Result{}, ctx.Err()
	}
	out, _ := json.Marshal(map[string]any{"accessToken": "az-token", "expires_on": time.Now().Add(time.Hour).Unix()})
	return exec.Result{Stdout: out}, nil
}

// A developer tool started while IMDS waited is never killed because IMDS
// then answered: it finishes under its own timeout.
func TestDefaultAzureCredentialNeverKillsAStartedTool(t *testing.T) {
	t.Parallel()
	e := emulator.NewT(t, nil)
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	gate := make(chan struct{})
	imds.InjectFault(emulator.MIFault{Gate: gate, Count: 2}) // a cold IMDS: the token request and the probe wait
	runner := &blockingRunner{started: make(chan struct{}), release: make(chan struct{}), finished: make(chan bool, 1)}
	o := dacOptions(t)
	o.getenv = envMap(EnvPodIdentityAuthorityHost, imds.URL())
	o.IMDSProbeTimeout = 3 * time.Second // generous: IMDS must answer within it once the gate opens
	o.toolRunner = runner
	c, err := NewDefaultAzureCredential(o)
	require.NoError(t, err)

	done := make(chan struct{})
	go func() {
		defer close(done)
		tok, err := c.GetToken(context.Background(), armRequest)
		assert.NoError(t, err)
		assert.NotEqual(t, "az-token", tok.Token)
	}()
	<-runner.started // az was started while IMDS kept the chain waiting...
	close(gate)
	<-done // ...and the chain decided on managed identity while az still ran.
	name, _ := c.Resolved()
	assert.Equal(t, "ManagedIdentityCredential", name)

	close(runner.release)
	assert.True(t, <-runner.finished, "the tool ran to its end; it was not killed")
	c.chain.waitProbes()
}
