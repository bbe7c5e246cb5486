package azidentity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/azsdk/azidentity"
)

// challengeClaims is what the service's CAE challenge asks for; the emulator
// puts its "acrs" value into the token it issues with them.
const challengeClaims = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`

// service is a loopback TLS stand-in for an Azure service. It accepts only
// tokens the emulator signed for its audience and, once challenging is on,
// answers tokens without "acrs" with a CAE claims challenge.
type service struct {
	srv *httptest.Server

	mu          sync.Mutex
	challenging bool
	log         []served
}

type served struct {
	method string
	status int
	body   string
	acrs   any
	xmsCC  any
}

func newService(t *testing.T, e *emulator.Emulator, audience string, next http.HandlerFunc) *service {
	t.Helper()
	s := &service{}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		entry := served{method: r.Method, body: string(body)}
		rw := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			entry.status = rw.status
			s.mu.Lock()
			s.log = append(s.log, entry)
			s.mu.Unlock()
		}()
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := e.VerifyAccessToken(raw)
		if !ok || err != nil || claims["aud"] != audience {
			rw.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+e.URL()+"/"+testTenant+`/oauth2/authorize"`)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		entry.acrs, entry.xmsCC = claims["acrs"], claims["xms_cc"]
		s.mu.Lock()
		challenge := s.challenging
		s.mu.Unlock()
		if challenge && claims["acrs"] == nil {
			rw.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+
				base64.StdEncoding.EncodeToString([]byte(challengeClaims))+`"`)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		next(rw, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *service) challenge() {
	s.mu.Lock()
	s.challenging = true
	s.mu.Unlock()
}

func (s *service) served() []served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]served(nil), s.log...)
}

type recordingWriter struct {
	http.ResponseWriter
	status int
}

func (w *recordingWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// blobs is a fake blob service: PUT stores, GET returns.
func blobs() http.HandlerFunc {
	var mu sync.Mutex
	stored := map[string][]byte{}
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			stored[r.URL.Path], _ = io.ReadAll(r.Body)
			w.Header().Set("ETag", `"0x1"`)
			w.WriteHeader(http.StatusCreated)
		case http.MethodGet:
			b, ok := stored[r.URL.Path]
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

// TestBlobClientWithDropIn: azblob takes the drop-in's credential directly
// (no adapter), and azcore's BearerTokenPolicy completes a CAE challenge
// round trip through it.
func TestBlobClientWithDropIn(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	svc := newService(t, e, "https://storage.azure.com", blobs())
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	client, err := azblob.NewClient(svc.srv.URL+"/", cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: svc.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	require.NoError(t, err)
	ctx := context.Background()

	_, err = client.UploadBuffer(ctx, "photos", "cat.txt", []byte("meow"), nil)
	require.NoError(t, err)
	res, err := client.DownloadStream(ctx, "photos", "cat.txt", nil)
	require.NoError(t, err)
	got, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	assert.Equal(t, "meow", string(got))
	require.Len(t, tokenRequests(e), 1, "one token served both calls")

	svc.challenge()
	_, err = client.UploadBuffer(ctx, "photos", "dog.txt", []byte("woof-woof"), nil)
	require.NoError(t, err)

	log := svc.served()
	require.Len(t, log, 4)
	for _, s := range log[:2] {
		assert.Equal(t, []any{"CP1"}, s.xmsCC, "azcore asks for CAE tokens; the drop-in passes EnableCAE on")
	}
	challenged, retried := log[2], log[3]
	assert.Equal(t, http.StatusUnauthorized, challenged.status)
	assert.Equal(t, http.StatusCreated, retried.status)
	assert.Equal(t, []any{"c1"}, retried.acrs, "the retry carries a token issued for the challenge's claims")
	assert.Equal(t, "woof-woof", retried.body)
	reqs := tokenRequests(e)
	require.Len(t, reqs, 2)
	assert.Contains(t, reqs[1].Form.Get("claims"), `"acrs"`)
	assert.Contains(t, reqs[1].Form.Get("claims"), `"CP1"`)
}

// TestBlobClientCredentialErrorClasses: the drop-in's errors reach the SDK
// client's caller with azidentity's classes, and azcore does not retry them.
func TestBlobClientCredentialErrorClasses(t *testing.T) {
	t.Parallel()
	e := newEmulator(t)
	svc := newService(t, e, "https://storage.azure.com", blobs())
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, "not-the-secret", &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(e)})
	require.NoError(t, err)
	client, err := azblob.NewClient(svc.srv.URL+"/", cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: svc.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: 1, MaxRetryDelay: 1},
	}})
	require.NoError(t, err)
	_, err = client.DownloadStream(context.Background(), "c", "b", nil)
	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	assert.Equal(t, http.StatusUnauthorized, failed.RawResponse.StatusCode)
	assert.Len(t, tokenRequests(e), 1, "the credential's failure is not retried by the client's pipeline")
	assert.Empty(t, svc.served(), "nothing was sent without a token")
}

// resourceGroups is a fake resource manager for resource groups.
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
			if json.NewDecoder(r.Body).Decode(&in) != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			in["id"], in["name"] = prefix+name, name
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

// TestARMClientWithDropIn: one cloud.Configuration serves both the ARM
// client and the drop-in credential, as with azidentity; the second PUT
// meets a CAE challenge.
func TestARMClientWithDropIn(t *testing.T) {
	t.Parallel()
	const subscription = "00000000-0000-0000-0000-000000000001"
	e := newEmulator(t)
	svc := newService(t, e, "https://management.azure.com", resourceGroups(subscription))
	cfg := cloud.Configuration{
		ActiveDirectoryAuthorityHost: e.URL() + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Audience: "https://management.azure.com", Endpoint: svc.srv.URL},
		},
	}
	cred, err := azidentity.NewClientSecretCredential(testTenant, testClient, testSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cfg, Transport: e.Client()},
	})
	require.NoError(t, err)
	client, err := armresources.NewResourceGroupsClient(subscription, cred, &arm.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud:     cfg,
		Transport: svc.srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}})
	require.NoError(t, err)
	ctx := context.Background()

	_, err = client.CreateOrUpdate(ctx, "rg-one", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
	require.NoError(t, err)
	svc.challenge()
	created, err := client.CreateOrUpdate(ctx, "rg-two", armresources.ResourceGroup{Location: to.Ptr("northeurope")}, nil)
	require.NoError(t, err)
	assert.Equal(t, "rg-two", *created.Name)
	got, err := client.Get(ctx, "rg-two", nil)
	require.NoError(t, err)
	assert.Equal(t, "northeurope", *got.Location)

	log := svc.served()
	require.Len(t, log, 4)
	assert.Equal(t, http.StatusUnauthorized, log[1].status, "the CAE challenge")
	assert.Equal(t, http.StatusCreated, log[2].status, "the retry")
	assert.Equal(t, []any{"c1"}, log[2].acrs)
	assert.Equal(t, log[1].body, log[2].body, "the PUT body was sent again in full")
	reqs := tokenRequests(e)
	require.Len(t, reqs, 2, "one token, then one for the challenge's claims; the GET reused it")
	assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", reqs[0].Path, "the credential authenticated in the cloud it was given")
}
