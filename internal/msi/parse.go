package msi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/azcred/azcred/internal/redact"
)

// Token is a managed-identity token response, parsed.
type Token struct {
	// AccessToken is the bearer token.
	AccessToken string
	// ExpiresOn is when it expires.
	ExpiresOn time.Time
	// RefreshOn is when to refresh it: the endpoint's refresh_in, else half
	// its lifetime when that exceeds two hours, else zero (the cache decides).
	RefreshOn time.Time
	// Fields holds the response's other string fields (client_id,
	// object_id, msi_res_id, mi_res_id, resource, ...), for the Arc echo check.
	Fields map[string]string
}

// String describes t without its token.
func (t Token) String() string {
	return fmt.Sprintf("msi.Token{ExpiresOn: %s, AccessToken: [REDACTED]}", t.ExpiresOn.Format(time.RFC3339))
}

// GoString describes t without its token.
func (t Token) GoString() string { return t.String() }

// ErrNotJSON marks a response body that is not a JSON object: whatever
// answered is not a managed-identity endpoint.
var ErrNotJSON = errors.New("the response is not a JSON object")

// maxLifetime bounds lifetimes so that times stay representable: ten years.
const maxLifetime = 10 * 365 * 24 * time.Hour

// maxEpoch is the largest expires_on, in seconds since 1970, that either
// form (digits or a JSON number) may give: the last second whose time in
// nanoseconds since 1970 fits in an int64 (year 2262).
const maxEpoch = math.MaxInt64 / int64(time.Second)

// longLived is the lifetime above which a token without refresh_in is
// refreshed at half-life.
const longLived = 2 * time.Hour

// The date layouts App Service and other hosts have used for expires_on, in
// the order tried. Layouts without a zone are UTC.
var expiresOnLayouts = []string{
	"01/02/2006 15:04:05 -07:00",    // App Service 2017-09-01 on Linux
	"01/02/2006 03:04:05 PM -07:00", // App Service 2017-09-01 on Windows
	"1/2/2006 3:04:05 PM -07:00",    // the same without leading zeros
	"1/2/2006 15:04:05 -07:00",
	"01/02/2006 15:04:05",
	"2006-01-02 15:04:05",
	time.RFC3339Nano,
}

// ParseToken reads a successful response received at received. It needs
// access_token and one of expires_on (epoch seconds as digits or a JSON
// number, one of the date forms hosts have used, or RFC 3339) and expires_in
// (seconds from received, digits or a number); it reads refresh_in when sent.
// A token that has expired by received (expires_in 0, expires_on in the
// past) is an error, as on Entra ID.
// Its errors never contain the body or the token.
func ParseToken(body []byte, received time.Time) (Token, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Token{}, ErrNotJSON
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil || raw == nil {
		return Token{}, ErrNotJSON
	}
	var t Token
	if v, ok := raw["access_token"]; ok {
		_ = json.Unmarshal(v, &t.AccessToken)
	}
	if t.AccessToken == "" {
		return Token{}, errors.New("the response has no access_token")
	}
	t.Fields = map[string]string{}
	for k, v := range raw {
		var s string
		if k != "access_token" && k != "refresh_token" && json.Unmarshal(v, &s) == nil {
			t.Fields[k] = s
		}
	}

	var err error
	switch on, in := raw["expires_on"], raw["expires_in"]; {
	case present(on):
		if t.ExpiresOn, err = parseExpiresOn(on); err != nil {
			return Token{}, err
		}
	case present(in):
		secs, err := parseSeconds(in)
		if err != nil {
			return Token{}, fmt.Errorf("expires_in: %w", err)
		}
		t.ExpiresOn = received.Add(secs)
	default:
		return Token{}, errors.New("the response has neither expires_on nor expires_in")
	}
	if !t.ExpiresOn.After(received) {
		return Token{}, fmt.Errorf("the token has already expired: it expires at %s, not after %s when it was received; check the host's clock, or report the endpoint's answer to the host's support", t.ExpiresOn.UTC().Format(time.RFC3339), received.UTC().Format(time.RFC3339))
	}
	if v := raw["refresh_in"]; present(v) {
		secs, err := parseSeconds(v)
		if err != nil {
			return Token{}, fmt.Errorf("refresh_in: %w", err)
		}
		t.RefreshOn = received.Add(secs)
	} else if life := t.ExpiresOn.Sub(received); life > longLived {
		t.RefreshOn = received.Add(life / 2)
	}
	return t, nil
}

func present(v json.RawMessage) bool {
	return len(v) > 0 && !bytes.Equal(v, []byte("null")) && !bytes.Equal(v, []byte(`""`))
}

// parseExpiresOn reads an absolute expiry: epoch seconds as a JSON number or
// a string of digits, or a date string in one of expiresOnLayouts.
func parseExpiresOn(v json.RawMessage) (time.Time, error) {
	if v[0] != '"' {
		n, err := wholeNumber(string(v))
		if err != nil || n <= 0 {
			return time.Time{}, fmt.Errorf("expires_on %s is not a positive whole number of seconds since 1970", clip(string(v)))
		}
		if n > maxEpoch {
			return time.Time{}, fmt.Errorf("expires_on %s is out of range", clip(string(v)))
		}
		return time.Unix(n, 0), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return time.Time{}, errors.New("expires_on is not a valid JSON string")
	}
	s = strings.TrimSpace(s)
	if isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > maxEpoch {
			return time.Time{}, fmt.Errorf("expires_on %q is out of range", clip(s))
		}
		return time.Unix(n, 0), nil
	}
	for _, layout := range expiresOnLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("expires_on %q is neither seconds since 1970 nor a date in a known form (such as \"01/02/2006 15:04:05 +00:00\" or RFC 3339)", clip(s))
}

// parseSeconds reads a relative time: whole seconds as a number or a string
// of digits, at most ten years.
func parseSeconds(v json.RawMessage) (time.Duration, error) {
	s := string(v)
	if v[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, errors.New("not a valid JSON string")
		}
		s = strings.TrimSpace(s)
		if !isDigits(s) {
			return 0, fmt.Errorf("%q is not a whole number of seconds", clip(s))
		}
	}
	n, err := wholeNumber(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s is not a whole, non-negative number of seconds", clip(s))
	}
	if d := time.Duration(n) * time.Second; n <= int64(maxLifetime/time.Second) {
		return d, nil
	}
	return 0, fmt.Errorf("%d seconds is more than ten years", n)
}

// wholeNumber reads a JSON number that is a whole number (1700000000 or
// 1.7e9 alike).
func wholeNumber(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, errors.New("not a whole number")
	}
	return int64(f), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip shortens a value quoted in an error.
func clip(s string) string { return redact.Truncate(s, 40) }
