package azsdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred"
	"github.com/azcred/azcred/azsdk"
)

const storageAudience = "https://storage.azure.com"

// blobStore is the fake blob service's handler: PUT stores a block blob,
// GET returns it.
func blobStore() http.HandlerFunc {
	var mu sync.Mutex
	blobs := map[string][]byte{}
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			blobs[r.URL.Path] = b
			w.Header().Set("ETag", `"0x1"`)
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			b, ok := blobs[r.URL.Path]
			if !ok {
				w.Header().Set("x-ms-error-code", "BlobNotFound")
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("ETag", `"0x1"`)
			w.Header().Set("x-ms-blob-type", "BlockBlob")
			_, _ = w.Write(b)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}
}

func newBlobClient(t *testing.T, f *fakeService, cred azcore.TokenCredential) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClient(f.srv.URL+"/", cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: f.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	require.NoError(t, err)
	return c
}

func TestBlobClient(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	f := newFakeService(t, e, storageAudience, blobStore())
	cred := newSecretCredential(t, e, azcred.Cloud{})
	client := newBlobClient(t, f, azsdk.Credential(cred))
	ctx := context.Background()

	_, err := client.UploadBuffer(ctx, "photos", "cat.txt", []byte("meow"), nil)
	require.NoError(t, err)
	res, err := client.DownloadStream(ctx, "photos", "cat.txt", nil)
	require.NoError(t, err)
	got, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	assert.Equal(t, "meow", string(got))

	seen := f.requests()
	require.Len(t, seen, 2)
	for _, s := range seen {
		require.NotNil(t, s.claims, "every request carried a token the service verified")
		assert.Equal(t, storageAudience, s.claims["aud"])
		assert.Equal(t, []any{"CP1"}, s.claims["xms_cc"], "azcore asks for CAE tokens and the adapter passes EnableCAE on")
	}
	assert.Len(t, e.Requests(), 1, "one token request served both calls")
}

// TestBlobClientCAEChallenge exercises azcore's BearerTokenPolicy: the service
// answers a valid token with a CAE claims challenge, the policy asks our
// credential for a token with those claims, and the retried upload succeeds.
func TestBlobClientCAEChallenge(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	f := newFakeService(t, e, storageAudience, blobStore())
	cred := newSecretCredential(t, e, azcred.Cloud{})
	client := newBlobClient(t, f, azsdk.Credential(cred))
	ctx := context.Background()

	// A first call, so that the policy holds a cached token when the
	// challenge comes.
	_, err := client.UploadBuffer(ctx, "c", "first", []byte("1"), nil)
	require.NoError(t, err)
	f.demandClaims()
	_, err = client.UploadBuffer(ctx, "c", "second", []byte("payload-2"), nil)
	require.NoError(t, err)

	seen := f.requests()
	require.Len(t, seen, 3)
	challenged, retried := seen[1], seen[2]
	assert.Equal(t, http.StatusUnauthorized, challenged.status)
	assert.Nil(t, challenged.claims["acrs"])
	assert.Equal(t, http.StatusCreated, retried.status)
	require.NotNil(t, retried.claims)
	assert.Equal(t, []any{"c1"}, retried.claims["acrs"], "the retry carries a token issued with the challenge's claims")
	assert.Equal(t, "payload-2", challenged.body)
	assert.Equal(t, "payload-2", retried.body, "the body was rewound and sent again")

	tokenReqs := e.Requests()
	require.Len(t, tokenReqs, 2)
	assert.Contains(t, tokenReqs[1].Form.Get("claims"), `"acrs"`, "our credential received the claims")
	assert.Contains(t, tokenReqs[1].Form.Get("claims"), `"CP1"`)
}

// TestBlobClientCredentialErrors: a credential's error reaches the caller of
// the SDK client with its class, and the pipeline does not retry it.
func TestBlobClientCredentialErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"unavailable", azcred.NewCredentialUnavailableError("AzureCLICredential", "az is not logged in; run az login", nil)},
		{"failed", azcred.NewAuthenticationFailedError("ClientSecretCredential", "the secret is wrong; check AZURE_CLIENT_SECRET", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEmulator(t)
			f := newFakeService(t, e, storageAudience, blobStore())
			var calls int
			var mu sync.Mutex
			cred := azcred.TokenCredentialFunc(func(context.Context, azcred.TokenRequestOptions) (azcred.AccessToken, error) {
				mu.Lock()
				calls++
				mu.Unlock()
				return azcred.AccessToken{}, tt.err
			})
			// Retries on: a retriable error would be tried again.
			c, err := azblob.NewClient(f.srv.URL+"/", azsdk.Credential(cred), &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
				Transport: f.srv.Client(),
				Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: 1, MaxRetryDelay: 1},
			}})
			require.NoError(t, err)
			_, err = c.DownloadStream(context.Background(), "c", "b", nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.err, "errors.As and errors.Is find the credential's error through azcore's wrapping")
			var u *azcred.CredentialUnavailableError
			var fe *azcred.AuthenticationFailedError
			assert.Equal(t, tt.name == "unavailable", errors.As(err, &u))
			assert.Equal(t, tt.name == "failed", errors.As(err, &fe))
			var nr nonRetriable
			assert.ErrorAs(t, err, &nr)
			mu.Lock()
			assert.Equal(t, 1, calls, "not retried")
			mu.Unlock()
			assert.Empty(t, f.requests(), "nothing was sent without a token")
		})
	}
}

// armCloud is a custom cloud whose authority is the emulator and whose
// resource manager is the fake.
func armCloud(e interface{ URL() string }, endpoint string) cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: e.URL() + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Audience: "https://management.azure.com", Endpoint: endpoint},
		},
	}
}

// resourceGroups is the fake ARM service's handler for resource groups.
func resourceGroups(subscription string) http.HandlerFunc {
	var mu sync.Mutex
	groups := map[string]map[string]any{}
	prefix := "/subscriptions/" + subscription + "/resourcegroups/"
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		name, ok := strings.CutPrefix(strings.ToLower(r.URL.Path), prefix)
		if !ok || r.URL.Query().Get("api-version") == "" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodPut:
			var in map[string]any
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			in["id"] = prefix + name
			in["name"] = name
			in["properties"] = map[string]any{"provisioningState": "Succeeded"}
			groups[name] = in
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(in)
		case http.MethodGet:
			g, ok := groups[name]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, `{"error":{"code":"ResourceGroupNotFound","message":"not found"}}`)
				return
			}
			_ = json.NewEncoder(w).Encode(g)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	}
}

// TestARMClient drives armresources against a fake resource manager in a
// custom cloud; the azcred credential takes the same cloud through
// CloudFromAzcore. The second call meets a CAE challenge on a PUT.
func TestARMClient(t *testing.T) {
	t.Parallel()
	const subscription = "00000000-0000-0000-0000-000000000001"
	e := newEmulator(t)
	f := newFakeService(t, e, "https://management.azure.com", resourceGroups(subscription))
	cfg := armCloud(e, f.srv.URL)
	cred := newSecretCredential(t, e, azsdk.CloudFromAzcore(cfg))
	client, err := armresources.NewResourceGroupsClient(subscription, azsdk.Credential(cred), &arm.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud:     cfg,
		Transport: f.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	require.NoError(t, err)
	ctx := context.Background()

	_, err = client.CreateOrUpdate(ctx, "rg-one", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
	require.NoError(t, err)
	f.demandClaims()
	created, err := client.CreateOrUpdate(ctx, "rg-two", armresources.ResourceGroup{Location: to.Ptr("northeurope"), Tags: map[string]*string{"env": to.Ptr("test")}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "rg-two", *created.Name)
	got, err := client.Get(ctx, "rg-two", nil)
	require.NoError(t, err)
	assert.Equal(t, "northeurope", *got.Location)
	assert.Equal(t, "test", *got.Tags["env"])

	seen := f.requests()
	require.Len(t, seen, 4)
	assert.Equal(t, http.StatusCreated, seen[0].status)
	assert.Equal(t, http.StatusUnauthorized, seen[1].status, "the CAE challenge")
	assert.Equal(t, http.StatusCreated, seen[2].status, "the retry")
	assert.Equal(t, []any{"c1"}, seen[2].claims["acrs"])
	assert.True(t, bytes.Equal([]byte(seen[1].body), []byte(seen[2].body)) && strings.Contains(seen[2].body, "northeurope"), "the PUT body was sent again in full")
	assert.Equal(t, http.StatusOK, seen[3].status)
	for _, s := range seen {
		require.NotNil(t, s.claims)
		assert.Equal(t, "https://management.azure.com", s.claims["aud"])
	}
	tokenReqs := e.Requests()
	require.Len(t, tokenReqs, 2, "one token, then one for the challenge's claims; the GET reused it")
	assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", tokenReqs[0].Path, "the credential authenticated in the cloud from CloudFromAzcore")
	assert.Contains(t, tokenReqs[1].Form.Get("claims"), `"acrs"`)
}
