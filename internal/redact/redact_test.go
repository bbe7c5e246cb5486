package redact

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secret = "s3cr3t+/Value=&<x>"

// allEscaped spells s entirely in JSON \u escapes.
func allEscaped(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

func TestRedactorRemovesASecretInEveryEncoding(t *testing.T) {
	t.Parallel()
	r := New(secret)
	for name, text := range map[string]string{
		"raw":                 "the header was " + secret + " indeed",
		"query":               "secret=" + url.QueryEscape(secret),
		"query, lower hex":    "x=" + lowerHex(url.QueryEscape(secret)),
		"path":                "/echo/" + url.PathEscape(secret),
		"json":                `{"echo":"` + jsonInner(secret, true) + `"}`,
		"json without html":   `{"echo":"` + jsonInner(secret, false) + `"}`,
		"json, all escaped":   `{"headers":{"X":"` + allEscaped(secret) + `"}}`,
		"not json, escaped":   `echo: "` + allEscaped(secret) + `" (truncated`,
		"escaped in a string": `{"inner":"{\"h\":\"` + allEscaped(secret) + `\"}"}`,
	} {
		t.Run(name, func(t *testing.T) {
			out := r.Body([]byte(text), 4096)
			assert.NotContains(t, out, secret)
			assert.NotContains(t, out, lowerHex(url.QueryEscape(secret)))
			assert.NotContains(t, out, "s3cr3t")
			assert.Contains(t, out, Mark)
			assert.True(t, utf8.ValidString(out))
		})
	}
}

func TestRedactorRemovesTokenShapesWithoutSecrets(t *testing.T) {
	t.Parallel()
	const opaque = "M.C552_BAY.0.U.-CrTLRDSdKYKT0p8zg2Jy5OpAQc"
	jwt := "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for name, text := range map[string]string{
		"jwt":                  "got " + jwt + " back",
		"bearer":               "Authorization: Bearer " + opaque,
		"json access_token":    `{"access_token":"` + opaque + `","expires_in":"3599"}`,
		"json accessToken":     `{"accessToken": "` + opaque + `", "tokenType": "Bearer"}`,
		"json token":           `{"token":"` + opaque + `"}`,
		"json refresh_token":   `{"refresh_token":"` + opaque + `"}`,
		"json id_token":        `{"id_token":"` + opaque + `"}`,
		"json client_secret":   `{"client_secret":"` + opaque + `"}`,
		"broken json":          `{"token_type":"Bearer","access_token":"` + opaque,
		"broken json, escaped": `{"access_token":"` + allEscaped(opaque) + `","expires_on":`,
		"python dict":          `{'accessToken': '` + opaque + `', 'expiresOn': '2026-01-01'}`,
		"form":                 `grant_type=refresh_token&refresh_token=` + opaque + `&scope=x`,
		"compound colon":       `accessToken: ` + opaque,
		"powershell table":     "\nToken     : " + opaque + "\nExpiresOn : 12/4/2026 1:00:00 AM +00:00\nType      : Bearer\n",
		"nested json":          `{"error":{"details":{"refreshToken":"` + opaque + `"}}}`,
		"json in json":         `{"message":"{\"access_token\":\"` + opaque + `\"}"}`,
	} {
		t.Run(name, func(t *testing.T) {
			out := New().Body([]byte(text), 4096)
			assert.NotContains(t, out, opaque, out)
			assert.NotContains(t, out, jwt)
			assert.NotContains(t, out, "CrTLRDSdKYKT0p8zg2Jy5OpAQc")
			assert.Contains(t, out, Mark)
		})
	}
}

func TestRedactorKeepsWhatIsNotSecret(t *testing.T) {
	t.Parallel()
	body := `{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found.","token_type":"Bearer","expires_in":3599,"n":1.5e3,"ok":true,"z":null,"list":[1,"two",{"a":[]}]}`
	out := New("unrelated-secret").Body([]byte(body), 4096)
	assert.Equal(t, body, out, "a JSON body without secrets is written back as it was")
	assert.Equal(t, "the token request failed: connection refused", New().String("the token request failed: connection refused"))
}

func TestRedactorJSONValuesOfSecretKeysAreReplacedWhole(t *testing.T) {
	t.Parallel()
	out := New().Body([]byte(`{"Secret":"short","x-identity-header":"h","password":"","token_type":"Bearer","a":[{"refreshToken":"r"}]}`), 4096)
	assert.Equal(t, `{"Secret":"REDACTED","x-identity-header":"REDACTED","password":"","token_type":"Bearer","a":[{"refreshToken":"REDACTED"}]}`, out)
}

func TestRedactorSecretInsideALongerOne(t *testing.T) {
	t.Parallel()
	out := New("abc", "xxabcxx").String("v=xxabcxx; w=abc")
	assert.Equal(t, "v=REDACTED; w=REDACTED", out)
}

func TestRedactorNilAndEmpty(t *testing.T) {
	t.Parallel()
	var r *Redactor
	assert.Equal(t, "plain", r.String("plain"))
	assert.Equal(t, "plain", New("", "").String("plain"))
	assert.Equal(t, "a REDACTED", r.With("b").String("a b"))
	assert.Equal(t, "a b", r.String("a b"), "With leaves the receiver unchanged")
}

func TestRedactorError(t *testing.T) {
	t.Parallel()
	r := New(secret)
	assert.NoError(t, r.Error(nil))
	plain := errors.New("nothing to hide")
	assert.Same(t, plain, r.Error(plain))
	cause := fmt.Errorf("echoed %s: %w", secret, io.ErrUnexpectedEOF)
	err := r.Error(cause)
	assert.NotContains(t, err.Error(), secret)
	assert.NotContains(t, fmt.Sprintf("%+v", err), secret)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestTruncateCutsOnRuneBoundaries(t *testing.T) {
	t.Parallel()
	s := strings.Repeat("é€😀", 50)
	for n := 0; n <= len(s)+1; n++ {
		out := Truncate(s, n)
		require.True(t, utf8.ValidString(out), "n=%d", n)
		require.LessOrEqual(t, len(out), max(n, 0), "n=%d", n)
	}
	assert.Equal(t, "abc", Truncate("abc", 3))
	assert.Equal(t, "ab…", Truncate("abcdefgh", 5))
}

func TestBodyIsValidUTF8AndBounded(t *testing.T) {
	t.Parallel()
	body := append([]byte(`{"msg":"`), 0xff, 0xfe)
	body = append(body, []byte(strings.Repeat("€", 400)+`"}`)...)
	out := New().Body(body, 100)
	assert.True(t, utf8.ValidString(out))
	assert.LessOrEqual(t, len(out), 100)
}

func TestRedactionHappensBeforeTheCut(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 90) + secret
	out := New(secret).Body([]byte(body), 100)
	assert.NotContains(t, out, secret[:5], "a cut must not leave the start of a secret")
}

func TestHostileTextStaysLinear(t *testing.T) {
	t.Parallel()
	// A megabyte of keywords: each one must not rescan what came before.
	// (Quadratic work here would take minutes, not milliseconds.)
	for _, text := range []string{
		strings.Repeat("token", 200_000),
		strings.Repeat(`"token":"`, 100_000),
		strings.Repeat("bearer ", 150_000),
		strings.Repeat(`\u0074oken=`, 80_000),
	} {
		out := New("x1").Body([]byte(text), 1024)
		assert.LessOrEqual(t, len(out), 1024)
	}
}

func BenchmarkBodyEntraError(b *testing.B) {
	body := []byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: 0f3c Correlation ID: 7b2e Timestamp: 2026-12-04 00:00:00Z","error_codes":[7000215],"timestamp":"2026-12-04 00:00:00Z","trace_id":"0f3c","correlation_id":"7b2e"}`)
	r := New("client-secret-value", "assertion.value.here")
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Body(body, 1024)
	}
}
