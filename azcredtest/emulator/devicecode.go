package emulator

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// defaultDeviceInterval and defaultDeviceLifetime are Entra's.
	defaultDeviceInterval = 5 * time.Second
	defaultDeviceLifetime = 15 * time.Minute
	// slowDownStep is what slow_down adds to the interval (RFC 8628).
	slowDownStep = 5 * time.Second
)

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDeclined
	deviceRedeemed
)

// deviceGrant is an issued device code and where its user is.
type deviceGrant struct {
	deviceCode string
	userCode   string
	tenantID   string
	clientID   string
	scope      string
	expires    time.Time
	interval   time.Duration
	lastPoll   time.Time
	state      deviceState
	username   string
}

// SetDeviceCodeTiming sets the polling interval and the lifetime of the
// device codes issued from now on. Zero keeps Entra's defaults (5 s and 15
// min); a negative interval sends 0.
func (e *Emulator) SetDeviceCodeTiming(interval, lifetime time.Duration) {
	f := e.flows()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case interval < 0:
		f.interval = 0
	case interval == 0:
		f.interval = defaultDeviceInterval
	default:
		f.interval = interval
	}
	if lifetime <= 0 {
		lifetime = defaultDeviceLifetime
	}
	f.lifetime = lifetime
}

// DeviceLoginURL returns the page where a user enters a device code.
func (e *Emulator) DeviceLoginURL() string { return e.url + "/devicelogin" }

// ApproveDeviceCode signs the [SignIn] user in for the device code whose
// user code is userCode, as if they had entered it and consented.
func (e *Emulator) ApproveDeviceCode(userCode string) error {
	s := e.signIn()
	if s == nil {
		return errNoSignIn
	}
	return e.decideDeviceCode(userCode, s, true)
}

// DeclineDeviceCode declines the device code whose user code is userCode,
// as if the user had refused.
func (e *Emulator) DeclineDeviceCode(userCode string) error {
	return e.decideDeviceCode(userCode, nil, false)
}

func (e *Emulator) decideDeviceCode(userCode string, s *SignIn, approve bool) error {
	f := e.flows()
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.userCodes[strings.ToUpper(strings.TrimSpace(userCode))]
	if g == nil {
		return fmt.Errorf("emulator: no device code has the user code %q", userCode)
	}
	if g.state != devicePending {
		return fmt.Errorf("emulator: the device code with user code %q was already approved or declined", userCode)
	}
	if !e.clk.Now().Before(g.expires) {
		return fmt.Errorf("emulator: the device code with user code %q has expired", userCode)
	}
	if !approve {
		g.state = deviceDeclined
		return nil
	}
	if !strings.EqualFold(s.TenantID, g.tenantID) {
		return fmt.Errorf("emulator: the sign-in user's tenant %q is not the device code's tenant %q", s.TenantID, g.tenantID)
	}
	g.state, g.username = deviceApproved, s.Username
	return nil
}

// handleDeviceCode serves the device authorization endpoint.
func (e *Emulator) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	resp, se := e.deviceCode(r)
	if se != nil {
		e.writeSTSError(w, r, se)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (e *Emulator) deviceCode(r *http.Request) (map[string]any, *stsError) {
	tid := r.PathValue("tenant")
	form := r.PostForm
	clientID := form.Get("client_id")
	if clientID == "" {
		return nil, errMissingParam("client_id")
	}
	var t *tenant
	if reservedTenants[strings.ToLower(tid)] {
		if t = e.appTenant(clientID); t == nil {
			return nil, errUnknownApp(clientID, tid)
		}
	} else {
		var ok bool
		if t, ok = e.lookupTenant(tid); !ok {
			return nil, errUnknownTenant(tid)
		}
	}
	app := e.lookupApp(t, clientID)
	if app == nil {
		return nil, errUnknownApp(clientID, t.id)
	}
	if !app.PublicClient {
		return nil, newSTSError(400, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. The device code flow needs 'Allow public client flows' on the app.")
	}
	scope := form.Get("scope")
	if _, se := e.parseScopes(scope, t, false); se != nil {
		return nil, se
	}
	f := e.flows()
	f.mu.Lock()
	defer f.mu.Unlock()
	g := &deviceGrant{
		deviceCode: randomToken(48),
		userCode:   userCode(),
		tenantID:   t.id,
		clientID:   app.ClientID,
		scope:      scope,
		expires:    e.clk.Now().Add(f.lifetime),
		interval:   f.interval,
	}
	f.devices[g.deviceCode] = g
	f.userCodes[g.userCode] = g
	verify := e.DeviceLoginURL()
	return map[string]any{
		"device_code":      g.deviceCode,
		"user_code":        g.userCode,
		"verification_uri": verify,
		"expires_in":       int64(f.lifetime / time.Second),
		"interval":         int64(g.interval / time.Second),
		"message":          fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", verify, g.userCode),
	}, nil
}

// appTenant finds the tenant that registers clientID.
func (e *Emulator) appTenant(clientID string) *tenant {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.tenants {
		if t.apps[strings.ToLower(clientID)] != nil {
			return t
		}
	}
	return nil
}

// userCode returns nine letters, without vowels so that no word is spelt.
func userCode() string {
	const letters = "BCDFGHJKLMNPQRSTVWXZ"
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// deviceCodeGrant answers a poll of the token endpoint.
func (e *Emulator) deviceCodeGrant(r *http.Request, t *tenant) (map[string]any, *stsError) {
	form := r.PostForm
	dc := form.Get("device_code")
	if dc == "" {
		return nil, errMissingParam("device_code")
	}
	f := e.flows()
	now := e.clk.Now()
	f.mu.Lock()
	g := f.devices[dc]
	if g == nil || g.state == deviceRedeemed {
		f.mu.Unlock()
		return nil, newSTSError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed: the device code is unknown or was already redeemed.")
	}
	if !strings.EqualFold(form.Get("client_id"), g.clientID) {
		f.mu.Unlock()
		return nil, newSTSError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed: the device code was issued to a different client.")
	}
	if !now.Before(g.expires) {
		f.mu.Unlock()
		return nil, newSTSError(400, "expired_token", 70020, "The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
	}
	early := !g.lastPoll.IsZero() && now.Sub(g.lastPoll) < g.interval
	g.lastPoll = now
	switch {
	case g.state == deviceDeclined:
		f.mu.Unlock()
		return nil, newSTSError(400, "authorization_declined", 70000, "The end user declined the authorization request.")
	case early:
		g.interval += slowDownStep
		f.mu.Unlock()
		return nil, newSTSError(400, "slow_down", 70016, "OAuth 2.0 device flow error. The client polls too often: wait the interval plus 5 seconds between polls.")
	case g.state == devicePending:
		f.mu.Unlock()
		return nil, newSTSError(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
	}
	g.state = deviceRedeemed
	tenantID, username, scope := g.tenantID, g.username, g.scope
	f.mu.Unlock()

	if t == nil || !strings.EqualFold(t.id, tenantID) {
		if t, _ = e.lookupTenant(tenantID); t == nil {
			return nil, errUnknownTenant(tenantID)
		}
	}
	c, se := e.authenticateClient(r, t, false)
	if se != nil {
		return nil, se
	}
	u := e.lookupUser(t, username)
	if u == nil {
		return nil, errUnknownUser(username, t.id)
	}
	if s := form.Get("scope"); s != "" {
		scope = s
	}
	sr, se := e.parseScopes(scope, t, false)
	if se != nil {
		return nil, se
	}
	return e.issue(r, t, c, sr, u)
}

// handleDeviceLogin serves the page where a person enters a user code:
// GET shows the form; POST approves (as the SignIn user) or declines.
func (e *Emulator) handleDeviceLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		e.writePage(w, http.StatusOK, "Enter code", "Enter the code displayed on your device.", &pageForm{
			Action:  "/devicelogin",
			Inputs:  []pageInput{{Name: "user_code", Label: "Code"}},
			Buttons: []pageButton{{Name: "action", Value: "approve", Label: "Sign in"}, {Name: "action", Value: "decline", Label: "Decline"}},
		})
		return
	}
	code := r.PostForm.Get("user_code")
	var err error
	switch r.PostForm.Get("action") {
	case "approve":
		err = e.ApproveDeviceCode(code)
	case "decline":
		err = e.DeclineDeviceCode(code)
	default:
		e.writePage(w, http.StatusBadRequest, "Sign-in failed", "Choose Sign in or Decline.", nil)
		return
	}
	if err != nil {
		e.writePage(w, http.StatusBadRequest, "Sign-in failed", "The code was not accepted: it is unknown, expired or already used.", nil)
		return
	}
	e.writePage(w, http.StatusOK, "Done", "You may now close this window and return to your device.", nil)
}
