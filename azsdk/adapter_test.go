package azsdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azsdk"
)

// nonRetriable is azcore's marker interface (errorinfo.NonRetriable).
type nonRetriable interface {
	error
	NonRetriable()
}

// azcoreFunc adapts a function to azcore.TokenCredential.
type azcoreFunc func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error)

func (f azcoreFunc) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f(ctx, o)
}

var (
	expires = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	refresh = time.Date(2031, 5, 6, 6, 38, 9, 0, time.UTC)
)

func TestCredentialMapsEveryField(t *testing.T) {
	t.Parallel()
	tests := []azcred.TokenRequestOptions{
		{Scopes: []string{"https://storage.azure.com/.default"}},
		{Scopes: []string{"a/.default", "b/.default"}, TenantID: "contoso.onmicrosoft.com", Claims: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`, EnableCAE: true},
	}
	for i, want := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			var got azcred.TokenRequestOptions
			ours := azcred.TokenCredentialFunc(func(_ context.Context, o azcred.TokenRequestOptions) (azcred.AccessToken, error) {
				got = o
				return azcred.AccessToken{Token: "tok", ExpiresOn: expires, RefreshOn: refresh}, nil
			})
			tok, err := azsdk.Credential(ours).GetToken(context.Background(), policy.TokenRequestOptions{
				Scopes: want.Scopes, TenantID: want.TenantID, Claims: want.Claims, EnableCAE: want.EnableCAE,
			})
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, azcore.AccessToken{Token: "tok", ExpiresOn: expires, RefreshOn: refresh}, tok)
		})
	}
}

func TestFromAzcoreMapsEveryField(t *testing.T) {
	t.Parallel()
	tests := []policy.TokenRequestOptions{
		{Scopes: []string{"https://vault.azure.net/.default"}},
		{Scopes: []string{"a/.default", "b/.default"}, TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", Claims: `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`, EnableCAE: true},
	}
	for i, want := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			var got policy.TokenRequestOptions
			theirs := azcoreFunc(func(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
				got = o
				return azcore.AccessToken{Token: "tok", ExpiresOn: expires, RefreshOn: refresh}, nil
			})
			tok, err := azsdk.FromAzcore(theirs).GetToken(context.Background(), azcred.TokenRequestOptions{
				Scopes: want.Scopes, TenantID: want.TenantID, Claims: want.Claims, EnableCAE: want.EnableCAE,
			})
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, azcred.AccessToken{Token: "tok", ExpiresOn: expires, RefreshOn: refresh}, tok)
		})
	}
}

func TestAdaptersUnwrapEachOther(t *testing.T) {
	t.Parallel()
	ours := azcred.TokenCredentialFunc(func(context.Context, azcred.TokenRequestOptions) (azcred.AccessToken, error) {
		return azcred.AccessToken{}, nil
	})
	theirs := azcoreFunc(func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, nil
	})
	back := azsdk.FromAzcore(azsdk.Credential(ours))
	assert.Equal(t, fmt.Sprintf("%p", ours), fmt.Sprintf("%p", back), "no double wrapping")
	again := azsdk.Credential(azsdk.FromAzcore(theirs))
	assert.Equal(t, fmt.Sprintf("%p", theirs), fmt.Sprintf("%p", again))
	assert.Nil(t, azsdk.Credential(nil))
	assert.Nil(t, azsdk.FromAzcore(nil))
}

func TestAdaptersPrintWithoutSecrets(t *testing.T) {
	t.Parallel()
	cred, err := azcred.NewClientSecretCredential("72f988bf-86f1-41af-91ab-2d7cd011db47", "11111111-2222-3333-4444-555555555555", "very-secret-value", nil)
	require.NoError(t, err)
	a := azsdk.Credential(cred)
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%#v", a), fmt.Sprintf("%+v", a)} {
		assert.NotContains(t, s, "very-secret-value")
		assert.Contains(t, s, "azsdk.Credential(ClientSecretCredential{")
	}
	theirs := azcoreFunc(func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, nil
	})
	assert.Equal(t, "azsdk.FromAzcore(azcore.TokenCredential)", fmt.Sprint(azsdk.FromAzcore(theirs)))
}

// TestCredentialErrors: azcred's errors cross into azcore unchanged, keep
// their class for errors.As and carry azcore's NonRetriable marker.
func TestCredentialErrors(t *testing.T) {
	t.Parallel()
	unavailable := azcred.NewCredentialUnavailableError("AzureCLICredential", "az is not installed; install the Azure CLI", nil)
	failed := azcred.NewAuthenticationFailedError("ClientSecretCredential", "the secret expired; create a new one", nil)
	failed.StatusCode = http.StatusUnauthorized
	required := azcred.NewAuthenticationRequiredError("InteractiveBrowserCredential", azcred.TokenRequestOptions{Scopes: []string{"s/.default"}}, "")
	plain := errors.New("my credential broke")
	tests := []struct {
		name         string
		err          error
		unavailable  bool
		failed       bool
		required     bool
		nonRetriable bool
	}{
		{"unavailable", unavailable, true, false, false, true},
		{"failed", failed, false, true, false, true},
		{"authentication required", required, true, false, true, true},
		{"wrapped unavailable", fmt.Errorf("chain: %w", unavailable), true, false, false, true},
		{"a plain error", plain, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ours := azcred.TokenCredentialFunc(func(context.Context, azcred.TokenRequestOptions) (azcred.AccessToken, error) {
				return azcred.AccessToken{}, tt.err
			})
			_, err := azsdk.Credential(ours).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"s/.default"}})
			require.Error(t, err)
			assert.Same(t, tt.err, err, "returned unchanged")
			var u *azcred.CredentialUnavailableError
			var f *azcred.AuthenticationFailedError
			var r *azcred.AuthenticationRequiredError
			var nr nonRetriable
			assert.Equal(t, tt.unavailable, errors.As(err, &u))
			assert.Equal(t, tt.failed, errors.As(err, &f))
			assert.Equal(t, tt.required, errors.As(err, &r))
			assert.Equal(t, tt.nonRetriable, errors.As(err, &nr))
			if tt.failed {
				assert.Equal(t, http.StatusUnauthorized, f.StatusCode)
			}
		})
	}
}

// TestFromAzcoreErrors: an azcore credential's errors become azcred classes,
// keeping the original (and its NonRetriable marker) as the cause.
func TestFromAzcoreErrors(t *testing.T) {
	t.Parallel()
	azUnavailable := azidentity.NewCredentialUnavailableError("no az; install the Azure CLI")
	azFailed := &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Body: http.NoBody}}
	azRequired := &azidentity.AuthenticationRequiredError{TokenRequestOptions: policy.TokenRequestOptions{
		Scopes: []string{"https://graph.microsoft.com/.default"}, TenantID: "t1", Claims: `{"x":1}`, EnableCAE: true,
	}}
	ours := azcred.NewCredentialUnavailableError("EnvironmentCredential", "not set", nil)
	plain := errors.New("something else")

	type class int
	const (
		unavailable class = iota
		required
		failed
		same // returned unchanged
	)
	tests := []struct {
		name         string
		err          error
		want         class
		status       int
		nonRetriable bool // the original carried azcore's marker
	}{
		{"azidentity unavailable", azUnavailable, unavailable, 0, true},
		{"azidentity unavailable, wrapped", fmt.Errorf("DefaultAzureCredential: %w", azUnavailable), unavailable, 0, true},
		{"azidentity authentication required", azRequired, required, 0, true},
		{"azidentity authentication failed", azFailed, failed, http.StatusBadRequest, true},
		{"azidentity authentication failed in a join", errors.Join(plain, azFailed), failed, http.StatusBadRequest, true},
		{"azcred's own error", ours, same, 0, true},
		{"any other error", plain, failed, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			theirs := azcoreFunc(func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
				return azcore.AccessToken{}, tt.err
			})
			_, err := azsdk.FromAzcore(theirs).GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{"s/.default"}})
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.err, "the original stays in the tree")
			var u *azcred.CredentialUnavailableError
			var f *azcred.AuthenticationFailedError
			var r *azcred.AuthenticationRequiredError
			switch tt.want {
			case unavailable:
				assert.ErrorAs(t, err, &u)
				assert.False(t, errors.As(err, &f))
				assert.False(t, errors.As(err, &r))
				assert.Contains(t, err.Error(), "azsdk.FromAzcore: ")
			case required:
				require.ErrorAs(t, err, &r)
				assert.ErrorAs(t, err, &u, "authentication required is also unavailable")
				assert.Equal(t, azcred.TokenRequestOptions{
					Scopes: []string{"https://graph.microsoft.com/.default"}, TenantID: "t1", Claims: `{"x":1}`, EnableCAE: true,
				}, r.TokenRequestOptions)
				var azr *azidentity.AuthenticationRequiredError
				assert.ErrorAs(t, err, &azr)
			case failed:
				require.ErrorAs(t, err, &f)
				assert.False(t, errors.As(err, &u))
				assert.Equal(t, tt.status, f.StatusCode)
				if tt.status != 0 {
					var azf *azidentity.AuthenticationFailedError
					assert.ErrorAs(t, err, &azf)
				}
			case same:
				assert.Same(t, tt.err, err)
			}
			if tt.nonRetriable {
				// azcore's marker is still found, on the original or on ours.
				var nr nonRetriable
				assert.ErrorAs(t, err, &nr)
			}
		})
	}
}

func TestFromAzcoreCancelledCaller(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	theirs := azcoreFunc(func(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, fmt.Errorf("token request: %w", ctx.Err())
	})
	_, err := azsdk.FromAzcore(theirs).GetToken(ctx, azcred.TokenRequestOptions{Scopes: []string{"s/.default"}})
	require.ErrorIs(t, err, context.Canceled)
	var f *azcred.AuthenticationFailedError
	assert.False(t, errors.As(err, &f), "a cancelled caller gets its context's error, not a failure")
}

// TestFromAzcoreRealAzidentityFailure: a real azidentity credential's error
// class survives the adapter.
func TestFromAzcoreRealAzidentityFailure(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, "wrong-secret", &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL()}, Transport: e.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	_, err = azsdk.FromAzcore(cred).GetToken(context.Background(), azcred.TokenRequestOptions{Scopes: []string{"https://storage.azure.com/.default"}})
	var f *azcred.AuthenticationFailedError
	require.ErrorAs(t, err, &f, "%v", err)
	assert.Equal(t, http.StatusUnauthorized, f.StatusCode)
	assert.NotContains(t, err.Error(), "wrong-secret")
	var azf *azidentity.AuthenticationFailedError
	assert.ErrorAs(t, err, &azf)
}

func TestCloudFromAzcore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   cloud.Configuration
		want azcred.Cloud
	}{
		{"public, no services", cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.microsoftonline.com/"}, azcred.AzurePublic},
		{"China", cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.chinacloudapi.cn/"}, azcred.AzureChina},
		{"US Government, no trailing slash", cloud.Configuration{ActiveDirectoryAuthorityHost: "https://LOGIN.microsoftonline.us"}, azcred.AzureGovernment},
		{
			"public with the ARM audience azcore's arm package sets",
			cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.microsoftonline.com/", Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: "https://management.core.windows.net/", Endpoint: "https://management.azure.com"},
			}},
			azcred.Cloud{Name: "AzurePublic", AuthorityHost: "https://login.microsoftonline.com/", ResourceManagerAudience: "https://management.core.windows.net/"},
		},
		{
			"custom",
			cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.example.test/", Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: "https://management.example.test", Endpoint: "https://arm.example.test"},
			}},
			azcred.Cloud{Name: "Custom", AuthorityHost: "https://login.example.test/", ResourceManagerAudience: "https://management.example.test"},
		},
		{"empty", cloud.Configuration{}, azcred.Cloud{Name: "Custom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := azsdk.CloudFromAzcore(tt.in)
			if tt.name == "US Government, no trailing slash" {
				tt.want.AuthorityHost = tt.in.ActiveDirectoryAuthorityHost
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
