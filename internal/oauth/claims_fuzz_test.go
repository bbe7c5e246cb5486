package oauth

import (
	"encoding/json"
	"strings"
	"testing"
)

// clashes reports whether claims hold access_token, xms_cc or values in a
// shape other than the capability's (object, object, array), where the
// merge keeps the caller's value as documented.
func clashes(claims string) bool {
	dec := json.NewDecoder(strings.NewReader(claims))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil {
		return true
	}
	v := any(obj)
	for _, k := range []string{"access_token", "xms_cc"} {
		m, ok := v.(map[string]any)
		if !ok {
			return true
		}
		if v, ok = m[k]; !ok {
			return false
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return true
	}
	if vals, ok := m["values"]; ok {
		_, isArray := vals.([]any)
		return !isArray
	}
	return false
}

// FuzzMergeClaims merges arbitrary claims (a CAE challenge's, decoded) with
// the CAE capability: the result is a JSON object that asks for CP1 unless
// the claims hold those members in another shape, and merging again
// changes nothing.
func FuzzMergeClaims(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`,
		`{"access_token":{"xms_cc":{"values":["CP1","cp2"]}}}`,
		`{"access_token":{"xms_cc":{"values":"CP1"}}}`,
		`{"access_token":{"xms_cc":["x"]}}`,
		`{"access_token":7}`,
		`{"id_token":{"auth_time":{"essential":true}},"n":1e999}`,
		`{}`, `[]`, `null`, `{"a":1} {"b":2}`, ``, `{"a":"\ud800"}`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, claims string, cae bool) {
		merged, err := MergeClaims(claims, cae)
		if err != nil {
			if claims == "" {
				t.Fatalf("no claims: %v", err)
			}
			return
		}
		if !cae {
			if merged != claims {
				t.Fatalf("without CAE the claims changed: %q to %q", claims, merged)
			}
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(merged), &obj); err != nil || obj == nil {
			t.Fatalf("merged claims %q are not a JSON object", merged)
		}
		if !clashes(claims) && !strings.Contains(merged, `"CP1"`) {
			t.Fatalf("merged claims %q do not ask for CP1", merged)
		}
		again, err := MergeClaims(merged, true)
		if err != nil || again != merged {
			t.Fatalf("merging twice: %q, %v; once: %q", again, err, merged)
		}
	})
}
