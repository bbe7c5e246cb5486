package msi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azcred/azcred/internal/env"
	"github.com/azcred/azcred/internal/httpx"
)

// fuzzBudget bounds the work on one input: far more than any parse takes.
const fuzzBudget = 5 * time.Second

func checkBudget(t *testing.T, start time.Time) {
	t.Helper()
	if d := time.Since(start); d > fuzzBudget {
		t.Fatalf("one input took %v", d)
	}
}

// stringValues returns the string values of body's top-level object, by key.
func stringValues(body []byte) map[string]string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(body), &raw) != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		}
	}
	return out
}

// FuzzParseToken reads every shape of managed-identity token answer: a
// token comes out whole or not at all, and an error never repeats the
// access token (only the expiry fields it complains about may be quoted).
func FuzzParseToken(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":"eyJ0eXAi.x.y","expires_on":"1700000000","resource":"https://management.azure.com","token_type":"Bearer","client_id":"c"}`,
		`{"access_token":"x","expires_on":1700000000}`,
		`{"access_token":"x","expires_on":1.7e9}`,
		`{"access_token":"x","expires_on":"11/14/2023 10:13:20 PM +00:00"}`,
		`{"access_token":"x","expires_on":"2023-11-14T22:13:20Z","refresh_in":"3600"}`,
		`{"access_token":"x","expires_in":"4400","not_before":"1699995600"}`,
		`{"access_token":"x","expires_in":1e400}`,
		`{"access_token":"x","expires_on":-1}`,
		`{"access_token":"x","expires_on":"99999999999999999999"}`,
		`{"access_token":"x"}`,
		`{"access_token":null,"expires_on":"1"}`,
		` {"access_token":"x","expires_on":"1"} `,
		`<html>502</html>`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	received := time.Date(2023, 11, 14, 21, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		start := time.Now()
		tok, err := ParseToken(body, received)
		checkBudget(t, start)
		if err == nil {
			if tok.AccessToken == "" || tok.ExpiresOn.IsZero() {
				t.Fatalf("incomplete token: %v", tok)
			}
			if len(tok.AccessToken) > 3 && strings.Contains(tok.String(), tok.AccessToken) {
				t.Fatal("String shows the token")
			}
			return
		}
		if tok.AccessToken != "" {
			t.Fatal("an error and a token")
		}
		vals := stringValues(body)
		at := vals["access_token"]
		if len(at) < 8 {
			return
		}
		for _, k := range []string{"expires_on", "expires_in", "refresh_in"} {
			if strings.Contains(vals[k], at) || strings.Contains(at, vals[k]) && vals[k] != "" {
				return // the field quoted holds the token text itself
			}
		}
		if strings.Contains(err.Error(), at) || strings.Contains(err.Error(), clip(at)) {
			t.Fatalf("error %q repeats the access token", err)
		}
	})
}

// fuzzDoer answers every request in process: first the Arc challenge when
// the source is Arc, then the fuzzed answer. Nothing leaves the process.
type fuzzDoer struct {
	challenge string // WWW-Authenticate of the Arc 401, "" for other sources
	status    int
	header    http.Header
	body      []byte
	sentKey   string // the Authorization the client sent after the challenge
	requests  int
}

// sentSecret is the Arc key the client sent after the challenge, "" when
// it sent none.
func (d *fuzzDoer) sentSecret() string {
	if d.sentKey == "" {
		return ""
	}
	return "fuzz-arc-key-content"
}

func (d *fuzzDoer) Do(r *http.Request) (*http.Response, error) {
	d.requests++
	h, status, body := d.header.Clone(), d.status, d.body
	if d.challenge != "" && r.Header.Get("Authorization") == "" {
		h, status, body = http.Header{"Www-Authenticate": {d.challenge}}, http.StatusUnauthorized, []byte(`{"error":"unauthorized"}`)
	} else if d.challenge != "" {
		d.sentKey = r.Header.Get("Authorization")
	}
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// fuzzHosts are the hosts whose whole answer the fuzzer drives, with the
// environment that selects each. Service Fabric pins its own TLS client,
// so it is not among them; its answer goes through ParseToken like all.
var fuzzHosts = []struct {
	source Source
	env    map[string]string
}{
	{IMDS, map[string]string{"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"}},
	{AppService, map[string]string{env.IdentityEndpoint: "http://127.0.0.1:9/msi/token", env.IdentityHeader: "fuzz-identity-header-secret"}},
	{CloudShell, map[string]string{env.MSIEndpoint: "http://127.0.0.1:9/oauth2/token"}},
	{AzureML, map[string]string{env.MSIEndpoint: "http://127.0.0.1:9/msi/token", env.MSISecret: "fuzz-msi-secret-value", env.DefaultIdentityClientID: "c"}},
	{AzureArc, map[string]string{env.IdentityEndpoint: "http://127.0.0.1:9/metadata/identity/oauth2/token", env.IMDSEndpoint: "http://127.0.0.1:9"}},
}

// FuzzHostAnswer sends a fuzzed answer (status, one header, body) to a
// client of each host and checks that it neither panics nor returns a
// token that is not one.
func FuzzHostAnswer(f *testing.F) {
	for i := range fuzzHosts {
		f.Add(uint8(i), uint16(200), "Content-Type: application/json", []byte(`{"access_token":"eyJ0.x.y","expires_on":"1700000000","resource":"https://management.azure.com","token_type":"Bearer"}`))
		f.Add(uint8(i), uint16(400), "", []byte(`{"error":"invalid_request","error_description":"Identity not found"}`))
		f.Add(uint8(i), uint16(404), "", []byte(`{"statusCode":404,"message":"Not found"}`))
		f.Add(uint8(i), uint16(429), "Retry-After: 1", []byte(`{"error":"throttled"}`))
		f.Add(uint8(i), uint16(500), "", []byte(`<html>500 internal error</html>`))
		// Endpoints that echo what they were sent, raw and JSON-escaped.
		f.Add(uint8(i), uint16(400), "", []byte(`{"error":"bad","echo":"fuzz-identity-header-secret fuzz-msi-secret-value fuzz-arc-key-content"}`))
		f.Add(uint8(i), uint16(200), "", []byte(`{"access_token":"opaque-token-value","expires_on":"bad","echo":"\u0066uzz-msi-secret-value"}`))
		f.Add(uint8(i), uint16(500), "", []byte(`fuzz-identity-header-secret; fuzz-arc-key-content`))
	}
	dir := f.TempDir()
	key := filepath.Join(dir, "agent.key")
	if err := os.WriteFile(key, []byte("fuzz-arc-key-content"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host uint8, status uint16, header string, body []byte) {
		h := fuzzHosts[int(host)%len(fuzzHosts)]
		if status < 100 || status > 599 {
			status = 200
		}
		d := &fuzzDoer{status: int(status), body: body, header: http.Header{}}
		if name, value, ok := strings.Cut(header, ":"); ok && name != "" {
			d.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		if h.source == AzureArc {
			d.challenge = "Basic realm=" + key
		}
		c, err := New(Config{
			Name:      "ManagedIdentityCredential",
			Getenv:    func(k string) string { return h.env[k] },
			Transport: d,
			Retry:     httpx.Policy{MaxRetries: -1},
			ArcKeyDir: dir,
			HimdsPath: filepath.Join(dir, "no-himds"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Source() != h.source {
			t.Fatalf("source %v, want %v", c.Source(), h.source)
		}
		start := time.Now()
		tok, err := c.GetToken(context.Background(), "https://management.azure.com")
		checkBudget(t, start)
		if d.requests > 2 {
			t.Fatalf("%d requests with retries off", d.requests)
		}
		if err == nil && (tok.AccessToken == "" || tok.ExpiresOn.IsZero()) {
			t.Fatalf("incomplete token: %v", tok)
		}
		if d.sentKey != "" && d.sentKey != "Basic fuzz-arc-key-content" {
			t.Fatalf("sent %q after the challenge", d.sentKey)
		}
		if err != nil {
			// Whatever the endpoint answered, the report never holds a
			// secret this host's request sent.
			text := err.Error() + fmt.Sprintf(" %+v %v", err, err)
			for _, secret := range []string{h.env[env.IdentityHeader], h.env[env.MSISecret], d.sentSecret()} {
				if secret != "" && strings.Contains(text, secret) {
					t.Fatalf("the error holds the secret %q: %s", secret, text)
				}
			}
		}
	})
}

// FuzzArcChallenge drives the Arc agent's 401 challenge: whatever the
// WWW-Authenticate header says, the only file the client may read and
// send is a .key file directly in the agent's folder.
func FuzzArcChallenge(f *testing.F) {
	dir := f.TempDir()
	outside := f.TempDir()
	for path, content := range map[string]string{
		filepath.Join(dir, "agent.key"):     "inside-key",
		filepath.Join(dir, "notes.txt"):     "inside-not-a-key",
		filepath.Join(outside, "other.key"): "outside-secret-key",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	for _, seed := range []string{
		"Basic realm=" + filepath.Join(dir, "agent.key"),
		`Basic realm="` + filepath.Join(dir, "agent.key") + `"`,
		"basic REALM=" + filepath.Join(dir, "agent.key"),
		"Basic realm=" + filepath.Join(dir, "notes.txt"),
		"Basic realm=" + filepath.Join(outside, "other.key"),
		"Basic realm=" + filepath.Join(dir, "..", filepath.Base(outside), "other.key"),
		"Basic realm=" + dir + "/./agent.key",
		"Basic realm=agent.key",
		"Bearer realm=" + filepath.Join(dir, "agent.key"),
		"Basic realm=",
		"Basic",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, challenge string) {
		if strings.ContainsAny(challenge, "\r\n\x00") {
			return // not a header value a server can send
		}
		d := &fuzzDoer{challenge: challenge, status: 200, body: []byte(`{"access_token":"x","expires_on":"1700000000"}`)}
		c, err := New(Config{
			Name: "ManagedIdentityCredential",
			Getenv: func(k string) string {
				return map[string]string{env.IdentityEndpoint: "http://127.0.0.1:9/metadata/identity/oauth2/token", env.IMDSEndpoint: "http://127.0.0.1:9"}[k]
			},
			Transport: d,
			Retry:     httpx.Policy{MaxRetries: -1},
			ArcKeyDir: dir,
			HimdsPath: filepath.Join(dir, "no-himds"),
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.GetToken(context.Background(), "https://management.azure.com")
		checkBudget(t, start)
		if d.sentKey != "" && d.sentKey != "Basic inside-key" {
			t.Fatalf("challenge %q made the client send %q", challenge, d.sentKey)
		}
		if err != nil {
			for _, s := range []string{"inside-key", "inside-not-a-key", "outside-secret-key"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q holds a key file's content", err)
				}
			}
		}
	})
}
