package azcred

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/azcred/azcred/cache"
	"github.com/azcred/azcred/internal/redact"
)

// fuzzBudget bounds the work on one input: far more than any parse takes.
const fuzzBudget = 5 * time.Second

func checkFuzzBudget(t *testing.T, start time.Time) {
	t.Helper()
	if d := time.Since(start); d > fuzzBudget {
		t.Fatalf("one input took %v", d)
	}
}

// toolTokens returns the string values that stdout's JSON objects (the
// whole text, or any line of it) hold under key, compared as encoding/json
// does (case-insensitively): what a parser would take for the token.
func toolTokens(stdout []byte, key string) []string {
	var out []string
	for _, chunk := range append([][]byte{stdout}, bytes.Split(stdout, []byte("\n"))...) {
		var m map[string]json.RawMessage
		if json.Unmarshal(bytes.TrimSpace(chunk), &m) != nil {
			continue
		}
		for k, v := range m {
			var s string
			if strings.EqualFold(k, key) && json.Unmarshal(v, &s) == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// checkToolParse holds for every tool's stdout parser: a token comes out
// whole or not at all, and an error never repeats the token. Text the
// error quotes on purpose (an expiry field holding the same text) does not
// count, nor does text the message holds whatever the token, found by
// parsing again with the token replaced.
func checkToolParse(t *testing.T, stdout []byte, parse func([]byte) (cache.Token, error), tokenKey string, expiryKeys ...string) {
	t.Helper()
	start := time.Now()
	tok, err := parse(stdout)
	checkFuzzBudget(t, start)
	if err == nil {
		if tok.Value == "" || tok.ExpiresOn.IsZero() {
			t.Fatalf("incomplete token %v", tok)
		}
		return
	}
	if tok.Value != "" {
		t.Fatal("a token and an error")
	}
	quoted := ""
	for _, k := range expiryKeys {
		quoted += strings.Join(toolTokens(stdout, k), "\x00") + "\x00"
		var m map[string]json.RawMessage
		if json.Unmarshal(stdout, &m) == nil {
			for mk, v := range m {
				if strings.EqualFold(mk, k) {
					quoted += string(v) + "\x00"
				}
			}
		}
	}
	for _, secret := range toolTokens(stdout, tokenKey) {
		if len(secret) < 8 || strings.Contains(quoted, secret) || !strings.Contains(err.Error(), secret) {
			continue
		}
		raw, _ := json.Marshal(secret)
		_, other := parse(bytes.ReplaceAll(stdout, raw, []byte(`"T"`)))
		if other == nil || strings.Count(err.Error(), secret) > strings.Count(other.Error(), secret) {
			t.Fatalf("error %q repeats the token", err)
		}
	}
}

// toolSeeds returns the golden stdout files of a tool's testdata folder.
func toolSeeds(f *testing.F, dir string) [][]byte {
	names, err := filepath.Glob(filepath.Join("testdata", dir, "*.stdout"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no golden output in testdata/%s: %v", dir, err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzParseAzureCLIToken(f *testing.F) {
	for _, b := range toolSeeds(f, "azurecli") {
		f.Add(b)
	}
	for _, s := range []string{
		`{"accessToken":"opaque-token-value","expiresOn":"2023-02-14 16:04:05.123456"}`,
		`{"accessToken":"opaque-token-value","expires_on":"x"}`,
		`{"accessToken":"opaque-token-value","expires_on":-5}`,
		`{"accessToken":"opaque-token-value","expires_on":1e99}`,
		`{"accessToken":"","expires_on":1676387045}`,
		`{"accessToken":null}`, `[]`, `null`, ``, "WARNING: x\n{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stdout []byte) {
		parse := func(b []byte) (cache.Token, error) { return parseAzureCLIToken(b, time.UTC) }
		checkToolParse(t, stdout, parse, "accessToken", "expires_on", "expiresOn")
	})
}

func FuzzParseAzdToken(f *testing.F) {
	for _, b := range toolSeeds(f, "azd") {
		f.Add(b)
	}
	for _, s := range []string{
		`{"token":"opaque-token-value","expiresOn":"2024-01-02T03:04:05.123456789+01:00"}`,
		`{"token":"opaque-token-value","expiresOn":"opaque-token-value"}`,
		`{"token":"opaque-token-value","expiresOn":"tomorrow"}`,
		`{"token":"opaque-token-value"}`, `{"token":7}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stdout []byte) {
		checkToolParse(t, stdout, parseAzdToken, "token", "expiresOn")
	})
}

func FuzzParseAzurePowerShellToken(f *testing.F) {
	for _, b := range toolSeeds(f, "azurepowershell") {
		f.Add(b)
	}
	for _, s := range []string{
		"WARNING: upgrade\r\n{\"Token\":\"opaque-token-value\",\"ExpiresOn\":1700000000}\r\n",
		`{"Token":"opaque-token-value","ExpiresOn":0}`,
		`{"Token":"opaque-token-value","ExpiresOn":"1700000000"}`,
		`{"token":"opaque-token-value","expireson":1700000000}`,
		"{\"Token\":\"a\",\"ExpiresOn\":1}\n{\"Token\":\"\"}",
		`{"Token":"opaque-token-value"}`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stdout []byte) {
		checkToolParse(t, stdout, parseAzurePowerShellToken, "Token")
	})
}

// FuzzToolFailure reads a tool's stderr the way the credentials do: the
// text quoted is bounded, holds no JWT, and every reading of it is safe.
func FuzzToolFailure(f *testing.F) {
	for _, dir := range []string{"azurecli", "azd", "azurepowershell"} {
		names, err := filepath.Glob(filepath.Join("testdata", dir, "*.stderr"))
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("ERROR: AADSTS70043: expired eyJ0eXAiOiJKV1Qi.eyJhdWQiOiJ4In0.c2ln\n"))
	f.Add([]byte("\x1b[31mERROR: eyJ0eXAi\x1b[0m.eyJhdWQiOiJ4In0.c2ln\x1b[0m"))
	f.Add([]byte(`{"error":"AADSTS50076: Please run azd auth login"}` + "\n"))
	f.Add(bytes.Repeat([]byte("é"), maxToolText))
	f.Fuzz(func(t *testing.T, stderr []byte) {
		start := time.Now()
		text := toolText(stderr, redact.New())
		if len(text) > maxToolText {
			t.Fatalf("kept %d bytes of stderr", len(text))
		}
		if m := fuzzJWTShape.FindString(text); m != "" {
			t.Fatalf("a JWT-like string %q is left in %q", m, text)
		}
		errs := []error{
			azureCLIFailure(text, "az login", "sub"),
			azdFailure(azdMessage(text), "azd auth login", true),
			azurePowerShellFailure(text, "Connect-AzAccount"),
		}
		checkFuzzBudget(t, start)
		for _, err := range errs {
			if err != nil && fuzzJWTShape.MatchString(err.Error()) {
				t.Fatalf("error %q holds a JWT-like string", err)
			}
		}
	})
}

// FuzzClaimsChallenge parses WWW-Authenticate values as the bearer
// transport does: claims it finds are a JSON object that a token request
// can carry, with the CAE capability merged in.
func FuzzClaimsChallenge(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTcwMDAwMDAwMCJ9fX0="`,
		`Bearer error="insufficient_claims", claims=eyJhY2Nlc3NfdG9rZW4iOnt9fQ`,
		`Bearer error=insufficient_claims, claims="e30"` + "\n" + `Basic realm="x"`,
		`PoP nonce="n", Bearer error="insufficient_claims", claims="W10="`,
		`Bearer error="insufficient_claims"`,
		`Bearer error="invalid_token", error_description="The access token expired"`,
		`Negotiate abc==, Bearer realm="a\"b", error="insufficient_claims", claims="e30="`,
		`Bearer ,,, error="insufficient_claims",, claims="e30"`,
		`Bearer error="insufficient_claims", claims="-_-_"`,
		`Bearer realm="unterminated`, `=`, ``, `Bearer`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		start := time.Now()
		claims, found, err := claimsChallenge(strings.Split(header, "\n"))
		checkFuzzBudget(t, start)
		if err != nil || !found {
			if found || claims != "" {
				t.Fatalf("claims %q, found %v with error %v", claims, found, err)
			}
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(claims), &obj) != nil || obj == nil {
			t.Fatalf("claims %q are not a JSON object", claims)
		}
	})
}

// FuzzAuthenticationRecord reads records as Authenticate's callers store
// them: whatever reads back writes out and reads again to the same record.
func FuzzAuthenticationRecord(f *testing.F) {
	for _, s := range []string{
		`{"authority":"https://login.microsoftonline.com","clientId":"04b07795-8ddb-461a-bbee-02f9e1bf7b46","homeAccountId":"o.t","tenantId":"t","username":"u@contoso.com","version":"1.0"}`,
		`{"authority":"login.microsoftonline.com","homeAccountId":"x","version":"1.0"}`,
		`{"version":"2.0"}`, `{"version":1}`, `{"username":"\u00e9\ud800","version":"1.0"}`,
		`{"Version":"1.0","USERNAME":"a"}`, `{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a AuthenticationRecord
		if err := json.Unmarshal(b, &a); err != nil {
			if !a.isZero() {
				t.Fatalf("a refused record %q left %+v", b, a)
			}
			return
		}
		if a.Version != authenticationRecordVersion {
			t.Fatalf("read version %q", a.Version)
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var again AuthenticationRecord
		if err := json.Unmarshal(out, &again); err != nil || again != a {
			t.Fatalf("round trip of %+v: %+v, %v", a, again, err)
		}
	})
}

// fuzzJWTShape matches what a JWT left in tool text would look like.
var fuzzJWTShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)
