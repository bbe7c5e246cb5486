package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/azcred/azcred/internal/clock"
	"github.com/azcred/azcred/internal/httpx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, host, tenant, region string
		want, wantErr              string
	}{
		{"public cloud", "https://login.microsoftonline.com/", "t1", "", "https://login.microsoftonline.com/t1/oauth2/v2.0/token", ""},
		{"bare host", "login.microsoftonline.us", "contoso.onmicrosoft.com", "", "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token", ""},
		{"host with port", "https://127.0.0.1:8443", "t", "", "https://127.0.0.1:8443/t/oauth2/v2.0/token", ""},
		{"host with path", "https://login.example.com/prefix/", "t", "", "https://login.example.com/prefix/t/oauth2/v2.0/token", ""},
		{"regional public cloud", "https://login.microsoftonline.com/", "t", "westus2", "https://westus2.login.microsoft.com/t/oauth2/v2.0/token", ""},
		{"regional alias host", "https://login.windows.net", "t", "eastus", "https://eastus.login.microsoft.com/t/oauth2/v2.0/token", ""},
		{"region ignored off the public cloud", "https://login.chinacloudapi.cn/", "t", "chinaeast2", "https://login.chinacloudapi.cn/t/oauth2/v2.0/token", ""},
		{"region ignored for local hosts", "https://127.0.0.1:9", "t", "westus", "https://127.0.0.1:9/t/oauth2/v2.0/token", ""},
		{"adfs", "https://adfs.contoso.com/", "adfs", "", "https://adfs.contoso.com/adfs/oauth2/token", ""},
		{"ADFS any case, region ignored", "https://adfs.contoso.com", "ADFS", "westus", "https://adfs.contoso.com/adfs/oauth2/token", ""},
		{"http refused", "http://login.microsoftonline.com", "t", "", "", "must use https"},
		{"query refused", "https://login.microsoftonline.com/?x=1", "t", "", "", "no user information, query or fragment"},
		{"user info refused", "https://u:p@login.microsoftonline.com/", "t", "", "", "no user information"},
		{"empty host", "https://", "t", "", "", "must be an https URL"},
		{"bad tenant", "https://login.microsoftonline.com", "t/../x", "", "", "invalid tenant ID"},
		{"empty tenant", "https://login.microsoftonline.com", "", "", "", "invalid tenant ID"},
		{"dot-dot tenant", "https://login.microsoftonline.com/prefix", "..", "", "", "invalid tenant ID"},
		{"dot tenant", "https://login.microsoftonline.com", ".", "", "", "invalid tenant ID"},
		{"tenant with an empty label", "https://login.microsoftonline.com", "contoso..com", "", "", "invalid tenant ID"},
		{"option-like tenant", "https://login.microsoftonline.com", "-t", "", "", "invalid tenant ID"},
		{"bad region", "https://login.microsoftonline.com", "t", "West US", "", `invalid region "West US"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := TokenEndpoint(tc.host, tc.tenant, tc.region)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, strings.EqualFold(tc.tenant, "adfs"), IsADFS(got))
		})
	}
}

func TestResolveRegion(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "REGION_NAME" {
				return v
			}
			return "unexpected"
		}
	}
	cases := []struct {
		name, value, regionName, want string
	}{
		{"unset", "", "westus", ""},
		{"explicit", "eastus", "westus", "eastus"},
		{"auto detect", "TryAutoDetect", "westus2", "westus2"},
		{"auto detect any case", "tryautodetect", "centralus", "centralus"},
		{"auto detect normalises display names", "TryAutoDetect", "West US 2", "westus2"},
		{"auto detect without REGION_NAME", "TryAutoDetect", "", ""},
		{"auto detect with junk", "TryAutoDetect", "west/us", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, ResolveRegion(tc.value, env(tc.regionName)))
		})
	}
}

func TestMergeClaims(t *testing.T) {
	t.Parallel()
	cp1 := `{"access_token":{"xms_cc":{"values":["CP1"]}}}`
	cases := []struct {
		name, claims string
		cae          bool
		want         string
		wantErr      bool
	}{
		{"nothing", "", false, "", false},
		{"claims only, sent as given", `{"access_token": {"nbf": {"essential": true, "value": "1"}}}`, false, `{"access_token": {"nbf": {"essential": true, "value": "1"}}}`, false},
		{"cae only", "", true, cp1, false},
		{"cae merged deep", `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`, true,
			`{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"xms_cc":{"values":["CP1"]}}}`, false},
		{"cae with other top-level claims", `{"id_token":{"auth_time":{"essential":true}}}`, true,
			`{"access_token":{"xms_cc":{"values":["CP1"]}},"id_token":{"auth_time":{"essential":true}}}`, false},
		{"existing capabilities kept", `{"access_token":{"xms_cc":{"values":["cp2"]}}}`, true, `{"access_token":{"xms_cc":{"values":["cp2","CP1"]}}}`, false},
		{"CP1 not repeated", cp1, true, cp1, false},
		{"numbers kept exactly", `{"access_token":{"n":12345678901234567890}}`, true, `{"access_token":{"n":12345678901234567890,"xms_cc":{"values":["CP1"]}}}`, false},
		{"clash keeps the caller's", `{"access_token":"x"}`, true, `{"access_token":"x"}`, false},
		{"objects in values never compare", `{"access_token":{"xms_cc":{"values":[{"a":1}]}}}`, true, `{"access_token":{"xms_cc":{"values":[{"a":1},"CP1"]}}}`, false},
		{"not JSON", `{nope`, true, "", true},
		{"not an object", `["a"]`, false, "", true},
		{"null", `null`, true, "", true},
		{"trailing data", `{} {}`, true, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := MergeClaims(tc.claims, tc.cae)
			if tc.wantErr {
				assert.ErrorContains(t, err, "claims must be a JSON object")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseTokenResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		body    string
		check   func(t *testing.T, tok *Token)
		wantErr string
	}{
		{"number expires_in", `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"at"}`, func(t *testing.T, tok *Token) {
			assert.Equal(t, "at", tok.AccessToken)
			assert.Equal(t, "Bearer", tok.TokenType)
			assert.Equal(t, epoch.Add(3599*time.Second), tok.ExpiresOn)
			assert.Equal(t, epoch.Add(3599*time.Second), tok.ExtExpiresOn)
			assert.True(t, tok.RefreshOn.IsZero())
		}, ""},
		{"string expires_in and refresh_in", `{"token_type":"pop","expires_in":"86399","refresh_in":"43199","access_token":"at","refresh_token":"rt","id_token":"it","scope":"a b"}`, func(t *testing.T, tok *Token) {
			assert.Equal(t, "pop", tok.TokenType)
			assert.Equal(t, epoch.Add(86399*time.Second), tok.ExpiresOn)
			assert.Equal(t, epoch.Add(43199*time.Second), tok.RefreshOn)
			assert.True(t, tok.ExtExpiresOn.IsZero())
			assert.Equal(t, "rt", tok.RefreshToken)
			assert.Equal(t, "it", tok.IDToken)
			assert.Equal(t, "a b", tok.Scope)
		}, ""},
		{"fractional seconds truncated, token_type defaults", `{"expires_in":60.9,"access_token":"at"}`, func(t *testing.T, tok *Token) {
			assert.Equal(t, epoch.Add(time.Minute), tok.ExpiresOn)
			assert.Equal(t, "Bearer", tok.TokenType)
		}, ""},
		{"refresh_in beyond expiry ignored", `{"expires_in":60,"refresh_in":120,"access_token":"at"}`, func(t *testing.T, tok *Token) {
			assert.True(t, tok.RefreshOn.IsZero())
		}, ""},
		{"bad optional fields ignored", `{"expires_in":60,"refresh_in":"soon","ext_expires_in":true,"access_token":"at"}`, func(t *testing.T, tok *Token) {
			assert.True(t, tok.RefreshOn.IsZero())
			assert.True(t, tok.ExtExpiresOn.IsZero())
		}, ""},
		{"no access_token", `{"expires_in":60}`, nil, "no access_token"},
		{"no expires_in", `{"access_token":"SECRETTOKEN"}`, nil, "no valid expires_in"},
		{"zero expires_in", `{"access_token":"SECRETTOKEN","expires_in":0}`, nil, "no valid expires_in"},
		{"negative expires_in", `{"access_token":"SECRETTOKEN","expires_in":"-5"}`, nil, "no valid expires_in"},
		{"absurd expires_in", `{"access_token":"SECRETTOKEN","expires_in":1e300}`, nil, "no valid expires_in"},
		{"non-numeric expires_in", `{"access_token":"SECRETTOKEN","expires_in":"1h"}`, nil, "no valid expires_in"},
		{"not JSON", `<html>SECRETTOKEN</html>`, nil, "not valid JSON"},
		{"truncated", `{"access_token":"SECRETTOKEN","expi`, nil, "not valid JSON"},
		{"empty", ``, nil, "not valid JSON"},
		{"wrong type", `{"access_token":["SECRETTOKEN"],"expires_in":1}`, nil, "wrong type"},
		{"array", `["SECRETTOKEN"]`, nil, "wrong type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok, err := ParseTokenResponse([]byte(tc.body), epoch)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), "SECRETTOKEN")
				return
			}
			require.NoError(t, err)
			tc.check(t, tok)
			assert.NotContains(t, tok.String(), tok.AccessToken)
			assert.NotContains(t, fmt.Sprintf("%#v %v %+v", *tok, *tok, *tok), tok.AccessToken)
		})
	}
}

// entraError builds an error body the way Microsoft Entra ID shapes it.
func entraError(oauthCode string, code int, msg string) string {
	b, _ := json.Marshal(map[string]any{
		"error":             oauthCode,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-03-01 12:00:00Z", code, msg),
		"error_codes":       []int{code},
		"timestamp":         "2026-03-01 12:00:00Z",
		"trace_id":          "0000aaaa-11bb-cccc-dd22-eeeeee333333",
		"correlation_id":    "aaaa0000-bb11-2222-33cc-444444dddddd",
		"error_uri":         "https://login.microsoftonline.com/error?code=" + fmt.Sprint(code),
	})
	return string(b)
}

func TestParseErrorKnownAADSTSCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status         int
		oauthCode      string
		code           int
		msg            string
		wantDesc, hint string
	}{
		{401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'app'.",
			"Invalid client secret provided.", "use the secret's value (not its secret ID)"},
		{400, "unauthorized_client", 700016, "Application with identifier 'app' was not found in the directory 'tenant'.",
			"Application with identifier 'app' was not found", "The application (client) ID was not found in this tenant"},
		{400, "invalid_request", 90002, "Tenant 'nope' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
			"Tenant 'nope' not found.", "The tenant was not found: check the tenant ID"},
		{401, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key was not found.]",
			"Client assertion contains an invalid signature.", "certificate registered on the app matches the private key"},
		{400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope x is not valid.",
			"The provided value for the input parameter 'scope' is not valid.", `request "<resource>/.default"`},
		{400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.",
			"Error validating credentials due to invalid username or password.", "The username or password is wrong"},
		{400, "invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access 'x'.",
			"you must use multi-factor authentication", "use an interactive credential"},
		{401, "invalid_client", 7000222, "The provided client secret keys for app 'x' are expired.", "are expired", "add a new secret"},
		{401, "invalid_client", 700024, "Client assertion is not within its valid time range.", "valid time range", "check the machine's clock"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			t.Parallel()
			e := ParseError(tc.status, []byte(entraError(tc.oauthCode, tc.code, tc.msg)))
			aadsts := fmt.Sprintf("AADSTS%d", tc.code)
			assert.Equal(t, tc.status, e.StatusCode)
			assert.Equal(t, tc.oauthCode, e.Code)
			assert.Equal(t, aadsts, e.AADSTS)
			assert.Equal(t, []int{tc.code}, e.ErrorCodes)
			assert.Equal(t, "aaaa0000-bb11-2222-33cc-444444dddddd", e.CorrelationID)
			assert.Equal(t, "0000aaaa-11bb-cccc-dd22-eeeeee333333", e.TraceID)
			assert.Equal(t, "2026-03-01 12:00:00Z", e.Timestamp)
			assert.Equal(t, tc.msg, e.Description, "first line, prefix removed")
			msg := e.Error()
			assert.True(t, strings.HasPrefix(msg, aadsts+": "), msg)
			assert.Contains(t, msg, tc.wantDesc)
			assert.Contains(t, msg, fmt.Sprintf("(%s, HTTP %d, correlation ID aaaa0000-bb11-2222-33cc-444444dddddd, trace ID 0000aaaa-11bb-cccc-dd22-eeeeee333333, timestamp 2026-03-01 12:00:00Z).", tc.oauthCode, tc.status))
			assert.Contains(t, msg, tc.hint)
			assert.NotContains(t, msg, "\r")
			assert.NotContains(t, msg, "\n")
			assert.Equal(t, 1, strings.Count(msg, aadsts), "the code appears once")
		})
	}
}

func TestParseErrorOtherShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		status     int
		check      func(t *testing.T, e *Error)
	}{
		{"code only in the description", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`, 401, func(t *testing.T, e *Error) {
			assert.Equal(t, "AADSTS7000215", e.AADSTS)
			assert.Equal(t, "Invalid client secret provided.", e.Description)
			assert.Contains(t, e.Error(), "not its secret ID")
		}},
		{"no AADSTS code, hint from the OAuth code", `{"error":"interaction_required","error_description":"need a user"}`, 400, func(t *testing.T, e *Error) {
			assert.Equal(t, "", e.AADSTS)
			assert.Equal(t, "need a user (interaction_required, HTTP 400). Sign in interactively: use InteractiveBrowserCredential or DeviceCodeCredential.", e.Error())
		}},
		{"unknown code, no hint", `{"error":"x","error_description":"AADSTS1: odd","error_codes":[1],"timestamp":1700000000}`, 400, func(t *testing.T, e *Error) {
			assert.Equal(t, "AADSTS1: odd (x, HTTP 400, timestamp 1700000000)", e.Error())
		}},
		{"HTML from a proxy", "<html>\n<body>  502 Bad Gateway   </body></html>", 502, func(t *testing.T, e *Error) {
			assert.Equal(t, `the token endpoint answered 502 Bad Gateway with a body that is not Entra's error JSON: "<html> <body> 502 Bad Gateway </body></html>"; check the authority host, and any proxy between here and it`, e.Error())
		}},
		{"empty body", "", 503, func(t *testing.T, e *Error) {
			assert.Equal(t, "the token endpoint answered 503 Service Unavailable; check the authority host, and any proxy between here and it", e.Error())
		}},
		{"JSON without error fields", `{"message":"nope"}`, 404, func(t *testing.T, e *Error) {
			assert.Contains(t, e.Error(), `answered 404 Not Found with a body that is not Entra's error JSON: "{\"message\":\"nope\"}"`)
		}},
		{"long body cut", strings.Repeat("é", 2000), 500, func(t *testing.T, e *Error) {
			assert.LessOrEqual(t, len(e.Body), maxSnippet+len("…"))
			assert.True(t, strings.HasSuffix(e.Body, "…"))
			assert.Less(t, len(e.Error()), 400)
		}},
		{"invalid UTF-8", "\xff\xfe{", 500, func(t *testing.T, e *Error) {
			assert.Contains(t, e.Error(), "\uFFFD")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, ParseError(tc.status, []byte(tc.body)))
		})
	}
}

func TestParseErrorRedactsSecrets(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t+val/ue~&<x>"
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
	escaped, _ := json.Marshal(secret)
	bodies := []string{
		`{"error":"invalid_client","error_description":"AADSTS7000215: secret ` + string(escaped[1:len(escaped)-1]) + ` is wrong"}`,
		`{"error":"invalid_client","error_description":"AADSTS7000215: form was client_secret=` + url.QueryEscape(secret) + `"}`,
		`{"error":"invalid_client","error_description":"AADSTS7000215: unicode-escaped \u0073\u0033cr3t+val/ue~&\u003cx\u003e"}`,
		`{"error":"invalid_grant","error_description":"AADSTS50013: token ` + jwt + ` refused","correlation_id":"` + jwt + `"}`,
		`<html>you sent ` + secret + ` and ` + jwt + `</html>`,
		`<html>you sent ` + url.PathEscape(secret) + `</html>`,
	}
	for i, body := range bodies {
		e := ParseError(400, []byte(body), secret, "")
		msg := e.Error() + e.Body + e.Description + e.CorrelationID
		assert.NotContains(t, msg, secret, "body %d", i)
		assert.NotContains(t, msg, url.QueryEscape(secret), "body %d", i)
		assert.NotContains(t, msg, "s3cr3t", "body %d", i)
		assert.NotContains(t, msg, jwt, "body %d", i)
		assert.Contains(t, msg, "REDACTED", "body %d", i)
	}
}

// TestParseErrorRedactsEscapedEchoesInAnyJSON: a secret or an opaque token
// spelled entirely in JSON \u escapes, in JSON that is not Entra's error
// format, leaves no trace in the error, its Body included.
func TestParseErrorRedactsEscapedEchoesInAnyJSON(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t+val/ue~&<x>"
	opaque := "EwBwA8l6BAAUO9chh8cJscQLmU+LSWpbnr0vmwwAAfz7yqv0"
	esc := func(s string) string {
		var b strings.Builder
		for _, r := range s {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		return b.String()
	}
	for name, body := range map[string]string{
		"proxy echo":          `{"proxy":{"received":{"client_secret":"x","form":"` + esc("client_secret="+secret) + `"}}}`,
		"array":               `["` + esc(secret) + `"]`,
		"opaque token by key": `{"result":{"` + esc("refresh_token") + `":"` + esc(opaque) + `"}}`,
		"broken json":         `{"echo":"` + esc(secret) + `","access_token":"` + opaque,
	} {
		e := ParseError(502, []byte(body), secret)
		msg := e.Error() + e.Body + e.Description
		for _, leak := range []string{secret, esc(secret), url.QueryEscape(secret), "s3cr3t", opaque, esc(opaque)} {
			assert.NotContains(t, msg, leak, "%s: %s", name, msg)
		}
		assert.Contains(t, e.Body, "REDACTED", name)
	}
}

// recorder is a token endpoint that records the forms it receives and
// answers with the next canned response.
type recorder struct {
	mu      sync.Mutex
	forms   []url.Values
	headers []http.Header
	status  int
	body    string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(b))
	r.mu.Lock()
	r.forms = append(r.forms, form)
	r.headers = append(r.headers, req.Header.Clone())
	status, body := r.status, r.body
	r.mu.Unlock()
	if status == 0 {
		status = 200
		body = `{"token_type":"Bearer","expires_in":3599,"access_token":"AT"}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newRecordedClient(t *testing.T, r *recorder) (*Client, string) {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	fake := clock.NewFake(epoch)
	h := httpx.New(httpx.Options{Transport: srv.Client(), Clock: fake, Retry: httpx.Policy{MaxRetries: -1}})
	return NewClient(Options{HTTP: h, Clock: fake}), srv.URL + "/tenant/oauth2/v2.0/token"
}

func TestGrantsSendExactForms(t *testing.T) {
	t.Parallel()
	assertion := func(context.Context) (string, error) { return "signed.jwt.assertion", nil }
	cases := []struct {
		name string
		call func(c *Client, endpoint string) (*Token, error)
		want url.Values
	}{
		{"client credentials with secret", func(c *Client, ep string) (*Token, error) {
			return c.ClientCredentials(context.Background(), Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: "sec"}, Scopes: []string{"https://vault.azure.net/.default"}})
		}, url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"sec"}, "scope": {"https://vault.azure.net/.default"}}},
		{"client credentials with assertion and CAE", func(c *Client, ep string) (*Token, error) {
			return c.ClientCredentials(context.Background(), Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Assertion: assertion}, Scopes: []string{"api://x/.default"}, EnableCAE: true})
		}, url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_assertion_type": {AssertionType}, "client_assertion": {"signed.jwt.assertion"},
			"scope": {"api://x/.default"}, "claims": {`{"access_token":{"xms_cc":{"values":["CP1"]}}}`}}},
		{"on behalf of", func(c *Client, ep string) (*Token, error) {
			return c.OnBehalfOf(context.Background(), OnBehalfOfParams{Params: Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: "sec"}, Scopes: []string{"https://graph.microsoft.com/User.Read", "offline_access"}}, UserAssertion: "user.token.here"})
		}, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "client_id": {"app"}, "client_secret": {"sec"}, "assertion": {"user.token.here"},
			"requested_token_use": {"on_behalf_of"}, "scope": {"https://graph.microsoft.com/User.Read offline_access"}}},
		{"password, public client, claims", func(c *Client, ep string) (*Token, error) {
			return c.Password(context.Background(), PasswordParams{Params: Params{Endpoint: ep, ClientID: "app", Scopes: []string{"s/.default"}, Claims: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`}, Username: "u@contoso.com", Password: "pw"})
		}, url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"u@contoso.com"}, "password": {"pw"}, "scope": {"s/.default"},
			"claims": {`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`}}},
		{"password, confidential client", func(c *Client, ep string) (*Token, error) {
			return c.Password(context.Background(), PasswordParams{Params: Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: "sec"}, Scopes: []string{"s/.default"}}, Username: "u", Password: "pw"})
		}, url.Values{"grant_type": {"password"}, "client_id": {"app"}, "client_secret": {"sec"}, "username": {"u"}, "password": {"pw"}, "scope": {"s/.default"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			c, ep := newRecordedClient(t, r)
			tok, err := tc.call(c, ep)
			require.NoError(t, err)
			assert.Equal(t, "AT", tok.AccessToken)
			assert.Equal(t, epoch.Add(3599*time.Second), tok.ExpiresOn, "stamped with the injected clock")
			require.Len(t, r.forms, 1, "one request")
			assert.Equal(t, tc.want, r.forms[0])
			assert.Equal(t, "application/x-www-form-urlencoded; charset=utf-8", r.headers[0].Get("Content-Type"))
			assert.NotEmpty(t, r.headers[0].Get("client-request-id"))
		})
	}
}

func TestGrantsRejectBadParameters(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	c, ep := newRecordedClient(t, r)
	ctx := context.Background()
	ok := Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: "s"}, Scopes: []string{"x/.default"}}
	with := func(f func(p *Params)) Params { p := ok; f(&p); return p }
	failing := func(context.Context) (string, error) { return "", errors.New("token file missing") }
	empty := func(context.Context) (string, error) { return "", nil }
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"no endpoint", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Endpoint = "" }))
			return err
		}, "no token endpoint"},
		{"no client ID", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.ClientID = "" }))
			return err
		}, "client ID is required"},
		{"no scope", func() error { _, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Scopes = nil })); return err }, "at least one scope"},
		{"blank scope", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Scopes = []string{"a b"} }))
			return err
		}, `scope "a b" is not valid`},
		{"bad claims", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Claims = "nope" }))
			return err
		}, "claims must be a JSON object"},
		{"no client auth", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Auth = ClientAuth{} }))
			return err
		}, "client secret or a client assertion is required"},
		{"both client auths", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Auth.Assertion = failing }))
			return err
		}, "not both"},
		{"assertion source fails", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Auth = ClientAuth{Assertion: failing} }))
			return err
		}, "getting the client assertion: token file missing"},
		{"assertion source returns nothing", func() error {
			_, err := c.ClientCredentials(ctx, with(func(p *Params) { p.Auth = ClientAuth{Assertion: empty} }))
			return err
		}, "empty assertion"},
		{"OBO without user assertion", func() error { _, err := c.OnBehalfOf(ctx, OnBehalfOfParams{Params: ok}); return err }, "user assertion"},
		{"OBO without client auth", func() error {
			_, err := c.OnBehalfOf(ctx, OnBehalfOfParams{Params: with(func(p *Params) { p.Auth = ClientAuth{} }), UserAssertion: "u"})
			return err
		}, "client secret or a client assertion is required"},
		{"password without password", func() error { _, err := c.Password(ctx, PasswordParams{Params: ok, Username: "u"}); return err }, "username and a password"},
	}
	for _, tc := range cases {
		assert.ErrorContains(t, tc.call(), tc.want, tc.name)
	}
	assert.Empty(t, r.forms, "nothing was sent")
}

func TestGrantErrorsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	const (
		secret    = "CLIENT-SECRET-VALUE"
		password  = "USER-PASSWORD-VALUE"
		userToken = "USER-ASSERTION-VALUE"
		assertion = "CLIENT-ASSERTION-VALUE"
	)
	ctx := context.Background()
	calls := []func(c *Client, ep string) error{
		func(c *Client, ep string) error {
			_, err := c.ClientCredentials(ctx, Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: secret}, Scopes: []string{"x/.default"}})
			return err
		},
		func(c *Client, ep string) error {
			_, err := c.ClientCredentials(ctx, Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Assertion: func(context.Context) (string, error) { return assertion, nil }}, Scopes: []string{"x/.default"}})
			return err
		},
		func(c *Client, ep string) error {
			_, err := c.OnBehalfOf(ctx, OnBehalfOfParams{Params: Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: secret}, Scopes: []string{"x/.default"}}, UserAssertion: userToken})
			return err
		},
		func(c *Client, ep string) error {
			_, err := c.Password(ctx, PasswordParams{Params: Params{Endpoint: ep, ClientID: "app", Scopes: []string{"x/.default"}}, Username: "u", Password: password})
			return err
		},
	}
	// A misbehaving server that echoes the whole form back, in the
	// description and in the body.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		desc, _ := json.Marshal(fmt.Sprintf("AADSTS7000215: you sent %v\r\nTrace ID: x", form))
		w.WriteHeader(401)
		_, _ = fmt.Fprintf(w, `{"error":"invalid_client","error_description":%s,"error_codes":[7000215],"raw":%q}`, desc, string(b))
	})
	srv := httptest.NewServer(echo)
	defer srv.Close()
	c := NewClient(Options{HTTP: httpx.New(httpx.Options{Transport: srv.Client()})})
	for i, call := range calls {
		err := call(c, srv.URL+"/t/oauth2/v2.0/token")
		var oe *Error
		require.ErrorAs(t, err, &oe, "call %d", i)
		assert.Equal(t, "AADSTS7000215", oe.AADSTS)
		text := fmt.Sprintf("%v %+v %#v", err, *oe, *oe)
		for _, s := range []string{secret, password, userToken, assertion} {
			assert.NotContains(t, text, s, "call %d", i)
		}
		assert.Contains(t, text, "REDACTED")
	}
}

func TestGrantTransportErrorsPassThrough(t *testing.T) {
	t.Parallel()
	r := &recorder{status: 429, body: `{}`}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Retry-After", "3600")
		r.ServeHTTP(w, req)
	}))
	defer srv.Close()
	c := NewClient(Options{HTTP: httpx.New(httpx.Options{Transport: srv.Client()})})
	_, err := c.ClientCredentials(context.Background(), Params{Endpoint: srv.URL + "/t/oauth2/v2.0/token", ClientID: "app", Auth: ClientAuth{Secret: "s"}, Scopes: []string{"x/.default"}})
	var tooLong *httpx.RetryAfterTooLongError
	require.ErrorAs(t, err, &tooLong)
	assert.Equal(t, time.Hour, tooLong.Wait)

	r2 := &recorder{status: 200, body: `{"access_token":"SECRET-AT"}`}
	c2, ep := newRecordedClient(t, r2)
	_, err = c2.ClientCredentials(context.Background(), Params{Endpoint: ep, ClientID: "app", Auth: ClientAuth{Secret: "s"}, Scopes: []string{"x/.default"}})
	assert.ErrorContains(t, err, "no valid expires_in")
	assert.NotContains(t, err.Error(), "SECRET-AT")
}
