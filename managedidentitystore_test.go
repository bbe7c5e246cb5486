package azcred

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagedIdentityStoreUserAssignedOnly: a user-assigned identity's
// token goes to the Cache and another host (another endpoint, standing for
// another machine) takes it from there; the system-assigned identity never
// touches the Cache.
func TestManagedIdentityStoreUserAssignedOnly(t *testing.T) {
	t.Parallel()
	f := newMIFixture(t)
	h1, err := f.e.StartIMDS()
	require.NoError(t, err)
	h2, err := f.e.StartIMDS()
	require.NoError(t, err)
	store := newMemStore()
	build := func(h any, id ManagedIDKind) *ManagedIdentityCredential {
		o := miOptions(t, h1, id)
		if h == h2 {
			o = miOptions(t, h2, id)
		}
		o.Cache = store
		c, err := NewManagedIdentityCredential(o)
		require.NoError(t, err)
		return c
	}
	ctx := context.Background()
	first, err := build(h1, ClientID(f.user.ClientID)).GetToken(ctx, armRequest)
	require.NoError(t, err)
	require.Equal(t, 1, store.saves)
	assert.Contains(t, store.lastSave.Partition, f.user.ClientID, "the entry's name holds the user-assigned ID")
	assert.Equal(t, "https://management.azure.com", store.lastSave.Key)
	second, err := build(h2, ClientID(f.user.ClientID)).GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Equal(t, first.Token, second.Token)
	assert.Len(t, h2.Requests(), 0, "the second machine took the token from the store")

	_, err = build(h1, nil).GetToken(ctx, armRequest)
	require.NoError(t, err)
	_, err = build(h2, nil).GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Equal(t, 1, store.saves, "a system-assigned identity never uses the store")
	assert.Len(t, h2.Requests(), 1, "each machine's system identity asks its own endpoint")
}

// TestCacheOptionWorkloadIdentityAndPipelines: both federated credentials
// save their tokens to the Cache and a new credential (another process)
// takes them from there.
func TestCacheOptionWorkloadIdentityAndPipelines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vault := TokenRequestOptions{Scopes: []string{vaultScope}}

	wi := newWIEnv(t)
	store := newMemStore()
	for range 2 {
		o := wi.options()
		o.Cache, o.DisableTokenSharing = store, true
		c, err := NewWorkloadIdentityCredential(o)
		require.NoError(t, err)
		_, err = c.GetToken(ctx, vault)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, store.saves)
	assert.Len(t, wi.assertionsSent(), 1, "workload identity: the second process used the store")

	ap := newAPEnv(t)
	store = newMemStore()
	for range 2 {
		o := ap.options()
		o.Cache = store
		c, err := NewAzurePipelinesCredential(testTenant, testClient, apConnection, apAccessToken, o)
		require.NoError(t, err)
		_, err = c.GetToken(ctx, vault)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, store.saves)
	assert.Len(t, ap.devops.Requests(), 1, "pipelines: the second process used the store")
}
