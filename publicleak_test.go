package azcred

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/internal/clock"
)

// echoDoer forwards requests and remembers every secret that crosses it:
// the codes, verifiers, device codes and refresh tokens sent, and the
// tokens received. With echo on, the token endpoints answer with a refusal
// that repeats the whole request, as a hostile or broken proxy might.
type echoDoer struct {
	next Doer
	echo atomic.Bool

	mu      sync.Mutex
	secrets []string
}

func (d *echoDoer) remember(vs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, v := range vs {
		if len(v) >= 8 {
			d.secrets = append(d.secrets, v)
		}
	}
}

func (d *echoDoer) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	form, _ := url.ParseQuery(string(body))
	d.remember(form.Get("code"), form.Get("code_verifier"), form.Get("refresh_token"), form.Get("device_code"))
	if d.echo.Load() && (strings.HasSuffix(r.URL.Path, "/token") || strings.HasSuffix(r.URL.Path, "/devicecode")) {
		desc, _ := json.Marshal(fmt.Sprintf("AADSTS70000: you sent %s (%v)", body, form))
		return &http.Response{
			StatusCode: 400, Status: "400 Bad Request", Request: r,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   io.NopCloser(strings.NewReader(`{"error":"invalid_grant","error_description":` + string(desc) + `,"error_codes":[70000]}`)),
		}, nil
	}
	resp, err := d.next.Do(r)
	if err != nil {
		return resp, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		DeviceCode   string `json:"device_code"`
	}
	if json.Unmarshal(rb, &tok) == nil {
		d.remember(tok.AccessToken, tok.RefreshToken, tok.IDToken, tok.DeviceCode)
	}
	// The hidden code of a form_post page is remembered by the browser.
	return resp, nil
}

func TestPublicClientSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	doer := &echoDoer{next: e.Client()}
	co := ClientOptions{AuthorityHost: e.URL(), Transport: doer, getenv: envMap(), Logger: logger, Retry: RetryOptions{MaxRetries: -1}}
	ctx := context.Background()
	var texts []string
	keep := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
	}

	b := &fakeBrowser{e: e}
	browser, err := NewInteractiveBrowserCredential(&InteractiveBrowserCredentialOptions{ClientOptions: co, ClientID: testPublicClient, openBrowser: b.open, Timeout: 20 * time.Second})
	require.NoError(t, err)
	_, err = browser.GetToken(ctx, armRequest)
	require.NoError(t, err)
	doer.echo.Store(true)
	// The refresh is echoed (invalid_grant), the browser signs in again and
	// the code redemption is echoed too.
	_, err = browser.GetToken(ctx, TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.Error(t, err)
	keep(err)
	_, err = browser.Authenticate(ctx, nil)
	keep(err)
	texts = append(texts, fmt.Sprint(browser), fmt.Sprintf("%#v", browser), fmt.Sprintf("%+v", *browser))

	doer.echo.Store(false)
	clk := clock.NewFake(time.Now())
	dco := co
	dco.clock = clk
	prompts := make(chan DeviceCodeMessage, 1)
	device, err := NewDeviceCodeCredential(&DeviceCodeCredentialOptions{ClientOptions: dco, ClientID: testPublicClient, TenantID: testTenant,
		UserPrompt: func(_ context.Context, m DeviceCodeMessage) error { prompts <- m; return nil }})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := device.GetToken(ctx, armRequest); done <- err }()
	<-prompts
	require.NoError(t, clk.BlockUntilTimers(ctx, 1))
	doer.echo.Store(true)
	clk.Advance(5 * time.Second)
	err = <-done
	require.Error(t, err)
	keep(err)
	texts = append(texts, fmt.Sprint(device), fmt.Sprintf("%#v", device))

	all := strings.Join(texts, "\n") + logs.String()
	doer.mu.Lock()
	secrets := append([]string(nil), doer.secrets...)
	doer.mu.Unlock()
	require.GreaterOrEqual(t, len(secrets), 6, "codes, verifiers, refresh, ID and access tokens, device codes were seen")
	for _, s := range secrets {
		assert.NotContains(t, all, s)
	}
	assert.Contains(t, all, "AADSTS70000", "the errors are still informative")
}
