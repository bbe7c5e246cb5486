package emulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTokenEndpointRefusesLikeEntra checks each refusal's status, OAuth
// error and AADSTS code, and the shape of the error body.
func TestTokenEndpointRefusesLikeEntra(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := f.clk.Now()
	ccPublic := url.Values{"grant_type": {"client_credentials"}, "client_id": {publicApp}, "scope": {armScope}}
	pw := func(user, pass string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {publicApp}, "username": {user}, "password": {pass}, "scope": {"https://graph.microsoft.com/User.Read openid profile offline_access"}}
	}

	tests := []struct {
		name   string
		tenant string
		form   func(t *testing.T) url.Values
		status int
		oauth  string
		code   int
	}{
		{"bad secret", tenantA, func(*testing.T) url.Values { return secretForm(secretApp, "wrong", armScope) }, 401, "invalid_client", 7000215},
		{"unknown app", tenantA, func(*testing.T) url.Values { return secretForm("no-such-app", theSecret, armScope) }, 400, "unauthorized_client", 700016},
		{"app of another tenant", tenantB, func(*testing.T) url.Values { return secretForm(secretApp, theSecret, armScope) }, 400, "unauthorized_client", 700016},
		{"unknown tenant", "33333333-3333-3333-3333-333333333333", func(*testing.T) url.Values { return secretForm(secretApp, theSecret, armScope) }, 400, "invalid_request", 90002},
		{"client credentials on organizations", "organizations", func(*testing.T) url.Values { return secretForm(secretApp, theSecret, armScope) }, 400, "invalid_request", 90002},
		{"no grant_type", tenantA, func(*testing.T) url.Values { return url.Values{"client_id": {secretApp}} }, 400, "invalid_request", 900144},
		{"unsupported grant", tenantA, func(*testing.T) url.Values { return url.Values{"grant_type": {"magic"}} }, 400, "unsupported_grant_type", 70003},
		{"no client credential", tenantA, func(*testing.T) url.Values { return secretForm(secretApp, "", armScope) }, 401, "invalid_client", 7000218},
		{"public client without credential on client credentials", tenantA, func(*testing.T) url.Values { return ccPublic }, 401, "invalid_client", 7000218},
		{"public client sending a secret", tenantA, func(*testing.T) url.Values { return secretForm(publicApp, "x", armScope) }, 401, "invalid_client", 700025},
		{"scope without permission", tenantA, func(*testing.T) url.Values { return secretForm(secretApp, theSecret, "https://management.azure.com") }, 400, "invalid_scope", 70011},
		{"only reserved scopes on client credentials", tenantA, func(*testing.T) url.Values { return secretForm(secretApp, theSecret, "openid profile offline_access") }, 400, "invalid_scope", 70011},
		{"delegated scope on client credentials", tenantA, func(*testing.T) url.Values {
			return secretForm(secretApp, theSecret, "https://graph.microsoft.com/User.Read")
		}, 400, "invalid_scope", 1002012},
		{"two resources", tenantA, func(*testing.T) url.Values {
			return secretForm(secretApp, theSecret, armScope+" https://vault.azure.net/.default")
		}, 400, "invalid_scope", 28000},
		{"unknown resource", tenantA, func(*testing.T) url.Values {
			return secretForm(secretApp, theSecret, "https://nowhere.example/.default")
		}, 400, "invalid_resource", 500011},
		{"no scope", tenantA, func(*testing.T) url.Values { return secretForm(secretApp, theSecret, "") }, 400, "invalid_request", 900144},
		{"assertion signed by another key", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{key: otherKey().key}), armScope)
		}, 401, "invalid_client", 700027},
		{"assertion naming an unregistered certificate", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{key: otherKey().key, thumbOf: otherKey().cert}), armScope)
		}, 401, "invalid_client", 700027},
		{"assertion with no thumbprint and no federated credential", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, federatedAssertion(t, f, certApp, certApp, "x", goodCert().key, now.Add(time.Minute)), armScope)
		}, 401, "invalid_client", 700027},
		{"assertion for another audience", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{aud: "https://login.microsoftonline.com/" + tenantA + "/oauth2/v2.0/token"}), armScope)
		}, 401, "invalid_client", 700023},
		{"assertion for another tenant's endpoint", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{aud: f.e.URL() + tokenPath(tenantB)}), armScope)
		}, 401, "invalid_client", 700023},
		{"expired assertion", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{nbf: now.Add(-20 * time.Minute), exp: now.Add(-6 * time.Minute)}), armScope)
		}, 401, "invalid_client", 700024},
		{"assertion not yet valid", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{nbf: now.Add(6 * time.Minute), exp: now.Add(20 * time.Minute)}), armScope)
		}, 401, "invalid_client", 700024},
		{"assertion issued by another client", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{iss: secretApp}), armScope)
		}, 401, "invalid_client", 700021},
		{"assertion whose sub differs", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{sub: "someone"}), armScope)
		}, 401, "invalid_client", 700021},
		{"assertion without jti", tenantA, func(t *testing.T) url.Values {
			return assertionForm(certApp, makeAssertion(t, f, assertionSpec{noJTI: true}), armScope)
		}, 401, "invalid_client", 50027},
		{"assertion that is not a JWT", tenantA, func(*testing.T) url.Values { return assertionForm(certApp, "not.a-jwt", armScope) }, 401, "invalid_client", 50027},
		{"assertion signed with HS256", tenantA, func(t *testing.T) url.Values {
			tok := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, jwtlib.MapClaims{"iss": certApp, "sub": certApp})
			tok.Header["x5t"] = "AAAA"
			s, err := tok.SignedString([]byte("key"))
			require.NoError(t, err)
			return assertionForm(certApp, s, armScope)
		}, 401, "invalid_client", 700027},
		{"wrong client_assertion_type", tenantA, func(t *testing.T) url.Values {
			v := assertionForm(certApp, makeAssertion(t, f, assertionSpec{}), armScope)
			v.Set("client_assertion_type", "jwt")
			return v
		}, 400, "invalid_request", 90100},
		{"federated assertion from another issuer", tenantA, func(t *testing.T) url.Values {
			return assertionForm(fedApp, federatedAssertion(t, f, "https://evil.example", fedSubject, DefaultFederatedAudience, fedKey().key, now.Add(time.Hour)), armScope)
		}, 400, "invalid_request", 700211},
		{"federated assertion for another subject", tenantA, func(t *testing.T) url.Values {
			return assertionForm(fedApp, federatedAssertion(t, f, fedIssuer, "system:serviceaccount:other", DefaultFederatedAudience, fedKey().key, now.Add(time.Hour)), armScope)
		}, 400, "invalid_request", 700213},
		{"federated assertion for another audience", tenantA, func(t *testing.T) url.Values {
			return assertionForm(fedApp, federatedAssertion(t, f, fedIssuer, fedSubject, "api://other", fedKey().key, now.Add(time.Hour)), armScope)
		}, 400, "invalid_request", 700212},
		{"federated assertion signed by another key", tenantA, func(t *testing.T) url.Values {
			return assertionForm(fedApp, federatedAssertion(t, f, fedIssuer, fedSubject, DefaultFederatedAudience, otherKey().key, now.Add(time.Hour)), armScope)
		}, 401, "invalid_client", 700027},
		{"expired federated assertion", tenantA, func(t *testing.T) url.Values {
			return assertionForm(fedApp, federatedAssertion(t, f, fedIssuer, fedSubject, DefaultFederatedAudience, fedKey().key, now.Add(-6*time.Minute)), armScope)
		}, 401, "invalid_client", 700024},
		{"bad password", tenantA, func(*testing.T) url.Values { return pw(userName, "guess") }, 400, "invalid_grant", 50126},
		{"unknown user", tenantA, func(*testing.T) url.Values { return pw("bob@contoso.example", userPass) }, 400, "invalid_grant", 50034},
		{"password grant of a confidential app without its secret", tenantA, func(*testing.T) url.Values {
			v := pw(userName, userPass)
			v.Set("client_id", secretApp)
			return v
		}, 401, "invalid_client", 7000218},
		{"unknown refresh token", tenantA, func(*testing.T) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "client_id": {publicApp}, "refresh_token": {"nope"}, "scope": {armScope}}
		}, 400, "invalid_grant", 9002313},
		{"claims that are not JSON", tenantA, func(*testing.T) url.Values {
			v := secretForm(secretApp, theSecret, armScope)
			v.Set("claims", "{not json")
			return v
		}, 400, "invalid_request", 90100},
		{"on-behalf-of without requested_token_use", tenantA, func(*testing.T) url.Values {
			return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "client_id": {middleApp}, "client_secret": {theSecret}, "assertion": {"x"}, "scope": {armScope}}
		}, 400, "invalid_request", 90100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			corr := "corr-" + strconv.Itoa(len(tt.name))
			r := post(t, f.e, tokenPath(tt.tenant), tt.form(t), http.Header{"Client-Request-Id": {corr}})
			assertSTSError(t, r, tt.status, tt.oauth, tt.code)
			assert.Equal(t, corr, r.str("correlation_id"), "correlation_id echoes client-request-id")
			assert.Contains(t, r.str("error_description"), "Correlation ID: "+corr)
		})
	}
}

func assertSTSError(t *testing.T, r result, status int, oauth string, code int) {
	t.Helper()
	assert.Equal(t, status, r.status, "status; body %v", r.body)
	assert.Equal(t, oauth, r.str("error"))
	assert.Equal(t, []int{code}, r.codes())
	desc := r.str("error_description")
	assert.True(t, strings.HasPrefix(desc, "AADSTS"+strconv.Itoa(code)+": "), desc)
	assert.Contains(t, desc, "Trace ID: "+r.str("trace_id"))
	assert.NotEmpty(t, r.str("trace_id"))
	assert.NotEmpty(t, r.str("timestamp"))
	assert.Contains(t, r.str("error_uri"), "code="+strconv.Itoa(code))
	assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
	assert.Empty(t, r.str("access_token"))
}

// TestCertificateAssertionJTIIsSingleUse shows a certificate assertion is
// accepted once and its replay refused, while a federated assertion may be
// sent again.
func TestCertificateAssertionJTIIsSingleUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := makeAssertion(t, f, assertionSpec{})
	first := post(t, f.e, tokenPath(tenantA), assertionForm(certApp, a, armScope), nil)
	require.Equal(t, http.StatusOK, first.status, "%v", first.body)
	second := post(t, f.e, tokenPath(tenantA), assertionForm(certApp, a, armScope), nil)
	assertSTSError(t, second, 401, "invalid_client", 50013)

	fed := federatedAssertion(t, f, fedIssuer, fedSubject, DefaultFederatedAudience, fedKey().key, f.clk.Now().Add(time.Hour))
	for i := range 2 {
		r := post(t, f.e, tokenPath(tenantA), assertionForm(fedApp, fed, armScope), nil)
		assert.Equal(t, http.StatusOK, r.status, "federated attempt %d: %v", i, r.body)
	}
}

// TestAssertionLifetimeSkew shows the five minutes of skew on both ends, read
// from the emulator's clock.
func TestAssertionLifetimeSkew(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	now := f.clk.Now()
	tests := []struct {
		name     string
		nbf, exp time.Time
		ok       bool
	}{
		{"expired 4 minutes ago", now.Add(-time.Hour), now.Add(-4 * time.Minute), true},
		{"expired 6 minutes ago", now.Add(-time.Hour), now.Add(-6 * time.Minute), false},
		{"valid from 4 minutes ahead", now.Add(4 * time.Minute), now.Add(time.Hour), true},
		{"valid from 6 minutes ahead", now.Add(6 * time.Minute), now.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := post(t, f.e, tokenPath(tenantA), assertionForm(certApp, makeAssertion(t, f, assertionSpec{nbf: tt.nbf, exp: tt.exp}), armScope), nil)
			if tt.ok {
				assert.Equal(t, http.StatusOK, r.status, "%v", r.body)
			} else {
				assertSTSError(t, r, 401, "invalid_client", 700024)
			}
		})
	}
}

func TestOnBehalfOfRefusesForeignAndStaleAssertions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	require.NoError(t, f.e.RegisterApp(App{TenantID: tenantA, ClientID: "other-api", IdentifierURIs: []string{"api://other"}}))
	userToken := func(t *testing.T, scope string) string {
		r := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"password"}, "client_id": {publicApp}, "username": {userName}, "password": {userPass}, "scope": {scope}}, nil)
		require.Equal(t, http.StatusOK, r.status, "%v", r.body)
		return r.str("access_token")
	}
	obo := func(assertion string) url.Values {
		return url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "requested_token_use": {"on_behalf_of"},
			"client_id": {middleApp}, "client_secret": {theSecret}, "assertion": {assertion}, "scope": {"https://graph.microsoft.com/.default"},
		}
	}
	forMiddle := userToken(t, middleURI+"/access_as_user")
	forOther := userToken(t, "api://other/access_as_user")
	appToken := post(t, f.e, tokenPath(tenantA), secretForm(secretApp, theSecret, middleURI+"/.default"), nil).str("access_token")
	require.NotEmpty(t, appToken)

	// The same claims as a real user token for the middle tier, signed by a
	// key the emulator does not have.
	claims := jwtlib.MapClaims{}
	_, _, err := jwtlib.NewParser().ParseUnverified(forMiddle, claims)
	require.NoError(t, err)
	foreign := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, claims)
	foreign.Header["kid"] = "some-kid"
	forged, err := foreign.SignedString(otherKey().key)
	require.NoError(t, err)
	sameKid := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, claims)
	kid := ""
	for k := range f.e.PublicKeys() {
		kid = k
	}
	sameKid.Header["kid"] = kid
	forgedSameKid, err := sameKid.SignedString(otherKey().key)
	require.NoError(t, err)

	tests := []struct {
		name      string
		assertion string
	}{
		{"token signed by a foreign key", forged},
		{"token with this emulator's kid but a foreign signature", forgedSameKid},
		{"token for another app", forOther},
		{"app token", appToken},
		{"not a JWT", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := post(t, f.e, tokenPath(tenantA), obo(tt.assertion), nil)
			assertSTSError(t, r, 400, "invalid_grant", 50013)
		})
	}

	t.Run("the real user token for the middle tier is accepted", func(t *testing.T) {
		t.Parallel()
		ok := post(t, f.e, tokenPath(tenantA), obo(forMiddle), nil)
		require.Equal(t, http.StatusOK, ok.status, "%v", ok.body)
	})
}

func TestOnBehalfOfRefusesExpiredUserToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"password"}, "client_id": {publicApp}, "username": {userName}, "password": {userPass}, "scope": {middleURI + "/access_as_user"}}, nil)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	f.clk.Advance(time.Hour + 6*time.Minute)
	got := post(t, f.e, tokenPath(tenantA), url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "requested_token_use": {"on_behalf_of"},
		"client_id": {middleApp}, "client_secret": {theSecret}, "assertion": {r.str("access_token")}, "scope": {armScope},
	}, nil)
	assertSTSError(t, got, 400, "invalid_grant", 500133)
}

func TestRefreshTokenBelongsToItsClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	require.NoError(t, f.e.RegisterApp(App{TenantID: tenantA, ClientID: "second-public", PublicClient: true}))
	r := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"password"}, "client_id": {publicApp}, "username": {userName}, "password": {userPass}, "scope": {armScope + " offline_access"}}, nil)
	require.Equal(t, http.StatusOK, r.status, "%v", r.body)
	rt := r.str("refresh_token")
	require.NotEmpty(t, rt)
	other := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"refresh_token"}, "client_id": {"second-public"}, "refresh_token": {rt}, "scope": {armScope}}, nil)
	assertSTSError(t, other, 400, "invalid_grant", 70000)

	f.clk.Advance(91 * 24 * time.Hour)
	stale := post(t, f.e, tokenPath(tenantA), url.Values{"grant_type": {"refresh_token"}, "client_id": {publicApp}, "refresh_token": {rt}, "scope": {armScope}}, nil)
	assertSTSError(t, stale, 400, "invalid_grant", 70008)
}

func TestOpenIDConfigurationOfUnknownTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, p := range []string{"/nobody/v2.0/.well-known/openid-configuration", "/nobody/discovery/v2.0/keys"} {
		r := get(t, f.e, p)
		assertSTSError(t, r, 400, "invalid_tenant", 90002)
	}
}
