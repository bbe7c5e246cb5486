package azcred

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
	"github.com/azcred/azcred/cache"
)

const (
	testPublicClient = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	testUser         = "ada@contoso.com"
)

// newPublicEmulator starts an emulator with a public client app that
// accepts loopback redirects and a user who signs in.
func newPublicEmulator(t testing.TB, opts *emulator.Options) *emulator.Emulator {
	t.Helper()
	e := emulator.NewT(t, opts)
	require.NoError(t, e.RegisterApp(emulator.App{TenantID: testTenant, ClientID: testPublicClient, PublicClient: true, RedirectURIs: []string{"http://localhost"}}))
	require.NoError(t, e.AddUser(emulator.User{TenantID: testTenant, Username: testUser, Password: "unused-Pa55"}))
	require.NoError(t, e.SetSignIn(emulator.SignIn{TenantID: testTenant, Username: testUser}))
	return e
}

// grants returns the grant_type of every token request the emulator saw,
// and how many authorize and devicecode requests it saw.
func grants(e *emulator.Emulator) (out []string, authorize, devicecode int) {
	for _, r := range e.Requests() {
		switch {
		case strings.HasSuffix(r.Path, "/token"):
			out = append(out, r.Form.Get("grant_type"))
		case strings.HasSuffix(r.Path, "/authorize"):
			authorize++
		case strings.HasSuffix(r.Path, "/devicecode"):
			devicecode++
		}
	}
	return out, authorize, devicecode
}

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
var formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)">`)

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// delivery is one response of the loopback listener to the fake browser.
type delivery struct {
	status int
	body   string
	err    error
}

// fakeBrowser acts as the browser: it loads the authorization URL from the
// emulator and submits the form_post page to the loopback listener, as
// many times as deliveries says, optionally with another state first.
type fakeBrowser struct {
	e          *emulator.Emulator
	deliveries int
	wrongState bool
	ignore     bool   // never answer (a person who walks away)
	consent    string // the button pressed on a consent page

	mu        sync.Mutex
	opened    []string
	responses []delivery
	redirect  string
}

func (b *fakeBrowser) open(ctx context.Context, u string) error {
	b.mu.Lock()
	b.opened = append(b.opened, u)
	b.mu.Unlock()
	if b.ignore {
		return nil
	}
	resp, err := b.e.Client().Get(u)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action, form, err := pageForm(string(page))
	if err != nil {
		return err
	}
	if strings.HasPrefix(action, "/") { // the consent page
		form.Set("consent", b.consent)
		resp, err := b.e.Client().PostForm(b.e.URL()+action, form)
		if err != nil {
			return err
		}
		page, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if action, form, err = pageForm(string(page)); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.redirect = action
	b.mu.Unlock()
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(v url.Values) {
		resp, err := plain.PostForm(action, v)
		d := delivery{err: err}
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			d.status, d.body = resp.StatusCode, string(body)
		}
		b.mu.Lock()
		b.responses = append(b.responses, d)
		b.mu.Unlock()
	}
	if b.wrongState {
		bad := url.Values{"code": form["code"], "state": {"forged-state"}}
		post(bad)
	}
	n := max(b.deliveries, 1)
	for range n {
		post(form)
	}
	return nil
}

// pageForm returns the action and hidden fields of an emulator page's form.
func pageForm(page string) (string, url.Values, error) {
	m := formActionRE.FindStringSubmatch(page)
	if m == nil {
		return "", nil, errors.New("the page has no form: " + page)
	}
	form := url.Values{}
	for _, f := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Add(f[1], htmlUnescape(f[2]))
	}
	return htmlUnescape(m[1]), form, nil
}

func (b *fakeBrowser) results() []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]delivery(nil), b.responses...)
}

func TestAuthenticationRecordJSON(t *testing.T) {
	t.Parallel()
	rec := AuthenticationRecord{Authority: "https://login.microsoftonline.com", ClientID: testPublicClient, HomeAccountID: "oid.tid", TenantID: testTenant, Username: testUser}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	assert.JSONEq(t, `{"authority":"https://login.microsoftonline.com","clientId":"`+testPublicClient+`","homeAccountId":"oid.tid","tenantId":"`+testTenant+`","username":"`+testUser+`","version":"1.0"}`, string(b))
	var back AuthenticationRecord
	require.NoError(t, json.Unmarshal(b, &back))
	rec.Version = "1.0"
	assert.Equal(t, rec, back)
	for _, bad := range []string{`{"version":"2.0","clientId":"x"}`, `{"clientId":"x"}`} {
		err := json.Unmarshal([]byte(bad), &back)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "only \"1.0\"")
	}
}

func TestPublicCredentialsConstructorChecks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		make func() error
		want string
	}{
		{"record of another client", func() error {
			_, err := NewDeviceCodeCredential(&DeviceCodeCredentialOptions{AuthenticationRecord: AuthenticationRecord{ClientID: "other", HomeAccountID: "a.b", Version: "1.0"}})
			return err
		}, "AuthenticationRecord is for client"},
		{"record without version", func() error {
			_, err := NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{AuthenticationRecord: AuthenticationRecord{ClientID: developerSignOnClientID}})
			return err
		}, "version"},
		{"bad redirect URL", func() error {
			_, err := NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{RedirectURL: "https://example.com/cb"})
			return err
		}, "RedirectURL"},
		{"negative timeout", func() error {
			_, err := NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{Timeout: -time.Second})
			return err
		}, "Timeout"},
		{"bad tenant", func() error {
			_, err := NewDeviceCodeCredential(&DeviceCodeCredentialOptions{TenantID: "a b"})
			return err
		}, "tenant ID"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	c, err := NewInteractiveBrowserCredential(nil)
	require.NoError(t, err)
	assert.Equal(t, "InteractiveBrowserCredential{tenantID: organizations, clientID: "+developerSignOnClientID+", username: }", c.String())
}

func TestAuthenticateDefaultScopeAndCustomCloud(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	b := &fakeBrowser{e: e}
	o := &InteractiveBrowserCredentialOptions{ClientOptions: emulatorOptions(e), ClientID: testPublicClient, TenantID: testTenant, openBrowser: b.open}
	c, err := NewInteractiveBrowserCredential(o)
	require.NoError(t, err)
	rec, err := c.Authenticate(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, testUser, rec.Username)
	assert.Equal(t, testTenant, rec.TenantID)
	assert.Equal(t, testPublicClient, rec.ClientID)
	assert.Equal(t, e.URL(), rec.Authority)
	assert.Regexp(t, `^[0-9a-f-]{36}\.`+testTenant+`$`, rec.HomeAccountID)
	u, err := url.Parse(b.opened[0])
	require.NoError(t, err)
	assert.Equal(t, "https://management.azure.com/.default openid offline_access profile", u.Query().Get("scope"))

	custom := *o
	custom.Cloud = Cloud{Name: "Custom", AuthorityHost: e.URL()}
	c2, err := NewInteractiveBrowserCredential(&custom)
	require.NoError(t, err)
	_, err = c2.Authenticate(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Authenticate needs a scope")
}

// testKeys is a cache.KeyStore with one fixed key, so that processes share
// it without a kernel keyring.
type testKeys []byte

func (k testKeys) Key(string) ([]byte, error) { return append([]byte(nil), k...), nil }

const secondProcessEnv = "AZCRED_SECOND_PROCESS"

// secondProcessSpec is what the parent hands the second process.
type secondProcessSpec struct {
	URL, CAPEM, CacheDir, Key string
	Record                    AuthenticationRecord
}

// TestPublicClientSecondProcess is the second process of
// TestSilentReuseAcrossProcesses; it does nothing in a normal run.
func TestPublicClientSecondProcess(t *testing.T) {
	raw := os.Getenv(secondProcessEnv)
	if raw == "" {
		t.Skip("a helper process of TestSilentReuseAcrossProcesses")
	}
	var spec secondProcessSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(spec.CAPEM)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	store, err := cache.NewFileStore("azcred-test", &cache.FileStoreOptions{Dir: spec.CacheDir, KeyStore: testKeys(spec.Key)})
	require.NoError(t, err)
	c, err := NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{
		ClientOptions:                  ClientOptions{AuthorityHost: spec.URL, Transport: client, getenv: envMap()},
		ClientID:                       testPublicClient,
		AuthenticationRecord:           spec.Record,
		Cache:                          store,
		DisableAutomaticAuthentication: true, // any need for a person fails the test
		openBrowser: func(context.Context, string) error {
			return errors.New("the second process must not open a browser")
		},
	})
	require.NoError(t, err)
	tok, err := c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.NoError(t, err)
	require.NotEmpty(t, tok.Token)
}

func TestSilentReuseAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	dir := t.TempDir()
	key := strings.Repeat("k", 32)
	store, err := cache.NewFileStore("azcred-test", &cache.FileStoreOptions{Dir: dir, KeyStore: testKeys(key)})
	require.NoError(t, err)
	b := &fakeBrowser{e: e}
	c := newBrowserCredential(t, e, b, func(o *InteractiveBrowserCredentialOptions) { o.Cache = store })
	rec, err := c.Authenticate(context.Background(), nil)
	require.NoError(t, err)
	recJSON, err := json.Marshal(rec)
	require.NoError(t, err)
	var back AuthenticationRecord
	require.NoError(t, json.Unmarshal(recJSON, &back))
	e.ResetRequests()

	spec, err := json.Marshal(secondProcessSpec{URL: e.URL(), CAPEM: string(e.CertPEM()), CacheDir: dir, Key: key, Record: back})
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestPublicClientSecondProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), secondProcessEnv+"="+string(spec))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "SKIP")

	got, authorize, devicecode := grants(e)
	assert.Equal(t, []string{"refresh_token"}, got, "exactly one refresh-token request, no user interaction")
	assert.Zero(t, authorize+devicecode)
	assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", e.Requests()[0].Path, "the record's tenant")
}
