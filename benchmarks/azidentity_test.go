package benchmarks

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

const (
	tenantID   = "5e3a7c2d-0b1f-4e8a-9c6d-2f4b8a1e0c01"
	secretID   = "0b4f6c1e-1d6a-4c37-9a52-6a0c5a3f0001"
	certID     = "0b4f6c1e-1d6a-4c37-9a52-6a0c5a3f0002"
	middleID   = "0b4f6c1e-1d6a-4c37-9a52-6a0c5a3f0003"
	nativeID   = "0b4f6c1e-1d6a-4c37-9a52-6a0c5a3f0004"
	secret     = "emulated-secret"
	username   = "dev@contoso.example"
	password   = "emulated-password"
	armDefault = "https://management.azure.com/.default"
)

func clientOptions(e *emulator.Emulator) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.URL() + "/"},
		Transport: e.Client(),
	}
}

func selfSignedCert(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "azidentity fidelity test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// getJSON fetches a JSON document from the emulator.
func getJSON(t *testing.T, e *emulator.Emulator, url string, v any) {
	t.Helper()
	resp, err := e.Client().Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// verify checks token the way a resource server would: the tenant's OpenID
// configuration gives the issuer and the JWKS, whose key must verify it.
func verify(t *testing.T, e *emulator.Emulator, token string) jwtlib.MapClaims {
	t.Helper()
	var cfg struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, e, e.URL()+"/"+tenantID+"/v2.0/.well-known/openid-configuration", &cfg)
	var jwks struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	getJSON(t, e, cfg.JWKSURI, &jwks)
	keys := map[string]*rsa.PublicKey{}
	for _, k := range jwks.Keys {
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		require.NoError(t, err)
		x, err := base64.RawURLEncoding.DecodeString(k.E)
		require.NoError(t, err)
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(x).Int64())}
	}
	claims := jwtlib.MapClaims{}
	_, err := jwtlib.ParseWithClaims(token, claims, func(tok *jwtlib.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		return keys[kid], nil
	}, jwtlib.WithValidMethods([]string{"RS256"}), jwtlib.WithIssuer(cfg.Issuer), jwtlib.WithAudience("https://management.azure.com"))
	require.NoError(t, err)
	return claims
}

// TestAzidentityAgainstEmulator shows that Microsoft's azidentity (MSAL
// inside) gets tokens from the emulator with a client secret and with a
// certificate: the emulator speaks Entra's protocol, not just ours.
func TestAzidentityAgainstEmulator(t *testing.T) {
	t.Parallel()
	e := emulator.NewT(t, nil)
	cert, key := selfSignedCert(t)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenantID, ClientID: secretID, Secrets: []string{secret}, Roles: []string{"Contributor"}}))
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenantID, ClientID: certID, Certificates: []*x509.Certificate{cert}}))

	secretCred, err := azidentity.NewClientSecretCredential(tenantID, secretID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: clientOptions(e), DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	certCred, err := azidentity.NewClientCertificateCredential(tenantID, certID, []*x509.Certificate{cert}, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: clientOptions(e), DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)

	tests := []struct {
		name     string
		cred     azcore.TokenCredential
		clientID string
		acr      string
		cae      bool
	}{
		{"client secret", secretCred, secretID, "1", false},
		{"client certificate with CAE", certCred, certID, "2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := tt.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{armDefault}, EnableCAE: tt.cae})
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().Add(time.Hour), tok.ExpiresOn, time.Minute)

			c := verify(t, e, tok.Token)
			assert.Equal(t, "https://management.azure.com", c["aud"])
			assert.Equal(t, e.Issuer(tenantID), c["iss"])
			assert.Equal(t, tenantID, c["tid"])
			assert.Equal(t, tt.clientID, c["appid"])
			assert.Equal(t, tt.clientID, c["azp"])
			assert.Equal(t, tt.acr, c["azpacr"])
			assert.Equal(t, "app", c["idtyp"])
			assert.NotEmpty(t, c["oid"])
			if tt.cae {
				assert.Equal(t, []any{"CP1"}, c["xms_cc"])
			} else {
				assert.NotContains(t, c, "xms_cc")
			}

			// A second call is answered from azidentity's cache.
			again, err := tt.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{armDefault}, EnableCAE: tt.cae})
			require.NoError(t, err)
			assert.Equal(t, tok.Token, again.Token)
		})
	}

	// What azidentity sent (the test's own JWKS fetches aside): per
	// credential one OpenID configuration fetch and one token request.
	var seen []string
	for _, r := range e.Requests() {
		if !strings.Contains(r.Header.Get("User-Agent"), "azsdk-go-azidentity") {
			continue
		}
		seen = append(seen, r.Method+" "+r.Path)
		assert.Equal(t, http.StatusOK, r.Status, r.Path)
		if r.Method == http.MethodPost {
			assert.Equal(t, armDefault, strings.Fields(r.Form.Get("scope"))[0])
		}
	}
	assert.Equal(t, []string{
		"GET /" + tenantID + "/v2.0/.well-known/openid-configuration",
		"POST /" + tenantID + "/oauth2/v2.0/token",
		"GET /" + tenantID + "/v2.0/.well-known/openid-configuration",
		"POST /" + tenantID + "/oauth2/v2.0/token",
	}, seen)
}

// userToken gets a user token for the middle-tier API with a plain password
// grant, to serve as the on-behalf-of user assertion.
func userToken(t *testing.T, e *emulator.Emulator) string {
	t.Helper()
	form := url.Values{
		"grant_type": {"password"}, "client_id": {nativeID}, "username": {username}, "password": {password},
		"scope": {"api://" + middleID + "/access_as_user"},
	}
	resp, err := e.Client().PostForm(e.TokenURL(tenantID), form)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return body.AccessToken
}

// TestAzidentityOnBehalfOfAgainstEmulator shows azidentity's on-behalf-of
// flow accepted by the emulator, with the user carried into the new token.
func TestAzidentityOnBehalfOfAgainstEmulator(t *testing.T) {
	t.Parallel()
	e := emulator.NewT(t, nil)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenantID, ClientID: middleID, Secrets: []string{secret}, IdentifierURIs: []string{"api://" + middleID}}))
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: tenantID, ClientID: nativeID, PublicClient: true}))
	require.NoError(t, e.AddUser(emulator.User{TenantID: tenantID, Username: username, Password: password, Name: "Dev"}))

	assertion := userToken(t, e)
	cred, err := azidentity.NewOnBehalfOfCredentialWithSecret(tenantID, middleID, assertion, secret, &azidentity.OnBehalfOfCredentialOptions{
		ClientOptions: clientOptions(e), DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{armDefault}})
	require.NoError(t, err)
	c := verify(t, e, tok.Token)
	assert.Equal(t, "user", c["idtyp"])
	assert.Equal(t, username, c["upn"])
	assert.Equal(t, middleID, c["azp"])
	assert.Equal(t, "user_impersonation", c["scp"])
}
