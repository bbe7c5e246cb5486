package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/azcred/azcred/internal/redact"
)

// Error is a token endpoint's refusal: any answer but 200, read from Entra's
// error JSON when the body is one. No secret of the request appears in it:
// values the client sent (secret, password, assertions) and anything shaped
// like a token are replaced by REDACTED (see internal/redact).
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the OAuth error code ("invalid_client", ...).
	Code string
	// Description is the first line of error_description, its AADSTS prefix
	// removed.
	Description string
	// AADSTS is the Entra error code, such as "AADSTS7000215"; "" if none.
	AADSTS string
	// ErrorCodes is Entra's error_codes.
	ErrorCodes []int
	// CorrelationID, TraceID and Timestamp identify the failure for
	// Microsoft support.
	CorrelationID, TraceID, Timestamp string
	// Body is the response body, redacted and cut to at most maxSnippet
	// bytes, for diagnostics.
	Body string
}

// maxSnippet bounds Error.Body.
const maxSnippet = 1024

var (
	aadstsPattern = regexp.MustCompile(`AADSTS(\d+)`)
)

// hints tells what to do about the Entra errors users meet most.
var hints = map[string]string{
	"AADSTS7000215": "The client secret is wrong: use the secret's value (not its secret ID), and check that it has not expired or been deleted.",
	"AADSTS7000222": "The client secret has expired: add a new secret to the app registration and use its value.",
	"AADSTS700016":  "The application (client) ID was not found in this tenant: check the client ID, and that the app is registered in (or consented to) this tenant.",
	"AADSTS90002":   "The tenant was not found: check the tenant ID or domain, and that the authority host is the tenant's cloud.",
	"AADSTS900023":  "The tenant ID is not valid: use the tenant's GUID or a verified domain name.",
	"AADSTS700027":  "The client assertion's signature did not verify: check that the certificate registered on the app matches the private key in use.",
	"AADSTS700024":  "The client assertion is outside its validity period: check the machine's clock, or supply a fresh assertion.",
	"AADSTS70011":   `The scope is not valid for this flow: request "<resource>/.default", such as "https://management.azure.com/.default".`,
	"AADSTS50126":   "The username or password is wrong; the password grant also fails for federated accounts and accounts that need MFA: use an interactive credential for those.",
	"AADSTS50076":   "The account needs multi-factor authentication: use an interactive credential (InteractiveBrowserCredential or DeviceCodeCredential).",
	"AADSTS50079":   "The account must register for multi-factor authentication: sign in interactively once, then use an interactive credential.",
	"AADSTS50034":   "The user account does not exist in this tenant: check the username and tenant.",
	"AADSTS50053":   "The account is locked after too many failed sign-ins: wait, or ask an administrator to unlock it.",
	"AADSTS50055":   "The user's password has expired: change it by signing in interactively.",
	"AADSTS53003":   "Conditional Access blocked the sign-in: ask an administrator which policy applies.",
	"AADSTS65001":   "The user or an administrator has not consented to the app's use of this resource: grant consent in the Azure portal.",
	"AADSTS500011":  "The resource in the scope was not found in the tenant: check the scope's resource URI, and that the resource's service principal exists in the tenant.",
	"AADSTS7000218": "The app requires a client secret or certificate: configure one for this credential.",
	"AADSTS700025":  "The app is a public client: do not send a secret or certificate, or turn off 'Allow public client flows'.",
	"AADSTS70021":   "No federated identity credential on the app matches the assertion: check the credential's issuer, subject and audience.",
	"AADSTS700211":  "No federated identity credential on the app matches the assertion's issuer: check the issuer.",
	"AADSTS700213":  "No federated identity credential on the app matches the assertion's subject: check the subject.",
	"AADSTS50013":   "The user assertion (on-behalf-of token) is not valid: check that it is a token issued for this app, and not expired.",
	"AADSTS500133":  "The user assertion (on-behalf-of token) has expired: get a fresh token from the caller.",
	"AADSTS7000112": "The application is disabled: ask an administrator to enable it.",
}

// codeHints tells what to do when there is no known AADSTS code.
var codeHints = map[string]string{
	"invalid_client":          "Check the client ID and its secret or certificate.",
	"unauthorized_client":     "The app may not use this grant: check its registration.",
	"invalid_scope":           `Check the scope: for this flow request "<resource>/.default".`,
	"invalid_grant":           "The grant (password, assertion or refresh token) was refused: check it, or sign in again.",
	"interaction_required":    "Sign in interactively: use InteractiveBrowserCredential or DeviceCodeCredential.",
	"invalid_request":         "The request was refused as malformed: check the configured tenant, client ID and scopes.",
	"temporarily_unavailable": "The service is busy: try again later.",
}

// Error implements error. It leads with the AADSTS code and ends with what to
// do.
func (e *Error) Error() string {
	var b strings.Builder
	if e.AADSTS == "" && e.Code == "" && e.Description == "" {
		fmt.Fprintf(&b, "the token endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Body != "" {
			fmt.Fprintf(&b, " with a body that is not Entra's error JSON: %q", snippet(e.Body, 200))
		}
		b.WriteString("; check the authority host, and any proxy between here and it")
		return b.String()
	}
	if e.AADSTS != "" {
		b.WriteString(e.AADSTS)
		b.WriteString(": ")
	}
	if e.Description != "" {
		b.WriteString(e.Description)
	} else {
		b.WriteString("the token request was refused")
	}
	b.WriteString(" (")
	if e.Code != "" {
		b.WriteString(e.Code)
		b.WriteString(", ")
	}
	fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, ", correlation ID %s", e.CorrelationID)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, ", trace ID %s", e.TraceID)
	}
	if e.Timestamp != "" {
		fmt.Fprintf(&b, ", timestamp %s", e.Timestamp)
	}
	b.WriteString(")")
	if h := e.Hint(); h != "" {
		b.WriteString(". ")
		b.WriteString(h)
	}
	return b.String()
}

// Hint returns what to do about e, "" when there is nothing specific.
func (e *Error) Hint() string {
	if h, ok := hints[e.AADSTS]; ok {
		return h
	}
	return codeHints[e.Code]
}

// ParseError reads a token endpoint's non-200 answer. Each of secrets (the
// values the request carried) is redacted wherever it appears, in any of the
// encodings a server might echo it in; so is anything shaped like a JWT.
func ParseError(status int, body []byte, secrets ...string) *Error {
	r := redactor{redact.New(secrets...)}
	clean := r.String(strings.ToValidUTF8(string(body), "\uFFFD"))
	e := &Error{StatusCode: status, Body: r.Body(body, maxSnippet)}
	var raw struct {
		Error         string          `json:"error"`
		Description   string          `json:"error_description"`
		ErrorCodes    json.RawMessage `json:"error_codes"`
		CorrelationID string          `json:"correlation_id"`
		TraceID       string          `json:"trace_id"`
		Timestamp     any             `json:"timestamp"`
	}
	if json.Unmarshal([]byte(clean), &raw) != nil {
		return e
	}
	e.Code = r.field(raw.Error, 100)
	e.CorrelationID = r.field(raw.CorrelationID, 100)
	e.TraceID = r.field(raw.TraceID, 100)
	switch ts := raw.Timestamp.(type) {
	case string:
		e.Timestamp = r.field(ts, 100)
	case float64:
		e.Timestamp = strconv.FormatFloat(ts, 'f', -1, 64)
	}
	var codes []json.Number
	if json.Unmarshal(raw.ErrorCodes, &codes) == nil {
		for _, c := range codes {
			if n, err := strconv.Atoi(c.String()); err == nil && n > 0 {
				e.ErrorCodes = append(e.ErrorCodes, n)
			}
		}
	}
	desc := raw.Description
	if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
		desc = desc[:i] // the rest repeats the trace and correlation IDs
	}
	if len(e.ErrorCodes) > 0 {
		e.AADSTS = "AADSTS" + strconv.Itoa(e.ErrorCodes[0])
	} else if m := aadstsPattern.FindStringSubmatch(desc); m != nil && len(m[1]) <= 9 {
		e.AADSTS = "AADSTS" + m[1]
	}
	desc = strings.TrimSpace(desc)
	if e.AADSTS != "" {
		desc = strings.TrimSpace(strings.TrimPrefix(desc, e.AADSTS+":"))
	}
	e.Description = r.field(desc, 500)
	return e
}

// field cleans a decoded JSON string for an error message: JSON escapes may
// have rebuilt a secret that the raw body did not show, so it is redacted
// again; control characters go; length is bounded.
func (r redactor) field(s string, max int) string {
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return ' '
		}
		return c
	}, s)
	return truncate(r.String(s), max)
}

type redactor struct{ *redact.Redactor }

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string { return redact.Truncate(s, n) }

// snippet collapses whitespace and cuts s to n bytes for a one-line message.
func snippet(s string, n int) string {
	return truncate(strings.Join(strings.Fields(s), " "), n)
}
