package azcred

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/internal/oauth"
)

// Known secrets fed through every failure path; none may appear in an error
// text, a log record at any level, or a printed credential.
const (
	leakSecret    = "LEAK-client-secret-7f3a9"
	leakPassword  = "LEAK-password-19d0c"
	leakAssertion = "eyJhbGciOiJub25lIn0.eyJMRUFLIjoiYXNzZXJ0aW9uIn0.LEAKsig"
	leakUserToken = "eyJhbGciOiJSUzI1NiJ9.eyJMRUFLIjoidXNlciJ9.LEAKusersig"
)

var leakNeedles = []string{leakSecret, leakPassword, leakAssertion, leakUserToken}

func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	certs, key, err := ParseCertificates(readCert(t, "pem-pkcs8.pem"), nil)
	require.NoError(t, err)

	// Each fault answers in a way that echoes what the client sent, as a
	// misbehaving proxy or server might.
	echo := func(status int, body string) emulator.Fault {
		return emulator.Fault{Status: status, Count: 10, Body: []byte(body)}
	}
	faults := map[string]*emulator.Fault{
		"the authority's own refusal": nil,
		"Entra error echoing secrets": ptr(echo(http.StatusBadRequest, fmt.Sprintf(
			`{"error":"invalid_client","error_description":"AADSTS7000215: got %s %s %s %s","error_codes":[7000215],"correlation_id":"c"}`,
			leakSecret, leakPassword, leakAssertion, leakUserToken))),
		"HTML echoing secrets":                       ptr(echo(http.StatusForbidden, "<html>client_secret="+leakSecret+"&password="+leakPassword+"&client_assertion="+leakAssertion+"&assertion="+leakUserToken+"</html>")),
		"5xx echoing secrets, retried to exhaustion": ptr(echo(http.StatusServiceUnavailable, "upstream said "+leakSecret+" "+leakPassword+" "+leakUserToken)),
		"200 with a body that is not a token":        ptr(echo(http.StatusOK, `{"access_token":"`+leakSecret+`","expires_in":"soon"}`)),
		"throttled beyond MaxRetryDelay":             {Status: http.StatusTooManyRequests, Count: 10, Header: http.Header{"Retry-After": {"86400"}}, Body: []byte(leakPassword)},
		"dropped connections":                        {Drop: true, Count: 10},
		"oversized body":                             {Oversized: true, Count: 10},
	}

	type made struct {
		cred    TokenCredential
		show    any      // the credential value to print
		secrets []string // what this credential holds and sends
	}
	builders := map[string]func(o ClientOptions) (made, error){
		"ClientSecretCredential": func(o ClientOptions) (made, error) {
			c, err := NewClientSecretCredential(testTenant, testClient, leakSecret, &ClientSecretCredentialOptions{ClientOptions: o})
			if err != nil {
				return made{}, err
			}
			return made{c, c, []string{leakSecret}}, nil
		},
		"ClientCertificateCredential": func(o ClientOptions) (made, error) {
			c, err := NewClientCertificateCredential(testTenant, testClient, certs, key, &ClientCertificateCredentialOptions{ClientOptions: o, SendCertificateChain: true})
			if err != nil {
				return made{}, err
			}
			return made{c, c, nil}, nil
		},
		"ClientAssertionCredential": func(o ClientOptions) (made, error) {
			c, err := NewClientAssertionCredential(testTenant, testClient, func(context.Context) (string, error) { return leakAssertion, nil }, &ClientAssertionCredentialOptions{ClientOptions: o})
			if err != nil {
				return made{}, err
			}
			return made{c, c, []string{leakAssertion}}, nil
		},
		"OnBehalfOfCredential (secret)": func(o ClientOptions) (made, error) {
			c, err := NewOnBehalfOfCredentialWithSecret(testTenant, testClient, leakUserToken, leakSecret, &OnBehalfOfCredentialOptions{ClientOptions: o})
			if err != nil {
				return made{}, err
			}
			return made{c, c, []string{leakUserToken, leakSecret}}, nil
		},
		"OnBehalfOfCredential (certificate)": func(o ClientOptions) (made, error) {
			c, err := NewOnBehalfOfCredentialWithCertificate(testTenant, testClient, leakUserToken, certs, key, &OnBehalfOfCredentialOptions{ClientOptions: o})
			if err != nil {
				return made{}, err
			}
			return made{c, c, []string{leakUserToken}}, nil
		},
		"OnBehalfOfCredential (assertion)": func(o ClientOptions) (made, error) {
			c, err := NewOnBehalfOfCredentialWithClientAssertions(testTenant, testClient, leakUserToken, func(context.Context) (string, error) { return leakAssertion, nil }, &OnBehalfOfCredentialOptions{ClientOptions: o})
			if err != nil {
				return made{}, err
			}
			return made{c, c, []string{leakUserToken, leakAssertion}}, nil
		},
		"UsernamePasswordCredential": func(o ClientOptions) (made, error) {
			c, err := NewUsernamePasswordCredential(testTenant, testClient, "user@contoso.com", leakPassword, &UsernamePasswordCredentialOptions{ClientOptions: o})
			if err != nil {
				return made{}, err
			}
			return made{c, c, []string{leakPassword}}, nil
		},
	}

	for credName, build := range builders {
		for faultName, fault := range faults {
			t.Run(credName+"/"+faultName, func(t *testing.T) {
				t.Parallel()
				e := emulator.NewT(t, nil)
				// Registered with other secrets and no certificate, so the
				// authority refuses every credential above.
				require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testClient, Secrets: []string{"another-secret"}}))
				if fault != nil {
					e.InjectFault(*fault)
				}
				var logs bytes.Buffer
				o := emulatorOptions(e)
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				o.Retry = RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: time.Second}
				m, err := build(o)
				require.NoError(t, err)

				_, err = m.cred.GetToken(context.Background(), armRequest)
				require.Error(t, err)
				var af *AuthenticationFailedError
				require.ErrorAs(t, err, &af)

				texts := []string{
					err.Error(), fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err),
					fmt.Sprintf("%+v", *af), af.Response, errors.Unwrap(err).Error(),
					fmt.Sprintf("%v|%+v|%#v|%s", m.show, m.show, m.show, m.show),
					logs.String(),
				}
				var oe *oauth.Error
				if errors.As(err, &oe) {
					texts = append(texts, oe.Body, oe.Description, fmt.Sprintf("%#v", *oe))
				}
				// The certificate credential's secret is its key: its
				// assertions are redacted like any JWT.
				for _, text := range texts {
					for _, needle := range m.secrets {
						assert.NotContains(t, text, needle)
					}
					if strings.Contains(credName, "Certificate") || strings.Contains(credName, "certificate") {
						assert.NotRegexp(t, `eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{20,}`, text, "no signed assertion")
					}
				}
				assert.NotEmpty(t, logs.String(), "the failure was logged")
			})
		}
	}
}

func TestSecretsNeverLeakFromConstructorsOrPrinting(t *testing.T) {
	t.Parallel()
	certs, key, err := ParseCertificates(readCert(t, "pem-pkcs8.pem"), nil)
	require.NoError(t, err)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := ClientOptions{getenv: envMap(), Logger: logger}

	// Constructor refusals whose other arguments are secrets.
	var errs []error
	_, err = NewClientSecretCredential("bad tenant", testClient, leakSecret, &ClientSecretCredentialOptions{ClientOptions: o})
	errs = append(errs, err)
	_, err = NewClientSecretCredential(testTenant, "", leakSecret, &ClientSecretCredentialOptions{ClientOptions: o})
	errs = append(errs, err)
	_, err = NewOnBehalfOfCredentialWithSecret(testTenant, testClient, "not-a-jwt-"+leakUserToken, leakSecret, &OnBehalfOfCredentialOptions{ClientOptions: o})
	errs = append(errs, err)
	_, err = NewUsernamePasswordCredential("a/b", testClient, "u", leakPassword, &UsernamePasswordCredentialOptions{ClientOptions: o})
	errs = append(errs, err)
	_, err = NewClientSecretCredential(testTenant, testClient, leakSecret, &ClientSecretCredentialOptions{ClientOptions: ClientOptions{AuthorityHost: "https://user:" + leakPassword + "@host/", getenv: envMap()}})
	errs = append(errs, err)
	_, _, err = ParseCertificates(readCert(t, "pem-encrypted.pem"), []byte(leakPassword))
	errs = append(errs, err)
	for _, err := range errs {
		require.Error(t, err)
		for _, needle := range leakNeedles {
			assert.NotContains(t, err.Error(), needle)
		}
	}

	// Printing every credential, as a pointer and as a value, and logging it.
	secret, _ := NewClientSecretCredential(testTenant, testClient, leakSecret, &ClientSecretCredentialOptions{ClientOptions: o})
	cert, _ := NewClientCertificateCredential(testTenant, testClient, certs, key, &ClientCertificateCredentialOptions{ClientOptions: o})
	obo, _ := NewOnBehalfOfCredentialWithSecret(testTenant, testClient, leakUserToken, leakSecret, &OnBehalfOfCredentialOptions{ClientOptions: o})
	ropc, _ := NewUsernamePasswordCredential(testTenant, testClient, "u", leakPassword, &UsernamePasswordCredentialOptions{ClientOptions: o})
	assertion, _ := NewClientAssertionCredential(testTenant, testClient, func(context.Context) (string, error) { return leakAssertion, nil }, &ClientAssertionCredentialOptions{ClientOptions: o})
	for _, c := range []any{secret, *secret, cert, *cert, obo, *obo, ropc, *ropc, assertion, *assertion} {
		require.NotNil(t, c)
		s := fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c)
		logger.Debug("credential", "c", c)
		for _, needle := range leakNeedles {
			assert.NotContains(t, s, needle)
		}
		assert.NotContains(t, s, "PRIVATE")
	}
	for _, needle := range leakNeedles {
		assert.NotContains(t, logs.String(), needle)
	}
	// The private key is not printed either.
	rk := key.(*rsa.PrivateKey)
	assert.NotContains(t, fmt.Sprintf("%+v", *cert), rk.D.String())
	assert.True(t, strings.Contains(cert.String(), "certificateSHA256"))
}

func TestTokensNeverLogged(t *testing.T) {
	t.Parallel()
	e := newSecretEmulator(t, nil)
	var logs bytes.Buffer
	c := newSecretCredential(t, e, testSecret, func(o *ClientSecretCredentialOptions) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	tok, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	require.NotEmpty(t, logs.String())
	assert.Contains(t, logs.String(), "acquired a token")
	assert.NotContains(t, logs.String(), tok.Token)
	assert.NotContains(t, logs.String(), strings.Split(tok.Token, ".")[2], "not even the signature")
	assert.NotContains(t, logs.String(), testSecret)
}

func ptr[T any](v T) *T { return &v }
