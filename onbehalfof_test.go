package azcred

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/oauth"
)

const (
	oboMiddleURI  = "api://" + ccApp // the middle-tier API, ccApp
	oboClientApp  = "5c4b3a29-1807-4f6e-9d5c-4b3a29180765"
	oboOtherAPI   = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
	oboSecret     = "obo~Secret.Value-7Qx"
	oboUser       = "alice@contoso.example"
	oboUserOID    = "3a9f1c2b-7d4e-4b5a-8c6d-1e2f3a4b5c6d"
	oboPassword   = "Correct-Horse-9"
	oboDownstream = "https://graph.microsoft.com/User.Read"
)

// oboRegister sets tenant up for on-behalf-of: the middle-tier API (ccApp,
// with a secret and leaf), the user's client app, another API and the user.
func oboRegister(t *testing.T, v ccEnv, tenant string, leaf *x509.Certificate) {
	t.Helper()
	require.NoError(t, v.e.RegisterApp(emulator.App{
		TenantID: tenant, ClientID: ccApp, Secrets: []string{oboSecret},
		Certificates: []*x509.Certificate{leaf}, IdentifierURIs: []string{oboMiddleURI},
	}))
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: tenant, ClientID: oboClientApp, PublicClient: true}))
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: tenant, ClientID: oboOtherAPI, Secrets: []string{oboSecret}, IdentifierURIs: []string{"api://" + oboOtherAPI}}))
	require.NoError(t, v.e.AddUser(emulator.User{TenantID: tenant, Username: oboUser, Password: oboPassword, ObjectID: oboUserOID}))
}

// oboToken gets a token straight from the emulator's token endpoint of
// ccTenant, as the service's caller would, and forgets the request.
func oboToken(t *testing.T, v ccEnv, form url.Values) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, v.e.TokenURL(ccTenant), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := v.e.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	require.NotEmpty(t, out.AccessToken)
	v.e.ResetRequests()
	return out.AccessToken
}

// oboUserToken is the user's token for scope, got by the client app with the
// password grant: the user assertion the middle tier receives.
func oboUserToken(t *testing.T, v ccEnv, scope string) string {
	t.Helper()
	return oboToken(t, v, url.Values{
		"grant_type": {"password"}, "client_id": {oboClientApp}, "username": {oboUser}, "password": {oboPassword}, "scope": {scope},
	})
}

func TestOnBehalfOfCredential(t *testing.T) {
	t.Parallel()
	leaf, ca, key := ccCertificates(t)
	for _, tc := range []struct {
		name string
		// build makes the credential; assertions collects the client
		// assertions it sends when it signs them through a callback.
		build    func(t *testing.T, v ccEnv, user string, assertions *[]string) (*OnBehalfOfCredential, error)
		acr      string
		wantAuth func(t *testing.T, v ccEnv, form url.Values, assertions []string) url.Values
	}{
		{
			name: "secret",
			build: func(t *testing.T, v ccEnv, user string, _ *[]string) (*OnBehalfOfCredential, error) {
				return NewOnBehalfOfCredentialWithSecret(ccTenant, ccApp, user, oboSecret, &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions()})
			},
			acr: "1",
			wantAuth: func(*testing.T, ccEnv, url.Values, []string) url.Values {
				return url.Values{"client_secret": {oboSecret}}
			},
		},
		{
			name: "certificate",
			build: func(t *testing.T, v ccEnv, user string, _ *[]string) (*OnBehalfOfCredential, error) {
				return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, user, []*x509.Certificate{leaf, ca}, key, &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions()})
			},
			acr: "2",
			wantAuth: func(t *testing.T, v ccEnv, form url.Values, _ []string) url.Values {
				a := form.Get("client_assertion")
				ccCheckCertAssertion(t, a, leaf, nil, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())
				return url.Values{"client_assertion_type": {oauth.AssertionType}, "client_assertion": {a}}
			},
		},
		{
			name: "certificate with chain",
			build: func(t *testing.T, v ccEnv, user string, _ *[]string) (*OnBehalfOfCredential, error) {
				return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, user, []*x509.Certificate{ca, leaf}, key,
					&OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions(), SendCertificateChain: true})
			},
			acr: "2",
			wantAuth: func(t *testing.T, v ccEnv, form url.Values, _ []string) url.Values {
				a := form.Get("client_assertion")
				ccCheckCertAssertion(t, a, leaf, []*x509.Certificate{leaf, ca}, ccApp, v.e.TokenURL(ccTenant), v.clk.Now())
				return url.Values{"client_assertion_type": {oauth.AssertionType}, "client_assertion": {a}}
			},
		},
		{
			name: "client assertions",
			build: func(t *testing.T, v ccEnv, user string, assertions *[]string) (*OnBehalfOfCredential, error) {
				var mu sync.Mutex
				return NewOnBehalfOfCredentialWithClientAssertions(ccTenant, ccApp, user, func(context.Context) (string, error) {
					a, err := oauth.BuildAssertion(oauth.AssertionParams{ClientID: ccApp, Audience: v.e.TokenURL(ccTenant), Key: key, Cert: leaf, Clock: v.clk})
					mu.Lock()
					*assertions = append(*assertions, a)
					mu.Unlock()
					return a, err
				}, &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions()})
			},
			acr: "2",
			wantAuth: func(t *testing.T, v ccEnv, form url.Values, assertions []string) url.Values {
				require.Len(t, assertions, 1, "the callback is called once per token request")
				return url.Values{"client_assertion_type": {oauth.AssertionType}, "client_assertion": {assertions[0]}}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			oboRegister(t, v, ccTenant, leaf)
			user := oboUserToken(t, v, oboMiddleURI+"/access_as_user")
			var assertions []string
			cred, err := tc.build(t, v, user, &assertions)
			require.NoError(t, err)

			ctx := context.Background()
			tok, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{oboDownstream}})
			require.NoError(t, err)
			c := v.claims(t, tok)
			assert.Equal(t, "https://graph.microsoft.com", c["aud"])
			assert.Equal(t, ccApp, c["appid"], "the middle tier asked")
			assert.Equal(t, ccTenant, c["tid"])
			assert.Equal(t, oboUserOID, c["oid"], "on behalf of the user")
			assert.Equal(t, oboUser, c["upn"])
			assert.Equal(t, "User.Read", c["scp"])
			assert.Equal(t, "user", c["idtyp"])
			assert.Equal(t, tc.acr, c["azpacr"])

			r := v.onlyRequest(t, ccTenant)
			want := url.Values{
				"grant_type":          {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
				"client_id":           {ccApp},
				"scope":               {oboDownstream},
				"assertion":           {user},
				"requested_token_use": {"on_behalf_of"},
			}
			for k, vs := range tc.wantAuth(t, v, r.Form, assertions) {
				want[k] = vs
			}
			assert.Equal(t, want, r.Form)

			again, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{oboDownstream}})
			require.NoError(t, err)
			assert.Equal(t, tok, again, "the cached token")
			assert.Len(t, v.e.Requests(), 1, "a cached token costs no request")
			if tc.name == "client assertions" {
				assert.Len(t, assertions, 1, "a cached token costs no assertion")
			}
		})
	}
}

// oboJWT is a JWT-shaped string with the given header and claims and a
// fake signature.
func oboJWT(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + enc([]byte("not-a-signature"))
}

func TestOnBehalfOfCredentialConstructorErrors(t *testing.T) {
	t.Parallel()
	leaf, _, key := ccCertificates(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	opts := &OnBehalfOfCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/", getenv: envMap()}}
	user := oboJWT(`{"alg":"RS256","typ":"JWT"}`, `{"aud":"`+oboMiddleURI+`"}`)
	cb := func(context.Context) (string, error) { return "a.b.c", nil }
	withSecret := func(tenant, clientID, assertion, secret string) func() (*OnBehalfOfCredential, error) {
		return func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithSecret(tenant, clientID, assertion, secret, opts)
		}
	}
	const notJWT = "Bearer super-secret-user-token"
	for _, tc := range []struct {
		name    string
		build   func() (*OnBehalfOfCredential, error)
		wantErr string
		hidden  string // must not appear in the error
	}{
		{"empty user assertion", withSecret(ccTenant, ccApp, "", oboSecret), "the user assertion is empty", ""},
		{"user assertion not a JWT", withSecret(ccTenant, ccApp, notJWT, oboSecret), "the user assertion is not a JWT", "super-secret-user-token"},
		{"user assertion of three garbage parts", withSecret(ccTenant, ccApp, "secret1.secret2.secret3", oboSecret), "the user assertion is not a JWT", "secret1"},
		{"user assertion header without alg", withSecret(ccTenant, ccApp, oboJWT(`{"typ":"JWT"}`, `{"sub":"secret-sub"}`), oboSecret), "the user assertion is not a JWT", "secret-sub"},
		{"user assertion with a Bearer prefix", withSecret(ccTenant, ccApp, "Bearer "+user, oboSecret), "without \"Bearer \"", user},
		{"empty user assertion with certificate", func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, "", []*x509.Certificate{leaf}, key, opts)
		}, "the user assertion is empty", ""},
		{"user assertion not a JWT with assertions", func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithClientAssertions(ccTenant, ccApp, notJWT, cb, opts)
		}, "the user assertion is not a JWT", "super-secret-user-token"},
		{"empty secret", withSecret(ccTenant, ccApp, user, ""), "the client secret is empty", ""},
		{"nil assertion callback", func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithClientAssertions(ccTenant, ccApp, user, nil, opts)
		}, "the assertion callback is nil", ""},
		{"no certificate", func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, user, nil, key, opts)
		}, "no certificate was given", ""},
		{"EC key", func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, user, []*x509.Certificate{leaf}, ecKey, opts)
		}, "RSA key", ""},
		{"key of another certificate", func() (*OnBehalfOfCredential, error) {
			return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, user, []*x509.Certificate{leaf}, ccCAKey(t), opts)
		}, "matches the private key", ""},
		{"empty tenant", withSecret("", ccApp, user, oboSecret), "the tenant ID is empty", oboSecret},
		{"empty client ID", withSecret(ccTenant, "", user, oboSecret), "the client ID is empty", oboSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cred, err := tc.build()
			require.Error(t, err)
			assert.Nil(t, cred)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), credNameOBO+": "), err.Error())
			ccNoSecrets(t, err.Error(), tc.hidden)
		})
	}
}

func TestOnBehalfOfCredentialRefusals(t *testing.T) {
	t.Parallel()
	leaf, ca, key := ccCertificates(t)
	other := ccCAKey(t)
	middleUser := func(t *testing.T, v ccEnv) string { return oboUserToken(t, v, oboMiddleURI+"/access_as_user") }
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, v ccEnv) (user string)
		build  func(v ccEnv, user string) (*OnBehalfOfCredential, error)
		status int
		code   string
	}{
		{
			name:   "wrong secret",
			setup:  middleUser,
			build:  oboSecretBuild(ccTenant, "wrong~secret"),
			status: http.StatusUnauthorized, code: "AADSTS7000215",
		},
		{
			name:  "certificate not registered",
			setup: middleUser,
			build: func(v ccEnv, user string) (*OnBehalfOfCredential, error) {
				return NewOnBehalfOfCredentialWithCertificate(ccTenant, ccApp, user, []*x509.Certificate{ca}, other, &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions()})
			},
			status: http.StatusUnauthorized, code: "AADSTS700027",
		},
		{
			name:   "user token for another API",
			setup:  func(t *testing.T, v ccEnv) string { return oboUserToken(t, v, "api://"+oboOtherAPI+"/access_as_user") },
			build:  oboSecretBuild(ccTenant, oboSecret),
			status: http.StatusBadRequest, code: "AADSTS50013",
		},
		{
			name:   "user token for Graph",
			setup:  func(t *testing.T, v ccEnv) string { return oboUserToken(t, v, oboDownstream) },
			build:  oboSecretBuild(ccTenant, oboSecret),
			status: http.StatusBadRequest, code: "AADSTS50013",
		},
		{
			name: "app token of another app",
			setup: func(t *testing.T, v ccEnv) string {
				return oboToken(t, v, url.Values{"grant_type": {"client_credentials"}, "client_id": {oboOtherAPI}, "client_secret": {oboSecret}, "scope": {oboMiddleURI + "/.default"}})
			},
			build:  oboSecretBuild(ccTenant, oboSecret),
			status: http.StatusBadRequest, code: "AADSTS50013",
		},
		{
			name: "token from another authority",
			setup: func(t *testing.T, v ccEnv) string {
				tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, jwtlib.MapClaims{
					"aud": oboMiddleURI, "iss": v.e.Issuer(ccTenant), "tid": ccTenant, "idtyp": "user", "upn": oboUser,
					"exp": v.clk.Now().Add(time.Hour).Unix(),
				})
				s, err := tok.SignedString(other)
				require.NoError(t, err)
				return s
			},
			build:  oboSecretBuild(ccTenant, oboSecret),
			status: http.StatusBadRequest, code: "AADSTS50013",
		},
		{
			name: "expired user token",
			setup: func(t *testing.T, v ccEnv) string {
				user := middleUser(t, v)
				v.clk.Advance(ccTokenLife + 10*time.Minute)
				return user
			},
			build:  oboSecretBuild(ccTenant, oboSecret),
			status: http.StatusBadRequest, code: "AADSTS500133",
		},
		{
			name:  "unknown app",
			setup: middleUser,
			build: func(v ccEnv, user string) (*OnBehalfOfCredential, error) {
				return NewOnBehalfOfCredentialWithCertificate(ccTenant, "no-such-app", user, []*x509.Certificate{leaf, ca}, key, &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions()})
			},
			status: http.StatusBadRequest, code: "AADSTS700016",
		},
		{
			name:   "unknown tenant",
			setup:  middleUser,
			build:  oboSecretBuild(ccOtherTenant, oboSecret),
			status: http.StatusBadRequest, code: "AADSTS90002",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			oboRegister(t, v, ccTenant, leaf)
			user := tc.setup(t, v)
			cred, err := tc.build(v, user)
			require.NoError(t, err)
			tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{oboDownstream}})
			assert.Empty(t, tok.Token)
			reqs := v.e.Requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			assert.Equal(t, user, r.Form.Get("assertion"))
			assert.Equal(t, "on_behalf_of", r.Form.Get("requested_token_use"))
			ccAuthFailed(t, err, credNameOBO, tc.status, tc.code, r)
			ccNoSecrets(t, err.Error(), user, oboSecret, "wrong~secret", r.Form.Get("client_assertion"))
		})
	}
}

// oboSecretBuild makes an OnBehalfOfCredential of ccApp in tenant that
// authenticates with secret.
func oboSecretBuild(tenant, secret string) func(v ccEnv, user string) (*OnBehalfOfCredential, error) {
	return func(v ccEnv, user string) (*OnBehalfOfCredential, error) {
		return NewOnBehalfOfCredentialWithSecret(tenant, ccApp, user, secret, &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions()})
	}
}

func TestOnBehalfOfCredentialGetTokenInput(t *testing.T) {
	t.Parallel()
	leaf, _, _ := ccCertificates(t)
	ccRunGetTokenInputChecks(t, credNameOBO, oboDownstream, func(t *testing.T, v ccEnv, allowed []string) TokenCredential {
		oboRegister(t, v, ccTenant, leaf)
		oboRegister(t, v, ccOtherTenant, leaf)
		user := oboUserToken(t, v, oboMiddleURI+"/access_as_user")
		o := &OnBehalfOfCredentialOptions{ClientOptions: v.clientOptions(), AdditionallyAllowedTenants: allowed}
		cred, err := NewOnBehalfOfCredentialWithSecret(ccTenant, ccApp, user, oboSecret, o)
		require.NoError(t, err)
		return cred
	})
}

func TestOnBehalfOfCredentialPrintsWithoutSecrets(t *testing.T) {
	t.Parallel()
	user := oboJWT(`{"alg":"RS256","typ":"JWT"}`, `{"upn":"`+oboUser+`"}`)
	cred, err := NewOnBehalfOfCredentialWithSecret(ccTenant, ccApp, user, oboSecret,
		&OnBehalfOfCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/", getenv: envMap()}})
	require.NoError(t, err)
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cred", "c", cred)
	for _, s := range []string{fmt.Sprint(cred), fmt.Sprintf("%+v", cred), fmt.Sprintf("%#v", cred), logs.String()} {
		assert.Contains(t, s, ccApp)
		assert.Contains(t, s, redacted)
		ccNoSecrets(t, s, oboSecret, user, strings.Split(user, ".")[1])
	}
}
