package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Token is a successful token response. It prints with its secrets
// redacted.
type Token struct {
	// AccessToken is the token itself.
	AccessToken string
	// TokenType is the scheme, "Bearer" unless the server said otherwise.
	TokenType string
	// ExpiresOn is when the access token expires: the time the request was
	// sent plus expires_in.
	ExpiresOn time.Time
	// ExtExpiresOn is the extended expiry (ext_expires_in); zero if not sent.
	ExtExpiresOn time.Time
	// RefreshOn is when the server suggests refreshing (refresh_in); zero
	// when it sent none.
	RefreshOn time.Time
	// RefreshToken and IDToken are sent only for user grants that asked for
	// offline_access and openid.
	RefreshToken, IDToken string
	// Scope is the granted scope, space-separated, when sent.
	Scope string
}

// String returns a description of t without its secrets.
func (t Token) String() string {
	return fmt.Sprintf("oauth.Token{TokenType: %q, ExpiresOn: %s, AccessToken: [REDACTED]}", t.TokenType, t.ExpiresOn.Format(time.RFC3339))
}

// GoString returns a description of t without its secrets.
func (t Token) GoString() string { return t.String() }

// maxLifetime bounds expires_in so that times stay representable: ten years.
const maxLifetime = 10 * 365 * 24 * time.Hour

// ParseTokenResponse reads a successful token response (the JSON of an HTTP
// 200 from a token endpoint) received for a request sent at sent. It needs
// access_token and expires_in (a number, or a string of digits); it reads
// token_type, ext_expires_in, refresh_in, refresh_token, id_token and scope
// when present. Its errors never contain the body.
func ParseTokenResponse(body []byte, sent time.Time) (*Token, error) {
	var raw struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		ExtExpiresIn json.RawMessage `json:"ext_expires_in"`
		RefreshIn    json.RawMessage `json:"refresh_in"`
		RefreshToken string          `json:"refresh_token"`
		IDToken      string          `json:"id_token"`
		Scope        string          `json:"scope"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, errors.New("the token response is not valid JSON: the endpoint is probably not a Microsoft Entra token endpoint")
		}
		return nil, errors.New("the token response is not the expected JSON object (a field has the wrong type)")
	}
	if raw.AccessToken == "" {
		return nil, errors.New("the token response has no access_token")
	}
	expiresIn, ok := seconds(raw.ExpiresIn)
	if !ok || expiresIn <= 0 {
		return nil, errors.New("the token response has no valid expires_in (a positive number of seconds)")
	}
	t := &Token{
		AccessToken:  raw.AccessToken,
		TokenType:    raw.TokenType,
		ExpiresOn:    sent.Add(expiresIn),
		RefreshToken: raw.RefreshToken,
		IDToken:      raw.IDToken,
		Scope:        raw.Scope,
	}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	if ext, ok := seconds(raw.ExtExpiresIn); ok && ext > 0 {
		t.ExtExpiresOn = sent.Add(ext)
	}
	if r, ok := seconds(raw.RefreshIn); ok && r > 0 && r < expiresIn {
		t.RefreshOn = sent.Add(r)
	}
	return t, nil
}

// seconds reads a JSON number or a string holding one as a duration in
// seconds (fractions truncated); ok is false when absent or invalid.
func seconds(raw json.RawMessage) (time.Duration, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return 0, false
		}
		s = strings.TrimSpace(str)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	if f > maxLifetime.Seconds() {
		return 0, false
	}
	if f < 0 {
		return -1, true
	}
	return time.Duration(math.Trunc(f)) * time.Second, true
}
