package azcred

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/env"
)

// envMap is a fake environment for the Getenv seams.
func envMap(kv ...string) env.Getenv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) string { return m[name] }
}

func TestAuthorityHostResolution(t *testing.T) {
	t.Parallel()
	custom := Cloud{Name: "Stack", AuthorityHost: "https://login.stack.example/"}
	for _, tc := range []struct {
		name    string
		opts    *ClientOptions
		env     env.Getenv
		want    string
		wantErr []string // substrings of the error
	}{
		{name: "nil options: public cloud", want: "https://login.microsoftonline.com"},
		{name: "zero options: public cloud", opts: &ClientOptions{}, want: "https://login.microsoftonline.com"},
		{name: "cloud preset", opts: &ClientOptions{Cloud: AzureChina}, want: "https://login.chinacloudapi.cn"},
		{name: "government", opts: &ClientOptions{Cloud: AzureGovernment}, want: "https://login.microsoftonline.us"},
		{name: "custom cloud", opts: &ClientOptions{Cloud: custom}, want: "https://login.stack.example"},
		{name: "env beats cloud", opts: &ClientOptions{Cloud: AzureChina}, env: envMap(EnvAuthorityHost, "https://login.microsoftonline.us"), want: "https://login.microsoftonline.us"},
		{name: "option beats env", opts: &ClientOptions{AuthorityHost: "https://127.0.0.1:8443/"}, env: envMap(EnvAuthorityHost, "https://login.microsoftonline.us"), want: "https://127.0.0.1:8443"},
		{name: "trailing slash optional", opts: &ClientOptions{AuthorityHost: "https://login.microsoftonline.com"}, want: "https://login.microsoftonline.com"},
		{name: "upper-case scheme", opts: &ClientOptions{AuthorityHost: "HTTPS://login.microsoftonline.com/"}, want: "https://login.microsoftonline.com"},
		{name: "ipv6 loopback", opts: &ClientOptions{AuthorityHost: "https://[::1]:9000/"}, want: "https://[::1]:9000"},
		{name: "http refused", opts: &ClientOptions{AuthorityHost: "http://login.microsoftonline.com/"}, wantErr: []string{"AuthorityHost option", "must use https"}},
		{name: "http from env names the variable", env: envMap(EnvAuthorityHost, "http://localhost"), wantErr: []string{"AZURE_AUTHORITY_HOST environment variable", "https"}},
		{name: "path refused", opts: &ClientOptions{AuthorityHost: "https://host/path"}, wantErr: []string{`path "/path"`, "host only"}},
		{name: "tenant path refused", opts: &ClientOptions{AuthorityHost: "https://login.microsoftonline.com/contoso/"}, wantErr: []string{"path"}},
		{name: "user info refused, not echoed", opts: &ClientOptions{AuthorityHost: "https://user:hunter2@host/"}, wantErr: []string{"user information"}},
		{name: "query refused", opts: &ClientOptions{AuthorityHost: "https://host/?x=1"}, wantErr: []string{"query"}},
		{name: "empty query refused", opts: &ClientOptions{AuthorityHost: "https://host/?"}, wantErr: []string{"query"}},
		{name: "fragment refused", opts: &ClientOptions{AuthorityHost: "https://host/#frag"}, wantErr: []string{"fragment"}},
		{name: "no host", opts: &ClientOptions{AuthorityHost: "https:///"}, wantErr: []string{"no host"}},
		{name: "port without host", opts: &ClientOptions{AuthorityHost: "https://:443/"}, wantErr: []string{"no host"}},
		{name: "not a URL", opts: &ClientOptions{AuthorityHost: "https://host:port:x/%zz"}, wantErr: []string{"not a URL"}},
		{name: "opaque", opts: &ClientOptions{AuthorityHost: "https:login.microsoftonline.com"}, wantErr: []string{"not a URL"}},
		{name: "bare host name", opts: &ClientOptions{AuthorityHost: "login.microsoftonline.com"}, wantErr: []string{"https"}},
		{name: "cloud without host", opts: &ClientOptions{Cloud: Cloud{Name: "Broken", ResourceManagerAudience: "https://x"}}, wantErr: []string{`"Broken" has no AuthorityHost`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := tc.env
			if getenv == nil {
				getenv = envMap()
			}
			got, err := tc.opts.authorityHost(getenv)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				assert.Contains(t, err.Error(), "https://login.microsoftonline.com/", "the error shows the expected form")
				assert.NotContains(t, err.Error(), "hunter2")
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCloudDefaults(t *testing.T) {
	t.Parallel()
	var nilOpts *ClientOptions
	assert.Equal(t, AzurePublic, nilOpts.cloud())
	assert.Equal(t, AzureChina, (&ClientOptions{Cloud: AzureChina}).cloud())
	for _, c := range []Cloud{AzurePublic, AzureChina, AzureGovernment} {
		host, err := parseAuthorityHost("test", c.AuthorityHost)
		require.NoError(t, err, c.Name)
		assert.True(t, strings.HasPrefix(c.ResourceManagerAudience, "https://management."), c.Name)
		assert.NotEmpty(t, host)
	}
}

func TestTenantRule(t *testing.T) {
	t.Parallel()
	const (
		home  = "11111111-1111-1111-1111-111111111111"
		other = "22222222-2222-2222-2222-222222222222"
	)
	for _, tc := range []struct {
		name       string
		configured string
		allowed    []string
		env        env.Getenv
		requested  string
		want       string
		wantErr    bool
	}{
		{name: "no request: configured", configured: home, requested: "", want: home},
		{name: "no request, none configured: source default", configured: "", requested: "", want: ""},
		{name: "request equals configured", configured: home, requested: home, want: home},
		{name: "request equals configured, other case", configured: "Contoso.onmicrosoft.com", requested: "contoso.onmicrosoft.com", want: "contoso.onmicrosoft.com"},
		{name: "none configured: any tenant", configured: "", requested: other, want: other},
		{name: "organizations configured: any tenant", configured: "organizations", requested: other, want: other},
		{name: "common configured: any tenant", configured: "common", requested: other, want: other},
		{name: "other tenant refused", configured: home, requested: other, wantErr: true},
		{name: "listed tenant allowed", configured: home, allowed: []string{"x", other}, requested: other, want: other},
		{name: "listed tenant, case-insensitive", configured: home, allowed: []string{strings.ToUpper(other)}, requested: other, want: other},
		{name: "star allows any", configured: home, allowed: []string{"*"}, requested: other, want: other},
		{name: "empty option list does not read env", configured: home, allowed: []string{}, env: envMap(EnvAdditionallyAllowedTenants, "*"), requested: other, wantErr: true},
		{name: "env list when option unset", configured: home, env: envMap(EnvAdditionallyAllowedTenants, " x ; "+other), requested: other, want: other},
		{name: "env star", configured: home, env: envMap(EnvAdditionallyAllowedTenants, "*"), requested: other, want: other},
		{name: "disable multitenant: configured always", configured: home, allowed: []string{"*"}, env: envMap(EnvDisableMultitenantAuth, "true"), requested: other, want: home},
		{name: "disable multitenant, none configured: source default", configured: "", env: envMap(EnvDisableMultitenantAuth, "1"), requested: other, want: ""},
		{name: "malformed request refused even with star", configured: home, allowed: []string{"*"}, requested: "a/b", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := tc.env
			if getenv == nil {
				getenv = envMap()
			}
			p := newTenantPolicy("TestCredential", tc.configured, tc.allowed, getenv)
			got, err := p.resolve(tc.requested)
			if tc.wantErr {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), "TestCredential"), err.Error())
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("refusal says what to do", func(t *testing.T) {
		t.Parallel()
		p := newTenantPolicy("ClientSecretCredential", home, nil, envMap())
		_, err := p.resolve(other)
		require.Error(t, err)
		assert.Contains(t, err.Error(), other)
		assert.Contains(t, err.Error(), "AdditionallyAllowedTenants")
		assert.Contains(t, err.Error(), EnvAdditionallyAllowedTenants)
	})
}

func TestValidateTenantID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"72f988bf-86f1-41af-91ab-2d7cd011db47", "contoso.onmicrosoft.com", "organizations", "adfs", "A-b.9"} {
		assert.NoError(t, validateTenantID("C", ok), ok)
	}
	for _, bad := range []string{"", " ", "a b", "tenant/x", "tenant?x=1", "ténant", "a\x00b", "a\nb", "a#b", "..\\x", "a%2Fb", "日本"} {
		err := validateTenantID("SomeCredential", bad)
		require.Error(t, err, "%q", bad)
		assert.True(t, strings.HasPrefix(err.Error(), "SomeCredential: "), err.Error())
		assert.Contains(t, err.Error(), "tenant")
	}
}

func TestValidateScopes(t *testing.T) {
	t.Parallel()
	good := [][]string{
		{"https://management.azure.com/.default"},
		{"api://11111111-1111-1111-1111-111111111111/.default"},
		{"https://graph.microsoft.com/User.Read", "offline_access"},
		{"https://storage.azure.com/user_impersonation"},
	}
	for _, s := range good {
		assert.NoError(t, validateScopes("C", s), "%q", s)
	}
	bad := map[string][]string{
		"none":          nil,
		"empty list":    {},
		"empty scope":   {""},
		"empty second":  {"https://x/.default", ""},
		"space":         {"https://x/.default extra"},
		"tab":           {"https://x/\t.default"},
		"newline":       {"https://x/.default\n--tenant x"},
		"nul":           {"https://x/\x00"},
		"del":           {"https://x/\x7f"},
		"quote":         {`https://x/"`},
		"backtick":      {"https://x/`id`"},
		"pipe":          {"https://x/|sh"},
		"non-ascii":     {"https://x/é"},
		"leading space": {" https://x/.default"},
	}
	for name, s := range bad {
		err := validateScopes("SomeCredential", s)
		require.Error(t, err, name)
		assert.True(t, strings.HasPrefix(err.Error(), "SomeCredential: "), err.Error())
		assert.Contains(t, err.Error(), "https://management.azure.com/.default", "%s: the error gives an example", name)
	}
}

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	cause := errors.New("root cause")
	unavailable := NewCredentialUnavailableError("AzureCLICredential", "Azure CLI not found; install it and run `az login`", cause)
	failed := NewAuthenticationFailedError("ClientSecretCredential", "authentication failed", cause)
	failed.StatusCode, failed.ErrorCode = 401, "AADSTS7000215"
	required := NewAuthenticationRequiredError("InteractiveBrowserCredential", TokenRequestOptions{Scopes: []string{"s"}}, "")

	t.Run("messages", func(t *testing.T) {
		t.Parallel()
		assert.Equal(t, "AzureCLICredential: Azure CLI not found; install it and run `az login`: root cause", unavailable.Error())
		assert.Equal(t, "ClientSecretCredential: authentication failed: root cause", failed.Error())
		assert.Contains(t, required.Error(), "InteractiveBrowserCredential: ")
		assert.Contains(t, required.Error(), "Authenticate")
		assert.Equal(t, "X: only message", NewCredentialUnavailableError("X", "only message", nil).Error())
		assert.Equal(t, "X: root cause", NewAuthenticationFailedError("X", "", cause).Error())
	})

	for _, tc := range []struct {
		name                            string
		err                             error
		unavailable, failedAs, required bool
	}{
		{"unavailable", unavailable, true, false, false},
		{"failed", failed, false, true, false},
		{"required", required, true, false, true},
		{"wrapped unavailable", fmt.Errorf("context: %w", unavailable), true, false, false},
		{"wrapped failed", fmt.Errorf("context: %w", failed), false, true, false},
		{"wrapped required", fmt.Errorf("context: %w", required), true, false, true},
		{"plain", cause, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var u *CredentialUnavailableError
			var f *AuthenticationFailedError
			var r *AuthenticationRequiredError
			assert.Equal(t, tc.unavailable, errors.As(tc.err, &u), "as unavailable")
			assert.Equal(t, tc.failedAs, errors.As(tc.err, &f), "as failed")
			assert.Equal(t, tc.required, errors.As(tc.err, &r), "as required")
			assert.Equal(t, tc.unavailable, isUnavailable(tc.err))
			if tc.required {
				assert.Equal(t, "InteractiveBrowserCredential", u.Credential, "the unavailable view of a required error keeps its fields")
				assert.Equal(t, []string{"s"}, r.TokenRequestOptions.Scopes)
			}
			if tc.failedAs {
				assert.Equal(t, 401, f.StatusCode)
				assert.Equal(t, "AADSTS7000215", f.ErrorCode)
			}
		})
	}

	t.Run("causes unwrap", func(t *testing.T) {
		t.Parallel()
		assert.ErrorIs(t, unavailable, cause)
		assert.ErrorIs(t, failed, cause)
		assert.ErrorIs(t, NewCredentialUnavailableError("X", "m", context.DeadlineExceeded), context.DeadlineExceeded)
	})

	t.Run("required copies its scopes", func(t *testing.T) {
		t.Parallel()
		scopes := []string{"a"}
		e := NewAuthenticationRequiredError("X", TokenRequestOptions{Scopes: scopes}, "custom")
		scopes[0] = "changed"
		assert.Equal(t, []string{"a"}, e.TokenRequestOptions.Scopes)
		assert.Equal(t, "X: custom", e.Error())
	})

	t.Run("non-retriable marker for the Azure SDK", func(t *testing.T) {
		t.Parallel()
		type nonRetriable interface{ NonRetriable() }
		for _, err := range []error{unavailable, failed, required} {
			var nr nonRetriable
			assert.True(t, errors.As(err, &nr), "%T", err)
		}
	})
}

func TestAccessTokenPrintsRedacted(t *testing.T) {
	t.Parallel()
	const secret = "eyJhbGciOiJSUzI1NiJ9.secret-token-body.sig"
	tok := AccessToken{Token: secret, ExpiresOn: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	logger.Info("got", "token", tok)
	logger.Info("got", "ptr", &tok)
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%v %+v %#v", &tok, &tok, &tok),
		fmt.Sprintf("%v", []AccessToken{tok}), logs.String(),
	} {
		assert.NotContains(t, s, "secret-token-body")
	}
	assert.Contains(t, tok.String(), "REDACTED")
	assert.Contains(t, tok.String(), "2026-01-01T00:00:00Z")
	assert.Contains(t, logs.String(), "expiresOn")
	assert.Contains(t, AccessToken{}.String(), `Token: ""`)
}

func TestDescriptionAndScrub(t *testing.T) {
	t.Parallel()
	d := describe("ClientSecretCredential", "tenantID", "t1", "clientID", "c1", "clientSecret", redactIf("s3cr3t"))
	assert.Equal(t, "ClientSecretCredential{tenantID: t1, clientID: c1, clientSecret: REDACTED}", d.String())
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "cred", d)
	assert.Contains(t, logs.String(), "cred.credential=ClientSecretCredential")
	assert.Contains(t, logs.String(), "cred.clientSecret=REDACTED")
	assert.Equal(t, `""`, redactIf(""))

	assert.Equal(t, "token REDACTED and REDACTED", scrub("token abc and xyz", "abc", "", "xyz"))
	assert.Equal(t, "unchanged", scrub("unchanged"))
}

func TestTokenCredentialFunc(t *testing.T) {
	t.Parallel()
	var got TokenRequestOptions
	var cred TokenCredential = TokenCredentialFunc(func(_ context.Context, o TokenRequestOptions) (AccessToken, error) {
		got = o
		return AccessToken{Token: "t"}, nil
	})
	tok, err := cred.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"s"}, TenantID: "x", EnableCAE: true})
	require.NoError(t, err)
	assert.Equal(t, "t", tok.Token)
	assert.Equal(t, TokenRequestOptions{Scopes: []string{"s"}, TenantID: "x", EnableCAE: true}, got)
}

func TestLoggerDefaultDiscards(t *testing.T) {
	t.Parallel()
	var nilOpts *ClientOptions
	assert.False(t, nilOpts.logger().Enabled(context.Background(), slog.LevelError))
	l := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	assert.Same(t, l, (&ClientOptions{Logger: l}).logger())
}
