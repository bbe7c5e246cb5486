package emulator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"
)

const (
	grantAuthorizationCode = "authorization_code"
	// authCodeLifetime is how long an authorization code may be redeemed.
	authCodeLifetime = 10 * time.Minute
)

// SignIn is the person the Emulator's sign-in pages sign in: the
// authorization endpoint (browser sign-in) when the request's login_hint
// names no user of the tenant, and device code approvals.
type SignIn struct {
	// TenantID is the user's home tenant. Required.
	TenantID string
	// Username names a user added with [Emulator.AddUser]. Required.
	Username string
	// Consent shows a consent page with Accept and Decline buttons before
	// answering the authorization request. Default: false, the request is
	// answered at once, as when a user has already consented.
	Consent bool
}

// publicFlows is the state of the user sign-in flows of one Emulator.
type publicFlows struct {
	mu        sync.Mutex
	signIn    *SignIn
	codes     map[string]*authCode
	devices   map[string]*deviceGrant // by device code
	userCodes map[string]*deviceGrant // by user code
	interval  time.Duration
	lifetime  time.Duration
}

var (
	flowsMu sync.Mutex
	flows   = map[weak.Pointer[Emulator]]*publicFlows{}
)

// flows returns e's sign-in state, made on first use and forgotten when e
// is garbage.
func (e *Emulator) flows() *publicFlows {
	k := weak.Make(e)
	flowsMu.Lock()
	defer flowsMu.Unlock()
	f := flows[k]
	if f == nil {
		f = &publicFlows{
			codes:     map[string]*authCode{},
			devices:   map[string]*deviceGrant{},
			userCodes: map[string]*deviceGrant{},
			interval:  defaultDeviceInterval,
			lifetime:  defaultDeviceLifetime,
		}
		flows[k] = f
		runtime.AddCleanup(e, func(k weak.Pointer[Emulator]) {
			flowsMu.Lock()
			delete(flows, k)
			flowsMu.Unlock()
		}, k)
	}
	return f
}

// SetSignIn sets the person the sign-in pages sign in. The user must exist.
func (e *Emulator) SetSignIn(s SignIn) error {
	t, ok := e.lookupTenant(s.TenantID)
	if !ok {
		return fmt.Errorf("emulator: SetSignIn: tenant %q does not exist; add it first", s.TenantID)
	}
	if e.lookupUser(t, s.Username) == nil {
		return fmt.Errorf("emulator: SetSignIn: user %q does not exist in tenant %q; add it with AddUser", s.Username, s.TenantID)
	}
	f := e.flows()
	f.mu.Lock()
	f.signIn = &s
	f.mu.Unlock()
	return nil
}

func (e *Emulator) signIn() *SignIn {
	f := e.flows()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signIn == nil {
		return nil
	}
	s := *f.signIn
	return &s
}

// AuthorizeURL returns the authorization endpoint of tenantID.
func (e *Emulator) AuthorizeURL(tenantID string) string {
	return e.url + "/" + tenantID + "/oauth2/v2.0/authorize"
}

// authCode is an issued authorization code: one use, bound to its client,
// redirect URI and PKCE challenge.
type authCode struct {
	tenantID    string
	clientID    string
	redirectURI string
	challenge   string
	username    string
	scope       string
	expires     time.Time
	used        bool
}

// pageError is a refusal shown on the authority's own page: the request
// cannot be sent back to the client (its redirect URI is not trusted).
type pageError struct{ *stsError }

func (p pageError) Error() string { return p.msg }

// handleAuthorize serves the authorization endpoint: GET from the browser,
// POST from the consent page.
func (e *Emulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		e.writePage(w, http.StatusBadRequest, "Sign-in failed", "The request could not be read.", nil)
		return
	}
	q := r.Form
	redirect, code, se := e.authorize(r, q)
	switch x := se.(type) {
	case pageError:
		e.writePage(w, x.status, "Sign-in failed", fmt.Sprintf("AADSTS%d: %s", x.code, x.msg), nil)
		return
	case consentNeeded:
		e.consentPage(w, r, q, x)
		return
	}
	out := url.Values{}
	if s := q.Get("state"); s != "" {
		out.Set("state", s)
	}
	if se != nil {
		st := se.(*stsError)
		out.Set("error", st.oauth)
		out.Set("error_description", fmt.Sprintf("AADSTS%d: %s", st.code, st.msg))
		out.Set("error_codes", fmt.Sprint(st.code))
	} else {
		out.Set("code", code)
		out.Set("session_state", newID())
	}
	if q.Get("response_mode") == "form_post" {
		writeFormPost(w, redirect, out)
		return
	}
	u, _ := url.Parse(redirect)
	u.RawQuery = out.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// authorize checks an authorization request. It returns the redirect URI
// and a code, or an error: a pageError before the redirect URI is trusted,
// an *stsError sent back to the client after, or consentNeeded.
func (e *Emulator) authorize(r *http.Request, q url.Values) (string, string, error) {
	page := func(se *stsError) (string, string, error) { return "", "", pageError{se} }
	tid := r.PathValue("tenant")
	alias := reservedTenants[strings.ToLower(tid)]
	var t *tenant
	if !alias {
		var ok bool
		if t, ok = e.lookupTenant(tid); !ok {
			return page(errUnknownTenant(tid))
		}
	}
	clientID := q.Get("client_id")
	if clientID == "" {
		return page(errMissingParam("client_id"))
	}
	u, ut := e.signInUser(t, q.Get("login_hint"))
	if u == nil {
		return page(newSTSError(400, "interaction_required", 50058, "No user is signed in to the emulator: call Emulator.SetSignIn, or name a user of the tenant in login_hint."))
	}
	if t == nil {
		t = ut
	}
	app := e.lookupApp(t, clientID)
	if app == nil {
		return page(errUnknownApp(clientID, t.id))
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" {
		return page(errMissingParam("redirect_uri"))
	}
	if !redirectRegistered(app.RedirectURIs, redirect) {
		return page(errRedirectMismatch(redirect, app.ClientID))
	}
	fail := func(se *stsError) (string, string, error) { return redirect, "", se }
	if rt := q.Get("response_type"); rt != "code" {
		return fail(newSTSError(400, "unsupported_response_type", 700054, "response_type '%s' is not enabled for the application; this emulator issues authorization codes only. (Entra ID would issue ID tokens or access tokens from the authorize endpoint when the app enables implicit grant.)", rt))
	}
	switch q.Get("response_mode") {
	case "", "query", "form_post":
	default:
		return fail(errInvalidParam("response_mode"))
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		return fail(errMissingParam("code_challenge"))
	}
	if q.Get("code_challenge_method") != "S256" {
		return fail(newSTSError(400, "invalid_request", 5000, "Invalid code_challenge_method: only S256 is supported."))
	}
	if _, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(challenge) != 43 {
		return fail(errInvalidParam("code_challenge"))
	}
	scope := q.Get("scope")
	if _, se := e.parseScopes(scope, t, false); se != nil {
		return fail(se)
	}
	if s := e.signIn(); s != nil && s.Consent {
		switch q.Get("consent") {
		case "":
			return "", "", consentNeeded{app: app, user: u}
		case "accept":
		default:
			return fail(newSTSError(400, "access_denied", 65004, "User declined to consent to access the app."))
		}
	}
	code := randomToken(32)
	f := e.flows()
	f.mu.Lock()
	f.codes[code] = &authCode{
		tenantID: t.id, clientID: app.ClientID, redirectURI: redirect, challenge: challenge,
		username: u.Username, scope: scope, expires: e.clk.Now().Add(authCodeLifetime),
	}
	f.mu.Unlock()
	return redirect, code, nil
}

// signInUser picks the user to sign in: the one login_hint names, else the
// configured SignIn user. t nil means any tenant.
func (e *Emulator) signInUser(t *tenant, hint string) (*User, *tenant) {
	if hint != "" {
		ht := t
		if ht == nil {
			ht = e.userTenant(hint)
		}
		if ht != nil {
			if u := e.lookupUser(ht, hint); u != nil {
				return u, ht
			}
		}
	}
	s := e.signIn()
	if s == nil {
		return nil, nil
	}
	st, ok := e.lookupTenant(s.TenantID)
	if !ok || t != nil && !strings.EqualFold(t.id, st.id) {
		return nil, nil
	}
	u := e.lookupUser(st, s.Username)
	return u, st
}

// redirectRegistered applies Entra's rule: exact match, except that a
// loopback http redirect URI matches whatever its port.
func redirectRegistered(registered []string, got string) bool {
	gu, err := url.Parse(got)
	if err != nil {
		return false
	}
	for _, r := range registered {
		if r == got {
			return true
		}
		ru, err := url.Parse(r)
		if err != nil || ru.Scheme != "http" || gu.Scheme != "http" || !isLoopbackHost(ru.Hostname()) {
			continue
		}
		if strings.EqualFold(ru.Hostname(), gu.Hostname()) && strings.TrimRight(ru.Path, "/") == strings.TrimRight(gu.Path, "/") && gu.RawQuery == "" {
			return true
		}
	}
	return false
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func errRedirectMismatch(redirect, clientID string) *stsError {
	return newSTSError(400, "invalid_request", 50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.", redirect, clientID)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p>
{{if .Form}}<form method="post" action="{{.Form.Action}}">
{{range $k, $vs := .Form.Fields}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}{{range .Form.Buttons}}<button type="submit" name="{{.Name}}" value="{{.Value}}" id="{{.Name}}-{{.Value}}">{{.Label}}</button>
{{end}}{{range .Form.Inputs}}<label>{{.Label}} <input type="text" name="{{.Name}}" id="{{.Name}}"></label>
{{end}}</form>{{if .Form.AutoSubmit}}<script>document.forms[0].submit();</script>{{end}}{{end}}
</body></html>
`))

type pageForm struct {
	Action     string
	Fields     url.Values
	Inputs     []pageInput
	Buttons    []pageButton
	AutoSubmit bool
}

type pageInput struct{ Name, Label string }

type pageButton struct{ Name, Value, Label string }

func (e *Emulator) writePage(w http.ResponseWriter, status int, title, text string, form *pageForm) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, map[string]any{"Title": title, "Text": text, "Form": form})
}

// writeFormPost answers with a page that posts out to redirect at once, as
// Entra does for response_mode=form_post.
func writeFormPost(w http.ResponseWriter, redirect string, out url.Values) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = pageTemplate.Execute(w, map[string]any{
		"Title": "Working...",
		"Text":  "Returning to the application.",
		"Form": &pageForm{
			Action: redirect, Fields: out, AutoSubmit: true,
			Buttons: []pageButton{{Name: "continue", Value: "1", Label: "Continue"}},
		},
	})
}

// consentNeeded asks the handler for the consent page.
type consentNeeded struct {
	app  *App
	user *User
}

func (consentNeeded) Error() string { return "consent needed" }

func (e *Emulator) consentPage(w http.ResponseWriter, r *http.Request, q url.Values, c consentNeeded) {
	fields := cloneValues(q)
	fields.Del("consent")
	e.writePage(w, http.StatusOK, "Permissions requested",
		fmt.Sprintf("The application %s asks to sign in %s and act on their behalf.", c.app.ClientID, c.user.Username),
		&pageForm{
			Action: r.URL.Path, Fields: fields,
			Buttons: []pageButton{{Name: "consent", Value: "accept", Label: "Accept"}, {Name: "consent", Value: "decline", Label: "Decline"}},
		})
}

// authorizationCode redeems an authorization code: once, by the client it
// was issued to, with the same redirect URI and the PKCE verifier of its
// challenge.
func (e *Emulator) authorizationCode(r *http.Request, t *tenant) (map[string]any, *stsError) {
	form := r.PostForm
	code := form.Get("code")
	if code == "" {
		return nil, errMissingParam("code")
	}
	f := e.flows()
	f.mu.Lock()
	ac := f.codes[code]
	used := ac != nil && ac.used
	if ac != nil {
		ac.used = true
	}
	f.mu.Unlock()
	if ac == nil {
		return nil, newSTSError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the authorization code is not one this authority issued.")
	}
	if used {
		return nil, newSTSError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	}
	if t == nil {
		t, _ = e.lookupTenant(ac.tenantID)
	}
	if t == nil || !strings.EqualFold(t.id, ac.tenantID) {
		return nil, newSTSError(400, "invalid_grant", 700005, "Provided Authorization Code is intended to use against other tenant, thus rejected.")
	}
	c, se := e.authenticateClient(r, t, false)
	if se != nil {
		return nil, se
	}
	if !strings.EqualFold(c.app.ClientID, ac.clientID) {
		return nil, newSTSError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed. The authorization code was issued to a different client.")
	}
	if e.clk.Now().After(ac.expires) {
		return nil, errRefreshTokenExpired()
	}
	if form.Get("redirect_uri") != ac.redirectURI {
		return nil, errRedirectMismatch(form.Get("redirect_uri"), ac.clientID)
	}
	verifier := form.Get("code_verifier")
	sum := sha256.Sum256([]byte(verifier))
	if verifier == "" || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.challenge)) != 1 {
		return nil, newSTSError(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	}
	u := e.lookupUser(t, ac.username)
	if u == nil {
		return nil, errUnknownUser(ac.username, t.id)
	}
	scope := form.Get("scope")
	if scope == "" {
		scope = ac.scope
	}
	sr, se := e.parseScopes(scope, t, false)
	if se != nil {
		return nil, se
	}
	return e.issue(r, t, c, sr, u)
}

// errNoSignIn is returned by the device code test API when no SignIn is set.
var errNoSignIn = errors.New("emulator: no sign-in user: call SetSignIn first")

// Error lets an *stsError travel as an error inside the sign-in handlers.
func (se *stsError) Error() string { return fmt.Sprintf("AADSTS%d: %s", se.code, se.msg) }
