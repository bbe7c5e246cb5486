package azcred

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

const (
	upApp      = oboClientApp // a public client
	upUser     = oboUser
	upPassword = oboPassword
	upUserOID  = oboUserOID
	upScope    = "https://management.azure.com/user_impersonation"
)

// upRegister registers the public client app and the user in tenant.
func upRegister(t *testing.T, v ccEnv, tenant string) {
	t.Helper()
	require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: tenant, ClientID: upApp, PublicClient: true}))
	require.NoError(t, v.e.AddUser(emulator.User{TenantID: tenant, Username: upUser, Password: upPassword, ObjectID: upUserOID}))
}

func upCredential(t *testing.T, v ccEnv, tenant, username, password string) *UsernamePasswordCredential {
	t.Helper()
	cred, err := NewUsernamePasswordCredential(tenant, upApp, username, password, &UsernamePasswordCredentialOptions{ClientOptions: v.clientOptions()})
	require.NoError(t, err)
	return cred
}

func TestUsernamePasswordCredential(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		tenant     string // configured
		username   string
		wantPath   string // tenant segment of the token endpoint
		wantTenant string // tid of the token
	}{
		{"tenant", ccTenant, upUser, ccTenant, ccTenant},
		{"no tenant means organizations", "", upUser, "organizations", ccTenant},
		{"username in other case", ccTenant, strings.ToUpper(upUser), ccTenant, ccTenant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			upRegister(t, v, ccTenant)
			cred := upCredential(t, v, tc.tenant, tc.username, upPassword)

			ctx := context.Background()
			tok, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{upScope}})
			require.NoError(t, err)
			c := v.claims(t, tok)
			assert.Equal(t, "https://management.azure.com", c["aud"])
			assert.Equal(t, upApp, c["appid"])
			assert.Equal(t, tc.wantTenant, c["tid"])
			assert.Equal(t, upUserOID, c["oid"])
			assert.Equal(t, "user_impersonation", c["scp"])
			assert.Equal(t, upUser, c["upn"])
			assert.Equal(t, "user", c["idtyp"])
			assert.Equal(t, "0", c["azpacr"], "a public client sends no client credential")

			r := v.onlyRequest(t, tc.wantPath)
			assert.Contains(t, r.Path, "/"+tc.wantPath+"/")
			assert.Equal(t, url.Values{
				"grant_type": {"password"},
				"client_id":  {upApp},
				"scope":      {upScope},
				"username":   {tc.username},
				"password":   {upPassword},
			}, r.Form)

			again, err := cred.GetToken(ctx, TokenRequestOptions{Scopes: []string{upScope}})
			require.NoError(t, err)
			assert.Equal(t, tok, again, "the cached token")
			assert.Len(t, v.e.Requests(), 1, "a cached token costs no request")
		})
	}
}

func TestUsernamePasswordCredentialOrganizationsAllowsAnyTenant(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	upRegister(t, v, ccTenant)
	upRegister(t, v, ccOtherTenant)
	cred := upCredential(t, v, "", upUser, upPassword)
	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{upScope}, TenantID: ccOtherTenant})
	require.NoError(t, err, "a credential for organizations may be asked for any tenant")
	assert.Equal(t, ccOtherTenant, v.claims(t, tok)["tid"])
	v.onlyRequest(t, ccOtherTenant)
}

func TestUsernamePasswordCredentialRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		tenant             string
		username, password string
		register           func(t *testing.T, v ccEnv)
		wantPath           string
		status             int
		code               string
	}{
		{"wrong password", ccTenant, upUser, "Wrong-Horse-1", func(t *testing.T, v ccEnv) { upRegister(t, v, ccTenant) }, ccTenant, http.StatusBadRequest, "AADSTS50126"},
		{"wrong password via organizations", "", upUser, "Wrong-Horse-1", func(t *testing.T, v ccEnv) { upRegister(t, v, ccTenant) }, "organizations", http.StatusBadRequest, "AADSTS50126"},
		{"unknown user", ccTenant, "bob@contoso.example", "Wrong-Horse-1", func(t *testing.T, v ccEnv) { upRegister(t, v, ccTenant) }, ccTenant, http.StatusBadRequest, "AADSTS50034"},
		{"unknown app", ccTenant, upUser, upPassword, func(t *testing.T, v ccEnv) {
			require.NoError(t, v.e.AddUser(emulator.User{TenantID: ccTenant, Username: upUser, Password: upPassword}))
		}, ccTenant, http.StatusBadRequest, "AADSTS700016"},
		{"confidential app", ccTenant, upUser, upPassword, func(t *testing.T, v ccEnv) {
			require.NoError(t, v.e.RegisterApp(emulator.App{TenantID: ccTenant, ClientID: upApp, Secrets: []string{"s"}}))
			require.NoError(t, v.e.AddUser(emulator.User{TenantID: ccTenant, Username: upUser, Password: upPassword}))
		}, ccTenant, http.StatusUnauthorized, "AADSTS7000218"},
		{"unknown tenant", ccTenant, upUser, upPassword, func(t *testing.T, v ccEnv) { upRegister(t, v, ccOtherTenant) }, ccTenant, http.StatusBadRequest, "AADSTS90002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newCCEnv(t)
			tc.register(t, v)
			cred := upCredential(t, v, tc.tenant, tc.username, tc.password)
			tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{upScope}})
			assert.Empty(t, tok.Token)
			r := v.onlyRequest(t, tc.wantPath)
			assert.Equal(t, tc.password, r.Form.Get("password"))
			ccAuthFailed(t, err, credNameUsernamePassword, tc.status, tc.code, r)
			ccNoSecrets(t, err.Error(), tc.password)
		})
	}
}

func TestUsernamePasswordCredentialConstructorErrors(t *testing.T) {
	t.Parallel()
	opts := &UsernamePasswordCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://127.0.0.1:1/", getenv: envMap()}}
	for _, tc := range []struct {
		name                       string
		tenant, clientID, username string
		password                   string
		wantErr                    string
	}{
		{"empty username", ccTenant, upApp, "", upPassword, "the username is empty"},
		{"empty password", ccTenant, upApp, upUser, "", "the password is empty"},
		{"empty client ID", ccTenant, "", upUser, upPassword, "the client ID is empty"},
		{"tenant with a slash", "a/b", upApp, upUser, upPassword, "contains '/'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cred, err := NewUsernamePasswordCredential(tc.tenant, tc.clientID, tc.username, tc.password, opts)
			require.Error(t, err)
			assert.Nil(t, cred)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), credNameUsernamePassword+": "), err.Error())
			ccNoSecrets(t, err.Error(), tc.password)
		})
	}
}

func TestUsernamePasswordCredentialGetTokenInput(t *testing.T) {
	t.Parallel()
	ccRunGetTokenInputChecks(t, credNameUsernamePassword, upScope, func(t *testing.T, v ccEnv, allowed []string) TokenCredential {
		upRegister(t, v, ccTenant)
		upRegister(t, v, ccOtherTenant)
		o := &UsernamePasswordCredentialOptions{ClientOptions: v.clientOptions(), AdditionallyAllowedTenants: allowed}
		cred, err := NewUsernamePasswordCredential(ccTenant, upApp, upUser, upPassword, o)
		require.NoError(t, err)
		return cred
	})
}

func TestUsernamePasswordCredentialPrintsWithoutPassword(t *testing.T) {
	t.Parallel()
	v := newCCEnv(t)
	upRegister(t, v, ccTenant)
	var logs ccSyncBuffer
	o := &UsernamePasswordCredentialOptions{ClientOptions: v.clientOptions()}
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cred, err := NewUsernamePasswordCredential(ccTenant, upApp, upUser, upPassword, o)
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{upScope}})
	require.NoError(t, err)
	var printed bytes.Buffer
	slog.New(slog.NewTextHandler(&printed, nil)).Info("cred", "c", cred)
	for _, s := range []string{fmt.Sprint(cred), fmt.Sprintf("%+v", cred), fmt.Sprintf("%#v", cred), printed.String(), logs.String()} {
		ccNoSecrets(t, s, upPassword, tok.Token)
	}
	assert.Contains(t, fmt.Sprint(cred), upUser)
	assert.Contains(t, fmt.Sprint(cred), redacted)
	assert.Contains(t, logs.String(), "acquired a token")
}
