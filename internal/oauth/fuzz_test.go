package oauth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseTokenResponse(f *testing.F) {
	for _, seed := range []string{
		`{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"at"}`,
		`{"expires_in":"86399","refresh_in":"43199","access_token":"at","refresh_token":"rt","id_token":"it"}`,
		`{"expires_in":1e308,"access_token":"at"}`,
		`{"expires_in":-1,"access_token":"at"}`,
		`{"expires_in":"NaN","access_token":"at"}`,
		`{"access_token":null}`,
		`[]`, `null`, ``, `{`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := ParseTokenResponse(body, epoch)
		if err != nil {
			if tok != nil {
				t.Fatal("a token and an error")
			}
			// The body never leaks into the message.
			if len(body) > 12 && strings.Contains(err.Error(), string(body)) {
				t.Fatalf("error %q repeats the body", err)
			}
			return
		}
		if tok.AccessToken == "" || tok.TokenType == "" {
			t.Fatalf("incomplete token %v", tok)
		}
		if !tok.ExpiresOn.After(epoch) || tok.ExpiresOn.After(epoch.Add(maxLifetime)) {
			t.Fatalf("ExpiresOn %v out of range", tok.ExpiresOn)
		}
		if !tok.RefreshOn.IsZero() && (!tok.RefreshOn.After(epoch) || !tok.RefreshOn.Before(tok.ExpiresOn)) {
			t.Fatalf("RefreshOn %v not between now and ExpiresOn %v", tok.RefreshOn, tok.ExpiresOn)
		}
		if strings.Contains(tok.String(), tok.AccessToken) && len(tok.AccessToken) > 3 {
			t.Fatalf("String shows the token")
		}
	})
}

func FuzzParseError(f *testing.F) {
	const secret = "Fz-s3cr3t~V4lue"
	for _, seed := range []struct {
		status int
		body   string
	}{
		{401, entraError("invalid_client", 7000215, "Invalid client secret provided.")},
		{400, entraError("invalid_scope", 70011, "scope bad")},
		{400, `{"error":"invalid_grant","error_description":"AADSTS50126: bad ` + secret + `"}`},
		{400, `{"error":"x","error_description":"\u0046z-s3cr3t~V4lue"}`},
		{400, `{"error_codes":[1,"2",-3,1e99],"timestamp":12.5}`},
		{502, `<html>bad gateway ` + secret + `</html>`},
		{500, "\xff\xfe"},
		{500, ``},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := ParseError(status, body, secret)
		msg := e.Error()
		if msg == "" {
			t.Fatal("empty message")
		}
		for _, s := range []string{msg, e.Body, e.Description, e.Code, e.CorrelationID, e.TraceID, e.Timestamp} {
			if strings.Contains(s, secret) {
				t.Fatalf("secret leaked into %q", s)
			}
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in %q", s)
			}
		}
		if len(e.Body) > maxSnippet+len("…") {
			t.Fatalf("body of %d bytes kept", len(e.Body))
		}
		if e.AADSTS != "" && !strings.HasPrefix(msg, e.AADSTS+": ") {
			t.Fatalf("message %q does not lead with %s", msg, e.AADSTS)
		}
	})
}
