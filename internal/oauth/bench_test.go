package oauth

import (
	"testing"
)

func BenchmarkParseTokenResponse(b *testing.B) {
	body := []byte(`{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"refresh_in":1799,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJl"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTokenResponse(body, epoch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseError(b *testing.B) {
	body := []byte(entraError("invalid_client", 7000215, "Invalid client secret provided."))
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseError(401, body, "secret-value").Error()
	}
}

func BenchmarkBuildAssertion(b *testing.B) {
	c := newTestCert(b, "bench")
	p := AssertionParams{ClientID: "app", Audience: "https://login.microsoftonline.com/t/oauth2/v2.0/token", Key: c.key, Cert: c.cert}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildAssertion(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMergeClaims(b *testing.B) {
	claims := `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MergeClaims(claims, true); err != nil {
			b.Fatal(err)
		}
	}
}
