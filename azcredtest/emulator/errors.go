package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// stsError is a refusal in Entra's terms: HTTP status, OAuth error, AADSTS
// code and the description that follows "AADSTS<code>: ".
type stsError struct {
	status int
	oauth  string
	code   int
	msg    string
}

func newSTSError(status int, oauth string, code int, format string, args ...any) *stsError {
	return &stsError{status: status, oauth: oauth, code: code, msg: fmt.Sprintf(format, args...)}
}

// The refusals the emulator gives, with Entra's codes. Entra answers
// invalid_client with 401 and the rest with 400.

func errUnknownTenant(t string) *stsError {
	return newSTSError(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", t)
}

func errAliasTenant(t string) *stsError {
	return newSTSError(400, "invalid_request", 90002, "Tenant '%s' not found. This emulator only resolves '%s' for user sign-ins with a registered username; use the tenant ID. (Stricter than Entra ID on purpose, so tests name their tenant: Entra resolves the alias from the app's or user's home tenant where it can.)", t, t)
}

func errMissingParam(name string) *stsError {
	return newSTSError(400, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

func errInvalidParam(name string) *stsError {
	return newSTSError(400, "invalid_request", 90100, "%s parameter is empty or not valid.", name)
}

func errUnsupportedGrant(g string) *stsError {
	return newSTSError(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", g)
}

func errUnknownApp(clientID, tenantID string) *stsError {
	return newSTSError(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenantID)
}

func errBadSecret(clientID string) *stsError {
	return newSTSError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)
}

func errNoClientCredential() *stsError {
	return newSTSError(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

func errPublicClientCredential() *stsError {
	return newSTSError(401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
}

func errAssertionMalformed(reason string) *stsError {
	return newSTSError(401, "invalid_client", 50027, "JWT token is invalid or malformed: %s.", reason)
}

func errAssertionSignature(reason, clientID string) *stsError {
	return newSTSError(401, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - %s, Please visit the registration of app Id '%s' to see its configured keys.]", reason, clientID)
}

func errAssertionClientMismatch() *stsError {
	return newSTSError(401, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter. The 'iss' and 'sub' claims of the assertion must both be the client ID.")
}

func errAssertionAudience(aud []string, want string) *stsError {
	return newSTSError(401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer. The assertion's audience is %q; set it to the token endpoint, %q.", aud, want)
}

func errAssertionTime(now time.Time, nbf, exp int64, hasNbf bool) *stsError {
	from := "(no nbf)"
	if hasNbf {
		from = stsTime(time.Unix(nbf, 0))
	}
	return newSTSError(401, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.", stsTime(now), from, stsTime(time.Unix(exp, 0)))
}

// errAssertionReplayed: Entra documents no code of its own for a reused jti;
// 50013 (InvalidAssertion) is the closest documented one.
func errAssertionReplayed() *stsError {
	return newSTSError(401, "invalid_client", 50013, "Assertion is invalid: the client assertion's jti was already used. Sign a new assertion with a fresh jti for every request.")
}

func errFederatedIssuer(iss string) *stsError {
	return newSTSError(400, "invalid_request", 700211, "No matching federated identity record found for presented assertion issuer '%s'.", iss)
}

func errFederatedSubject(sub, iss string) *stsError {
	return newSTSError(400, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject '%s'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion issued by '%s'.", sub, iss)
}

// errFederatedNoRecord is Entra's general federation refusal: the app has
// records for the assertion's issuer and for its subject, but no single
// record holds both.
func errFederatedNoRecord(iss, sub string, aud []string) *stsError {
	return newSTSError(400, "invalid_request", 70021, "No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: %q.", iss, sub, aud)
}

func errFederatedAudience(aud []string) *stsError {
	return newSTSError(400, "invalid_request", 700212, "No matching federated identity record found for presented assertion audience %q.", aud)
}

func errInvalidScope(scope string) *stsError {
	return newSTSError(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)
}

func errScopeNotDefault(scope string) *stsError {
	return newSTSError(400, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
}

func errMultipleResources(scope string) *stsError {
	return newSTSError(400, "invalid_scope", 28000, "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)
}

func errUnknownResource(resource, tenantID string) *stsError {
	return newSTSError(400, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenantID)
}

func errUnknownUser(username, tenantID string) *stsError {
	return newSTSError(400, "invalid_grant", 50034, "The user account %s does not exist in the %s directory. To sign into this application, the account must be added to the directory.", username, tenantID)
}

func errBadPassword() *stsError {
	return newSTSError(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
}

func errUserAssertion(reason string) *stsError {
	return newSTSError(400, "invalid_grant", 50013, "Assertion failed signature validation. [Reason - %s]", reason)
}

func errUserAssertionAudience(got []string, clientID string) *stsError {
	return newSTSError(400, "invalid_grant", 50013, "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was %q and the expected audience is '%s' or one of the Application Id URIs of this web API.", got, clientID)
}

func errUserAssertionExpired(now time.Time, exp int64) *stsError {
	return newSTSError(400, "invalid_grant", 500133, "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: %s, expiry time of assertion %s.", stsTime(now), stsTime(time.Unix(exp, 0)))
}

func errBadRefreshToken() *stsError {
	return newSTSError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
}

func errRefreshTokenExpired() *stsError {
	return newSTSError(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
}

func errRefreshTokenClient() *stsError {
	return newSTSError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed. The refresh token was issued to a different client.")
}

func stsTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// writeSTSError answers in Entra's JSON error shape. The correlation ID is
// the request's client-request-id when it sent one, as Entra does.
func (e *Emulator) writeSTSError(w http.ResponseWriter, r *http.Request, se *stsError) {
	now := e.clk.Now()
	trace := newID()
	corr := r.Header.Get("client-request-id")
	if corr == "" {
		corr = newID()
	}
	ts := stsTime(now)
	body := map[string]any{
		"error":             se.oauth,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", se.code, se.msg, trace, corr, ts),
		"error_codes":       []int{se.code},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         e.url + "/error?code=" + strconv.Itoa(se.code),
	}
	h := w.Header()
	h.Set("x-ms-request-id", trace)
	if r.Header.Get("return-client-request-id") == "true" {
		h.Set("client-request-id", corr)
	}
	if se.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="`+e.url+`"`)
	}
	writeJSON(w, se.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "emulator: encoding the response failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
