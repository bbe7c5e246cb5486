package azidentity_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azsdk/azidentity"
	"github.com/azcred/azcred/azsdk/azidentity/cache"
	azcache "github.com/azcred/azcred/cache"
)

// otherDoer is a distinct transport to the same emulator, so that two
// credentials do not share an engine in the process and the second one can
// only find the first one's token through the persistent cache.
type otherDoer struct{ c *http.Client }

func (d otherDoer) Do(r *http.Request) (*http.Response, error) { return d.c.Do(r) }

// TestWorkloadIdentityCredentialPersistsThroughCache: the Cache option of
// WorkloadIdentityCredential keeps tokens in the persistent store, as the
// option's documentation says.
func TestWorkloadIdentityCredentialPersistsThroughCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	const name = "azidentity-dropin-workload-test"
	first, err := cache.New(&cache.Options{Name: name})
	if err != nil {
		assert.ErrorIs(t, err, azcache.ErrKeyStoreUnavailable)
		return
	}
	second, err := cache.New(&cache.Options{Name: name})
	require.NoError(t, err)
	e, sa := federated(t)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(sa), 0o600))
	newCred := func(c azidentity.Cache, alone bool) *azidentity.WorkloadIdentityCredential {
		co := clientOptions(e)
		if alone {
			co.Transport = otherDoer{e.Client()}
		}
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, TenantID: testTenant, ClientID: testClient, TokenFilePath: file, Cache: c,
		})
		require.NoError(t, err)
		return cred
	}
	a, err := newCred(first, false).GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	b, err := newCred(second, true).GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	assert.Equal(t, a.Token, b.Token)
	assert.Len(t, tokenRequests(e), 1, "the second credential read the token from the persistent cache")
}
