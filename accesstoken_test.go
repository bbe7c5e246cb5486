package azcred

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestAccessTokenPrintsRedactedWithEveryVerb holds the README's claim: an
// AccessToken prints without its token through every fmt verb, on the
// value, the pointer and inside exported fields, slices and maps.
func TestAccessTokenPrintsRedactedWithEveryVerb(t *testing.T) {
	t.Parallel()
	const secret = "opaque-token-value-0123456789"
	tok := AccessToken{Token: secret, ExpiresOn: time.Unix(1_700_000_000, 0).UTC()}
	type holder struct {
		Tok AccessToken
		Ptr *AccessToken
	}
	values := map[string]any{
		"value":          tok,
		"pointer":        &tok,
		"exported field": holder{Tok: tok, Ptr: &tok},
		"slice":          []AccessToken{tok},
		"map":            map[string]AccessToken{"k": tok},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.5s", "%-50v", "%t", "%T"}
	for name, v := range values {
		for _, verb := range verbs {
			out := fmt.Sprintf(verb, v)
			assert.NotContains(t, out, secret, "%s with %s: %s", name, verb, out)
			assert.NotContains(t, out, fmt.Sprintf("%x", secret), "%s with %s", name, verb)
			assert.NotContains(t, out, fmt.Sprintf("%X", secret), "%s with %s", name, verb)
		}
	}
	assert.Equal(t, tok.String(), fmt.Sprintf("%v", tok))
	assert.Equal(t, tok.String(), fmt.Sprintf("%+v", &tok))
	assert.Equal(t, tok.GoString(), fmt.Sprintf("%#v", tok))
	assert.Equal(t, fmt.Sprintf("%q", tok.String()), fmt.Sprintf("%q", tok))
	assert.Contains(t, tok.String(), "REDACTED")
	assert.Equal(t, fmt.Sprintf("%-90s|", tok.String()), fmt.Sprintf("%-90v|", tok), "width and flags apply")
	assert.NotContains(t, fmt.Sprintf("%p", &tok), secret)
	var nilTok *AccessToken
	assert.Equal(t, "<nil>", fmt.Sprintf("%v", nilTok))
}

// TestAccessTokenRedactionLimits pins what the README says redaction does
// not cover: encoding/json (a token must be serialisable), and fmt's
// printing of unexported struct fields, which never calls their methods.
func TestAccessTokenRedactionLimits(t *testing.T) {
	t.Parallel()
	const secret = "opaque-token-value-0123456789"
	tok := AccessToken{Token: secret}
	b, err := json.Marshal(tok)
	assert.NoError(t, err)
	assert.Contains(t, string(b), secret, "json.Marshal writes the token")
	type private struct{ tok AccessToken }
	assert.Contains(t, fmt.Sprintf("%v", private{tok}), secret, "fmt cannot redact an unexported field")
	assert.Contains(t, fmt.Sprintf("%p", tok), secret, "fmt reports %p on a value without calling any method")
}
