package azcred

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

func newBrowserCredential(t testing.TB, e *emulator.Emulator, b *fakeBrowser, modify func(*InteractiveBrowserCredentialOptions)) *InteractiveBrowserCredential {
	t.Helper()
	o := &InteractiveBrowserCredentialOptions{ClientOptions: emulatorOptions(e), ClientID: testPublicClient, openBrowser: b.open, Timeout: 20 * time.Second}
	if modify != nil {
		modify(o)
	}
	c, err := NewInteractiveBrowserCredential(o)
	require.NoError(t, err)
	return c
}

// assertPortFree checks that the listener of the redirect URI is closed.
func assertPortFree(t *testing.T, redirect string) {
	t.Helper()
	u, err := url.Parse(redirect)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", u.Port()))
	require.NoError(t, err, "the loopback listener must be closed after the sign-in")
	require.NoError(t, ln.Close())
}

func TestInteractiveBrowserEndToEnd(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	b := &fakeBrowser{e: e}
	c := newBrowserCredential(t, e, b, nil)
	ctx := context.Background()

	tok, err := c.GetToken(ctx, armRequest)
	require.NoError(t, err)
	claims, err := e.VerifyAccessToken(tok.Token)
	require.NoError(t, err)
	assert.Equal(t, "https://management.azure.com", claims["aud"])
	assert.Equal(t, testUser, claims["upn"])

	require.Len(t, b.opened, 1)
	q, err := url.Parse(b.opened[0])
	require.NoError(t, err)
	assert.Equal(t, "/organizations/oauth2/v2.0/authorize", q.Path)
	v := q.Query()
	assert.Equal(t, "form_post", v.Get("response_mode"))
	assert.Equal(t, "S256", v.Get("code_challenge_method"))
	assert.Len(t, v.Get("code_challenge"), 43)
	assert.NotEmpty(t, v.Get("state"))
	assert.Regexp(t, `^http://localhost:\d+$`, v.Get("redirect_uri"))
	assert.Equal(t, "select_account", v.Get("prompt"))
	res := b.results()
	require.Len(t, res, 1)
	assert.Equal(t, 200, res[0].status)
	assert.Contains(t, res[0].body, "Authentication is complete")
	assertPortFree(t, v.Get("redirect_uri"))

	got, authorize, _ := grants(e)
	assert.Equal(t, []string{"authorization_code"}, got)
	assert.Equal(t, 1, authorize)

	// Cached, then another resource silently with the refresh token, in the
	// account's tenant.
	again, err := c.GetToken(ctx, armRequest)
	require.NoError(t, err)
	assert.Equal(t, tok.Token, again.Token)
	_, err = c.GetToken(ctx, TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.NoError(t, err)
	got, authorize, _ = grants(e)
	assert.Equal(t, []string{"authorization_code", "refresh_token"}, got)
	assert.Equal(t, 1, authorize, "no second browser sign-in")
	reqs := e.Requests()
	assert.Equal(t, "/"+testTenant+"/oauth2/v2.0/token", reqs[len(reqs)-1].Path, "the account's tenant, not organizations")
	assert.Contains(t, c.String(), "username: "+testUser)
}

func TestInteractiveBrowserRefusesWrongStateAndSecondDelivery(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	b := &fakeBrowser{e: e, wrongState: true, deliveries: 2}
	c := newBrowserCredential(t, e, b, func(o *InteractiveBrowserCredentialOptions) { o.TenantID = testTenant })
	_, err := c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	res := b.results()
	require.Len(t, res, 3)
	assert.Equal(t, 400, res[0].status, "wrong state refused")
	assert.Contains(t, res[0].body, "was not accepted")
	assert.NotContains(t, res[0].body, "forged-state", "no reflected input")
	assert.Equal(t, 200, res[1].status, "the matching answer is taken")
	if res[2].err == nil {
		assert.Equal(t, 409, res[2].status, "a second delivery is refused")
	}
	got, _, _ := grants(e)
	assert.Equal(t, []string{"authorization_code"}, got, "exactly one code redeemed")
	assertPortFree(t, b.redirect)
}

func TestInteractiveBrowserTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	b := &fakeBrowser{e: e, ignore: true}
	c := newBrowserCredential(t, e, b, func(o *InteractiveBrowserCredentialOptions) { o.Timeout = 100 * time.Millisecond })
	_, err := c.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Contains(t, err.Error(), "no sign-in within 100ms")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	u, err := url.Parse(b.opened[0])
	require.NoError(t, err)
	assertPortFree(t, u.Query().Get("redirect_uri"))

	ctx, cancel := context.WithCancel(context.Background())
	c2 := newBrowserCredential(t, e, &fakeBrowser{e: e, ignore: true}, nil)
	c2.openBrowser = func(context.Context, string) error { cancel(); return nil }
	_, err = c2.GetToken(ctx, armRequest)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestInteractiveBrowserFixedRedirectURL(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	b := &fakeBrowser{e: e}
	redirect := "http://localhost:" + itoa(port)
	c := newBrowserCredential(t, e, b, func(o *InteractiveBrowserCredentialOptions) { o.RedirectURL = redirect })
	_, err = c.GetToken(context.Background(), armRequest)
	require.NoError(t, err)
	q, _ := url.Parse(b.opened[0])
	assert.Equal(t, redirect, q.Query().Get("redirect_uri"))
	assertPortFree(t, redirect)
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

func TestInteractiveBrowserAuthorityRefusal(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	require.NoError(t, e.SetSignIn(emulator.SignIn{TenantID: testTenant, Username: testUser, Consent: true}))
	b := &fakeBrowser{e: e, consent: "decline"}
	c := newBrowserCredential(t, e, b, nil)
	_, err := c.GetToken(context.Background(), armRequest)
	var af *AuthenticationFailedError
	require.ErrorAs(t, err, &af)
	assert.Contains(t, err.Error(), "refused the sign-in (access_denied)")
	assert.Contains(t, err.Error(), "AADSTS65004")
}

func TestInteractiveBrowserDisableAutomaticAuthentication(t *testing.T) {
	t.Parallel()
	e := newPublicEmulator(t, nil)
	b := &fakeBrowser{e: e}
	c := newBrowserCredential(t, e, b, func(o *InteractiveBrowserCredentialOptions) { o.DisableAutomaticAuthentication = true })
	req := TokenRequestOptions{Scopes: []string{armScope}, EnableCAE: true}
	_, err := c.GetToken(context.Background(), req)
	var ar *AuthenticationRequiredError
	require.ErrorAs(t, err, &ar)
	assert.Equal(t, req, ar.TokenRequestOptions)
	assert.True(t, isUnavailable(err))
	assert.Empty(t, b.opened, "no browser")

	_, err = c.Authenticate(context.Background(), &req)
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), req)
	require.NoError(t, err)
	_, err = c.GetToken(context.Background(), TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	require.ErrorAs(t, err, &ar, "CAE and non-CAE refresh tokens are kept apart")
	assert.True(t, errors.As(err, &ar))
}
