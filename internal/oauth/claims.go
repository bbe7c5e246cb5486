package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
)

// caeCapability is the client capability that opts in to Continuous Access
// Evaluation: tokens that last longer but may be revoked by a claims
// challenge.
const caeCapability = "CP1"

// MergeClaims returns the claims parameter to send: claims as given when
// enableCAE is false, else claims deep-merged with
// {"access_token":{"xms_cc":{"values":["CP1"]}}} (CP1 added to any values the
// caller already lists). claims must be "" or a JSON object.
func MergeClaims(claims string, enableCAE bool) (string, error) {
	if claims == "" && !enableCAE {
		return "", nil
	}
	obj := map[string]any{}
	if claims != "" {
		dec := json.NewDecoder(bytes.NewReader([]byte(claims)))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || dec.More() || obj == nil {
			return "", errors.New("claims must be a JSON object, such as the decoded claims of a CAE challenge")
		}
		if !enableCAE {
			return claims, nil
		}
	}
	capability := map[string]any{"access_token": map[string]any{"xms_cc": map[string]any{"values": []any{caeCapability}}}}
	mergeInto(obj, capability)
	b, err := json.Marshal(obj)
	if err != nil {
		return "", errors.New("claims cannot be encoded as JSON")
	}
	return string(b), nil
}

// mergeInto merges src into dst: objects recursively, arrays as a union in
// order; on any other clash dst's value stays.
func mergeInto(dst, src map[string]any) {
	for k, sv := range src {
		dv, ok := dst[k]
		if !ok {
			dst[k] = sv
			continue
		}
		switch d := dv.(type) {
		case map[string]any:
			if s, ok := sv.(map[string]any); ok {
				mergeInto(d, s)
			}
		case []any:
			if s, ok := sv.([]any); ok {
				for _, v := range s {
					if !slices.ContainsFunc(d, func(x any) bool { return sameScalar(x, v) }) {
						d = append(d, v)
					}
				}
				dst[k] = d
			}
		}
	}
}

// sameScalar reports whether a and b are equal strings, numbers or booleans;
// objects and arrays never compare equal (and never panic).
func sameScalar(a, b any) bool {
	switch a.(type) {
	case string, json.Number, bool, nil:
		return a == b
	}
	return false
}
