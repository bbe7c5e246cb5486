package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/azsdk/azidentity"
	"github.com/azcred/azcred/azsdk/azidentity/cache"
	azcache "github.com/azcred/azcred/cache"
)

// TestPersistentCacheSharesTokensAcrossCredentials: two credentials (two
// processes, in effect) given caches of the same name share the token, so
// the second sends no request. Where no key store works (some containers
// block the kernel keyring), New must fail with an error that says so.
func TestPersistentCacheSharesTokensAcrossCredentials(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	// One fixed name: the file lives in a temporary directory, and the
	// key store keeps a single key for it however often the test runs.
	const name = "azidentity-dropin-test"
	c, err := cache.New(&cache.Options{Name: name})
	if err != nil {
		assert.ErrorIs(t, err, azcache.ErrKeyStoreUnavailable)
		assert.Contains(t, err.Error(), "persistent token caching is not available")
		return
	}
	const tenant, client, secret = "72f988bf-86f1-41af-91ab-2d7cd011db47", "11111111-2222-3333-4444-555555555555", "s3cret-value~xyz"
	e := emulator.NewT(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenant, ClientID: client, Secrets: []string{secret}}))
	newCred := func(c azidentity.Cache) *azidentity.ClientSecretCredential {
		cred, err := azidentity.NewClientSecretCredential(tenant, client, secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: e.Client(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL()}},
			Cache:         c,
		})
		require.NoError(t, err)
		return cred
	}
	req := policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}}
	first, err := newCred(c).GetToken(context.Background(), req)
	require.NoError(t, err)
	again, err := cache.New(&cache.Options{Name: name})
	require.NoError(t, err)
	second, err := newCred(again).GetToken(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, first.Token, second.Token)
	assert.Len(t, e.Requests(), 1, "the second credential read the token from the persistent cache")

	// The file holds no token in the clear.
	var files []string
	require.NoError(t, filepath.Walk(os.Getenv("XDG_CACHE_HOME"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			files = append(files, p)
		}
		return err
	}))
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.False(t, strings.Contains(string(b), first.Token), "%s holds the token in the clear", f)
	}

	// A memory-only Cache (the zero value) works too.
	_, err = newCred(azidentity.Cache{}).GetToken(context.Background(), req)
	require.NoError(t, err)
	assert.Len(t, e.Requests(), 2, "a memory-only cache does not see the persisted token")
}
