package azidentity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/azsdk/azidentity"
)

// A request the credential refuses before sending anything is the caller's
// mistake, not a failed authentication: azidentity returns it as a plain
// error, and so must the drop-in, so that code sorting errors with
// errors.As(err, &*AuthenticationFailedError) sorts them the same. A chain
// still stops on it with an AuthenticationFailedError, as azidentity's does.
func TestRequestErrorsAreNotAuthenticationFailures(t *testing.T) {
	e := newEmulator(t)
	e.SetSystemAssignedIdentity(emulator.ManagedIdentity{})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	for k, v := range imds.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "")
	secret, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	mi, err := azidentity.NewManagedIdentityCredential(nil)
	require.NoError(t, err)
	cli, err := azidentity.NewAzureCLICredential(nil)
	require.NoError(t, err)
	cases := []struct {
		name string
		cred azcore.TokenCredential
		opts policy.TokenRequestOptions
	}{
		{"secret without scopes", secret, policy.TokenRequestOptions{}},
		{"secret, tenant not allowed", secret, policy.TokenRequestOptions{Scopes: []string{armScope}, TenantID: "another-tenant"}},
		{"secret, malformed tenant", secret, policy.TokenRequestOptions{Scopes: []string{armScope}, TenantID: "bad tenant!"}},
		{"managed identity, two scopes", mi, policy.TokenRequestOptions{Scopes: []string{armScope, "https://vault.azure.net/.default"}}},
		{"Azure CLI, two scopes", cli, policy.TokenRequestOptions{Scopes: []string{armScope, "https://vault.azure.net/.default"}}},
		{"Azure CLI, no scope", cli, policy.TokenRequestOptions{}},
	}
	for _, c := range cases {
		_, err := c.cred.GetToken(context.Background(), c.opts)
		require.Error(t, err, c.name)
		var failed *azidentity.AuthenticationFailedError
		assert.False(t, errors.As(err, &failed), "%s: %v", c.name, err)
		var required *azidentity.AuthenticationRequiredError
		assert.False(t, errors.As(err, &required), "%s: %v", c.name, err)
	}
	assert.Empty(t, tokenRequests(e), "nothing was sent for a refused request")
	assert.Empty(t, imds.Requests(), "nothing was sent for a refused request")

	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{secret, &staticCred{}}, nil)
	require.NoError(t, err)
	_, err = chain.GetToken(context.Background(), policy.TokenRequestOptions{})
	var failed *azidentity.AuthenticationFailedError
	assert.ErrorAs(t, err, &failed, "a chain stops on the refusal as a failure")
}

// AZURE_TOKEN_CREDENTIALS takes the values azidentity takes, and no others:
// "dev" and "prod" exactly, or a default-chain credential's name in any
// case. InteractiveBrowserCredential is not one (the core accepts it and
// would open a browser).
func TestAzureTokenCredentialsValues(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, v := range []string{"dev", "prod", "EnvironmentCredential", "workloadidentitycredential", "MANAGEDIDENTITYCREDENTIAL", "AzureCLICredential", "AzureDeveloperCLICredential", "azurepowershellcredential"} {
		t.Setenv("AZURE_TOKEN_CREDENTIALS", v)
		_, err := azidentity.NewDefaultAzureCredential(nil)
		assert.NoError(t, err, "%q", v)
	}
	for _, v := range []string{"Dev", "PROD", " dev", "prod ", "", "InteractiveBrowserCredential", "DeviceCodeCredential", "AzureCLI"} {
		t.Setenv("AZURE_TOKEN_CREDENTIALS", v)
		_, err := azidentity.NewDefaultAzureCredential(nil)
		assert.ErrorContains(t, err, "AZURE_TOKEN_CREDENTIALS", "%q", v)
	}
}

// AZURE_ADDITIONALLY_ALLOWED_TENANTS widens DefaultAzureCredential and
// EnvironmentCredential only, as in azidentity: a credential constructed
// directly gets tokens for another tenant only when its own
// AdditionallyAllowedTenants option lists it.
func TestAdditionallyAllowedTenantsVariable(t *testing.T) {
	const other = "0b9c7f4e-1111-2222-3333-444444444444"
	e := newEmulator(t)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: other, ClientID: testClient, Secrets: []string{testSecret}}))
	t.Setenv("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "*")
	inOther := policy.TokenRequestOptions{Scopes: []string{armScope}, TenantID: other}

	direct, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	_, err = direct.GetToken(context.Background(), inOther)
	assert.ErrorContains(t, err, other, "the variable does not widen a credential constructed directly")
	assert.Empty(t, tokenRequests(e))

	listed, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e), AdditionallyAllowedTenants: []string{other}})
	require.NoError(t, err)
	_, err = listed.GetToken(context.Background(), inOther)
	require.NoError(t, err)

	t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", testClient)
	t.Setenv("AZURE_CLIENT_SECRET", testSecret)
	t.Setenv("AZURE_AUTHORITY_HOST", e.URL())
	env, err := azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: e.Client()}})
	require.NoError(t, err)
	_, err = env.GetToken(context.Background(), inOther)
	require.NoError(t, err, "EnvironmentCredential reads the variable")
	for _, allowed := range [][]string{nil, {}} {
		dac, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: e.Client()}, AdditionallyAllowedTenants: allowed})
		require.NoError(t, err)
		_, err = dac.GetToken(context.Background(), inOther)
		require.NoError(t, err, "DefaultAzureCredential reads the variable when its option is empty (%#v)", allowed)
	}
}

// seqCred returns errs[i] from its i-th call (nil beyond), else a token
// named after it.
type seqCred struct {
	name  string
	errs  []error
	calls int
}

func (s *seqCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.calls++
	if n := s.calls - 1; n < len(s.errs) && s.errs[n] != nil {
		return azcore.AccessToken{}, s.errs[n]
	}
	return azcore.AccessToken{Token: s.name}, nil
}

// RetrySources as azidentity has it (the sequences are those azidentity
// v1.15.0 gives for the same sources): without it, the chain keeps asking
// the source that gave its first token, whatever that source answers later;
// with it, every call starts at the first source.
func TestChainedTokenCredentialRetrySources(t *testing.T) {
	unavailable := azidentity.NewCredentialUnavailableError
	for _, c := range []struct {
		retry        bool
		want         []string
		a, b, cCalls int
	}{
		{false, []string{"b", "b", "error", "error", "b"}, 1, 5, 0},
		{true, []string{"b", "a", "b", "error", "c"}, 5, 4, 1},
	} {
		a := &seqCred{name: "a", errs: []error{unavailable("a: not yet"), nil, unavailable("a: gone"), unavailable("a: gone"), unavailable("a: gone")}}
		b := &seqCred{name: "b", errs: []error{nil, nil, errors.New("b: broke"), unavailable("b: gone"), nil}}
		last := &seqCred{name: "c"}
		chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{a, b, last}, &azidentity.ChainedTokenCredentialOptions{RetrySources: c.retry})
		require.NoError(t, err)
		var got []string
		for range 5 {
			tok, err := chain.GetToken(context.Background(), armRequest)
			if err != nil {
				got = append(got, "error")
				continue
			}
			got = append(got, tok.Token)
		}
		assert.Equal(t, c.want, got, "RetrySources %v", c.retry)
		assert.Equal(t, []int{c.a, c.b, c.cCalls}, []int{a.calls, b.calls, last.calls}, "calls, RetrySources %v", c.retry)
	}
}

// A username and password in the environment without AZURE_TENANT_ID:
// azidentity's EnvironmentCredential refuses them, and its
// DefaultAzureCredential moves on to the next source instead of signing
// the user in.
func TestEnvironmentUserWithoutTenant(t *testing.T) {
	e := newEmulator(t)
	// AZURE_CLIENT_ID selects this user-assigned identity for managed
	// identity.
	mi := e.AddUserAssignedIdentity(emulator.ManagedIdentity{ClientID: testClient, ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app"})
	imds, err := e.StartIMDS()
	require.NoError(t, err)
	for k, v := range imds.Env() {
		t.Setenv(k, v)
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("AZURE_TENANT_ID", "")
	t.Setenv("AZURE_CLIENT_ID", testClient)
	t.Setenv("AZURE_USERNAME", "ada@contoso.example")
	t.Setenv("AZURE_PASSWORD", "p@ssw0rd-Value~1")
	t.Setenv("AZURE_AUTHORITY_HOST", e.URL())

	_, err = azidentity.NewEnvironmentCredential(nil)
	assert.ErrorContains(t, err, "AZURE_TENANT_ID")

	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: e.Client()}})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, mi.ObjectID, claims["oid"], "the chain went on to managed identity")
	assert.Empty(t, tokenRequests(e), "no sign-in with the password was attempted")

	t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
	_, err = azidentity.NewDefaultAzureCredential(nil)
	assert.ErrorContains(t, err, "AZURE_TENANT_ID")
}
