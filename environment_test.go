package azcred

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/jwtx"
)

const (
	envSecretValue = "env-secret-value-Q1"
	envPassword    = "env-password-Q2"
	envUser        = "alice@contoso.example"
	envCertPW      = "fixture-password"
)

// envCertPath is a certificate file without a password.
func envCertPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "certs", "pem-pkcs8.pem"))
	require.NoError(t, err)
	return p
}

// recordLogs returns a logger that writes JSON records, debug level up,
// into the returned buffer.
func recordLogs() (*slog.Logger, *ccSyncBuffer) {
	var b ccSyncBuffer
	return slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func TestEnvironmentCredentialConfiguration(t *testing.T) {
	t.Parallel()
	cert := envCertPath(t)
	const (
		tenant = "AZURE_TENANT_ID"
		client = "AZURE_CLIENT_ID"
		secret = "AZURE_CLIENT_SECRET"
		path   = "AZURE_CLIENT_CERTIFICATE_PATH"
		user   = "AZURE_USERNAME"
		pass   = "AZURE_PASSWORD"
	)
	for _, tc := range []struct {
		name    string
		env     []string
		using   string   // the inner credential, "" for an error
		ignored string   // the warning's "ignored" list
		errText []string // in the unavailable error
	}{
		{"client secret", []string{tenant, testTenant, client, testClient, secret, envSecretValue}, credNameSecret, "", nil},
		{"certificate", []string{tenant, testTenant, client, testClient, path, cert}, credNameCertificate, "", nil},
		{"username and password", []string{tenant, testTenant, client, testClient, user, envUser, pass, envPassword}, credNameUsernamePassword, "", nil},
		{"username and password without a tenant", []string{client, testClient, user, envUser, pass, envPassword}, credNameUsernamePassword, "", nil},
		{"secret wins over certificate", []string{tenant, testTenant, client, testClient, secret, envSecretValue, path, cert}, credNameSecret, path, nil},
		{"secret wins over username and password", []string{tenant, testTenant, client, testClient, secret, envSecretValue, user, envUser, pass, envPassword}, credNameSecret, user + ", " + pass, nil},
		{"certificate wins over username and password", []string{tenant, testTenant, client, testClient, path, cert, user, envUser, pass, envPassword}, credNameCertificate, user + ", " + pass, nil},
		{"secret wins over both", []string{tenant, testTenant, client, testClient, secret, envSecretValue, path, cert, user, envUser, pass, envPassword}, credNameSecret, path + ", " + user + ", " + pass, nil},
		{"nothing set", nil, "", "", []string{"configures no credential (set: none; missing: AZURE_TENANT_ID, AZURE_CLIENT_ID, one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_USERNAME and AZURE_PASSWORD)"}},
		{"only the IDs", []string{tenant, testTenant, client, testClient}, "", "", []string{"configures no credential (set: AZURE_TENANT_ID, AZURE_CLIENT_ID; missing: one of"}},
		{"only a certificate password", []string{tenant, testTenant, client, testClient, "AZURE_CLIENT_CERTIFICATE_PASSWORD", envCertPW}, "", "",
			[]string{"configures no credential (set: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PASSWORD; missing: one of"}},
		{"secret without tenant", []string{client, testClient, secret, envSecretValue}, "", "",
			[]string{"EnvironmentCredential: AZURE_CLIENT_SECRET selects a client secret, but AZURE_TENANT_ID is not set (set: AZURE_CLIENT_ID, AZURE_CLIENT_SECRET); set AZURE_TENANT_ID, or unset AZURE_CLIENT_SECRET"}},
		{"secret alone", []string{secret, envSecretValue}, "", "",
			[]string{"AZURE_CLIENT_SECRET selects a client secret, but AZURE_TENANT_ID, AZURE_CLIENT_ID are not set (set: AZURE_CLIENT_SECRET)"}},
		{"certificate without client", []string{tenant, testTenant, path, cert}, "", "",
			[]string{"AZURE_CLIENT_CERTIFICATE_PATH selects a client certificate, but AZURE_CLIENT_ID is not set (set: AZURE_TENANT_ID, AZURE_CLIENT_CERTIFICATE_PATH)"}},
		{"username without password", []string{tenant, testTenant, client, testClient, user, envUser}, "", "",
			[]string{"AZURE_USERNAME selects a username and password, but AZURE_PASSWORD is not set (set: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_USERNAME)"}},
		{"password without username", []string{client, testClient, pass, envPassword}, "", "",
			[]string{"AZURE_PASSWORD selects a username and password, but AZURE_USERNAME is not set (set: AZURE_CLIENT_ID, AZURE_PASSWORD)"}},
		{"incomplete first mode is not skipped for a complete later one", []string{client, testClient, secret, envSecretValue, user, envUser, pass, envPassword}, "", "",
			[]string{"AZURE_CLIENT_SECRET selects a client secret, but AZURE_TENANT_ID is not set"}},
		{"whitespace-only secret counts as unset", []string{tenant, testTenant, client, testClient, secret, " \r\n\t"}, "", "",
			[]string{"configures no credential (set: AZURE_TENANT_ID, AZURE_CLIENT_ID; missing: one of"}},
		{"whitespace-only password counts as unset", []string{client, testClient, user, envUser, pass, "\n"}, "", "",
			[]string{"AZURE_USERNAME selects a username and password, but AZURE_PASSWORD is not set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			logger, logs := recordLogs()
			c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(tc.env...), Logger: logger}})
			if tc.using == "" {
				require.Error(t, err)
				// Nothing selected is unavailable, for the chain; a method
				// selected but incomplete is a broken configuration.
				selected := !strings.Contains(tc.errText[0], "configures no credential")
				assert.Equal(t, !selected, isUnavailable(err), "%v", err)
				assert.True(t, strings.HasPrefix(err.Error(), "EnvironmentCredential: "), err.Error())
				for _, want := range tc.errText {
					assert.Contains(t, err.Error(), want)
				}
				for _, secretValue := range []string{envSecretValue, envPassword, envUser, cert, testTenant, testClient, envCertPW} {
					assert.NotContains(t, err.Error(), secretValue, "values are never printed")
				}
				return
			}
			require.NoError(t, err)
			assert.Contains(t, c.String(), "using: "+tc.using+"{")
			assert.Contains(t, logs.String(), `"msg":"EnvironmentCredential will authenticate with `+tc.using+`"`)
			if tc.ignored != "" {
				assert.Contains(t, logs.String(), `"level":"WARN"`)
				assert.Contains(t, logs.String(), `"ignored":"`+tc.ignored+`"`)
			} else {
				assert.NotContains(t, logs.String(), `"level":"WARN"`)
			}
			for _, secretValue := range []string{envSecretValue, envPassword} {
				assert.NotContains(t, fmt.Sprintf("%v %+v %#v %s", c, c, c, logs.String()), secretValue)
			}
		})
	}
}

// envEmulator is an emulator with an app for each mode of the environment.
func envEmulator(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	e := emulator.NewT(t, &emulator.Options{SigningKey: ccSigningKey()})
	certs, _, err := ParseCertificates(readCert(t, "pem-pkcs8.pem"), nil)
	require.NoError(t, err)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{envSecretValue}, Certificates: certs[:1]}))
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: ccPublicApp, PublicClient: true}))
	require.NoError(t, e.AddUser(emulator.User{TenantID: testTenant, Username: envUser, Password: envPassword + " "}))
	return e, envCertPath(t)
}

const ccPublicApp = "99999999-2222-3333-4444-555555555555"

func TestEnvironmentCredentialGetsTokens(t *testing.T) {
	t.Parallel()
	e, cert := envEmulator(t)
	for _, tc := range []struct {
		name     string
		env      []string
		formKey  string
		formWant string
	}{
		{"client secret, trimmed", []string{"AZURE_TENANT_ID", " " + testTenant + "\n", "AZURE_CLIENT_ID", testClient + "\r\n", "AZURE_CLIENT_SECRET", "\t" + envSecretValue + "\n"}, "client_secret", envSecretValue},
		{"certificate", []string{"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient, "AZURE_CLIENT_CERTIFICATE_PATH", cert + "\n"}, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		{"certificate with chain", []string{"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient, "AZURE_CLIENT_CERTIFICATE_PATH", cert, "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"}, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		// The password keeps its trailing space and loses its line break.
		{"username and password", []string{"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", ccPublicApp, "AZURE_USERNAME", envUser, "AZURE_PASSWORD", envPassword + " \n"}, "password", envPassword + " "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// AZURE_AUTHORITY_HOST from the environment points at the emulator.
			kv := append([]string{"AZURE_AUTHORITY_HOST", e.URL()}, tc.env...)
			c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: ClientOptions{Transport: e.Client(), getenv: envMap(kv...)}})
			require.NoError(t, err)
			tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.NoError(t, err)
			claims, err := e.VerifyAccessToken(tok.Token)
			require.NoError(t, err)
			assert.Equal(t, testTenant, claims["tid"])
			var found bool
			for _, r := range e.Requests() {
				if r.Form.Get(tc.formKey) == tc.formWant {
					found = true
				}
			}
			assert.True(t, found, "the emulator saw %s", tc.formKey)
			again, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.NoError(t, err)
			assert.Equal(t, tok.Token, again.Token, "one cache: the inner credential's")
		})
	}
}

func TestEnvironmentCredentialSendsChainWhenAsked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		chain bool
	}{{"1", true}, {"true", true}, {"TRUE", true}, {"", false}, {"0", false}, {"yes", false}} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			e, cert := envEmulator(t)
			c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: e.URL(), Transport: e.Client(), getenv: envMap(
				"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient, "AZURE_CLIENT_CERTIFICATE_PATH", cert, "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", tc.value)}})
			require.NoError(t, err)
			var gotChain bool
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
			require.NoError(t, err)
			for _, r := range e.Requests() {
				if a := r.Form.Get("client_assertion"); a != "" {
					var h map[string]any
					require.NoError(t, jwtx.DecodeHeader(a, &h))
					if _, ok := h["x5c"]; ok {
						gotChain = true
					}
				}
			}
			if tc.chain {
				assert.True(t, gotChain)
			} else {
				assert.False(t, gotChain)
			}
		})
	}
}

func TestEnvironmentCredentialTenants(t *testing.T) {
	t.Parallel()
	e, _ := envEmulator(t)
	const other = "00000000-1111-2222-3333-444444444444"
	base := []string{"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient, "AZURE_CLIENT_SECRET", envSecretValue}
	for _, tc := range []struct {
		name    string
		env     []string
		allowed []string
		ok      bool
	}{
		{"other tenant refused by default", base, nil, false},
		{"allowed by AZURE_ADDITIONALLY_ALLOWED_TENANTS", append([]string{"AZURE_ADDITIONALLY_ALLOWED_TENANTS", "x;" + other}, base...), nil, true},
		{"option overrides the variable", append([]string{"AZURE_ADDITIONALLY_ALLOWED_TENANTS", other}, base...), []string{"x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{
				ClientOptions: ClientOptions{AuthorityHost: e.URL(), Transport: e.Client(), getenv: envMap(tc.env...)}, AdditionallyAllowedTenants: tc.allowed,
			})
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}, TenantID: other})
			require.Error(t, err, "the emulator does not know the other tenant, or the rule refuses it")
			if tc.ok {
				assert.Contains(t, err.Error(), "AADSTS90002", "the request went to the other tenant")
			} else {
				assert.Contains(t, err.Error(), "AdditionallyAllowedTenants")
			}
		})
	}
}

func TestEnvironmentCredentialBadCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("A"), maxCertificateFileSize+1), 0o600))
	pfx, err := filepath.Abs(filepath.Join("testdata", "certs", "modern.pfx"))
	require.NoError(t, err)
	const wrong = "wrong-password-Z9"
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"directory", []string{"AZURE_CLIENT_CERTIFICATE_PATH", dir}, "is a directory"},
		{"missing file", []string{"AZURE_CLIENT_CERTIFICATE_PATH", filepath.Join(dir, "absent.pem")}, "cannot open the certificate file"},
		{"too large", []string{"AZURE_CLIENT_CERTIFICATE_PATH", big}, "larger than"},
		{"PFX with a wrong password", []string{"AZURE_CLIENT_CERTIFICATE_PATH", pfx, "AZURE_CLIENT_CERTIFICATE_PASSWORD", wrong}, "AZURE_CLIENT_CERTIFICATE_PASSWORD"},
		{"PFX without its password", []string{"AZURE_CLIENT_CERTIFICATE_PATH", pfx}, "cannot be used"},
		{"malformed tenant", []string{"AZURE_TENANT_ID", "bad tenant/", "AZURE_CLIENT_CERTIFICATE_PATH", pfx, "AZURE_CLIENT_CERTIFICATE_PASSWORD", envCertPW}, "tenant ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kv := append([]string{"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient}, tc.env...)
			_, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(kv...)}})
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "EnvironmentCredential: "), err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), wrong)
			assert.False(t, isUnavailable(err), "a complete but wrong configuration is not 'unavailable'")
		})
	}
	t.Run("PFX with its password", func(t *testing.T) {
		t.Parallel()
		_, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: ClientOptions{getenv: envMap(
			"AZURE_TENANT_ID", testTenant, "AZURE_CLIENT_ID", testClient, "AZURE_CLIENT_CERTIFICATE_PATH", pfx, "AZURE_CLIENT_CERTIFICATE_PASSWORD", envCertPW+"\r\n")}})
		require.NoError(t, err, "the password's line break is trimmed")
	})
}

// TestEnvironmentCredentialReadsTheProcessEnvironment proves that without
// the seam the real environment is read (so it cannot run in parallel).
func TestEnvironmentCredentialReadsTheProcessEnvironment(t *testing.T) {
	e, _ := envEmulator(t)
	for _, name := range []string{"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_PASSWORD", "AZURE_ADDITIONALLY_ALLOWED_TENANTS", "AZURE_REGIONAL_AUTHORITY_NAME", "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH"} {
		t.Setenv(name, "")
	}
	t.Setenv("AZURE_TENANT_ID", testTenant)
	t.Setenv("AZURE_CLIENT_ID", testClient)
	t.Setenv("AZURE_CLIENT_SECRET", envSecretValue+"\n")
	t.Setenv("AZURE_AUTHORITY_HOST", e.URL())
	c, err := NewEnvironmentCredential(&EnvironmentCredentialOptions{ClientOptions: ClientOptions{Transport: e.Client()}})
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{armScope}})
	require.NoError(t, err)
	require.Len(t, e.Requests(), 1)
	assert.Equal(t, envSecretValue, e.Requests()[0].Form.Get("client_secret"))

	t.Setenv("AZURE_CLIENT_SECRET", "")
	_, err = NewEnvironmentCredential(nil)
	var u *CredentialUnavailableError
	require.True(t, errors.As(err, &u))
	assert.Contains(t, err.Error(), "set: AZURE_TENANT_ID, AZURE_CLIENT_ID")
}
