package emulator

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenIDConfiguration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		tenant, issuer string
	}{
		{tenantA, f.e.URL() + "/" + tenantA + "/v2.0"},
		{"organizations", f.e.URL() + "/{tenantid}/v2.0"},
		{"common", f.e.URL() + "/{tenantid}/v2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			t.Parallel()
			r := get(t, f.e, "/"+tt.tenant+"/v2.0/.well-known/openid-configuration")
			require.Equal(t, http.StatusOK, r.status)
			base := f.e.URL() + "/" + tt.tenant
			assert.Equal(t, tt.issuer, r.str("issuer"))
			assert.Equal(t, base+"/oauth2/v2.0/token", r.str("token_endpoint"))
			assert.Equal(t, base+"/oauth2/v2.0/authorize", r.str("authorization_endpoint"))
			assert.Equal(t, base+"/oauth2/v2.0/devicecode", r.str("device_authorization_endpoint"))
			assert.Equal(t, base+"/discovery/v2.0/keys", r.str("jwks_uri"))
			assert.Contains(t, r.body["response_types_supported"], "code")
			assert.Contains(t, r.body["id_token_signing_alg_values_supported"], "RS256")
		})
	}
	assert.Equal(t, f.e.Issuer(tenantA), tests[0].issuer)
	assert.Equal(t, f.e.URL()+tokenPath(tenantA), f.e.TokenURL(tenantA))
	assert.Equal(t, f.e.URL()+"/"+tenantA+"/discovery/v2.0/keys", f.e.JWKSURL(tenantA))
}

func TestClientCredentialsWithSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &Options{TokenLifetime: 2 * time.Hour, RefreshIn: time.Hour})
	form := secretForm(secretApp, theSecret, "https://management.azure.com//.default openid offline_access profile")
	form.Set("x-client-SKU", "MSAL.Go")
	form.Set("client_info", "1")
	r := post(t, f.e, tokenPath(tenantA), form, nil)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	assert.Equal(t, "Bearer", r.str("token_type"))
	assert.Equal(t, float64(7200), r.body["expires_in"])
	assert.Equal(t, float64(7200), r.body["ext_expires_in"])
	assert.Equal(t, float64(3600), r.body["refresh_in"])
	assert.NotContains(t, r.body, "refresh_token", "app tokens come without refresh token")
	assert.NotContains(t, r.body, "client_info", "app tokens have no account")
	assert.Equal(t, "no-store, no-cache", r.header.Get("Cache-Control"))

	c := verifyWithJWKS(t, f, tenantA, r.str("access_token"))
	now := f.clk.Now().Unix()
	assert.Equal(t, "https://management.azure.com/", c["aud"])
	assert.Equal(t, f.e.Issuer(tenantA), c["iss"])
	assert.Equal(t, tenantA, c["tid"])
	assert.Equal(t, secretApp, c["appid"])
	assert.Equal(t, secretApp, c["azp"])
	assert.Equal(t, "1", c["azpacr"])
	assert.Equal(t, "app", c["idtyp"])
	assert.Equal(t, "2.0", c["ver"])
	assert.Equal(t, []any{"Reader"}, c["roles"])
	assert.Equal(t, c["oid"], c["sub"])
	assert.Len(t, c["oid"], 36)
	assert.NotContains(t, c, "scp")
	assert.NotContains(t, c, "xms_cc")
	assert.Equal(t, float64(now), c["iat"])
	assert.Equal(t, float64(now), c["nbf"])
	assert.Equal(t, float64(now+7200), c["exp"])
	assert.NotEmpty(t, c["uti"])

	// The emulator's own checks agree.
	claims, err := f.e.VerifyAccessToken(r.str("access_token"))
	require.NoError(t, err)
	assert.Equal(t, secretApp, claims["appid"])
	f.clk.Advance(2 * time.Hour)
	_, err = f.e.VerifyAccessToken(r.str("access_token"))
	assert.ErrorContains(t, err, "expired")
}

func TestClientCredentialsWithHTTPBasicSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"https://vault.azure.net/.default"}}
	h := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(secretApp+":"+url.QueryEscape(theSecret)))}}
	r := post(t, f.e, tokenPath(tenantA), form, h)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	assert.Equal(t, "https://vault.azure.net", verifyWithJWKS(t, f, tenantA, r.str("access_token"))["aud"])
}

func TestClientCredentialsWithCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name string
		spec assertionSpec
	}{
		{"PS256 with x5t#S256", assertionSpec{}},
		{"RS256 with x5t#S256", assertionSpec{method: jwtlib.SigningMethodRS256}},
		{"RS256 with SHA-1 x5t", assertionSpec{method: jwtlib.SigningMethodRS256, thumb: "x5t"}},
		{"audience without v2.0", assertionSpec{aud: f.e.URL() + "/" + tenantA + "/oauth2/token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form := assertionForm(certApp, makeAssertion(t, f, tt.spec), "https://storage.azure.com/.default offline_access openid profile")
			form.Set("client_info", "1")
			r := post(t, f.e, tokenPath(tenantA), form, nil)
			require.Equal(t, http.StatusOK, r.status, "%v", r.body)
			c := verifyWithJWKS(t, f, tenantA, r.str("access_token"))
			assert.Equal(t, "https://storage.azure.com", c["aud"])
			assert.Equal(t, certApp, c["appid"])
			assert.Equal(t, "2", c["azpacr"])
			assert.NotContains(t, c, "roles")
		})
	}
}

func TestClientCredentialsWithFederatedAssertion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := federatedAssertion(t, f, fedIssuer, fedSubject, DefaultFederatedAudience, fedKey().key, f.clk.Now().Add(time.Hour))
	r := post(t, f.e, tokenPath(tenantA), assertionForm(fedApp, a, armScope), nil)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	c := verifyWithJWKS(t, f, tenantA, r.str("access_token"))
	assert.Equal(t, fedApp, c["azp"])
}

func TestResourcesByAppIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct{ scope, aud string }{
		{middleURI + "/.default", middleURI},
		{middleApp + "/.default", middleApp},
		{"https://myaccount.blob.core.windows.net/.default", "https://myaccount.blob.core.windows.net"},
		{"00000003-0000-0000-c000-000000000000/.default", "00000003-0000-0000-c000-000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			t.Parallel()
			r := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, tt.scope), nil)
			require.Equal(t, http.StatusOK, r.status, "%v", r.body)
			assert.Equal(t, tt.aud, verifyWithJWKS(t, f, tenantA, r.str("access_token"))["aud"])
		})
	}
}

func TestPasswordGrantGivesUserTokens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	form := url.Values{
		"grant_type": {"password"}, "client_id": {publicApp}, "username": {"ALICE@contoso.example"}, "password": {userPass},
		"scope": {"https://management.azure.com/user_impersonation openid offline_access profile"}, "client_info": {"1"},
	}
	r := post(t, f.e, "/organizations/oauth2/v2.0/token", form, nil)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	assert.Equal(t, "https://management.azure.com/user_impersonation openid profile offline_access", r.str("scope"))

	at := verifyWithJWKS(t, f, tenantA, r.str("access_token"))
	assert.Equal(t, "user", at["idtyp"])
	assert.Equal(t, "user_impersonation", at["scp"])
	assert.Equal(t, userName, at["upn"])
	assert.Equal(t, userName, at["preferred_username"])
	assert.Equal(t, "Alice", at["name"])
	assert.Equal(t, publicApp, at["azp"])
	assert.Equal(t, "0", at["azpacr"])
	assert.NotContains(t, at, "roles")

	id := verifyWithJWKS(t, f, tenantA, r.str("id_token"))
	assert.Equal(t, publicApp, id["aud"])
	assert.Equal(t, at["oid"], id["oid"])

	raw, err := base64.RawURLEncoding.DecodeString(r.str("client_info"))
	require.NoError(t, err)
	var ci map[string]string
	require.NoError(t, json.Unmarshal(raw, &ci))
	assert.Equal(t, map[string]string{"uid": at["oid"].(string), "utid": tenantA}, ci)

	// The refresh token redeems for another resource (Entra's refresh tokens
	// are multi-resource).
	rt := r.str("refresh_token")
	require.NotEmpty(t, rt)
	again := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"refresh_token"}, "client_id": {publicApp}, "refresh_token": {rt}, "scope": {"https://graph.microsoft.com/.default offline_access"}}, nil)
	require.Equal(t, http.StatusOK, again.status, "%v", again.body)
	c := verifyWithJWKS(t, f, tenantA, again.str("access_token"))
	assert.Equal(t, "https://graph.microsoft.com", c["aud"])
	assert.Equal(t, "User.Read", c["scp"])
	assert.Equal(t, "https://graph.microsoft.com/.default https://graph.microsoft.com/User.Read offline_access", again.str("scope"))
	assert.Equal(t, at["oid"], c["oid"])
	assert.NotEmpty(t, again.str("refresh_token"))
	assert.Empty(t, again.str("id_token"), "no openid scope, no ID token")
}

func TestOnBehalfOfCarriesTheUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	user := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"password"}, "client_id": {publicApp}, "username": {userName}, "password": {userPass}, "scope": {middleURI + "/access_as_user"}}, nil)
	require.Equal(t, http.StatusOK, user.status, "%v", user.body)
	form := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "requested_token_use": {"on_behalf_of"},
		"client_id": {middleApp}, "client_secret": {theSecret}, "assertion": {user.str("access_token")},
		"scope": {"https://graph.microsoft.com/User.Read offline_access openid profile"}, "client_info": {"1"},
	}
	r := post(t, f.e, tokenPath(tenantA), form, nil)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	in := verifyWithJWKS(t, f, tenantA, user.str("access_token"))
	out := verifyWithJWKS(t, f, tenantA, r.str("access_token"))
	assert.Equal(t, middleURI, in["aud"])
	assert.Equal(t, "access_as_user", in["scp"])
	assert.Equal(t, "https://graph.microsoft.com", out["aud"])
	assert.Equal(t, in["oid"], out["oid"])
	assert.Equal(t, userName, out["upn"])
	assert.Equal(t, "User.Read", out["scp"])
	assert.Equal(t, middleApp, out["azp"])
	assert.Equal(t, "1", out["azpacr"])
	assert.NotEmpty(t, r.str("refresh_token"))
}

func TestClaimsRequestAndCAE(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		claims string
		want   map[string]any
		absent []string
	}{
		{"CAE capability", `{"access_token":{"xms_cc":{"values":["CP1"]}}}`, map[string]any{"xms_cc": []any{"CP1"}}, nil},
		{"challenge merged with CAE", `{"access_token":{"xms_cc":{"values":["CP1"]},"acrs":{"essential":true,"value":"c1"},"nbf":{"essential":true,"value":"1"}}}`,
			map[string]any{"xms_cc": []any{"CP1"}, "acrs": []any{"c1"}, "nbf": float64(f.clk.Now().Unix())}, nil},
		{"other capability", `{"access_token":{"xms_cc":{"values":["CP2"]}}}`, nil, []string{"xms_cc"}},
		{"no claims", "", nil, []string{"xms_cc", "acrs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form := secretForm(secretApp, theSecret, armScope)
			if tt.claims != "" {
				form.Set("claims", tt.claims)
			}
			r := post(t, f.e, tokenPath(tenantA), form, nil)
			require.Equal(t, http.StatusOK, r.status, "%v", r.body)
			c := verifyWithJWKS(t, f, tenantA, r.str("access_token"))
			for k, v := range tt.want {
				assert.Equal(t, v, c[k], k)
			}
			for _, k := range tt.absent {
				assert.NotContains(t, c, k)
			}
		})
	}
}

func TestTokenLifetimeCanChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	first := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
	require.Equal(t, http.StatusOK, first.status)
	assert.Equal(t, float64(3600), first.body["expires_in"])
	assert.NotContains(t, first.body, "refresh_in")

	f.e.SetTokenLifetime(10 * time.Minute)
	f.e.SetRefreshIn(5 * time.Minute)
	second := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, armScope), nil)
	require.Equal(t, http.StatusOK, second.status)
	assert.Equal(t, float64(600), second.body["expires_in"])
	assert.Equal(t, float64(300), second.body["refresh_in"])
	c := verifyWithJWKS(t, f, tenantA, second.str("access_token"))
	assert.Equal(t, float64(f.clk.Now().Add(10*time.Minute).Unix()), c["exp"])
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	get(t, f.e, "/"+tenantA+"/v2.0/.well-known/openid-configuration")
	f.clk.Advance(time.Second)
	post(t, f.e, tokenPath(tenantA), secretForm(secretApp, "wrong", armScope), http.Header{"X-Client-Sku": {"test"}})

	got := f.e.Requests()
	require.Len(t, got, 2)
	assert.Equal(t, http.MethodGet, got[0].Method)
	assert.Equal(t, "/"+tenantA+"/v2.0/.well-known/openid-configuration", got[0].Path)
	assert.Equal(t, http.StatusOK, got[0].Status)
	assert.Equal(t, testStart, got[0].Time)
	assert.Equal(t, http.MethodPost, got[1].Method)
	assert.Equal(t, tokenPath(tenantA), got[1].Path)
	assert.Equal(t, http.StatusUnauthorized, got[1].Status)
	assert.Equal(t, "wrong", got[1].Form.Get("client_secret"))
	assert.Equal(t, "test", got[1].Header.Get("X-Client-Sku"))
	assert.Equal(t, testStart.Add(time.Second), got[1].Time)

	got[1].Form.Set("client_secret", "changed")
	assert.Equal(t, "wrong", f.e.Requests()[1].Form.Get("client_secret"), "Requests returns copies")

	f.e.ResetRequests()
	assert.Empty(t, f.e.Requests())
}

func TestUnknownPathAndMethod(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := get(t, f.e, "/nowhere")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "not_found", r.str("error"))
	assertSTSError(t, get(t, f.e, tokenPath(tenantA)), 400, "invalid_request", 900561)
}

func TestTLSAndClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(f.e.CertPEM()))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(f.e.URL() + "/" + tenantA + "/discovery/v2.0/keys")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	plain := &http.Transport{}
	defer plain.CloseIdleConnections()
	_, err = (&http.Client{Transport: plain}).Get(f.e.URL() + "/" + tenantA + "/discovery/v2.0/keys")
	assert.Error(t, err, "a client that does not trust the emulator's CA must fail")

	assert.ErrorIs(t, f.e.Client().CheckRedirect(nil, nil), http.ErrUseLastResponse)
	assert.Same(t, f.e.Client(), f.e.Client())
}

func TestRegistrationChecks(t *testing.T) {
	t.Parallel()
	e := NewT(t, nil)
	tests := []struct {
		name string
		err  error
	}{
		{"empty tenant", e.AddTenant("")},
		{"alias tenant", e.AddTenant("common")},
		{"tenant with a slash", e.AddTenant("a/b")},
		{"app without client ID", e.RegisterApp(App{TenantID: tenantA})},
		{"app with nil certificate", e.RegisterApp(App{TenantID: tenantA, ClientID: "x", Certificates: []*x509.Certificate{nil}})},
		{"federated credential without subject", e.RegisterApp(App{TenantID: tenantA, ClientID: "x", Federated: []FederatedCredential{{Issuer: "i"}}})},
		{"federated key of unknown type", e.RegisterApp(App{TenantID: tenantA, ClientID: "x", Federated: []FederatedCredential{{Issuer: "i", Subject: "s", Keys: []crypto.PublicKey{"key"}}}})},
		{"user without name", e.AddUser(User{TenantID: tenantA})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Error(t, tt.err)
		})
	}
	_, err := New(&Options{TokenLifetime: -time.Second})
	assert.Error(t, err)
}

func TestCloseIsIdempotentAndStopsServing(t *testing.T) {
	t.Parallel()
	e, err := New(nil)
	require.NoError(t, err)
	require.NoError(t, e.AddTenant(tenantA))
	resp, err := e.Client().Get(e.JWKSURL(tenantA))
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, e.Close())
	require.NoError(t, e.Close())
	_, err = e.Client().Get(e.JWKSURL(tenantA))
	assert.Error(t, err)
}
