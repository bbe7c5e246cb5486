package azcred

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

const (
	apConnection  = "6f2c1f0e-7a51-4c7e-9b0d-2f3b4a5c6d7e"
	apAccessToken = "eyJ0eXAiOiJKV1QifQ.eyJzY29wZSI6ImFwcF90b2tlbiJ9.access-token-sig"
)

// apEnv is an emulator and a fake Azure DevOps OIDC endpoint whose service
// connection the app testClient trusts.
type apEnv struct {
	e      *emulator.Emulator
	devops *emulator.DevOpsOIDC
}

func newAPEnv(t *testing.T) apEnv {
	t.Helper()
	v := apEnv{
		e:      emulator.NewT(t, &emulator.Options{SigningKey: ccSigningKey()}),
		devops: emulator.NewDevOpsOIDC(t, emulator.DevOpsOIDCOptions{AccessToken: apAccessToken, ServiceConnectionID: apConnection}),
	}
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Federated: []emulator.FederatedCredential{v.devops.FederatedCredential()}}))
	return v
}

func (v apEnv) options(kv ...string) *AzurePipelinesCredentialOptions {
	return &AzurePipelinesCredentialOptions{ClientOptions: ClientOptions{
		AuthorityHost: v.e.URL(), Transport: v.e.Client(), getenv: envMap(append([]string{"SYSTEM_OIDCREQUESTURI", v.devops.URL()}, kv...)...),
	}}
}

func TestAzurePipelinesCredential(t *testing.T) {
	t.Parallel()
	v := newAPEnv(t)
	c, err := NewAzurePipelinesCredential(testTenant, testClient, apConnection, apAccessToken, v.options())
	require.NoError(t, err)
	ctx := context.Background()
	for _, scope := range []string{armScope, vaultScope} {
		tok, err := c.GetToken(ctx, TokenRequestOptions{Scopes: []string{scope}})
		require.NoError(t, err)
		claims, err := v.e.VerifyAccessToken(tok.Token)
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSuffix(scope, "/.default"), claims["aud"])
	}
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)

	reqs := v.devops.Requests()
	require.Len(t, reqs, 2, "one OIDC token per token request; cached tokens need none")
	for _, r := range reqs {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "7.1", r.Query.Get("api-version"))
		assert.Equal(t, apConnection, r.Query.Get("serviceConnectionId"))
		assert.Equal(t, "Bearer "+apAccessToken, r.Header.Get("Authorization"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Equal(t, http.StatusOK, r.Status)
	}
	tokens := v.devops.Tokens()
	require.Len(t, tokens, 2)
	assert.NotEqual(t, tokens[0], tokens[1], "a fresh OIDC token each time")
	var sent []string
	for _, r := range v.e.Requests() {
		sent = append(sent, r.Form.Get("client_assertion"))
		assert.Equal(t, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", r.Form.Get("client_assertion_type"))
	}
	assert.Equal(t, tokens, sent, "each OIDC token is exchanged as the client assertion")
	assert.Equal(t, "AzurePipelinesCredential{tenantID: "+testTenant+", clientID: "+testClient+", serviceConnectionID: "+apConnection+", systemAccessToken: REDACTED}", c.String())
}

func TestAzurePipelinesDevOpsRefusals(t *testing.T) {
	t.Parallel()
	v := newAPEnv(t)
	for _, tc := range []struct {
		name       string
		connection string
		token      string
		status     int
		hint       string
	}{
		{"wrong access token", apConnection, "eyJ0eXAiOiJKV1QifQ.eyJvdGhlciI6MX0.wrong-sig", http.StatusUnauthorized, "System.AccessToken"},
		{"unknown service connection", "00000000-0000-0000-0000-000000000000", apAccessToken, http.StatusNotFound, "check the service connection ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewAzurePipelinesCredential(testTenant, testClient, tc.connection, tc.token, v.options())
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.Error(t, err)
			var af *AuthenticationFailedError
			require.ErrorAs(t, err, &af)
			assert.Equal(t, tc.status, af.StatusCode)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "AzurePipelinesCredential: Azure DevOps answered "), msg)
			assert.Regexp(t, `x-vss-e2eid: [0-9a-f-]{36}`, msg)
			assert.Contains(t, msg, "x-msedge-ref: Ref A: ")
			assert.Contains(t, msg, tc.hint)
			assert.NotContains(t, msg, tc.token)
		})
	}
	assert.Empty(t, v.e.Requests(), "nothing reached Entra ID")
}

func TestAzurePipelinesFederationRefusal(t *testing.T) {
	t.Parallel()
	v := newAPEnv(t)
	f := v.devops.FederatedCredential()
	f.Subject = "sc://contoso/emulated-project/another-connection"
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Federated: []emulator.FederatedCredential{f}}))
	c, err := NewAzurePipelinesCredential(testTenant, testClient, apConnection, apAccessToken, v.options())
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Equal(t, "AADSTS700213", af.ErrorCode)
	assert.Contains(t, err.Error(), fmt.Sprintf("sub %q", v.devops.Subject()))
	assert.Contains(t, err.Error(), fmt.Sprintf("iss %q", v.devops.Issuer()))
	assert.NotContains(t, err.Error(), v.devops.Tokens()[0])
}

func TestAzurePipelinesConfiguration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		uri         string
		connection  string
		token       string
		unavailable bool
		want        string
	}{
		{"no SYSTEM_OIDCREQUESTURI", "", apConnection, apAccessToken, true, "SYSTEM_OIDCREQUESTURI is not set"},
		{"whitespace SYSTEM_OIDCREQUESTURI", " \n", apConnection, apAccessToken, true, "SYSTEM_OIDCREQUESTURI is not set"},
		{"no service connection", "https://dev.azure.com/x", "", apAccessToken, false, "service connection ID is empty"},
		{"no access token", "https://dev.azure.com/x", apConnection, "", false, "system access token is empty"},
		{"plain http to a remote host", "http://dev.azure.com/x", apConnection, apAccessToken, false, `its scheme is "http"`},
		{"user information", "https://u:p@dev.azure.com/x", apConnection, apAccessToken, false, "user information"},
		{"relative", "/x/y", apConnection, apAccessToken, false, "not an absolute URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewAzurePipelinesCredential(testTenant, testClient, tc.connection, tc.token,
				&AzurePipelinesCredentialOptions{ClientOptions: ClientOptions{getenv: envMap("SYSTEM_OIDCREQUESTURI", tc.uri)}})
			require.Error(t, err)
			assert.Equal(t, tc.unavailable, isUnavailable(err))
			assert.True(t, strings.HasPrefix(err.Error(), "AzurePipelinesCredential: "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			if tc.token != "" {
				assert.NotContains(t, err.Error(), tc.token)
			}
		})
	}
	t.Run("plain http on loopback", func(t *testing.T) {
		t.Parallel()
		_, err := NewAzurePipelinesCredential(testTenant, testClient, apConnection, apAccessToken,
			&AzurePipelinesCredentialOptions{ClientOptions: ClientOptions{getenv: envMap("SYSTEM_OIDCREQUESTURI", "http://127.0.0.1:1/x")}})
		require.NoError(t, err)
	})
}

// TestSecretsNeverLeakEnvironmentWorkloadPipelines feeds the secrets of the
// environment, workload identity and Azure Pipelines credentials through
// failures that echo them; none may appear in an error, a log record (debug
// level up) or a printed credential.
func TestSecretsNeverLeakEnvironmentWorkloadPipelines(t *testing.T) {
	t.Parallel()
	k8s := emulator.NewKubernetesIssuerT(t, nil)
	projected, err := k8s.Mint(emulator.ServiceAccountToken{Namespace: "ns", Name: "sa"})
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(projected), 0o600))

	// A DevOps endpoint that echoes the access token in its refusal.
	echoDevOps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-vss-e2eid", "e2e-"+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"message":"token %s rejected (%s)"}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), leakAssertion)
	}))
	t.Cleanup(echoDevOps.Close)
	devops := emulator.NewDevOpsOIDC(t, emulator.DevOpsOIDCOptions{AccessToken: leakUserToken, ServiceConnectionID: apConnection})
	// Every OIDC token the fake issues starts with the same JWT header.
	const devopsTokenPrefix = "eyJhbGciOiJSUzI1NiIs"

	// What each credential holds and sends: the echo carries all of them,
	// and each credential must redact its own.
	secretsOf := map[string][]string{
		"EnvironmentCredential/secret":            {leakSecret},
		"EnvironmentCredential/password":          {leakPassword},
		"WorkloadIdentityCredential":              {projected},
		"AzurePipelinesCredential":                {leakUserToken, devopsTokenPrefix},
		"AzurePipelinesCredential/echoing DevOps": {leakUserToken, leakAssertion},
	}
	echo := fmt.Sprintf(`{"error":"invalid_client","error_description":"AADSTS7000215: got %s %s %s %s","error_codes":[7000215],"correlation_id":"c"}`,
		leakSecret, leakPassword, projected, leakUserToken)
	faults := map[string]*emulator.Fault{
		"the authority's own refusal": nil,
		"Entra error echoing secrets": {Status: http.StatusBadRequest, Count: 10, Body: []byte(echo)},
		"5xx echoing secrets":         {Status: http.StatusServiceUnavailable, Count: 10, Body: []byte(echo)},
		"dropped connections":         {Drop: true, Count: 10},
	}
	builders := map[string]func(e *emulator.Emulator, o ClientOptions) (TokenCredential, any, error){
		"EnvironmentCredential/secret": func(e *emulator.Emulator, o ClientOptions) (TokenCredential, any, error) {
			o.getenv = envMap("AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient, "AZURE_CLIENT_SECRET", leakSecret+"\n")
			c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: o})
			return c, c, err
		},
		"EnvironmentCredential/password": func(e *emulator.Emulator, o ClientOptions) (TokenCredential, any, error) {
			o.getenv = envMap("AZURE_CLIENT_ID", testClient, "AZURE_USERNAME", envUser, "AZURE_PASSWORD", leakPassword, "AZURE_CLIENT_SECRET", "")
			c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: o})
			return c, c, err
		},
		"WorkloadIdentityCredential": func(e *emulator.Emulator, o ClientOptions) (TokenCredential, any, error) {
			c, err := NewWorkloadIdentityCredential(&WorkloadIdentityCredentialOptions{ClientOptions: o, ClientID: testClient, TenantID: testTenant, TokenFilePath: tokenFile})
			return c, c, err
		},
		"AzurePipelinesCredential": func(e *emulator.Emulator, o ClientOptions) (TokenCredential, any, error) {
			o.getenv = envMap("SYSTEM_OIDCREQUESTURI", devops.URL())
			c, err := NewAzurePipelinesCredential(testTenant, testClient, apConnection, leakUserToken, &AzurePipelinesCredentialOptions{ClientOptions: o})
			return c, c, err
		},
		"AzurePipelinesCredential/echoing DevOps": func(e *emulator.Emulator, o ClientOptions) (TokenCredential, any, error) {
			o.getenv = envMap("SYSTEM_OIDCREQUESTURI", echoDevOps.URL+"/oidc")
			c, err := NewAzurePipelinesCredential(testTenant, testClient, apConnection, leakUserToken, &AzurePipelinesCredentialOptions{ClientOptions: o})
			return c, c, err
		},
	}
	for fname, fault := range faults {
		for bname, build := range builders {
			t.Run(bname+"/"+fname, func(t *testing.T) {
				t.Parallel()
				e := emulator.NewT(t, &emulator.Options{SigningKey: ccSigningKey()})
				require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{"another"},
					Federated: []emulator.FederatedCredential{{Issuer: "https://elsewhere.example", Subject: "x", Keys: k8s.PublicKeys()}}}))
				if fault != nil {
					e.InjectFault(*fault)
				}
				var logs ccSyncBuffer
				o := ClientOptions{
					AuthorityHost: e.URL(), Transport: e.Client(), getenv: envMap(),
					Retry:  RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond},
					Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				}
				cred, show, err := build(e, o)
				require.NoError(t, err)
				_, err = cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
				require.Error(t, err)
				var af *AuthenticationFailedError
				require.ErrorAs(t, err, &af)
				texts := map[string]string{
					"error":    err.Error(),
					"response": af.Response,
					"logs":     logs.String(),
					"printed":  fmt.Sprintf("%v %+v %#v %s", show, show, show, show),
					"slog":     slogText(show),
				}
				for where, text := range texts {
					for _, s := range secretsOf[bname] {
						assert.NotContains(t, text, s, "a secret in the %s", where)
					}
				}
			})
		}
	}
}

func slogText(v any) string {
	var b ccSyncBuffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", slog.Any("credential", v))
	return b.String()
}
