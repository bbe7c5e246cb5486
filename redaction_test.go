package azcred

import (
	"bytes"
	"context"
	"crypto/sha1" // #nosec G505 -- Service Fabric's thumbprint
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/exec"
)

// Secrets that must never be reported, whatever a server or a tool echoes.

// syncBuffer is a log sink that tests read while credentials write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonEscapedAll spells s entirely in JSON \u escapes.
func jsonEscapedAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// echoShapes are the ways an echoing endpoint writes back what it received:
// as JSON, as JSON whose strings are all \u escapes (not Entra's error
// format), and as plain text.
var echoShapes = map[string]func(dump string) (contentType, body string){
	"json": func(dump string) (string, string) {
		b, _ := json.Marshal(map[string]string{"echo": dump})
		return "application/json", string(b)
	},
	"json all escaped": func(dump string) (string, string) {
		return "application/json", `{"message":"bad request","echo":"` + jsonEscapedAll(dump) + `"}`
	},
	"text": func(dump string) (string, string) { return "text/plain", dump },
}

// requestDump is what an echoing endpoint saw: the request line and the
// headers that carry secrets first, so that no excerpt limit hides them.
func requestDump(r *http.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
	for _, h := range []string{"X-Identity-Header", "Secret", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	return b.String()
}

// assertNoSecret checks every way an error reaches a user.
func assertNoSecret(t *testing.T, err error, logs string, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	var af *AuthenticationFailedError
	var un *CredentialUnavailableError
	texts := map[string]string{
		"Error":  err.Error(),
		"%+v":    fmt.Sprintf("%+v", err),
		"%v":     fmt.Sprintf("%v", err),
		"%#v":    fmt.Sprintf("%#v", err),
		"logged": logs,
	}
	if errors.As(err, &af) {
		texts["Response"] = af.Response
		texts["Message"] = af.Message
		texts["%#v of the error"] = fmt.Sprintf("%#v", *af)
	}
	if errors.As(err, &un) {
		texts["Message"] = un.Message
	}
	for where, text := range texts {
		for _, s := range secrets {
			assert.NotContains(t, text, s, "%s: %s", where, text)
			assert.NotContains(t, text, jsonEscapedAll(s), "%s: %s", where, text)
		}
	}
}

func TestManagedIdentityEchoedSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	const (
		header = "idhdr7c1f9a3e5b24d0"
		mlSec  = "mlsec4b2e8f0a6d13c9"
		arcKey = "arckey9d0e1f2a3b4c5d6e7f"
	)
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "echo.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(arcKey), 0o600))

	type host struct {
		name    string
		tls     bool
		path    string
		env     func(url, thumb string) []string
		secrets []string
	}
	hosts := []host{
		{"App Service", false, "/msi/token", func(u, _ string) []string {
			return []string{EnvIdentityEndpoint, u, EnvIdentityHeader, header}
		}, []string{header}},
		{"Service Fabric", true, "/metadata/identity/oauth2/token", func(u, thumb string) []string {
			return []string{EnvIdentityEndpoint, u, EnvIdentityHeader, header, EnvIdentityServerThumbprint, thumb}
		}, []string{header}},
		{"Azure ML", false, "/MSI/token", func(u, _ string) []string {
			return []string{EnvMSIEndpoint, u, EnvMSISecret, mlSec}
		}, []string{mlSec}},
		{"Azure Arc", false, "/metadata/identity/oauth2/token", func(u, _ string) []string {
			return []string{EnvIdentityEndpoint, u, EnvIMDSEndpoint, u}
		}, []string{arcKey}},
	}
	for _, h := range hosts {
		for shape, write := range echoShapes {
			for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusInternalServerError} {
				t.Run(fmt.Sprintf("%s/%s/%d", h.name, shape, status), func(t *testing.T) {
					t.Parallel()
					handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if h.name == "Azure Arc" && r.Header.Get("Authorization") == "" {
							w.Header().Set("WWW-Authenticate", "Basic realm="+keyFile)
							w.WriteHeader(http.StatusUnauthorized)
							return
						}
						ct, body := write(requestDump(r))
						w.Header().Set("Content-Type", ct)
						w.WriteHeader(status)
						_, _ = w.Write([]byte(body))
					})
					var srv *httptest.Server
					thumb := ""
					if h.tls {
						srv = httptest.NewTLSServer(handler)
						sum := sha1.Sum(srv.Certificate().Raw) // #nosec G401
						thumb = hex.EncodeToString(sum[:])
					} else {
						srv = httptest.NewServer(handler)
					}
					t.Cleanup(srv.Close)
					var logs syncBuffer
					c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{
						ClientOptions: ClientOptions{
							getenv: envMap(h.env(srv.URL+h.path, thumb)...),
							Retry:  RetryOptions{MaxRetries: -1},
							Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
						},
						IMDSEndpoint: "http://127.0.0.1:9",
						himdsPath:    filepath.Join(t.TempDir(), "no-himds"),
						arcKeyDir:    keyDir,
					})
					require.NoError(t, err)
					_, err = c.GetToken(context.Background(), armRequest)
					assertNoSecret(t, err, logs.String(), h.secrets...)
					var af *AuthenticationFailedError
					reported := err.Error()
					if errors.As(err, &af) {
						reported += af.Response
					}
					assert.Contains(t, reported, "REDACTED", "the excerpt is still reported, redacted")
				})
			}
		}
	}
}

func TestManagedIdentityUnusableAnswerKeepsNoOpaqueToken(t *testing.T) {
	t.Parallel()
	const opaque = "EwBwA8l6BAAUO9chh8cJscQLmU+LSWpbnr0vmwwAAfz7yqv0"
	for name, body := range map[string]string{
		"broken json":           `{"token_type":"Bearer","access_token":"` + opaque + `","expires_on":`,
		"no expiry":             `{"token_type":"Bearer","access_token":"` + opaque + `"}`,
		"escaped, broken":       `{"access_token":"` + jsonEscapedAll(opaque) + `","expires_in":`,
		"not entra json, array": `[{"value":"` + jsonEscapedAll("Bearer "+opaque) + `"}]`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
			}))
			t.Cleanup(srv.Close)
			var logs syncBuffer
			c, err := NewManagedIdentityCredential(&ManagedIdentityCredentialOptions{
				ClientOptions: ClientOptions{
					getenv: envMap(),
					Retry:  RetryOptions{MaxRetries: -1},
					Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				},
				IMDSEndpoint: srv.URL,
				himdsPath:    filepath.Join(t.TempDir(), "no-himds"),
			})
			require.NoError(t, err)
			_, err = c.GetToken(context.Background(), armRequest)
			assertNoSecret(t, err, logs.String(), opaque)
		})
	}
}

func TestDevToolOutputTokensAreRedacted(t *testing.T) {
	t.Parallel()
	// Opaque tokens: personal-account and encrypted tokens are not JWTs.
	const (
		tokA = "EwA4A61DBAAUcSSzoTJJsy+XrnQXgAKO5cj4yc0AAeAkNkA"
		tokB = "M.C552_BAY.0.U.-CsIjJ4fpxEmz1HH5cWn9kOo0u1T8bc"
		tokC = "0.ASgAv4j5cvGGr0GRqy180BHbR1ikj-pM8CFHr_G2WxL"
		tokD = "1//0gKx7a3Rf8tq9CgYIARAAGBASNwF-L9IrP3uRkS2"
		tokE = "opaque-refresh-7f3e9b2c5a1d4e6f8a0b2c4d6e8f"
	)
	all := []string{tokA, tokB, tokC, tokD, tokE}
	cases := map[string]struct {
		stdout, stderr string
		code           int
	}{
		"json values on stderr":     {stderr: `ERROR: {"accessToken": "` + tokA + `", "refresh_token": "` + tokB + `", "id_token": "` + tokC + `", "token": "` + tokD + `", "client_secret": "` + tokE + `"}`, code: 1},
		"python dict on stderr":     {stderr: `ERROR: The command failed with an unexpected error: {'accessToken': '` + tokA + `', 'refreshToken': '` + tokB + `'}`, code: 1},
		"bearer on stderr":          {stderr: "DEBUG: Authorization: Bearer " + tokA + "\nERROR: AADSTS70043: The refresh token has expired", code: 1},
		"powershell table":          {stderr: "Get-AzAccessToken: failed\n\nToken     : " + tokA + "\nExpiresOn : 12/4/2026 1:00:00 AM +00:00\nType      : Bearer\n", code: 1},
		"form on stderr":            {stderr: "POST /token grant_type=refresh_token&refresh_token=" + tokB + "&client_id=x", code: 1},
		"escaped json":              {stderr: `{"error":"failed","` + jsonEscapedAll("accessToken") + `":"` + jsonEscapedAll(tokC) + `"}`, code: 1},
		"stdout token escaped":      {stdout: `{"accessToken":"` + tokC + `"}`, stderr: `{"error":"` + jsonEscapedAll("failed for "+tokC) + `"}`, code: 1},
		"stdout token repeated":     {stdout: `{"accessToken":"` + tokD + `","expiresOn":"2026-12-04 01:00:00.000000","token":"` + tokE + `"}`, stderr: "ERROR: could not save " + tokD + " and " + tokE + " to the cache", code: 1},
		"stdout table repeated":     {stdout: "Token     : " + tokA + "\nExpiresOn : 12/4/2026\n", stderr: "warning: " + tokA, code: 1},
		"bad answer quoting stdout": {stdout: `{"accessToken":"` + tokA + `","token":"` + tokA + `","Token":"` + tokA + `","expiresOn":"` + tokB + `","expires_on":"` + tokC + `","ExpiresOn":"` + tokD + `"}`},
	}
	for _, mk := range devToolMakers() {
		for name, tc := range cases {
			t.Run(mk.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				r := &recordingRunner{answer: func(c exec.Command) (exec.Result, error) {
					if tc.code == 0 {
						return exec.Result{Stdout: []byte(tc.stdout)}, nil
					}
					return exec.Result{}, &exec.ExitError{Name: c.Name, Code: tc.code, Stdout: []byte(tc.stdout), Stderr: []byte(tc.stderr)}
				}}
				var logs syncBuffer
				s := devToolSeams{runner: r, getenv: envMap()}
				cred, err := mk.make(s, true)
				require.NoError(t, err)
				mk.inner(cred).logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				_, err = cred.GetToken(context.Background(), armRequest)
				assertNoSecret(t, err, logs.String(), all...)
			})
		}
	}
}
