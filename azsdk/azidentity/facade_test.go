package azidentity_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"
	real "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/azsdk/azidentity"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClient = "11111111-2222-3333-4444-555555555555"
	testSecret = "s3cret-value~xyz"
	armScope   = "https://management.azure.com/.default"
)

var armRequest = policy.TokenRequestOptions{Scopes: []string{armScope}}

func newEmulator(t testing.TB) *emulator.Emulator {
	t.Helper()
	e := emulator.NewT(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{testSecret}}))
	return e
}

// clientOptions points a credential at e.
func clientOptions(e *emulator.Emulator) azcore.ClientOptions {
	return azcore.ClientOptions{
		Transport: e.Client(),
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL()},
	}
}

func tokenRequests(e *emulator.Emulator) []emulator.Request {
	var out []emulator.Request
	for _, r := range e.Requests() {
		if strings.HasSuffix(r.Path, "/oauth2/v2.0/token") {
			out = append(out, r)
		}
	}
	return out
}

func TestClientSecretCredentialGetsAndCachesTokens(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	o := clientOptions(e)
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: o})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, testClient, claims["appid"])
	again, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, tok.Token, again.Token)
	assert.Len(t, tokenRequests(e), 1, "one request for the first token (no discovery), none for the cached one")
	assert.NotContains(t, cred.String(), testSecret)
}

// recordingPolicy counts the requests it sees and the User-Agent they carry.
type recordingPolicy struct {
	n  atomic.Int32
	ua atomic.Value
}

func (p *recordingPolicy) Do(req *policy.Request) (*http.Response, error) {
	p.n.Add(1)
	p.ua.Store(req.Raw().Header.Get("User-Agent"))
	return req.Next()
}

func TestClientOptionsPoliciesRetryTelemetry(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	perCall, perRetry := &recordingPolicy{}, &recordingPolicy{}
	o := clientOptions(e)
	o.PerCallPolicies = []policy.Policy{perCall}
	o.PerRetryPolicies = []policy.Policy{perRetry}
	o.Telemetry.ApplicationID = "facade-test"
	o.Retry = policy.RetryOptions{MaxRetries: 2, RetryDelay: 1, MaxRetryDelay: 1}
	e.InjectFault(emulator.Fault{Path: "/oauth2/v2.0/token", Status: http.StatusServiceUnavailable, Count: 2})
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: o})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err, "azcore's retry policy retries the two 503s")
	assert.Equal(t, int32(1), perCall.n.Load(), "per-call policy runs once per GetToken")
	assert.Equal(t, int32(3), perRetry.n.Load(), "per-retry policy runs per try")
	reqs := tokenRequests(e)
	require.Len(t, reqs, 3)
	ua := reqs[2].Header.Get("User-Agent")
	assert.True(t, strings.HasPrefix(ua, "facade-test azsdk-go-azidentity/"), "User-Agent %q", ua)
	assert.Contains(t, ua, "azcred/")

	// StatusCodes decides what is retried: without 503 in it, the first
	// 503 fails the request.
	e.InjectFault(emulator.Fault{Path: "/oauth2/v2.0/token", Status: http.StatusServiceUnavailable})
	o.Retry.StatusCodes = []int{http.StatusTooManyRequests}
	cred, err = azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: o})
	require.NoError(t, err)
	e.ResetRequests()
	_, err = cred.GetToken(context.Background(), armRequest)
	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	assert.Equal(t, http.StatusServiceUnavailable, failed.RawResponse.StatusCode)
	assert.Len(t, tokenRequests(e), 1)

	// ShouldRetry overrides StatusCodes.
	e.InjectFault(emulator.Fault{Path: "/oauth2/v2.0/token", Status: http.StatusServiceUnavailable})
	var asked atomic.Int32
	o.Retry.ShouldRetry = func(res *http.Response, err error) bool {
		asked.Add(1)
		return res != nil && res.StatusCode == http.StatusServiceUnavailable
	}
	cred, err = azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: o})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Positive(t, asked.Load())
}

func TestAuthenticationFailedErrorRawResponse(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	const wrong = "wrong-secret-Value~123"
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, wrong, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	require.NotNil(t, failed.RawResponse)
	assert.Equal(t, http.StatusUnauthorized, failed.RawResponse.StatusCode)
	require.NotNil(t, failed.RawResponse.Request)
	assert.Equal(t, http.MethodPost, failed.RawResponse.Request.Method)
	assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", failed.RawResponse.Request.URL.Path)
	for range 2 {
		body, err := runtime.Payload(failed.RawResponse)
		require.NoError(t, err)
		assert.Contains(t, string(body), "AADSTS7000215", "the body stays readable")
		assert.NotContains(t, string(body), wrong)
	}
	msg := err.Error()
	assert.Contains(t, msg, "ClientSecretCredential authentication failed")
	assert.Contains(t, msg, "AADSTS7000215")
	assert.Contains(t, msg, "troubleshoot#client-secret")
	assert.NotContains(t, msg, wrong)
	var core *azcred.AuthenticationFailedError
	require.ErrorAs(t, err, &core, "the azcred error is underneath")
	assert.Equal(t, "AADSTS7000215", core.ErrorCode)
	var nr interface{ NonRetriable() }
	assert.ErrorAs(t, err, &nr)
}

// staticCred is a foreign azcore credential.
type staticCred struct {
	err   error
	calls atomic.Int32
}

func (s *staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.calls.Add(1)
	if s.err != nil {
		return azcore.AccessToken{}, s.err
	}
	return azcore.AccessToken{Token: "static"}, nil
}

func TestChainedTokenCredentialUnavailableErrors(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	secret, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	realUnavailable := &staticCred{err: real.NewCredentialUnavailableError("real azidentity: not here")}
	coreUnavailable := &staticCred{err: azcred.NewCredentialUnavailableError("Mine", "not here", nil)}
	ownUnavailable := &staticCred{err: azidentity.NewCredentialUnavailableError("facade: not here")}
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{ownUnavailable, realUnavailable, coreUnavailable, secret}, nil)
	require.NoError(t, err)
	tok, err := chain.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	_, err = e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	for _, s := range []*staticCred{ownUnavailable, realUnavailable, coreUnavailable} {
		assert.Equal(t, int32(1), s.calls.Load())
	}

	// Every source unavailable: the chain's error is unavailable too, so an
	// enclosing chain of this package moves on.
	inner, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{ownUnavailable}, nil)
	require.NoError(t, err)
	outer, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{inner, &staticCred{}}, nil)
	require.NoError(t, err)
	tok, err = outer.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, "static", tok.Token)

	// A failure stops the chain with an AuthenticationFailedError.
	failing := &staticCred{err: errors.New("boom")}
	after := &staticCred{}
	chain, err = azidentity.NewChainedTokenCredential([]azcore.TokenCredential{failing, after}, nil)
	require.NoError(t, err)
	_, err = chain.GetToken(context.Background(), armRequest)
	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	assert.Zero(t, after.calls.Load())

	// The documented limit: the real azidentity chain does not recognise
	// this package's unavailable error and stops.
	realChain, err := real.NewChainedTokenCredential([]azcore.TokenCredential{ownUnavailable, &staticCred{}}, nil)
	require.NoError(t, err)
	_, err = realChain.GetToken(context.Background(), armRequest)
	assert.Error(t, err)
}

func TestAuthenticationRequiredError(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{ClientOptions: clientOptions(e), TenantID: testTenant, DisableAutomaticAuthentication: true})
	require.NoError(t, err)
	req := policy.TokenRequestOptions{Scopes: []string{armScope}, EnableCAE: true}
	_, err = cred.GetToken(context.Background(), req)
	var required *azidentity.AuthenticationRequiredError
	require.ErrorAs(t, err, &required)
	assert.Equal(t, req.Scopes, required.TokenRequestOptions.Scopes)
	assert.True(t, required.TokenRequestOptions.EnableCAE)
	assert.Empty(t, e.Requests(), "no request without a sign-in")
	// Unavailable inside a chain of this package.
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{cred, &staticCred{}}, nil)
	require.NoError(t, err)
	tok, err := chain.GetToken(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, "static", tok.Token)
}

func TestManagedIdentityAgainstIMDS(t *testing.T) {
	e := newEmulator(t)
	mi := e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	for k, v := range imds.Env() {
		t.Setenv(k, v)
	}
	cred, err := azidentity.NewManagedIdentityCredential(nil)
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, mi.ObjectID, claims["oid"])
	require.NotEmpty(t, imds.Requests())
	assert.Contains(t, imds.Requests()[0].Header.Get("User-Agent"), "azsdk-go-azidentity/")

	// User-assigned identities by each kind of ID.
	ua := e.AddUserAssignedIdentity(emulator.ManagedIdentity{ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"})
	for _, id := range []azidentity.ManagedIDKind{azidentity.ClientID(ua.ClientID), azidentity.ObjectID(ua.ObjectID), azidentity.ResourceID(ua.ResourceID)} {
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: id})
		require.NoError(t, err)
		tok, err := cred.GetToken(context.Background(), armRequest)
		require.NoError(t, err, "%T %s", id, id)
		claims, err := e.VerifyAccessToken(tok.Token)
		require.NoError(t, err)
		assert.Equal(t, ua.ObjectID, claims["oid"], "%T", id)
	}
}

func TestInteractiveBrowserCredentialWithoutAutomaticSignIn(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	cred, err := azidentity.NewInteractiveBrowserCredential(&azidentity.InteractiveBrowserCredentialOptions{
		ClientOptions: clientOptions(e), TenantID: testTenant, DisableAutomaticAuthentication: true, LoginHint: "ada@contoso.example",
	})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	var required *azidentity.AuthenticationRequiredError
	require.ErrorAs(t, err, &required, "no browser is opened; the caller is told to call Authenticate")
	assert.Equal(t, []string{armScope}, required.TokenRequestOptions.Scopes)
	assert.Empty(t, e.Requests())
}

func TestDefaultAzureCredentialEnvironment(t *testing.T) {
	e := newEmulator(t)
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", testClient)
	t.Setenv("AZURE_CLIENT_SECRET", testSecret)
	t.Setenv("AZURE_AUTHORITY_HOST", e.URL())
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: e.Client()}})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	_, err = e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)

	t.Setenv("AZURE_TOKEN_CREDENTIALS", "nonsense")
	_, err = azidentity.NewDefaultAzureCredential(nil)
	assert.ErrorContains(t, err, "AZURE_TOKEN_CREDENTIALS")
}

func TestCloudConfiguration(t *testing.T) {
	t.Parallel()
	_, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Audience: "x"}}}},
	})
	assert.ErrorContains(t, err, "ActiveDirectoryAuthorityHost")
	_, err = azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "http://login.example"}},
	})
	assert.ErrorContains(t, err, "https")
}

// spanRecorder is a TracingProvider that records span names.
type spanRecorder struct {
	mu    sync.Mutex
	names []string
}

func (r *spanRecorder) provider() tracing.Provider {
	return tracing.NewProvider(func(string, string) tracing.Tracer {
		return tracing.NewTracer(func(ctx context.Context, name string, _ *tracing.SpanOptions) (context.Context, tracing.Span) {
			r.mu.Lock()
			r.names = append(r.names, name)
			r.mu.Unlock()
			return ctx, tracing.Span{}
		}, nil)
	}, nil)
}

func TestTracingAndLogging(t *testing.T) {
	// azcore's log listener is process-wide: this test does not run in parallel.
	var mu sync.Mutex
	events := map[azlog.Event][]string{}
	azlog.SetListener(func(ev azlog.Event, msg string) {
		mu.Lock()
		events[ev] = append(events[ev], msg)
		mu.Unlock()
	})
	t.Cleanup(func() { azlog.SetListener(nil) })
	e := newEmulator(t)
	rec := &spanRecorder{}
	o := clientOptions(e)
	o.TracingProvider = rec.provider()
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: o})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	rec.mu.Lock()
	assert.Contains(t, rec.names, "ClientSecretCredential.GetToken")
	assert.Contains(t, rec.names, "HTTP POST", "azcore's HTTP span around the token request")
	rec.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, events[azidentity.EventAuthentication])
	assert.Contains(t, events[azidentity.EventAuthentication][0], `ClientSecretCredential.GetToken() acquired a token for scope "`+armScope+`"`)
	assert.NotEmpty(t, events[azlog.EventRequest], "azcore's pipeline logs the token request")
	mu.Unlock()

	// Construction messages say which source a credential will use.
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", testClient)
	t.Setenv("AZURE_CLIENT_SECRET", testSecret)
	_, err = azidentity.NewEnvironmentCredential(nil)
	require.NoError(t, err)
	_, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID("c-1")})
	require.NoError(t, err)
	mu.Lock()
	assert.Contains(t, events[azidentity.EventAuthentication], "EnvironmentCredential will authenticate with ClientSecretCredential")
	assert.Contains(t, events[azidentity.EventAuthentication], `ManagedIdentityCredential will use IMDS managed identity with client ID "c-1"`)
	for _, msgs := range events {
		for _, m := range msgs {
			assert.NotContains(t, m, testSecret)
		}
	}
}

func TestCachedGetTokenAllocatesNothing(t *testing.T) {
	e := newEmulator(t)
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = cred.GetToken(ctx, armRequest)
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := cred.GetToken(ctx, armRequest); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

// BenchmarkGetTokenCached compares a cached GetToken of the drop-in's
// ClientSecretCredential with the azcred core's, against one emulator.
func BenchmarkGetTokenCached(b *testing.B) {
	e := newEmulator(b)
	ctx := context.Background()
	b.Run("core", func(b *testing.B) {
		cred, err := azcred.NewClientSecretCredential(testTenant, testClient, testSecret, &azcred.ClientSecretCredentialOptions{
			ClientOptions: azcred.ClientOptions{AuthorityHost: e.URL(), Transport: e.Client()},
		})
		require.NoError(b, err)
		opts := azcred.TokenRequestOptions{Scopes: []string{armScope}}
		_, err = cred.GetToken(ctx, opts)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cred.GetToken(ctx, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("drop-in", func(b *testing.B) {
		cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
		require.NoError(b, err)
		_, err = cred.GetToken(ctx, armRequest)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cred.GetToken(ctx, armRequest); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestDefaultAzureCredentialToolOrder(t *testing.T) {
	t.Setenv("AZURE_TOKEN_CREDENTIALS", "dev")
	t.Setenv("PATH", t.TempDir()) // no tool is installed
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.Error(t, err)
	var unavailable interface{ NonRetriable() }
	require.ErrorAs(t, err, &unavailable)
	msg := err.Error()
	cli, azd, pwsh := strings.Index(msg, "AzureCLICredential"), strings.Index(msg, "AzureDeveloperCLICredential"), strings.Index(msg, "AzurePowerShellCredential")
	require.True(t, cli >= 0 && azd >= 0 && pwsh >= 0, "every tool was tried: %s", msg)
	assert.Less(t, cli, azd)
	assert.Less(t, azd, pwsh, "azidentity's order: Azure CLI, azd, then Azure PowerShell")
	// Every tool unavailable: the chain is unavailable, so a chain of this
	// package moves past it.
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{cred, &staticCred{}}, nil)
	require.NoError(t, err)
	tok, err := chain.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, "static", tok.Token)
}

func TestDefaultAzureCredentialManagedIdentity(t *testing.T) {
	e := newEmulator(t)
	mi := e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	for k, v := range imds.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("PATH", t.TempDir())
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, mi.ObjectID, claims["oid"])
	assert.Len(t, imds.Requests(), 1, "the first token costs one IMDS request")
}

// TestDefaultAzureCredentialIMDSNotRetriedWhileProbing: an IMDS address
// that drops every connection is tried once (and probed), not retried under
// managed identity's six-retry policy, before the chain moves on.
func TestDefaultAzureCredentialIMDSNotRetriedWhileProbing(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", srv.URL)
	t.Setenv("PATH", t.TempDir())
	// Short delays, so that retries, were there any, would show in hits.
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond},
	}})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), armRequest)
	require.Error(t, err)
	var failed *azidentity.AuthenticationFailedError
	assert.False(t, errors.As(err, &failed), "every source unavailable: %v", err)
	assert.LessOrEqual(t, hits.Load(), int32(2), "one try and at most one probe")
	assert.Contains(t, err.Error(), "ManagedIdentityCredential")
}

// TestChainKeepsTheFailedResponse: a failing credential of this package
// inside this package's chain gives the chain's AuthenticationFailedError
// its (redacted) response.
func TestChainKeepsTheFailedResponse(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	bad, err := azidentity.NewClientSecretCredential(testTenant, testClient, "wrong-Secret~2", &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	wrapped := &staticCred{}
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{foreignOf(bad), wrapped}, nil)
	require.NoError(t, err)
	_, err = chain.GetToken(context.Background(), armRequest)
	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	require.NotNil(t, failed.RawResponse)
	assert.Equal(t, http.StatusUnauthorized, failed.RawResponse.StatusCode)
	assert.NotNil(t, failed.RawResponse.Request, "the failed credential's request line")
	assert.Contains(t, err.Error(), "ChainedTokenCredential")
	assert.NotContains(t, err.Error(), "wrong-Secret~2")
	assert.Zero(t, wrapped.calls.Load(), "a failure stops the chain")
}

// foreignOf hides that c belongs to this package, so that the chain calls
// it through azcore's interface.
func foreignOf(c azcore.TokenCredential) azcore.TokenCredential {
	return struct{ azcore.TokenCredential }{c}
}
