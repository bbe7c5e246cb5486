package oauth

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/azcred/azcred/azcredtest/emulator"
)

const (
	emuRedirect = "http://localhost:51234"
	armScope    = "https://management.azure.com/.default"
)

func TestPKCE(t *testing.T) {
	t.Parallel()
	// RFC 7636, appendix B.
	assert.Equal(t, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", S256Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
	a, err := NewPKCE()
	require.NoError(t, err)
	b, err := NewPKCE()
	require.NoError(t, err)
	assert.Len(t, a.Verifier, 43, "32 bytes in unpadded base64url")
	assert.Equal(t, S256Challenge(a.Verifier), a.Challenge)
	assert.NotEqual(t, a.Verifier, b.Verifier)
	s1, err := RandomState()
	require.NoError(t, err)
	s2, err := RandomState()
	require.NoError(t, err)
	assert.NotEqual(t, s1, s2)
}

func TestSiblingEndpointsAndReservedScopes(t *testing.T) {
	t.Parallel()
	a, err := AuthorizeEndpoint("https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
	require.NoError(t, err)
	assert.Equal(t, "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize", a)
	d, err := DeviceCodeEndpoint("https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
	require.NoError(t, err)
	assert.Equal(t, "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode", d)
	_, err = DeviceCodeEndpoint("https://adfs.contoso.com/adfs/oauth2/token")
	assert.Error(t, err)
	in := []string{armScope, "openid"}
	assert.Equal(t, []string{armScope, "openid", "offline_access", "profile"}, WithReservedScopes(in))
	assert.Equal(t, []string{armScope, "openid"}, in, "input untouched")
}

// publicFixture adds the public app's redirect URI and a sign-in user.
func publicFixture(t *testing.T) *emuFixture {
	t.Helper()
	f := newEmuFixture(t, emulator.Options{})
	require.NoError(t, f.emu.RegisterApp(emulator.App{TenantID: emuTenant, ClientID: emuPublicApp, PublicClient: true, RedirectURIs: []string{"http://localhost"}}))
	require.NoError(t, f.emu.SetSignIn(emulator.SignIn{TenantID: emuTenant, Username: emuUser}))
	return f
}

// authorize plays the browser: it opens the authorization URL and returns
// the values the authority sends back to the redirect URI.
func (f *emuFixture) authorize(t *testing.T, r AuthorizeRequest) (url.Values, int) {
	t.Helper()
	u, err := r.URL()
	require.NoError(t, err)
	resp, err := f.emu.Client().Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusFound:
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		return loc.Query(), resp.StatusCode
	case resp.StatusCode == http.StatusOK && strings.Contains(string(body), "document.forms[0].submit()"):
		return hiddenInputs(string(body)), resp.StatusCode
	}
	return url.Values{"page": {string(body)}}, resp.StatusCode
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func hiddenInputs(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v.Add(m[1], htmlUnescape(m[2]))
	}
	return v
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func (f *emuFixture) authRequest(t *testing.T, p PKCE, mode string) AuthorizeRequest {
	t.Helper()
	endpoint, err := AuthorizeEndpoint(f.endpoint)
	require.NoError(t, err)
	return AuthorizeRequest{Endpoint: endpoint, ClientID: emuPublicApp, RedirectURI: emuRedirect, Scopes: []string{armScope},
		State: "state-123", Challenge: p.Challenge, ResponseMode: mode, Prompt: "select_account"}
}

func TestEmulatorAuthorizationCodeAndRefresh(t *testing.T) {
	t.Parallel()
	f := publicFixture(t)
	ctx := context.Background()
	for _, mode := range []string{"form_post", "query"} {
		t.Run(mode, func(t *testing.T) {
			p, err := NewPKCE()
			require.NoError(t, err)
			back, status := f.authorize(t, f.authRequest(t, p, mode))
			require.Contains(t, []int{200, 302}, status, back.Get("page"))
			assert.Equal(t, "state-123", back.Get("state"))
			code := back.Get("code")
			require.NotEmpty(t, code)

			redeem := func(verifier, redirect string) (*UserToken, error) {
				return f.client.AuthorizationCode(ctx, AuthCodeParams{Params: Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{armScope}},
					Code: code, Verifier: verifier, RedirectURI: redirect})
			}
			tok, err := redeem(p.Verifier, emuRedirect)
			require.NoError(t, err)
			assert.NotEmpty(t, tok.RefreshToken)
			assert.NotEmpty(t, tok.IDToken)
			id, err := ParseIDToken(tok.IDToken)
			require.NoError(t, err)
			assert.Equal(t, emuUser, id.PreferredUsername)
			assert.Equal(t, emuTenant, id.TenantID)
			assert.Equal(t, emuPublicApp, id.Audience)
			assert.Equal(t, id.ObjectID, tok.ClientInfo.UID)
			assert.Equal(t, emuTenant, tok.ClientInfo.UTID)
			claims, err := f.emu.VerifyAccessToken(tok.AccessToken)
			require.NoError(t, err)
			assert.Equal(t, "https://management.azure.com", claims["aud"])

			form := f.emu.Requests()[len(f.emu.Requests())-1].Form
			assert.Equal(t, "authorization_code", form.Get("grant_type"))
			assert.Equal(t, "1", form.Get("client_info"))
			assert.Equal(t, armScope+" openid offline_access profile", form.Get("scope"))

			_, err = redeem(p.Verifier, emuRedirect)
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, "AADSTS54005", oe.AADSTS, "a code is redeemed once")
			assert.NotContains(t, err.Error(), code)

			// The refresh token rotates and works for another resource.
			r1, err := f.client.Refresh(ctx, RefreshParams{Params: Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{"https://vault.azure.net/.default"}}, RefreshToken: tok.RefreshToken})
			require.NoError(t, err)
			assert.NotEmpty(t, r1.RefreshToken)
			assert.NotEqual(t, tok.RefreshToken, r1.RefreshToken)
			claims, err = f.emu.VerifyAccessToken(r1.AccessToken)
			require.NoError(t, err)
			assert.Equal(t, "https://vault.azure.net", claims["aud"])
		})
	}
}

func TestEmulatorAuthorizationCodeRefusals(t *testing.T) {
	t.Parallel()
	f := publicFixture(t)
	ctx := context.Background()
	newCode := func(t *testing.T) (PKCE, string) {
		p, err := NewPKCE()
		require.NoError(t, err)
		back, _ := f.authorize(t, f.authRequest(t, p, "query"))
		require.NotEmpty(t, back.Get("code"), back.Get("page"))
		return p, back.Get("code")
	}
	t.Run("bad verifier", func(t *testing.T) {
		_, code := newCode(t)
		other, err := NewPKCE()
		require.NoError(t, err)
		_, err = f.client.AuthorizationCode(ctx, AuthCodeParams{Params: Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{armScope}}, Code: code, Verifier: other.Verifier, RedirectURI: emuRedirect})
		var oe *Error
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "AADSTS501481", oe.AADSTS)
		assert.NotContains(t, err.Error()+oe.Body, other.Verifier)
	})
	t.Run("redirect mismatch at redemption", func(t *testing.T) {
		p, code := newCode(t)
		_, err := f.client.AuthorizationCode(ctx, AuthCodeParams{Params: Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{armScope}}, Code: code, Verifier: p.Verifier, RedirectURI: "http://localhost:9/other"})
		var oe *Error
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "AADSTS50011", oe.AADSTS)
	})
	t.Run("unregistered redirect URI is refused on the authority's page", func(t *testing.T) {
		p, err := NewPKCE()
		require.NoError(t, err)
		r := f.authRequest(t, p, "form_post")
		r.RedirectURI = "https://evil.example/cb"
		back, status := f.authorize(t, r)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, back.Get("page"), "AADSTS50011")
	})
	t.Run("unknown scope resource is sent back to the client", func(t *testing.T) {
		p, err := NewPKCE()
		require.NoError(t, err)
		r := f.authRequest(t, p, "query")
		r.Scopes = []string{"https://nothing.example/.default"}
		back, _ := f.authorize(t, r)
		assert.Equal(t, "invalid_resource", back.Get("error"))
		assert.Equal(t, "state-123", back.Get("state"))
		assert.Empty(t, back.Get("code"))
	})
}

func TestEmulatorConsentPage(t *testing.T) {
	t.Parallel()
	f := publicFixture(t)
	require.NoError(t, f.emu.SetSignIn(emulator.SignIn{TenantID: emuTenant, Username: emuUser, Consent: true}))
	p, err := NewPKCE()
	require.NoError(t, err)
	u, err := f.authRequest(t, p, "form_post").URL()
	require.NoError(t, err)
	resp, err := f.emu.Client().Get(u)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `value="accept"`)
	for _, choice := range []string{"accept", "decline"} {
		form := hiddenInputs(string(body))
		form.Set("consent", choice)
		resp, err := f.emu.Client().PostForm(f.emu.AuthorizeURL(emuTenant), form)
		require.NoError(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		back := hiddenInputs(string(page))
		if choice == "accept" {
			assert.NotEmpty(t, back.Get("code"))
		} else {
			assert.Equal(t, "access_denied", back.Get("error"))
			assert.Contains(t, back.Get("error_description"), "AADSTS65004")
		}
	}
}

func TestEmulatorDeviceCode(t *testing.T) {
	t.Parallel()
	f := publicFixture(t)
	ctx := context.Background()
	dcEndpoint, err := DeviceCodeEndpoint(f.endpoint)
	require.NoError(t, err)
	params := Params{Endpoint: dcEndpoint, ClientID: emuPublicApp, Scopes: []string{armScope}}
	poll := func(dc *DeviceCode) (*UserToken, error) {
		return f.client.PollDeviceCode(ctx, DevicePollParams{Params: Params{Endpoint: f.endpoint, ClientID: emuPublicApp, Scopes: []string{armScope}}, DeviceCode: dc.DeviceCode})
	}

	dc, err := f.client.StartDeviceCode(ctx, params)
	require.NoError(t, err)
	assert.Len(t, dc.UserCode, 9)
	assert.Equal(t, f.emu.DeviceLoginURL(), dc.VerificationURL)
	assert.Contains(t, dc.Message, dc.UserCode)
	assert.Equal(t, 5*time.Second, dc.Interval)
	assert.Equal(t, f.clk.Now().Add(15*time.Minute), dc.ExpiresOn)
	assert.NotContains(t, dc.String(), dc.DeviceCode)

	_, err = poll(dc)
	assert.Equal(t, CodeAuthorizationPending, ErrorCode(err))
	_, err = poll(dc)
	assert.Equal(t, CodeSlowDown, ErrorCode(err), "polled again at once")
	f.clk.Advance(10 * time.Second)
	_, err = poll(dc)
	assert.Equal(t, CodeAuthorizationPending, ErrorCode(err), "interval grew to 10 s")
	require.NoError(t, f.emu.ApproveDeviceCode(strings.ToLower(dc.UserCode)))
	f.clk.Advance(10 * time.Second)
	tok, err := poll(dc)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.RefreshToken)
	f.clk.Advance(10 * time.Second)
	_, err = poll(dc)
	assert.Equal(t, CodeInvalidGrant, ErrorCode(err), "redeemed once")

	declined, err := f.client.StartDeviceCode(ctx, params)
	require.NoError(t, err)
	require.NoError(t, f.emu.DeclineDeviceCode(declined.UserCode))
	_, err = poll(declined)
	assert.Equal(t, CodeAuthorizationDeclined, ErrorCode(err))

	expiring, err := f.client.StartDeviceCode(ctx, params)
	require.NoError(t, err)
	f.clk.Advance(15 * time.Minute)
	_, err = poll(expiring)
	var oe *Error
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, CodeExpiredToken, oe.Code)
	assert.Equal(t, "AADSTS70020", oe.AADSTS)
	assert.Error(t, f.emu.ApproveDeviceCode(expiring.UserCode))

	// The page approves too.
	viaPage, err := f.client.StartDeviceCode(ctx, params)
	require.NoError(t, err)
	resp, err := f.emu.Client().PostForm(f.emu.DeviceLoginURL(), url.Values{"user_code": {viaPage.UserCode}, "action": {"approve"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = poll(viaPage)
	require.NoError(t, err)
}
