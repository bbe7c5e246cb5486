package emulator

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	grantClientCredentials = "client_credentials"
	grantPassword          = "password"
	grantRefreshToken      = "refresh_token"
	grantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	// assertionSkew is the clock skew Entra allows on assertion lifetimes.
	assertionSkew = 5 * time.Minute
	// refreshTokenLifetime is how long an unused refresh token stays valid.
	refreshTokenLifetime = 90 * 24 * time.Hour
)

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	tenantID string
	clientID string
	username string
	expires  time.Time
}

// client is an authenticated (or public) client of a token request.
type client struct {
	app *App
	// acr is Entra's "azpacr": 0 public, 1 secret, 2 certificate or assertion.
	acr string
}

func (e *Emulator) handleToken(w http.ResponseWriter, r *http.Request) {
	resp, se := e.token(r)
	if se != nil {
		e.writeSTSError(w, r, se)
		return
	}
	if corr := r.Header.Get("client-request-id"); corr != "" && r.Header.Get("return-client-request-id") == "true" {
		w.Header().Set("client-request-id", corr)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (e *Emulator) token(r *http.Request) (map[string]any, *stsError) {
	tid := r.PathValue("tenant")
	form := r.PostForm
	grant := form.Get("grant_type")
	if grant == "" {
		return nil, errMissingParam("grant_type")
	}
	alias := reservedTenants[strings.ToLower(tid)]
	var t *tenant
	if !alias {
		var ok bool
		if t, ok = e.lookupTenant(tid); !ok {
			return nil, errUnknownTenant(tid)
		}
	}
	switch grant {
	case grantClientCredentials:
		if alias {
			return nil, errAliasTenant(tid)
		}
		return e.clientCredentials(r, t)
	case grantPassword:
		return e.password(r, t, tid)
	case grantRefreshToken:
		return e.refresh(r, t)
	case grantAuthorizationCode:
		return e.authorizationCode(r, t)
	case grantDeviceCode:
		return e.deviceCodeGrant(r, t)
	case grantJWTBearer:
		if alias {
			return nil, errAliasTenant(tid)
		}
		if form.Get("requested_token_use") != "on_behalf_of" {
			return nil, errInvalidParam("requested_token_use")
		}
		return e.onBehalfOf(r, t)
	default:
		return nil, errUnsupportedGrant(grant)
	}
}

func (e *Emulator) clientCredentials(r *http.Request, t *tenant) (map[string]any, *stsError) {
	c, se := e.authenticateClient(r, t, true)
	if se != nil {
		return nil, se
	}
	sr, se := e.parseScopes(r.PostForm.Get("scope"), t, true)
	if se != nil {
		return nil, se
	}
	return e.issue(r, t, c, sr, nil)
}

func (e *Emulator) password(r *http.Request, t *tenant, tid string) (map[string]any, *stsError) {
	form := r.PostForm
	username, password := form.Get("username"), form.Get("password")
	if username == "" {
		return nil, errMissingParam("username")
	}
	if form.Get("password") == "" {
		return nil, errMissingParam("password")
	}
	if t == nil { // organizations / common: the user's home tenant
		if t = e.userTenant(username); t == nil {
			return nil, errUnknownUser(username, tid)
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
	if subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return nil, errBadPassword()
	}
	sr, se := e.parseScopes(form.Get("scope"), t, false)
	if se != nil {
		return nil, se
	}
	return e.issue(r, t, c, sr, u)
}

func (e *Emulator) refresh(r *http.Request, t *tenant) (map[string]any, *stsError) {
	form := r.PostForm
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, errMissingParam("refresh_token")
	}
	e.mu.Lock()
	g := e.refreshTokens[rt]
	e.mu.Unlock()
	if g == nil {
		return nil, errBadRefreshToken()
	}
	if t == nil {
		t, _ = e.lookupTenant(g.tenantID)
	}
	if t == nil || !strings.EqualFold(t.id, g.tenantID) {
		return nil, errBadRefreshToken()
	}
	c, se := e.authenticateClient(r, t, false)
	if se != nil {
		return nil, se
	}
	if !strings.EqualFold(c.app.ClientID, g.clientID) {
		return nil, errRefreshTokenClient()
	}
	if e.clk.Now().After(g.expires) {
		return nil, errRefreshTokenExpired()
	}
	u := e.lookupUser(t, g.username)
	if u == nil {
		return nil, errUnknownUser(g.username, t.id)
	}
	sr, se := e.parseScopes(form.Get("scope"), t, false)
	if se != nil {
		return nil, se
	}
	return e.issue(r, t, c, sr, u)
}

func (e *Emulator) onBehalfOf(r *http.Request, t *tenant) (map[string]any, *stsError) {
	form := r.PostForm
	c, se := e.authenticateClient(r, t, true)
	if se != nil {
		return nil, se
	}
	assertion := form.Get("assertion")
	if assertion == "" {
		return nil, errMissingParam("assertion")
	}
	u, se := e.userFromAssertion(assertion, c.app)
	if se != nil {
		return nil, se
	}
	sr, se := e.parseScopes(form.Get("scope"), t, false)
	if se != nil {
		return nil, se
	}
	return e.issue(r, t, c, sr, u)
}

// userFromAssertion checks an on-behalf-of user assertion: an unexpired user
// token that this emulator issued for the middle-tier app.
func (e *Emulator) userFromAssertion(assertion string, middle *App) (*User, *stsError) {
	tok, err := parseJWT(assertion)
	if err != nil {
		return nil, errUserAssertion("The assertion is not a JWT: " + err.Error())
	}
	if stringField(tok.header, "kid") != e.kid {
		return nil, errUserAssertion("The key was not found. The assertion was not issued by this authority")
	}
	if err := tok.verify(&e.signKey.PublicKey); err != nil || stringField(tok.header, "alg") != "RS256" {
		return nil, errUserAssertion("The signature does not verify with this authority's key")
	}
	now := e.clk.Now()
	exp, ok := numberField(tok.claims, "exp")
	if !ok {
		return nil, errUserAssertion("The assertion has no exp claim")
	}
	if now.After(time.Unix(exp, 0).Add(assertionSkew)) {
		return nil, errUserAssertionExpired(now, exp)
	}
	if stringField(tok.claims, "idtyp") != "user" {
		return nil, errUserAssertion("The assertion is an app token; on-behalf-of needs a user's token")
	}
	aud := audiences(tok.claims)
	if !audienceIsApp(aud, middle) {
		return nil, errUserAssertionAudience(aud, middle.ClientID)
	}
	tid := stringField(tok.claims, "tid")
	if it := stringField(tok.claims, "iss"); !e.knownIssuer(it, tid) {
		return nil, errUserAssertion("The issuer " + it + " is not this authority")
	}
	upn := stringField(tok.claims, "upn")
	if t, ok := e.lookupTenant(tid); ok {
		if u := e.lookupUser(t, upn); u != nil {
			return u, nil
		}
	}
	return &User{
		TenantID: tid,
		Username: upn,
		ObjectID: stringField(tok.claims, "oid"),
		Name:     stringField(tok.claims, "name"),
	}, nil
}

func audienceIsApp(aud []string, a *App) bool {
	for _, x := range aud {
		if strings.EqualFold(x, a.ClientID) {
			return true
		}
		for _, u := range a.IdentifierURIs {
			if canonicalResource(u) == canonicalResource(x) {
				return true
			}
		}
	}
	return false
}

// authenticateClient finds the app of the request and checks its credential:
// a client assertion, a client secret (form or HTTP Basic), or none for a
// public client when confidential is false.
func (e *Emulator) authenticateClient(r *http.Request, t *tenant, confidential bool) (client, *stsError) {
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if id, pw, ok := r.BasicAuth(); ok {
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(pw); err == nil {
			pw = v
		}
		if clientID == "" {
			clientID = id
		}
		if secret == "" {
			secret = pw
		}
	}
	if clientID == "" {
		return client{}, errMissingParam("client_id")
	}
	app := e.lookupApp(t, clientID)
	if app == nil {
		return client{}, errUnknownApp(clientID, t.id)
	}
	assertion := form.Get("client_assertion")
	switch {
	case assertion != "":
		switch form.Get("client_assertion_type") {
		case assertionTypeJWTBearer:
		case "":
			return client{}, errMissingParam("client_assertion_type")
		default:
			return client{}, errInvalidParam("client_assertion_type")
		}
		if app.PublicClient && len(app.Certificates) == 0 && len(app.Federated) == 0 && len(app.Secrets) == 0 {
			return client{}, errPublicClientCredential()
		}
		if se := e.verifyClientAssertion(r, app, assertion); se != nil {
			return client{}, se
		}
		return client{app: app, acr: "2"}, nil
	case secret != "":
		if app.PublicClient && len(app.Secrets) == 0 {
			return client{}, errPublicClientCredential()
		}
		for _, s := range app.Secrets {
			if subtle.ConstantTimeCompare([]byte(s), []byte(secret)) == 1 {
				return client{app: app, acr: "1"}, nil
			}
		}
		return client{}, errBadSecret(app.ClientID)
	default:
		if confidential || !app.PublicClient {
			return client{}, errNoClientCredential()
		}
		return client{app: app, acr: "0"}, nil
	}
}

// verifyClientAssertion checks a client assertion: signed by a registered
// certificate (named by the header's x5t#S256 or x5t), or else matching a
// federated credential of the app.
func (e *Emulator) verifyClientAssertion(r *http.Request, app *App, assertion string) *stsError {
	tok, err := parseJWT(assertion)
	if err != nil {
		return errAssertionMalformed(err.Error())
	}
	if stringField(tok.header, "x5t#S256") == "" && stringField(tok.header, "x5t") == "" {
		return e.verifyFederatedAssertion(app, tok)
	}
	cert := findCertificate(app.Certificates, stringField(tok.header, "x5t#S256"), stringField(tok.header, "x5t"))
	if cert == nil {
		return errAssertionSignature("The key was not found", app.ClientID)
	}
	if err := tok.verify(cert.PublicKey); err != nil || stringField(tok.header, "alg") == "ES256" {
		return errAssertionSignature("The signature does not verify with the registered certificate's key", app.ClientID)
	}
	if stringField(tok.claims, "iss") != app.ClientID || stringField(tok.claims, "sub") != app.ClientID {
		return errAssertionClientMismatch()
	}
	tid := r.PathValue("tenant")
	root := e.base(r)
	want := root + "/" + tid + "/oauth2/v2.0/token"
	aud := audiences(tok.claims)
	if !containsAny(aud, want, root+"/"+tid+"/oauth2/token") {
		return errAssertionAudience(aud, want)
	}
	exp, se := e.checkAssertionTime(tok)
	if se != nil {
		return se
	}
	jti := stringField(tok.claims, "jti")
	if jti == "" {
		return errAssertionMalformed("the assertion has no jti claim")
	}
	now := e.clk.Now()
	key := app.ClientID + "\x00" + jti
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, until := range e.jtis {
		if now.After(until) {
			delete(e.jtis, k)
		}
	}
	if _, seen := e.jtis[key]; seen {
		return errAssertionReplayed()
	}
	e.jtis[key] = time.Unix(exp, 0).Add(assertionSkew)
	return nil
}

// verifyFederatedAssertion checks an assertion from another issuer against
// the app's federated credentials. Such assertions may be sent again (a
// projected service account token is reused), so jti is not checked.
func (e *Emulator) verifyFederatedAssertion(app *App, tok *jwt) *stsError {
	if len(app.Federated) == 0 {
		return errAssertionSignature("The key was not found. The assertion's header names no certificate thumbprint (x5t#S256 or x5t) and the app has no federated credential", app.ClientID)
	}
	iss, sub, aud := stringField(tok.claims, "iss"), stringField(tok.claims, "sub"), audiences(tok.claims)
	var byIssuer, bySubject []FederatedCredential
	for _, f := range app.Federated {
		if f.Issuer == iss {
			byIssuer = append(byIssuer, f)
		}
	}
	if len(byIssuer) == 0 {
		return errFederatedIssuer(iss)
	}
	for _, f := range byIssuer {
		if f.Subject == sub {
			bySubject = append(bySubject, f)
		}
	}
	if len(bySubject) == 0 {
		for _, f := range app.Federated {
			if f.Subject == sub {
				return errFederatedNoRecord(iss, sub, aud)
			}
		}
		return errFederatedSubject(sub, iss)
	}
	var match *FederatedCredential
	for i, f := range bySubject {
		if containsAny(aud, f.Audience) {
			match = &bySubject[i]
			break
		}
	}
	if match == nil {
		return errFederatedAudience(aud)
	}
	verified := false
	for _, k := range match.Keys {
		if tok.verify(k) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return errAssertionSignature("The signature does not verify with any key of the federated credential", app.ClientID)
	}
	_, se := e.checkAssertionTime(tok)
	return se
}

// checkAssertionTime applies exp and nbf with Entra's five minutes of skew.
func (e *Emulator) checkAssertionTime(tok *jwt) (int64, *stsError) {
	exp, ok := numberField(tok.claims, "exp")
	if !ok {
		return 0, errAssertionMalformed("the assertion has no exp claim")
	}
	nbf, hasNbf := numberField(tok.claims, "nbf")
	now := e.clk.Now()
	if now.After(time.Unix(exp, 0).Add(assertionSkew)) || hasNbf && time.Unix(nbf, 0).After(now.Add(assertionSkew)) {
		return 0, errAssertionTime(now, nbf, exp, hasNbf)
	}
	return exp, nil
}

// findCertificate finds the certificate whose SHA-256 (x5t#S256) or SHA-1
// (x5t) thumbprint is given. Entra's clients write thumbprints in standard
// or URL-safe base64 and sometimes hex; all are accepted.
func findCertificate(certs []*x509.Certificate, s256, s1 string) *x509.Certificate {
	want256, want1 := decodeThumbprint(s256), decodeThumbprint(s1)
	for _, c := range certs {
		if want256 != nil {
			sum := sha256.Sum256(c.Raw)
			if subtle.ConstantTimeCompare(sum[:], want256) == 1 {
				return c
			}
		}
		if want1 != nil {
			sum := sha1.Sum(c.Raw)
			if subtle.ConstantTimeCompare(sum[:], want1) == 1 {
				return c
			}
		}
	}
	return nil
}

func decodeThumbprint(s string) []byte {
	if s == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && (len(b) == sha256.Size || len(b) == sha1.Size) {
			return b
		}
	}
	if b, err := hex.DecodeString(s); err == nil {
		return b
	}
	return nil
}

func containsAny(have []string, want ...string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

func (e *Emulator) lookupApp(t *tenant, clientID string) *App {
	e.mu.Lock()
	defer e.mu.Unlock()
	return t.apps[strings.ToLower(clientID)]
}

func (e *Emulator) lookupUser(t *tenant, username string) *User {
	e.mu.Lock()
	defer e.mu.Unlock()
	return t.users[strings.ToLower(username)]
}

func (e *Emulator) userTenant(username string) *tenant {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.tenants {
		if t.users[strings.ToLower(username)] != nil {
			return t
		}
	}
	return nil
}

// issue makes the token response: an app token when u is nil, else a user
// token with, when asked for, an ID token, a refresh token and client_info.
func (e *Emulator) issue(r *http.Request, t *tenant, c client, sr *scopeRequest, u *User) (map[string]any, *stsError) {
	form := r.PostForm
	claimsReq, err := parseClaimsRequest(form.Get("claims"))
	if err != nil {
		return nil, errInvalidParam("claims")
	}
	e.mu.Lock()
	lifetime, refreshIn := e.lifetime, e.refreshIn
	e.mu.Unlock()
	now := e.clk.Now()
	iss := e.base(r) + "/" + t.id + "/v2.0"
	claims := map[string]any{
		"aud":      sr.resource,
		"iss":      iss,
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"exp":      now.Add(lifetime).Unix(),
		"tid":      t.id,
		"ver":      "2.0",
		"uti":      randomToken(16),
		"azp":      c.app.ClientID,
		"appid":    c.app.ClientID,
		"azpacr":   c.acr,
		"appidacr": c.acr,
	}
	resp := map[string]any{"token_type": "Bearer"}
	if u == nil {
		claims["oid"] = c.app.ObjectID
		claims["sub"] = c.app.ObjectID
		claims["idp"] = iss
		claims["idtyp"] = "app"
		if len(c.app.Roles) > 0 {
			claims["roles"] = append([]string(nil), c.app.Roles...)
		}
	} else {
		scp, scope := sr.grantedScopes()
		claims["oid"] = u.ObjectID
		claims["sub"] = derivedID("sub", u.ObjectID, c.app.ClientID)
		claims["idtyp"] = "user"
		claims["scp"] = scp
		claims["name"] = u.Name
		claims["preferred_username"] = u.Username
		claims["upn"] = u.Username
		resp["scope"] = scope
	}
	claimsReq.apply(claims)
	at, err := signRS256(e.signKey, e.kid, claims)
	if err != nil {
		return nil, newSTSError(500, "server_error", 50000, "There was an error issuing a token: %s.", err.Error())
	}
	secs := int64(lifetime / time.Second)
	resp["access_token"] = at
	resp["expires_in"] = secs
	resp["ext_expires_in"] = secs
	if refreshIn > 0 {
		resp["refresh_in"] = int64(refreshIn / time.Second)
	}
	if u == nil {
		return resp, nil
	}
	if form.Get("client_info") == "1" {
		ci, _ := json.Marshal(map[string]string{"uid": u.ObjectID, "utid": u.TenantID})
		resp["client_info"] = base64.RawURLEncoding.EncodeToString(ci)
	}
	if sr.oidc["openid"] {
		id, err := signRS256(e.signKey, e.kid, map[string]any{
			"aud":                c.app.ClientID,
			"iss":                iss,
			"iat":                now.Unix(),
			"nbf":                now.Unix(),
			"exp":                now.Add(time.Hour).Unix(),
			"name":               u.Name,
			"oid":                u.ObjectID,
			"preferred_username": u.Username,
			"sub":                claims["sub"],
			"tid":                u.TenantID,
			"ver":                "2.0",
		})
		if err != nil {
			return nil, newSTSError(500, "server_error", 50000, "There was an error issuing a token: %s.", err.Error())
		}
		resp["id_token"] = id
	}
	if sr.oidc["offline_access"] {
		rt := randomToken(48)
		e.mu.Lock()
		e.refreshTokens[rt] = &refreshGrant{tenantID: t.id, clientID: c.app.ClientID, username: u.Username, expires: now.Add(refreshTokenLifetime)}
		e.mu.Unlock()
		resp["refresh_token"] = rt
	}
	return resp, nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// claimsRequest is the "access_token" part of a request's "claims" parameter.
type claimsRequest map[string]any

func parseClaimsRequest(s string) (claimsRequest, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var all map[string]any
	if err := json.Unmarshal([]byte(s), &all); err != nil {
		return nil, err
	}
	if all == nil {
		return nil, errors.New("claims is not a JSON object")
	}
	at, _ := all["access_token"].(map[string]any)
	return claimsRequest(at), nil
}

// timeClaims are not echoed from a claims request: a CAE challenge that
// names nbf asks for a token newer than that time, which every new token is.
var timeClaims = map[string]bool{"nbf": true, "iat": true, "exp": true, "auth_time": true}

// apply adds the asked claims to a token: xms_cc ["CP1"] for a CAE-capable
// client, and the values of other claims (such as acrs) as lists, as Entra
// echoes them after a claims challenge.
func (cr claimsRequest) apply(claims map[string]any) {
	for name, spec := range cr {
		m, _ := spec.(map[string]any)
		var values []any
		if v, ok := m["values"].([]any); ok {
			values = v
		} else if v, ok := m["value"]; ok {
			values = []any{v}
		}
		if name == "xms_cc" {
			for _, v := range values {
				if s, _ := v.(string); s == "CP1" {
					claims["xms_cc"] = []string{"CP1"}
				}
			}
			continue
		}
		if timeClaims[name] || len(values) == 0 {
			continue
		}
		if _, reserved := claims[name]; reserved {
			continue
		}
		claims[name] = values
	}
}

// errTokenExpired is VerifyAccessToken's error for a token that verifies but
// has expired.
var errTokenExpired = errors.New("emulator: the token expired")

// VerifyAccessToken checks that token was issued by this Emulator (its
// signature, and its expiry against Options.Clock) and returns its claims.
// Numbers come back as json.Number.
func (e *Emulator) VerifyAccessToken(token string) (map[string]any, error) {
	tok, err := parseJWT(token)
	if err != nil {
		return nil, fmt.Errorf("emulator: the token is not a JWT: %w", err)
	}
	if stringField(tok.header, "alg") != "RS256" || stringField(tok.header, "kid") != e.kid {
		return nil, errors.New("emulator: the token was not signed by this emulator (alg or kid differ)")
	}
	if err := tok.verify(&e.signKey.PublicKey); err != nil {
		return nil, errors.New("emulator: the token's signature does not verify with this emulator's key")
	}
	exp, ok := numberField(tok.claims, "exp")
	if !ok {
		return nil, errors.New("emulator: the token has no exp claim")
	}
	if now := e.clk.Now(); !now.Before(time.Unix(exp, 0)) {
		return nil, fmt.Errorf("%w at %s", errTokenExpired, stsTime(time.Unix(exp, 0)))
	}
	return tok.claims, nil
}
